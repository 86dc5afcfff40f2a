package service

import (
	"embed"
	"html/template"
	"io/fs"
	"net/http"
	"strings"
)

// The /docs page renders the OpenAPI description with Stoplight Elements,
// served from the binary: the page works offline and behind a firewall,
// and loads nothing from a third party.
//
//go:embed docs/elements/web-components.min.js docs/elements/styles.min.css docs/elements/LICENSE
var docsAssets embed.FS

// elementsVersion is the vendored @stoplight/elements version
// (docs/elements/VERSION).
const elementsVersion = "9.0.25"

// DocsAssetsPath is where the page's script, style sheet and license are
// served.
const DocsAssetsPath = "/docs/elements/"

var docsPage = template.Must(template.New("docs").Parse(`<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <meta name="referrer" content="no-referrer">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>{{.Title}}</title>
    <link rel="stylesheet" href="{{.Assets}}styles.min.css?v={{.Version}}">
    <script src="{{.Assets}}web-components.min.js?v={{.Version}}"></script>
  </head>
  <body style="height: 100vh;">
    <elements-api
      apiDescriptionUrl="/openapi.yaml"
      router="hash"
      layout="sidebar"
      tryItCredentialsPolicy="same-origin"
    ></elements-api>
  </body>
</html>
`))

// docsCSP allows the page its own script, styles and calls, and nothing
// else. Elements sets styles inline.
const docsCSP = "default-src 'none'; base-uri 'none'; connect-src 'self'; form-action 'none'; frame-ancestors 'none'; " +
	"img-src 'self' data:; font-src 'self' data:; script-src 'self'; style-src 'self' 'unsafe-inline'"

// registerDocs serves GET /docs and its assets on mux.
func registerDocs(mux *http.ServeMux, title string) {
	var page strings.Builder
	if err := docsPage.Execute(&page, map[string]string{"Title": title, "Assets": DocsAssetsPath, "Version": elementsVersion}); err != nil {
		panic(err) // the template is a constant
	}
	body := []byte(page.String())
	mux.HandleFunc("GET /docs", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Security-Policy", docsCSP)
		_, _ = w.Write(body)
	})
	assets, err := fs.Sub(docsAssets, "docs/elements")
	if err != nil {
		panic(err)
	}
	files := http.StripPrefix(DocsAssetsPath, http.FileServerFS(assets))
	mux.HandleFunc("GET "+DocsAssetsPath+"{file}", func(w http.ResponseWriter, r *http.Request) {
		// Versioned URLs: a new release of the viewer has new URLs.
		w.Header().Set("Cache-Control", "public, max-age=86400")
		files.ServeHTTP(w, r)
	})
}
