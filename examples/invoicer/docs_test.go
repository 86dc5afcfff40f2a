package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/go-tenancy/tenancy/internal/testenv"
)

// chromium returns the Chromium binary: $CHROMIUM, or chromium (Debian's
// package) or chromium-browser on PATH.
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	var err error
	for _, name := range []string{"chromium", "chromium-browser"} {
		var p string
		if p, err = exec.LookPath(name); err == nil {
			return p
		}
	}
	testenv.Unavailable(t, "Chromium", "CHROMIUM", err)
	return ""
}

// TestDocsInBrowser opens /docs in headless Chromium, with every host but
// the service's unreachable, and finds every operation of the API on the
// rendered page: the viewer is served by the binary itself.
func TestDocsInBrowser(t *testing.T) {
	t.Parallel()
	browser := chromium(t)
	bin := buildBinary(t)
	s := startServer(t, bin, map[string]string{"DATA_DIR": t.TempDir()})

	var doc struct {
		Paths map[string]map[string]struct {
			OperationID string   `json:"operationId"`
			Summary     string   `json:"summary"`
			Tags        []string `json:"tags"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(s.client().do(t, "GET", "/openapi.json", via{}, "").want(t, 200).body, &doc); err != nil {
		t.Fatal(err)
	}
	// The sidebar lists a tag's operations once one of them is open: open
	// one per tag.
	var summaries []string
	open := map[string]string{} // tag -> an operation's ID
	for _, ops := range doc.Paths {
		for _, op := range ops {
			summaries = append(summaries, op.Summary)
			for _, tag := range op.Tags {
				open[tag] = op.OperationID
			}
		}
	}
	if len(summaries) != 12 || len(open) == 0 {
		t.Fatalf("the API has %d operations, want Invoicer's 12, with tags: %v", len(summaries), summaries)
	}
	var page string
	for _, id := range open {
		page += renderedDOM(t, browser, s.url+"/docs#/operations/"+id)
	}
	if !strings.Contains(page, "<elements-api") {
		t.Fatalf("not the docs page:\n%s", page)
	}
	for _, sum := range summaries {
		if !strings.Contains(page, ">"+sum+"<") {
			t.Errorf("the rendered /docs lacks the operation %q", sum)
		}
	}
	if t.Failed() {
		t.Logf("rendered page (%d bytes):\n%s", len(page), page)
	}
}

// renderedDOM loads url in headless Chromium, lets its scripts run, and
// returns the DOM.
func renderedDOM(t *testing.T, browser, url string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, browser,
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-dev-shm-usage", "--user-data-dir="+t.TempDir(),
		// No network beyond the service: every other host name fails to
		// resolve, so a page that needs a CDN renders nothing.
		"--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
		"--virtual-time-budget=20000", "--dump-dom", url)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	dom, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium: %v\n%s", err, stderr.String())
	}
	return string(dom)
}
