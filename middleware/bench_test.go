package middleware_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/jwtauth"
	"github.com/go-tenancy/tenancy/middleware"
	"github.com/go-tenancy/tenancy/resolve"
)

// discardWriter is a ResponseWriter that allocates nothing, so benchmarks
// measure the middleware alone.
type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (d *discardWriter) WriteHeader(int)             {}

// okHandler checks that the tenant arrived, without allocating.
var okHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	if _, ok := tenancy.FromContext(r.Context()); !ok {
		panic("no tenant")
	}
})

// hotPath returns the warm header-resolution setup: middleware over the
// cache over memstore, tenant already in L1, no rate limiter.
func hotPath(tb testing.TB, publicPaths ...string) (http.Handler, *http.Request, http.ResponseWriter) {
	tb.Helper()
	b := setup(tb)
	h := middleware.New(middleware.Config{Resolver: resolve.Header{Lookup: b.cache}, PublicPaths: publicPaths, Metrics: b.metrics})(okHandler)
	r := httptest.NewRequest("GET", "/notes", nil)
	r.Header.Set("X-Tenant-ID", "acme-corp")
	w := &discardWriter{h: http.Header{}}
	h.ServeHTTP(w, r) // warm L1 and the counter cache
	return h, r, w
}

func BenchmarkHeaderL1Hit(b *testing.B) {
	h, r, w := hotPath(b)
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(w, r)
	}
}

func BenchmarkHeaderL1HitWithPublicPaths(b *testing.B) {
	h, r, w := hotPath(b, "GET /healthz", "/docs", "/static/")
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(w, r)
	}
}

func BenchmarkHeaderL1HitParallel(b *testing.B) {
	h, r, _ := hotPath(b)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		w := &discardWriter{h: http.Header{}}
		for pb.Next() {
			h.ServeHTTP(w, r)
		}
	})
}

func BenchmarkHostL1Hit(b *testing.B) {
	bn := setup(b)
	h := middleware.New(middleware.Config{Resolver: resolve.Host{BaseDomain: "example.com", Lookup: bn.cache}})(okHandler)
	r := httptest.NewRequest("GET", "/notes", nil)
	r.Host = "acme-corp.example.com:8443"
	w := &discardWriter{h: http.Header{}}
	h.ServeHTTP(w, r)
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(w, r)
	}
}

func BenchmarkPathL1Hit(b *testing.B) {
	bn := setup(b)
	h := middleware.New(middleware.Config{Resolver: resolve.Path{Lookup: bn.cache}})(okHandler)
	r := httptest.NewRequest("GET", "/t/acme-corp/notes/1", nil)
	w := &discardWriter{h: http.Header{}}
	h.ServeHTTP(w, r)
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(w, r)
	}
}

func BenchmarkJWTL1Hit(b *testing.B) {
	_, edPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		alg       string
		priv, pub any
	}{
		{jwtauth.HS256, hmacKey, hmacKey},
		{jwtauth.EdDSA, edPriv, edPriv.Public()},
	} {
		b.Run(c.alg, func(b *testing.B) {
			bn := setup(b)
			s, err := jwtauth.NewSigner(jwtauth.Config{Algorithm: c.alg, Key: c.priv})
			if err != nil {
				b.Fatal(err)
			}
			v, err := jwtauth.NewVerifier(jwtauth.Config{Algorithm: c.alg, Key: c.pub})
			if err != nil {
				b.Fatal(err)
			}
			tok, err := s.Issue("acme-corp", "user-1", nil)
			if err != nil {
				b.Fatal(err)
			}
			h := middleware.New(middleware.Config{Resolver: resolve.JWT{Verifier: v, Lookup: bn.cache}})(okHandler)
			r := httptest.NewRequest("GET", "/notes", nil)
			r.Header.Set("Authorization", "Bearer "+tok)
			w := &discardWriter{h: http.Header{}}
			h.ServeHTTP(w, r)
			b.ReportAllocs()
			for b.Loop() {
				h.ServeHTTP(w, r)
			}
		})
	}
}
