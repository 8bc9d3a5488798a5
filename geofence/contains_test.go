package geofence

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/planar"
)

// The polygon test is orb's planar.RingContains without its cost: these
// tests hold the two to the same answer everywhere, on the boundary above
// all, where a crossing-number test is easiest to get subtly different.

// probes returns points to test ring r with: random ones in and around its
// bound, every vertex, points on every edge, and points level with every
// vertex in either direction, where a ray passes through the vertex.
func probes(rng *rand.Rand, r orb.Ring) []orb.Point {
	b := r.Bound()
	w, h := b.Max[0]-b.Min[0], b.Max[1]-b.Min[1]
	var ps []orb.Point
	for range 40 {
		ps = append(ps, orb.Point{b.Min[0] - w/10 + rng.Float64()*w*1.2, b.Min[1] - h/10 + rng.Float64()*h*1.2})
	}
	for i := 1; i < len(r); i++ {
		s, e := r[i-1], r[i]
		t := rng.Float64()
		ps = append(ps,
			s,
			orb.Point{(s[0] + e[0]) / 2, (s[1] + e[1]) / 2},
			orb.Point{s[0] + t*(e[0]-s[0]), s[1] + t*(e[1]-s[1])},
			orb.Point{s[0], b.Min[1] + rng.Float64()*h},
			orb.Point{b.Min[0] + rng.Float64()*w, s[1]},
			orb.Point{math.Nextafter(s[0], math.Inf(1)), s[1]},
			orb.Point{s[0], math.Nextafter(s[1], math.Inf(-1))},
		)
	}
	return ps
}

// randomRing returns a closed ring of n vertices around c: star-shaped,
// or with grid it snaps every vertex to a grid of step 1, which makes
// north-south and east-west edges, collinear vertices and repeated ones.
func randomRing(rng *rand.Rand, c orb.Point, radius float64, n int, grid bool) orb.Ring {
	r := make(orb.Ring, 0, n+1)
	for i := range n {
		a := 2 * math.Pi * (float64(i) + rng.Float64()*0.9) / float64(n)
		d := radius * (0.2 + 0.8*rng.Float64())
		p := orb.Point{c[0] + d*math.Cos(a), c[1] + d*math.Sin(a)}
		if grid {
			p = orb.Point{math.Round(p[0]), math.Round(p[1])}
		}
		r = append(r, p)
	}
	return append(r, r[0])
}

func TestRingContainsAgreesWithOrb(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	checked, inside, onEdge := 0, 0, 0
	for i := range 3000 {
		grid := i%3 == 0
		radius := []float64{0.01, 1, 5, 80}[i%4]
		r := randomRing(rng, orb.Point{114 + rng.Float64(), 22 + rng.Float64()}, radius, 3+rng.IntN(30), grid)
		for _, p := range probes(rng, r) {
			got, want := ringContains(r, p), planar.RingContains(r, p)
			if got != want {
				t.Fatalf("ring %v, point %v: ringContains %v, orb %v", r, p, got, want)
			}
			checked++
			if got {
				inside++
			}
		}
		for _, v := range r {
			if !ringContains(r, v) {
				t.Fatalf("vertex %v of %v is not inside", v, r)
			}
			onEdge++
		}
	}
	if inside < checked/5 || inside > checked*4/5 {
		t.Errorf("%d of %d points inside: the test tests little", inside, checked)
	}
	t.Logf("%d points, %d inside, %d vertices", checked, inside, onEdge)
}

// The boundary rule, by example: a point on the edge of a polygon is in it,
// a point on the edge of a hole is in the hole.
func TestBoundaryRule(t *testing.T) {
	square := orb.Ring{{0, 0}, {10, 0}, {10, 10}, {0, 10}, {0, 0}}
	hole := orb.Ring{{4, 4}, {6, 4}, {6, 6}, {4, 6}, {4, 4}}
	poly := orb.Polygon{square, hole}
	for _, tc := range []struct {
		p    orb.Point
		want bool
	}{
		{orb.Point{0, 0}, true}, {orb.Point{5, 0}, true}, {orb.Point{10, 5}, true}, {orb.Point{10, 10}, true},
		{orb.Point{2, 2}, true}, {orb.Point{10.000001, 5}, false}, {orb.Point{-1, 5}, false},
		{orb.Point{4, 5}, false}, {orb.Point{5, 6}, false}, {orb.Point{6, 6}, false}, {orb.Point{5, 5}, false},
		{orb.Point{3.999999, 5}, true},
	} {
		if got := polygonContains(poly, tc.p); got != tc.want {
			t.Errorf("%v: %v, want %v", tc.p, got, tc.want)
		}
		if got := planar.PolygonContains(poly, tc.p); got != tc.want {
			t.Errorf("orb says %v for %v: the rule changed", got, tc.p)
		}
	}
}

// Whole fences, holes and MultiPolygons with their bounds, against orb's
// MultiPolygonContains.
func TestFenceContainsAgreesWithOrb(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	s := mustParse(t, randomFences(rng, 400, 16, true))
	holes := mustParse(t, collection(feature(`{"name":"h"}`,
		`{"type":"MultiPolygon","coordinates":[[[[0,0],[10,0],[10,10],[0,10],[0,0]],[[4,4],[6,4],[6,6],[4,6],[4,4]]],[[[5,5],[5.5,5],[5.5,5.5],[5,5.5],[5,5]]]]}`)))
	n := 0
	for _, set := range []*Set{s, holes} {
		for i := range set.fences {
			f := &set.fences[i]
			if f.radius > 0 {
				continue
			}
			for _, poly := range f.polygons {
				for _, ring := range poly {
					for _, p := range probes(rng, ring) {
						want := planar.MultiPolygonContains(f.polygons, p)
						if got := f.bound.Contains(p) && f.contains(p); got != want {
							t.Fatalf("fence %s, point %v: %v, orb %v", f.Name, p, got, want)
						}
						n++
					}
				}
			}
		}
	}
	t.Logf("%d points", n)
}

// FuzzRingContains: rings of small whole and half coordinates, where
// points fall on edges and vertices exactly, and any point.
func FuzzRingContains(f *testing.F) {
	f.Add([]byte{0, 0, 20, 0, 20, 20, 0, 20}, int8(10), int8(0))
	f.Add([]byte{0, 0, 20, 0, 10, 10, 20, 20, 0, 20}, int8(10), int8(10))
	f.Add([]byte{0, 0, 20, 20, 20, 0, 0, 20}, int8(10), int8(10)) // a bow tie
	f.Add([]byte{0, 0, 0, 0, 10, 0, 10, 10}, int8(0), int8(0))
	f.Fuzz(func(t *testing.T, coords []byte, px, py int8) {
		if len(coords) < 6 || len(coords) > 64 {
			return
		}
		var r orb.Ring
		for i := 0; i+1 < len(coords); i += 2 {
			r = append(r, orb.Point{float64(int8(coords[i])) / 2, float64(int8(coords[i+1])) / 2})
		}
		r = append(r, r[0])
		ps := []orb.Point{{float64(px) / 2, float64(py) / 2}, {float64(px) / 3, float64(py) / 7}}
		for i := 1; i < len(r); i++ {
			s, e := r[i-1], r[i]
			ps = append(ps, s, orb.Point{(s[0] + e[0]) / 2, (s[1] + e[1]) / 2}, orb.Point{s[0], float64(py) / 2}, orb.Point{float64(px) / 2, s[1]})
		}
		for _, p := range ps {
			if got, want := ringContains(r, p), planar.RingContains(r, p); got != want {
				t.Fatalf("ring %v, point %v: ringContains %v, orb %v", r, p, got, want)
			}
		}
	})
}
