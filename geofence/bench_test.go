//go:build unix

package geofence

import (
	"math/rand/v2"
	"testing"

	"github.com/exlive2mqtt/exlive2mqtt/internal/cpubench"
	"github.com/paulmach/orb"
	"github.com/paulmach/orb/geo"
	"github.com/paulmach/orb/planar"
)

// The geofence check of one position: see BENCHMARKS.md, "Events and
// geofences".

type point struct{ lat, lng float64 }

// benchPoints returns n positions over the area of randomFences and a
// little around it; inside, only positions in at least one fence.
func benchPoints(s *Set, n int, inside bool) []point {
	rng := rand.New(rand.NewPCG(3, 4))
	ps := make([]point, 0, n)
	for len(ps) < n {
		p := point{22.4 + rng.Float64()*0.4, 113.75 + rng.Float64()*0.6}
		if inside && len(s.Containing(nil, "V1", p.lat, p.lng)) == 0 {
			continue
		}
		ps = append(ps, p)
	}
	return ps
}

// BenchmarkContaining is the check of one position against 1 000 fences
// of 50-vertex polygons, with the index and, for comparison, by testing
// every fence's bound. city is polygons 100 m to 3 km across over a
// city; mixed adds circles, two-part MultiPolygons and four fences that
// cover the whole city, so that every position is in five fences or so.
// A position is anywhere in the city, or only where there is a fence.
func BenchmarkContaining(b *testing.B) {
	for _, layout := range []struct {
		name  string
		mixed bool
	}{{"city", false}, {"mixed", true}} {
		s := mustParse(b, randomFences(rand.New(rand.NewPCG(1, 2)), 1000, 50, layout.mixed))
		for _, where := range []struct {
			name   string
			inside bool
		}{{"anywhere", false}, {"inside", true}} {
			ps := benchPoints(s, 4096, where.inside)
			b.Run(layout.name+"/"+where.name+"/index", func(b *testing.B) {
				buf := make([]*Fence, 0, 16)
				found := 0
				b.ReportAllocs()
				defer cpubench.PerOp(b)()
				for i := 0; b.Loop(); i++ {
					p := ps[i&4095]
					buf = s.Containing(buf[:0], "V1", p.lat, p.lng)
					found += len(buf)
				}
				b.ReportMetric(float64(found)/float64(b.N), "fences/op")
			})
			// The same with orb's planar.MultiPolygonContains as the
			// polygon test, as it was before ringContains.
			b.Run(layout.name+"/"+where.name+"/index-orb", func(b *testing.B) {
				buf := make([]*Fence, 0, 16)
				b.ReportAllocs()
				defer cpubench.PerOp(b)()
				for i := 0; b.Loop(); i++ {
					p := ps[i&4095]
					buf = containingOrb(s, buf[:0], "V1", p.lat, p.lng)
				}
			})
			b.Run(layout.name+"/"+where.name+"/scan", func(b *testing.B) {
				buf := make([]*Fence, 0, 16)
				b.ReportAllocs()
				defer cpubench.PerOp(b)()
				for i := 0; b.Loop(); i++ {
					p := ps[i&4095]
					buf = scan(s, buf[:0], "V1", p.lat, p.lng)
				}
			})
		}
	}
}

// containingOrb is Containing with orb's polygon test.
func containingOrb(s *Set, dst []*Fence, vehicle string, lat, lng float64) []*Fence {
	top := len(s.tree.levels) - 1
	return searchOrb(s, dst, top, 0, int32(len(s.tree.levels[top])), orb.Point{lng, lat}, vehicle)
}

func searchOrb(s *Set, dst []*Fence, level int, lo, hi int32, p orb.Point, vehicle string) []*Fence {
	for _, e := range s.tree.levels[level][lo:hi] {
		if !e.bound.Contains(p) {
			continue
		}
		if level > 0 {
			dst = searchOrb(s, dst, level-1, e.lo, e.hi, p, vehicle)
			continue
		}
		f := &s.fences[e.lo]
		if !f.AppliesTo(vehicle) {
			continue
		}
		if f.radius > 0 && geo.DistanceHaversine(f.center, p) <= f.radius || f.radius == 0 && planar.MultiPolygonContains(f.polygons, p) {
			dst = append(dst, f)
		}
	}
	return dst
}

// scan is Containing without the index.
func scan(s *Set, dst []*Fence, vehicle string, lat, lng float64) []*Fence {
	p := orb.Point{lng, lat}
	for i := range s.fences {
		f := &s.fences[i]
		if f.bound.Contains(p) && f.AppliesTo(vehicle) && f.contains(p) {
			dst = append(dst, f)
		}
	}
	return dst
}

// BenchmarkParse reads a file of 1 000 fences of 50-vertex polygons (about
// 1.3 MB), as at start and on every reload.
func BenchmarkParse(b *testing.B) {
	data := []byte(randomFences(rand.New(rand.NewPCG(1, 2)), 1000, 50, false))
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse("bench.json", data); err != nil {
			b.Fatal(err)
		}
	}
}
