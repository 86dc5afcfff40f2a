package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/go-tenancy/tenancy"
	"github.com/jackc/pgx/v5/pgconn"
)

// describe turns err into the message of the error line.
func describe(ctx context.Context, err error) string {
	var (
		connErr *pgconn.ConnectError
		dup     *tenancy.DuplicateError
		field   *tenancy.FieldError
	)
	switch {
	case errors.Is(ctx.Err(), context.Canceled):
		return "interrupted"
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return "timed out"
	case errors.As(err, &connErr):
		return "cannot reach the database: " + connectCause(connErr)
	case errors.As(err, &dup):
		return dup.Error()
	case errors.As(err, &field):
		return field.Error()
	}
	return err.Error()
}

// connectCause is the short reason a connection failed: the network error
// ("dial tcp 127.0.0.1:1: connect: connection refused") or the server's
// refusal, without pgx's repetition of user and database.
func connectCause(e *pgconn.ConnectError) string {
	var op *net.OpError
	if errors.As(e, &op) {
		return op.Error()
	}
	var pgErr *pgconn.PgError
	if errors.As(e, &pgErr) {
		return pgErr.Error()
	}
	if inner := errors.Unwrap(e); inner != nil {
		return inner.Error()
	}
	return e.Error()
}

// oneLine folds a message onto one line and escapes what a terminal would
// interpret, so that an error line can never turn into several, or into
// control sequences.
func oneLine(s string) string {
	return escapeControls(strings.Join(strings.Fields(s), " "))
}

func escapeControls(s string) string {
	if utf8.ValidString(s) && strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) < 0 {
		return s
	}
	var b strings.Builder
	for i, r := range s {
		switch {
		case r == utf8.RuneError && !strings.HasPrefix(s[i:], "\uFFFD"):
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case !unicode.IsPrint(r):
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// maxQuoted bounds how much of an unvalidated argument an error line echoes.
const maxQuoted = 64

// quote quotes unvalidated input for an error line, cut to maxQuoted bytes.
func quote(s string) string {
	if len(s) <= maxQuoted {
		return strconv.Quote(s)
	}
	cut := maxQuoted
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strconv.Quote(s[:cut]) + "..."
}

// clean makes a stored value safe to print for a human: values with
// control or invisible characters are printed quoted, with those escaped.
func clean(s string) string {
	if utf8.ValidString(s) && strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) < 0 {
		return s
	}
	return strconv.Quote(s)
}

// formatDuration rounds d for a summary: "42ms", "1.2s", "3m4s".
func formatDuration(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return d.Round(time.Microsecond).String()
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

// writeJSON prints v as indented JSON.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("write JSON: %w", err)
	}
	return nil
}
