package geofence

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/paulmach/orb"
)

// Error is a bad geofence file: what is wrong, and where.
type Error struct {
	File    string // the file, as named to Load or Parse
	Feature int    // index of the bad feature in features; -1: the file as a whole
	Name    string // the bad feature's name, when it has one
	Err     error  // what is wrong
}

// Error returns "geofence: FILE: " and Detail.
func (e *Error) Error() string { return "geofence: " + e.File + ": " + e.Detail() }

// Detail says what is wrong without naming the file, for a message that
// already does: `features[3] "depot": ring 0 is not closed`.
func (e *Error) Detail() string {
	switch {
	case e.Feature < 0:
		return e.Err.Error()
	case e.Name != "":
		return fmt.Sprintf("features[%d] %q: %v", e.Feature, e.Name, e.Err)
	}
	return fmt.Sprintf("features[%d]: %v", e.Feature, e.Err)
}

// Unwrap returns Err.
func (e *Error) Unwrap() error { return e.Err }

func errorf(format string, args ...any) error { return fmt.Errorf(format, args...) }

// Parse reads a GeoJSON FeatureCollection of geofences. file names it in
// errors. A feature that is not a fence (a LineString, a Point without a
// radius) is an error, not skipped: a fence that is silently left out is
// a fence that never fires.
//
// The geometries are decoded into orb's types with encoding/json, as
// orb/geojson does, but without orb/geojson itself: that package also
// speaks BSON and would bring a MongoDB driver into the build (0.7 MB of
// binary) for nothing, and reading positions as []float64 first lets a
// position with one number be an error instead of a silent 0.
func Parse(file string, data []byte) (*Set, error) {
	fileErr := func(format string, args ...any) error {
		return &Error{File: file, Feature: -1, Err: fmt.Errorf(format, args...)}
	}
	// Editors on Windows start UTF-8 files with a byte order mark, which
	// JSON does not allow.
	data = bytes.TrimPrefix(data, []byte("\uFEFF"))
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, fileErr("empty, want a GeoJSON FeatureCollection")
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		var syntax *json.SyntaxError
		var typ *json.UnmarshalTypeError
		switch {
		case errors.As(err, &syntax):
			return nil, fileErr("not JSON: %v (at byte %d)", err, syntax.Offset)
		case errors.As(err, &typ):
			return nil, fileErr("not a GeoJSON FeatureCollection: the file holds a JSON %s", typ.Value)
		}
		return nil, fileErr("not JSON: %v", err)
	}
	if top == nil {
		return nil, fileErr("not a GeoJSON FeatureCollection: the file holds null")
	}
	if t := top["type"]; string(t) != `"FeatureCollection"` {
		return nil, fileErr("not a GeoJSON FeatureCollection: type is %s", shown(t))
	}
	var features []json.RawMessage
	if err := json.Unmarshal(top["features"], &features); err != nil || features == nil {
		return nil, fileErr("features is %s, want an array of features", shown(top["features"]))
	}

	fences := make([]Fence, 0, len(features))
	byName := make(map[string]int, len(features))
	for i, raw := range features {
		f, err := parseFeature(raw)
		if err == nil {
			if j, dup := byName[f.Name]; dup {
				err = fmt.Errorf("name already used by features[%d]", j)
			}
		}
		if err != nil {
			return nil, &Error{File: file, Feature: i, Name: f.Name, Err: err}
		}
		byName[f.Name] = i
		fences = append(fences, f)
	}
	return newSet(fences), nil
}

// newSet indexes fences, sorting them by name.
func newSet(fences []Fence) *Set {
	slices.SortFunc(fences, func(a, b Fence) int { return strings.Compare(a.Name, b.Name) })
	bounds := make([]orb.Bound, len(fences))
	for i := range fences {
		fences[i].index = int32(i)
		bounds[i] = fences[i].bound
	}
	return &Set{fences: fences, tree: buildTree(bounds)}
}

// parseFeature reads one feature. It returns the feature's name, when it
// got that far, with an error.
func parseFeature(raw json.RawMessage) (Fence, error) {
	var f Fence
	var feature map[string]json.RawMessage
	if err := json.Unmarshal(raw, &feature); err != nil || feature == nil {
		return f, fmt.Errorf("not a GeoJSON Feature: %s", shown(raw))
	}
	if t := feature["type"]; string(t) != `"Feature"` {
		return f, fmt.Errorf("not a GeoJSON Feature: type is %s", shown(t))
	}
	var props map[string]json.RawMessage
	if err := json.Unmarshal(feature["properties"], &props); err != nil {
		return f, fmt.Errorf("properties is %s, want an object", shown(feature["properties"]))
	}
	if err := json.Unmarshal(props["name"], &f.Name); err != nil || f.Name == "" {
		return f, fmt.Errorf("no name: properties.name is %s, want a non-empty string", shown(props["name"]))
	}
	if raw, ok := props["speed_limit"]; ok && string(raw) != "null" {
		if err := json.Unmarshal(raw, &f.SpeedLimit); err != nil || f.SpeedLimit < 0 {
			return f, fmt.Errorf("speed_limit is %s, want km/h: a number, 0 or more", shown(raw))
		}
	}
	if raw, ok := props["vehicles"]; ok && string(raw) != "null" {
		ids, err := vehicleIDs(raw)
		if err != nil {
			return f, err
		}
		f.vehicles = ids
	}

	var g struct {
		Type        string          `json:"type"`
		Coordinates json.RawMessage `json:"coordinates"`
	}
	if string(feature["geometry"]) == "null" || feature["geometry"] == nil {
		return f, errors.New("no geometry")
	}
	if err := json.Unmarshal(feature["geometry"], &g); err != nil {
		return f, fmt.Errorf("geometry is %s, want a GeoJSON geometry", shown(feature["geometry"]))
	}
	var err error
	switch g.Type {
	case "Polygon":
		var c [][][]float64
		if json.Unmarshal(g.Coordinates, &c) != nil {
			return f, fmt.Errorf("the coordinates of a Polygon are an array of rings, not %s", shown(g.Coordinates))
		}
		var p orb.Polygon
		if p, err = polygon(c, ""); err == nil {
			f.polygons = orb.MultiPolygon{p}
		}
	case "MultiPolygon":
		var c [][][][]float64
		if json.Unmarshal(g.Coordinates, &c) != nil {
			return f, fmt.Errorf("the coordinates of a MultiPolygon are an array of polygons, not %s", shown(g.Coordinates))
		}
		if len(c) == 0 {
			return f, errors.New("a MultiPolygon without polygons")
		}
		for i, pc := range c {
			var p orb.Polygon
			if p, err = polygon(pc, "polygon "+strconv.Itoa(i)+", "); err != nil {
				break
			}
			f.polygons = append(f.polygons, p)
		}
	case "Point":
		var c []float64
		if json.Unmarshal(g.Coordinates, &c) != nil {
			return f, fmt.Errorf("the coordinates of a Point are one position, not %s", shown(g.Coordinates))
		}
		if f.center, err = position(c); err != nil {
			break
		}
		if json.Unmarshal(props["radius"], &f.radius) != nil || !(f.radius > 0) {
			return f, fmt.Errorf("a Point needs a radius in metres, more than 0: properties.radius is %s", shown(props["radius"]))
		}
	default:
		t := g.Type
		if t == "" {
			t = "without a type"
		}
		return f, fmt.Errorf("geometry %s is not supported (want Polygon, MultiPolygon, or Point with a radius)", t)
	}
	if err != nil {
		return f, err
	}
	if f.radius > 0 {
		f.bound = circleBound(f.center, f.radius)
	} else {
		f.bound = f.polygons.Bound()
		if len(f.polygons) > 1 {
			f.outer = make([]orb.Bound, len(f.polygons))
			for i, poly := range f.polygons {
				f.outer[i] = poly[0].Bound()
			}
		}
	}
	return f, nil
}

// polygon checks the rings of a Polygon and makes it an orb.Polygon. where
// starts the message of an error ("polygon 2, ").
func polygon(rings [][][]float64, where string) (orb.Polygon, error) {
	if len(rings) == 0 {
		return nil, fmt.Errorf("%sa Polygon without rings", where)
	}
	p := make(orb.Polygon, len(rings))
	for i, ring := range rings {
		if len(ring) < 4 {
			return nil, fmt.Errorf("%sring %d has %d positions, want at least 4 (the last one the first again)", where, i, len(ring))
		}
		r := make(orb.Ring, len(ring))
		for j, c := range ring {
			pt, err := position(c)
			if err != nil {
				return nil, fmt.Errorf("%sring %d, position %d: %w", where, i, j, err)
			}
			r[j] = pt
		}
		if r[0] != r[len(r)-1] {
			return nil, fmt.Errorf("%sring %d is not closed: its last position %s is not its first %s", where, i, coords(r[len(r)-1]), coords(r[0]))
		}
		p[i] = r
	}
	return p, nil
}

// position checks a GeoJSON position, [longitude, latitude] with an
// optional altitude after them, which is ignored.
func position(c []float64) (orb.Point, error) {
	if len(c) < 2 {
		return orb.Point{}, fmt.Errorf("a position is [longitude, latitude], not %d numbers", len(c))
	}
	p := orb.Point{c[0], c[1]}
	if p[0] < -180 || p[0] > 180 || p[1] < -90 || p[1] > 90 {
		return p, fmt.Errorf("%s is out of range: want [longitude -180..180, latitude -90..90]", coords(p))
	}
	return p, nil
}

func vehicleIDs(raw json.RawMessage) (map[string]struct{}, error) {
	var list []json.RawMessage
	if json.Unmarshal(raw, &list) != nil || len(list) == 0 {
		return nil, fmt.Errorf("vehicles is %s, want a non-empty array of vehicle ids (leave it out for every vehicle)", shown(raw))
	}
	ids := make(map[string]struct{}, len(list))
	for i, v := range list {
		var id string
		if json.Unmarshal(v, &id) != nil {
			// An id written as a number is taken as its text:
			// platform ids are digits more often than not.
			var n json.Number
			if json.Unmarshal(v, &n) != nil {
				return nil, fmt.Errorf("vehicles[%d] is %s, want a vehicle id", i, shown(v))
			}
			id = n.String()
		}
		if id == "" {
			return nil, fmt.Errorf("vehicles[%d] is an empty string, want a vehicle id", i)
		}
		ids[id] = struct{}{}
	}
	return ids, nil
}

func coords(p orb.Point) string {
	return "[" + strconv.FormatFloat(p[0], 'g', -1, 64) + "," + strconv.FormatFloat(p[1], 'g', -1, 64) + "]"
}

// shown quotes a piece of the file for a message, cut to a readable length.
func shown(raw json.RawMessage) string {
	if raw == nil {
		return "missing"
	}
	const most = 40
	s := string(raw)
	if len(s) > most {
		s = strings.ToValidUTF8(s[:most], "") + "…"
	}
	return s
}

// readAll reads r up to max bytes.
func readAll(r io.Reader, max int64) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return nil, fmt.Errorf("cannot read: %v", err)
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("larger than %d MiB", max>>20)
	}
	return data, nil
}
