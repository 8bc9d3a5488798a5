// Package geofence reads geofences from a GeoJSON FeatureCollection
// (RFC 7946, WGS-84) and finds the fences a position is in.
//
// A fence is a Polygon or MultiPolygon feature, or a Point feature with a
// radius property in metres (a circle, like a Home Assistant zone). Every
// feature has a unique name property; an optional vehicles property limits
// it to those vehicle ids, and an optional speed_limit property (km/h) is
// the speed limit inside it.
//
// Polygons are tested in the plane of longitude and latitude, by the
// crossing number (ringContains), and circles by great-circle (haversine)
// distance. A point on the outer boundary of a polygon or a circle is
// inside; a point on the boundary of a hole is in the hole. A polygon that
// crosses the antimeridian must be cut in two along it, as RFC 7946 asks;
// a circle may cross it.
package geofence

import (
	"math"
	"os"
	"slices"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/geo"
)

// MaxFileSize is the largest geofence file Load reads.
const MaxFileSize = 64 << 20

// Fence is one geofence. It is read-only once its Set is made.
type Fence struct {
	// Name is the feature's name property, unique in its Set.
	Name string
	// SpeedLimit is the feature's speed_limit property in km/h; 0: none.
	SpeedLimit float64

	vehicles map[string]struct{} // nil: every vehicle
	polygons orb.MultiPolygon    // a Polygon or MultiPolygon feature
	outer    []orb.Bound         // the bound of each polygon's outer ring, for a MultiPolygon
	center   orb.Point           // a Point feature: a circle of radius metres
	radius   float64
	bound    orb.Bound
	index    int32 // in Set.fences, which is in name order
}

// Geometry returns the fence's shape: an orb.MultiPolygon (a Polygon
// feature is one with a single polygon), or for a circle its centre as an
// orb.Point (see Radius). Callers must not change it.
func (f *Fence) Geometry() orb.Geometry {
	if f.radius > 0 {
		return f.center
	}
	return f.polygons
}

// Radius returns a circle's radius in metres, 0 for a polygon.
func (f *Fence) Radius() float64 { return f.radius }

// Bound returns the box of longitudes and latitudes that holds the fence.
func (f *Fence) Bound() orb.Bound { return f.bound }

// Vehicles returns the ids the fence is limited to, sorted; nil when it
// applies to every vehicle.
func (f *Fence) Vehicles() []string {
	if f.vehicles == nil {
		return nil
	}
	ids := make([]string, 0, len(f.vehicles))
	for id := range f.vehicles {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// AppliesTo reports whether the fence is one of vehicle's.
func (f *Fence) AppliesTo(vehicle string) bool {
	if f.vehicles == nil {
		return true
	}
	_, ok := f.vehicles[vehicle]
	return ok
}

// Contains reports whether the point at lat, lng (degrees) is in the fence.
func (f *Fence) Contains(lat, lng float64) bool {
	p := orb.Point{lng, lat}
	if !f.bound.Contains(p) {
		return false
	}
	return f.contains(p)
}

// contains tests p, already known to be inside the fence's bound.
func (f *Fence) contains(p orb.Point) bool {
	if f.radius > 0 {
		return geo.DistanceHaversine(f.center, p) <= f.radius
	}
	for i, poly := range f.polygons {
		// A single polygon's outer bound is the fence's, already tested.
		if len(f.outer) > 0 && !f.outer[i].Contains(p) {
			continue
		}
		if polygonContains(poly, p) {
			return true
		}
	}
	return false
}

// polygonContains reports whether p is in polygon poly: in its outer ring,
// and in none of its holes (a point on the edge of a hole is in the hole).
func polygonContains(poly orb.Polygon, p orb.Point) bool {
	if !ringContains(poly[0], p) {
		return false
	}
	for _, hole := range poly[1:] {
		if ringContains(hole, p) {
			return false
		}
	}
	return true
}

// ringContains reports whether p is inside the closed ring r, or on its
// boundary, by the crossing number: a ray from p towards +latitude crosses
// the ring an odd number of times when p is inside. An edge is crossed
// when p's longitude is in [its west end, its east end), half open, so
// that a ray through a vertex counts it once.
//
// It is orb's planar.RingContains, edge for edge the same arithmetic, so
// that the two agree on every point, those on edges and vertices included
// (TestRingContainsAgreesWithOrb and FuzzRingContains hold them to it),
// but about five times faster (BENCHMARKS.md, "Events and geofences"):
// orb computes the ring's bound again on every call, which here is the
// fence's, computed once; and an edge whose longitudes do not span p's,
// nearly all of them, is passed over after two comparisons.
func ringContains(r orb.Ring, p orb.Point) bool {
	in := false
	x := p[0]
	for i := 1; i < len(r); i++ {
		s, e := r[i-1], r[i]
		if s[0] > e[0] {
			s, e = e, s
		}
		if x < s[0] || x > e[0] {
			continue
		}
		cross, on := crossing(p, s, e)
		if on {
			return true
		}
		if cross {
			in = !in
		}
	}
	return in
}

// crossing tells whether the ray from p towards +latitude crosses the edge
// from s to e (s west of e or level with it, p's longitude between
// theirs), or whether p is on the edge.
func crossing(p, s, e orb.Point) (cross, on bool) {
	x, y := p[0], p[1]
	switch x {
	case s[0]:
		if y == s[1] {
			return false, true // the vertex s
		}
		if s[0] == e[0] && y >= min(s[1], e[1]) && y <= max(s[1], e[1]) {
			return false, true // on a north-south edge
		}
		// The half-open rule: the ray passes just east of the vertex.
		x = math.Nextafter(x, math.Inf(1))
	case e[0]:
		if y == e[1] {
			return false, true // the vertex e
		}
		x = math.Nextafter(x, math.Inf(1))
	}
	if x > e[0] {
		return false, false // the east end is not the edge's
	}
	lo, hi := min(s[1], e[1]), max(s[1], e[1])
	switch {
	case y > hi:
		return false, false
	case y < lo:
		return true, false
	}
	// Between the ends' latitudes: compare the slope from s to p with the
	// edge's.
	rs := (y - s[1]) / (x - s[0])
	ds := (e[1] - s[1]) / (e[0] - s[0])
	if rs == ds {
		return false, true
	}
	return rs <= ds, false
}

// Set is the geofences of one file, indexed by their bounds. A nil *Set is
// an empty one. It is read-only, and safe to use from many goroutines.
type Set struct {
	fences []Fence // sorted by name
	tree   rtree
}

// Len returns how many fences the set holds.
func (s *Set) Len() int {
	if s == nil {
		return 0
	}
	return len(s.fences)
}

// Fence returns the i-th fence in name order, 0 <= i < Len().
func (s *Set) Fence(i int) *Fence { return &s.fences[i] }

// Containing appends to dst the fences of vehicle that hold the point at
// lat, lng (degrees, WGS-84), in name order, and returns the extended
// slice. It allocates nothing when dst has room.
func (s *Set) Containing(dst []*Fence, vehicle string, lat, lng float64) []*Fence {
	if s == nil || len(s.fences) == 0 || math.IsNaN(lat) || math.IsNaN(lng) {
		return dst
	}
	start := len(dst)
	top := len(s.tree.levels) - 1
	dst = s.search(dst, top, 0, int32(len(s.tree.levels[top])), orb.Point{lng, lat}, vehicle)
	// The tree finds them in its own order; a point is in few fences, so
	// an insertion sort is the fastest here and allocates nothing.
	found := dst[start:]
	for i := 1; i < len(found); i++ {
		for j := i; j > 0 && found[j].index < found[j-1].index; j-- {
			found[j], found[j-1] = found[j-1], found[j]
		}
	}
	return dst
}

// Contains appends the names of the fences of vehicle that hold the point
// at lat, lng to dst, in name order. It allocates nothing when dst has
// room.
func (s *Set) Contains(dst []string, vehicle string, lat, lng float64) []string {
	var buf [8]*Fence
	for _, f := range s.Containing(buf[:0], vehicle, lat, lng) {
		dst = append(dst, f.Name)
	}
	return dst
}

func (s *Set) search(dst []*Fence, level int, lo, hi int32, p orb.Point, vehicle string) []*Fence {
	entries := s.tree.levels[level][lo:hi]
	for i := range entries {
		e := &entries[i]
		if !e.bound.Contains(p) {
			continue
		}
		if level > 0 {
			dst = s.search(dst, level-1, e.lo, e.hi, p, vehicle)
			continue
		}
		f := &s.fences[e.lo]
		if f.AppliesTo(vehicle) && f.contains(p) {
			dst = append(dst, f)
		}
	}
	return dst
}

// Load reads the geofences of the file at path.
func Load(path string) (*Set, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, &Error{File: path, Feature: -1, Err: errorf("cannot read: %v", err)}
	}
	defer fh.Close()
	if fi, err := fh.Stat(); err == nil && fi.Mode().IsRegular() && fi.Size() > MaxFileSize {
		return nil, &Error{File: path, Feature: -1, Err: errorf("larger than %d MiB", MaxFileSize>>20)}
	}
	data, err := readAll(fh, MaxFileSize)
	if err != nil {
		return nil, &Error{File: path, Feature: -1, Err: err}
	}
	return Parse(path, data)
}

// circleBound returns the box of longitudes and latitudes that holds a
// circle of radius metres around c. On a sphere, a circle of angular
// radius d around latitude φ spans φ±d, and at most asin(sin d / cos φ) on
// either side in longitude; a circle that holds a pole, or that reaches
// the antimeridian, gets every longitude (its haversine test is exact
// anyway: the box only has to hold it). The box is padded by a
// millionth of a degree, well above the rounding of the arithmetic.
func circleBound(c orb.Point, radius float64) orb.Bound {
	const pad = 1e-6
	d := radius / orb.EarthRadius // radians
	dLat := d*180/math.Pi + pad
	minLat, maxLat := max(c[1]-dLat, -90), min(c[1]+dLat, 90)
	s := math.Sin(d) / math.Cos(c[1]*math.Pi/180)
	if d >= math.Pi/2 || s >= 1 || math.IsNaN(s) || math.IsInf(s, 0) {
		return orb.Bound{Min: orb.Point{-180, minLat}, Max: orb.Point{180, maxLat}}
	}
	dLng := math.Asin(s)*180/math.Pi + pad
	minLng, maxLng := c[0]-dLng, c[0]+dLng
	if minLng < -180 || maxLng > 180 {
		minLng, maxLng = -180, 180
	}
	return orb.Bound{Min: orb.Point{minLng, minLat}, Max: orb.Point{maxLng, maxLat}}
}
