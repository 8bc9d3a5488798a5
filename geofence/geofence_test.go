package geofence

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/geo"
)

func mustParse(t testing.TB, data string) *Set {
	t.Helper()
	s, err := Parse("test.json", []byte(data))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// ring returns a closed ring of n vertices (n+1 positions) around c at
// radius metres, as GeoJSON coordinates.
func ring(c orb.Point, radius float64, n int) string {
	var b strings.Builder
	b.WriteByte('[')
	for i := 0; i <= n; i++ {
		p := geo.PointAtBearingAndDistance(c, float64(i%n)*360/float64(n), radius)
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(coords(p))
	}
	b.WriteByte(']')
	return b.String()
}

func TestContainsPolygonWithHole(t *testing.T) {
	s := mustParse(t, collection(feature(`{"name":"ring road"}`,
		`{"type":"Polygon","coordinates":[[[0,0],[10,0],[10,10],[0,10],[0,0]],[[4,4],[6,4],[6,6],[4,6],[4,4]]]}`)))
	for _, tc := range []struct {
		lat, lng float64
		in       bool
	}{
		{2, 2, true},
		{5, 5, false},  // in the hole
		{0, 5, true},   // on the outer boundary
		{10, 10, true}, // a corner
		{5, 10.0001, false},
		{-0.0001, 5, false},
		{4, 5, false}, // on the hole's boundary: the hole has it
		{5, 4.5, false},
		{math.NaN(), 5, false},
	} {
		got := len(s.Contains(nil, "V1", tc.lat, tc.lng)) == 1
		if got != tc.in {
			t.Errorf("(%v, %v): in = %v, want %v", tc.lat, tc.lng, got, tc.in)
		}
		if got := s.Fence(0).Contains(tc.lat, tc.lng); got != tc.in {
			t.Errorf("Fence.Contains(%v, %v) = %v, want %v", tc.lat, tc.lng, got, tc.in)
		}
	}
}

func TestContainsMultiPolygon(t *testing.T) {
	s := mustParse(t, collection(feature(`{"name":"two yards"}`,
		`{"type":"MultiPolygon","coordinates":[[[[0,0],[1,0],[1,1],[0,1],[0,0]]],[[[5,5],[6,5],[6,6],[5,6],[5,5]]]]}`)))
	for _, tc := range []struct {
		lat, lng float64
		in       bool
	}{
		{0.5, 0.5, true},
		{5.5, 5.5, true},
		{3, 3, false}, // in the bound of the whole, in neither part
		{0.5, 5.5, false},
	} {
		if got := len(s.Contains(nil, "V1", tc.lat, tc.lng)) == 1; got != tc.in {
			t.Errorf("(%v, %v): in = %v, want %v", tc.lat, tc.lng, got, tc.in)
		}
	}
}

// TestCircleBoundary walks around circles at several latitudes, the
// antimeridian and a pole among them: a point just inside the radius is
// in, one just outside is out, whatever the bearing. It is the bound of a
// circle that could go wrong, so a bearing where the circle is widest in
// longitude is among them.
func TestCircleBoundary(t *testing.T) {
	for _, tc := range []struct {
		lng, lat, radius float64
	}{
		{114.05, 22.55, 100},
		{0, 0, 1},
		{12.5, 59.9, 2_000},
		{-70.6, -33.4, 50_000},
		{179.9995, 10, 500},   // crosses the antimeridian
		{-179.9995, -10, 500}, // from the other side
		{45, 89.995, 1_000},   // holds the north pole
		{45, -89.5, 100_000},  // and the south
		{100, 70, 1_500_000},  // large: its widest longitude is north of its centre
	} {
		c := orb.Point{tc.lng, tc.lat}
		s := mustParse(t, collection(feature(`{"name":"c","radius":`+strconv.FormatFloat(tc.radius, 'g', -1, 64)+`}`,
			`{"type":"Point","coordinates":`+coords(c)+`}`)))
		for bearing := 0.0; bearing < 360; bearing += 7.5 {
			in := wrap(geo.PointAtBearingAndDistance(c, bearing, tc.radius*0.999))
			out := wrap(geo.PointAtBearingAndDistance(c, bearing, tc.radius*1.001))
			if len(s.Contains(nil, "V1", in[1], in[0])) != 1 {
				t.Errorf("circle %v r=%v: %v at bearing %v, 0.999 r away, is not in", c, tc.radius, in, bearing)
			}
			if len(s.Contains(nil, "V1", out[1], out[0])) != 0 {
				t.Errorf("circle %v r=%v: %v at bearing %v, 1.001 r away, is in", c, tc.radius, out, bearing)
			}
		}
		if len(s.Contains(nil, "V1", tc.lat, tc.lng)) != 1 {
			t.Errorf("circle %v: its centre is not in", c)
		}
	}
	// The widest point in longitude of a large circle, found by search,
	// is inside its bound.
	c, r := orb.Point{100, 70}, 1_500_000.0
	b := circleBound(c, r)
	for bearing := 0.0; bearing < 360; bearing += 0.1 {
		p := geo.PointAtBearingAndDistance(c, bearing, r)
		if !b.Contains(p) {
			t.Fatalf("circleBound(%v, %v) = %v does not hold %v (bearing %v)", c, r, b, p, bearing)
		}
	}
}

// wrap brings a longitude into -180..180, as positions are.
func wrap(p orb.Point) orb.Point {
	p[0] = math.Remainder(p[0], 360)
	return p
}

func TestVehiclesFilter(t *testing.T) {
	s := mustParse(t, collection(
		feature(`{"name":"everyone"}`, `{"type":"Polygon","coordinates":`+square+`}`),
		feature(`{"name":"fleet a","vehicles":["V1","V2"]}`, `{"type":"Polygon","coordinates":`+square+`}`),
		feature(`{"name":"fleet b","vehicles":[1003],"radius":500}`, `{"type":"Point","coordinates":[114,22.6]}`),
	))
	for _, tc := range []struct {
		vehicle string
		want    []string
	}{
		{"V1", []string{"everyone", "fleet a"}},
		{"V2", []string{"everyone", "fleet a"}},
		{"1003", []string{"everyone", "fleet b"}},
		{"V3", []string{"everyone"}},
		{"", []string{"everyone"}},
	} {
		if got := s.Contains(nil, tc.vehicle, 22.6, 114); !slices.Equal(got, tc.want) {
			t.Errorf("%q: %q, want %q", tc.vehicle, got, tc.want)
		}
	}
	if f := s.Fence(1); !f.AppliesTo("V1") || f.AppliesTo("V3") {
		t.Errorf("%s: AppliesTo V1 %v, V3 %v", f.Name, f.AppliesTo("V1"), f.AppliesTo("V3"))
	}
}

func TestContainsSortedAndAppends(t *testing.T) {
	var features []string
	for _, name := range []string{"zeta", "alpha", "Mu", "beta", "中山"} {
		features = append(features, feature(`{"name":"`+name+`"}`, `{"type":"Polygon","coordinates":`+square+`}`))
	}
	s := mustParse(t, collection(features...))
	dst := []string{"kept"}
	got := s.Contains(dst, "V1", 22.6, 114)
	if want := []string{"kept", "Mu", "alpha", "beta", "zeta", "中山"}; !slices.Equal(got, want) {
		t.Errorf("Contains = %q, want %q", got, want)
	}
	buf := make([]string, 0, 8)
	if n := testing.AllocsPerRun(100, func() { buf = s.Contains(buf[:0], "V1", 22.6, 114) }); n != 0 {
		t.Errorf("Contains allocates %v times with room in dst", n)
	}
	fbuf := make([]*Fence, 0, 8)
	if n := testing.AllocsPerRun(100, func() { fbuf = s.Containing(fbuf[:0], "V1", 22.6, 114) }); n != 0 {
		t.Errorf("Containing allocates %v times with room in dst", n)
	}
	var none *Set
	if got := none.Contains(nil, "V1", 22.6, 114); got != nil || none.Len() != 0 {
		t.Errorf("a nil Set: %q, Len %d", got, none.Len())
	}
}

// randomFences is n fences around Shenzhen (50 by 33 km), polygons of
// vertices points, from 100 m to 3 km across. mixed makes every tenth a
// MultiPolygon of two, every seventh a circle, and every 250th 80 km
// across, covering the whole area, so that the index cannot get by with
// small boxes only.
func randomFences(rng *rand.Rand, n, vertices int, mixed bool) string {
	features := make([]string, n)
	for i := range features {
		c := orb.Point{113.8 + rng.Float64()*0.5, 22.45 + rng.Float64()*0.3}
		r := 50 + rng.Float64()*1450
		name := fmt.Sprintf(`"name":"fence %04d"`, i)
		switch {
		case mixed && i%250 == 0:
			r = 40_000
			fallthrough
		case !mixed:
			features[i] = feature(`{`+name+`}`, `{"type":"Polygon","coordinates":[`+ring(c, r, vertices)+`]}`)
		case i%7 == 0:
			features[i] = feature(`{`+name+`,"radius":`+strconv.FormatFloat(r, 'f', 1, 64)+`}`, `{"type":"Point","coordinates":`+coords(c)+`}`)
		case i%10 == 0:
			c2 := orb.Point{c[0] + 0.01, c[1] + 0.01}
			features[i] = feature(`{`+name+`}`, `{"type":"MultiPolygon","coordinates":[[`+ring(c, r, vertices)+`],[`+ring(c2, r/2, vertices)+`]]}`)
		default:
			features[i] = feature(`{`+name+`}`, `{"type":"Polygon","coordinates":[`+ring(c, r, vertices)+`]}`)
		}
	}
	return collection(features...)
}

// TestIndexFindsWhatAScanFinds holds the tree to the plain answer: every
// fence tested.
func TestIndexFindsWhatAScanFinds(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{1, 15, 16, 17, 300, 1000} {
		s := mustParse(t, randomFences(rng, n, 12, true))
		hits := 0
		for range 5000 {
			lat, lng := 22.4+rng.Float64()*0.4, 113.75+rng.Float64()*0.6
			got := s.Containing(nil, "V1", lat, lng)
			var want []*Fence
			for i := range s.fences {
				if s.fences[i].Contains(lat, lng) {
					want = append(want, &s.fences[i])
				}
			}
			if !slices.Equal(got, want) {
				t.Fatalf("%d fences, (%v, %v): index finds %d, a scan %d", n, lat, lng, len(got), len(want))
			}
			hits += len(got)
		}
		if n >= 300 && hits < 1000 {
			t.Errorf("%d fences: only %d hits in 5000 points: the test tests little", n, hits)
		}
	}
}
