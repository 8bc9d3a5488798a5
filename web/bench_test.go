package web_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/rs/zerolog"

	"github.com/exlive2mqtt/exlive2mqtt/web"
)

// discard is a ResponseWriter that keeps nothing, so that a benchmark
// counts the server's work and not a recorder's copying.
type discard struct {
	h      http.Header
	n      int
	status int
}

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) WriteHeader(code int)        { d.status = code }
func (d *discard) Write(p []byte) (int, error) { d.n += len(p); return len(p), nil }

// BenchmarkAPIVehicles is the CPU one request of /api/vehicles costs with
// a hundred thousand vehicles (docs/operations.md), with the list built
// once, as it is while nothing changes; BenchmarkBuildVehicleList is the
// build after a change.
//
//	go test ./web -run '^$' -bench APIVehicles -benchmem
func BenchmarkAPIVehicles(b *testing.B) {
	const n = 100_000
	src := &fakeSource{ready: true}
	src.setVehicles(fleet(n))
	h := web.New(web.Config{}, src, nil, zerolog.Nop()).Handler()
	cases := []struct {
		name, target, encoding string
	}{
		{"full", "/api/vehicles", ""},
		{"full-gzip", "/api/vehicles", "gzip"},
		{"page", "/api/vehicles?offset=50000&limit=50", ""},
		{"page-gzip", "/api/vehicles?offset=50000&limit=50", "gzip"},
		// The box holds 350 of the fleet's vehicles.
		{"bbox", "/api/vehicles?bbox=100,20,120,30", ""},
		{"bbox-gzip", "/api/vehicles?bbox=100,20,120,30", "gzip"},
		{"bbox-page", "/api/vehicles?bbox=100,20,120,30&limit=50", ""},
		{"bbox-world", "/api/vehicles?bbox=-180,-90,180,90", ""},
		{"bbox-world-gzip", "/api/vehicles?bbox=-180,-90,180,90", "gzip"},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			req := httptest.NewRequest("GET", c.target, nil)
			if c.encoding != "" {
				req.Header.Set("Accept-Encoding", c.encoding)
			}
			w := &discard{h: http.Header{}}
			h.ServeHTTP(w, req) // the build, and the gzip of the whole list
			if w.status != 0 && w.status != http.StatusOK {
				b.Fatalf("%s: %d", c.target, w.status)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				w.n = 0
				clear(w.h)
				h.ServeHTTP(w, req)
			}
			b.ReportMetric(float64(w.n), "bytes/resp")
		})
	}
}
