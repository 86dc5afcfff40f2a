// Package metadata encodes tenant metadata the way the SQL tenant stores
// keep it: a JSON object, "{}" when empty.
package metadata

import (
	"encoding/json"
	"fmt"

	"github.com/go-tenancy/tenancy"
)

// Encode returns m as JSON text, "{}" when empty. Values that JSON cannot
// hold are a field error, refused before anything is written.
func Encode(m map[string]any) (string, error) {
	if len(m) == 0 {
		return "{}", nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		return "", &tenancy.FieldError{Field: "metadata", Reason: "must be a JSON object"}
	}
	return string(b), nil
}

// Decode parses a stored JSON object; an empty one is nil, as for a tenant
// created without metadata.
func Decode(s string) (map[string]any, error) {
	if s == "" || s == "{}" {
		return nil, nil
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return nil, fmt.Errorf("decode metadata: %w", err)
	}
	if len(m) == 0 {
		return nil, nil
	}
	return m, nil
}
