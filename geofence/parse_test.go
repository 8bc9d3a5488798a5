package geofence

import (
	"encoding/json"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// square is a closed ring, as JSON, around (lng, lat) with half-side d.
const square = `[[[113.9,22.5],[114.1,22.5],[114.1,22.7],[113.9,22.7],[113.9,22.5]]]`

func collection(features ...string) string {
	return `{"type":"FeatureCollection","features":[` + strings.Join(features, ",") + `]}`
}

func feature(props, geometry string) string {
	return `{"type":"Feature","properties":` + props + `,"geometry":` + geometry + `}`
}

func TestParseErrors(t *testing.T) {
	poly := `{"type":"Polygon","coordinates":` + square + `}`
	good := feature(`{"name":"depot"}`, poly)
	for _, tc := range []struct {
		name, data, want string
	}{
		{"empty file", "\n", `geofence: f.json: empty, want a GeoJSON FeatureCollection`},
		{"cut short", `{"type":"FeatureCollection","features":[`, `geofence: f.json: not JSON: unexpected end of JSON input (at byte 40)`},
		{"not JSON", `name,lat,lng`, `geofence: f.json: not JSON: invalid character 'a' in literal null (expecting 'u') (at byte 2)`},
		{"array", `[]`, `geofence: f.json: not a GeoJSON FeatureCollection: the file holds a JSON array`},
		{"null", `null`, `geofence: f.json: not a GeoJSON FeatureCollection: the file holds null`},
		{"a feature", good, `geofence: f.json: not a GeoJSON FeatureCollection: type is "Feature"`},
		{"no type", `{"features":[]}`, `geofence: f.json: not a GeoJSON FeatureCollection: type is missing`},
		{"no features", `{"type":"FeatureCollection"}`, `geofence: f.json: features is missing, want an array of features`},
		{"features null", `{"type":"FeatureCollection","features":null}`, `geofence: f.json: features is null, want an array of features`},
		{"features object", `{"type":"FeatureCollection","features":{}}`, `geofence: f.json: features is {}, want an array of features`},
		{"feature not an object", collection(good, `42`), `geofence: f.json: features[1]: not a GeoJSON Feature: 42`},
		{"feature of another type", collection(`{"type":"Point","coordinates":[1,2]}`), `geofence: f.json: features[0]: not a GeoJSON Feature: type is "Point"`},
		{"no properties", collection(`{"type":"Feature","geometry":` + poly + `}`), `geofence: f.json: features[0]: properties is missing, want an object`},
		{"no name", collection(feature(`{"radius":5}`, poly)), `geofence: f.json: features[0]: no name: properties.name is missing, want a non-empty string`},
		{"null properties", collection(feature(`null`, poly)), `geofence: f.json: features[0]: no name: properties.name is missing, want a non-empty string`},
		{"empty name", collection(feature(`{"name":""}`, poly)), `geofence: f.json: features[0]: no name: properties.name is "", want a non-empty string`},
		{"name a number", collection(feature(`{"name":7}`, poly)), `geofence: f.json: features[0]: no name: properties.name is 7, want a non-empty string`},
		{"duplicate name", collection(good, feature(`{"name":"yard"}`, poly), good), `geofence: f.json: features[2] "depot": name already used by features[0]`},
		{"no geometry", collection(feature(`{"name":"a"}`, `null`)), `geofence: f.json: features[0] "a": no geometry`},
		{"geometry missing", collection(`{"type":"Feature","properties":{"name":"a"}}`), `geofence: f.json: features[0] "a": no geometry`},
		{"geometry a string", collection(feature(`{"name":"a"}`, `"x"`)), `geofence: f.json: features[0] "a": geometry is "x", want a GeoJSON geometry`},
		{"line string", collection(feature(`{"name":"road"}`, `{"type":"LineString","coordinates":[[1,2],[3,4]]}`)), `geofence: f.json: features[0] "road": geometry LineString is not supported (want Polygon, MultiPolygon, or Point with a radius)`},
		{"geometry collection", collection(feature(`{"name":"g"}`, `{"type":"GeometryCollection","geometries":[]}`)), `geofence: f.json: features[0] "g": geometry GeometryCollection is not supported (want Polygon, MultiPolygon, or Point with a radius)`},
		{"geometry without type", collection(feature(`{"name":"g"}`, `{"coordinates":[1,2]}`)), `geofence: f.json: features[0] "g": geometry without a type is not supported (want Polygon, MultiPolygon, or Point with a radius)`},
		{"ring not closed", collection(feature(`{"name":"open"}`, `{"type":"Polygon","coordinates":[[[1,1],[2,1],[2,2],[1,2]]]}`)), `geofence: f.json: features[0] "open": ring 0 is not closed: its last position [1,2] is not its first [1,1]`},
		{"ring of 3", collection(feature(`{"name":"tri"}`, `{"type":"Polygon","coordinates":[[[1,1],[2,1],[1,1]]]}`)), `geofence: f.json: features[0] "tri": ring 0 has 3 positions, want at least 4 (the last one the first again)`},
		{"hole not closed", collection(feature(`{"name":"holey"}`, `{"type":"Polygon","coordinates":[[[0,0],[9,0],[9,9],[0,9],[0,0]],[[1,1],[2,1],[2,2],[1,2],[1,1.5]]]}`)), `geofence: f.json: features[0] "holey": ring 1 is not closed: its last position [1,1.5] is not its first [1,1]`},
		{"polygon without rings", collection(feature(`{"name":"p"}`, `{"type":"Polygon","coordinates":[]}`)), `geofence: f.json: features[0] "p": a Polygon without rings`},
		{"polygon coordinates wrong", collection(feature(`{"name":"p"}`, `{"type":"Polygon","coordinates":[[1,2],[3,4]]}`)), `geofence: f.json: features[0] "p": the coordinates of a Polygon are an array of rings, not [[1,2],[3,4]]`},
		{"position of one number", collection(feature(`{"name":"p"}`, `{"type":"Polygon","coordinates":[[[1,1],[2],[2,2],[1,1]]]}`)), `geofence: f.json: features[0] "p": ring 0, position 1: a position is [longitude, latitude], not 1 numbers`},
		{"longitude out of range", collection(feature(`{"name":"p"}`, `{"type":"Polygon","coordinates":[[[1,1],[200,1],[2,2],[1,1]]]}`)), `geofence: f.json: features[0] "p": ring 0, position 1: [200,1] is out of range: want [longitude -180..180, latitude -90..90]`},
		{"latitude and longitude swapped", collection(feature(`{"name":"p"}`, `{"type":"Polygon","coordinates":[[[22.5,113.9],[22.5,114.1],[22.7,114.1],[22.5,113.9]]]}`)), `geofence: f.json: features[0] "p": ring 0, position 0: [22.5,113.9] is out of range: want [longitude -180..180, latitude -90..90]`},
		{"multipolygon without polygons", collection(feature(`{"name":"m"}`, `{"type":"MultiPolygon","coordinates":[]}`)), `geofence: f.json: features[0] "m": a MultiPolygon without polygons`},
		{"multipolygon ring not closed", collection(feature(`{"name":"m"}`, `{"type":"MultiPolygon","coordinates":[`+square+`,[[[1,1],[2,1],[2,2],[1,2]]]]}`)), `geofence: f.json: features[0] "m": polygon 1, ring 0 is not closed: its last position [1,2] is not its first [1,1]`},
		{"multipolygon given a polygon", collection(feature(`{"name":"m"}`, `{"type":"MultiPolygon","coordinates":`+square+`}`)), `geofence: f.json: features[0] "m": the coordinates of a MultiPolygon are an array of polygons, not [[[113.9,22.5],[114.1,22.5],[114.1,22.7]…`},
		{"point without radius", collection(feature(`{"name":"home"}`, `{"type":"Point","coordinates":[114,22.6]}`)), `geofence: f.json: features[0] "home": a Point needs a radius in metres, more than 0: properties.radius is missing`},
		{"point radius 0", collection(feature(`{"name":"home","radius":0}`, `{"type":"Point","coordinates":[114,22.6]}`)), `geofence: f.json: features[0] "home": a Point needs a radius in metres, more than 0: properties.radius is 0`},
		{"point radius negative", collection(feature(`{"name":"home","radius":-5}`, `{"type":"Point","coordinates":[114,22.6]}`)), `geofence: f.json: features[0] "home": a Point needs a radius in metres, more than 0: properties.radius is -5`},
		{"point radius a string", collection(feature(`{"name":"home","radius":"100"}`, `{"type":"Point","coordinates":[114,22.6]}`)), `geofence: f.json: features[0] "home": a Point needs a radius in metres, more than 0: properties.radius is "100"`},
		{"point out of range", collection(feature(`{"name":"home","radius":100}`, `{"type":"Point","coordinates":[114,95]}`)), `geofence: f.json: features[0] "home": [114,95] is out of range: want [longitude -180..180, latitude -90..90]`},
		{"point of three positions", collection(feature(`{"name":"home","radius":100}`, `{"type":"Point","coordinates":[[1,2]]}`)), `geofence: f.json: features[0] "home": the coordinates of a Point are one position, not [[1,2]]`},
		{"speed limit negative", collection(feature(`{"name":"school","speed_limit":-30}`, poly)), `geofence: f.json: features[0] "school": speed_limit is -30, want km/h: a number, 0 or more`},
		{"speed limit a string", collection(feature(`{"name":"school","speed_limit":"30"}`, poly)), `geofence: f.json: features[0] "school": speed_limit is "30", want km/h: a number, 0 or more`},
		{"vehicles a string", collection(feature(`{"name":"a","vehicles":"V1"}`, poly)), `geofence: f.json: features[0] "a": vehicles is "V1", want a non-empty array of vehicle ids (leave it out for every vehicle)`},
		{"vehicles empty", collection(feature(`{"name":"a","vehicles":[]}`, poly)), `geofence: f.json: features[0] "a": vehicles is [], want a non-empty array of vehicle ids (leave it out for every vehicle)`},
		{"vehicle an object", collection(feature(`{"name":"a","vehicles":["V1",{}]}`, poly)), `geofence: f.json: features[0] "a": vehicles[1] is {}, want a vehicle id`},
		{"vehicle empty", collection(feature(`{"name":"a","vehicles":[""]}`, poly)), `geofence: f.json: features[0] "a": vehicles[0] is an empty string, want a vehicle id`},
		{"long value cut", collection(feature(`{"name":"a","vehicles":"`+strings.Repeat("车", 30)+`"}`, poly)), `geofence: f.json: features[0] "a": vehicles is "` + strings.Repeat("车", 13) + `…, want a non-empty array of vehicle ids (leave it out for every vehicle)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Parse("f.json", []byte(tc.data))
			if err == nil {
				t.Fatalf("no error; %d fences", s.Len())
			}
			if err.Error() != tc.want {
				t.Errorf("error\n got %s\nwant %s", err, tc.want)
			}
			var e *Error
			if !errors.As(err, &e) || e.File != "f.json" {
				t.Errorf("not an *Error naming the file: %#v", err)
			}
		})
	}
}

func TestErrorDetail(t *testing.T) {
	_, err := Parse("/etc/fences.json", []byte(collection(feature(`{"name":"a b"}`, `{"type":"Polygon","coordinates":[]}`))))
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("%v is not an *Error", err)
	}
	if got, want := e.Detail(), `features[0] "a b": a Polygon without rings`; got != want {
		t.Errorf("Detail() = %s, want %s", got, want)
	}
	if e.Feature != 0 || e.Name != "a b" {
		t.Errorf("Feature, Name = %d, %q", e.Feature, e.Name)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "fences.geojson")
	// A byte order mark, as Windows editors write, and the extra members
	// geojson.io writes (id, styling properties, a bbox, altitudes).
	data := "\uFEFF" + `{"type":"FeatureCollection","bbox":[0,0,1,1],"features":[
		{"type":"Feature","id":7,"properties":{"name":"yard","stroke":"#555555","speed_limit":15,"vehicles":["V1",1002]},
		 "geometry":{"type":"Polygon","coordinates":[[[113.9,22.5,10],[114.1,22.5,10],[114.1,22.7,10],[113.9,22.7,10],[113.9,22.5,10]]]}},
		{"type":"Feature","properties":{"name":"home","radius":150,"speed_limit":null,"vehicles":null},
		 "geometry":{"type":"Point","coordinates":[121.47,31.23]}}]}`
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if s.Len() != 2 {
		t.Fatalf("Len() = %d, want 2", s.Len())
	}
	home, yard := s.Fence(0), s.Fence(1) // name order
	if home.Name != "home" || home.Radius() != 150 || home.SpeedLimit != 0 || home.Vehicles() != nil {
		t.Errorf("home = %q radius %v limit %v vehicles %v", home.Name, home.Radius(), home.SpeedLimit, home.Vehicles())
	}
	if yard.Name != "yard" || yard.Radius() != 0 || yard.SpeedLimit != 15 || !slices.Equal(yard.Vehicles(), []string{"1002", "V1"}) {
		t.Errorf("yard = %q radius %v limit %v vehicles %v", yard.Name, yard.Radius(), yard.SpeedLimit, yard.Vehicles())
	}

	_, err = Load(filepath.Join(dir, "missing.json"))
	want := "geofence: " + dir + "/missing.json: cannot read: open " + dir + "/missing.json: no such file or directory"
	if err == nil || err.Error() != want {
		t.Errorf("Load(missing) = %v, want %s", err, want)
	}
	_, err = Load(dir)
	if err == nil || !strings.HasPrefix(err.Error(), "geofence: "+dir+": cannot read: ") {
		t.Errorf("Load(a directory) = %v", err)
	}
}

func TestLoadTooLarge(t *testing.T) {
	path := filepath.Join(t.TempDir(), "big.json")
	fh, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	// Sparse: no disk is written.
	if err := fh.Truncate(MaxFileSize + 1); err != nil {
		t.Fatal(err)
	}
	fh.Close()
	_, err = Load(path)
	if want := "geofence: " + path + ": larger than 64 MiB"; err == nil || err.Error() != want {
		t.Errorf("Load = %v, want %s", err, want)
	}
}

func TestParseEmpty(t *testing.T) {
	s, err := Parse("f.json", []byte(`{"type":"FeatureCollection","features":[]}`))
	if err != nil {
		t.Fatal(err)
	}
	if s.Len() != 0 || len(s.Contains(nil, "V1", 22.6, 114)) != 0 {
		t.Errorf("an empty set: Len %d", s.Len())
	}
}

// TestAppendGeoJSON: what AppendGeoJSON writes is GeoJSON that Parse reads
// back into the same set: polygons with holes, multipolygons, circles,
// speed limits and vehicles, and names that need escaping.
func TestAppendGeoJSON(t *testing.T) {
	for _, data := range []string{
		randomFences(rand.New(rand.NewPCG(7, 8)), 300, 12, true),
		collection(
			feature(`{"name":"a \"quoted\" <name> 深圳","speed_limit":15.5,"vehicles":["V2",1,"V1"]}`, `{"type":"Polygon","coordinates":`+square+`}`),
			feature(`{"name":"h"}`, `{"type":"Polygon","coordinates":[[[0,0],[10,0],[10,10],[0,10],[0,0]],[[4,4],[6,4],[6,6],[4,6],[4,4]]]}`),
			feature(`{"name":"tiny","radius":0.5}`, `{"type":"Point","coordinates":[-179.9999999,-89.1234567]}`),
		),
		collection(),
	} {
		s := mustParse(t, data)
		out := s.AppendGeoJSON(nil)
		if !json.Valid(out) {
			t.Fatalf("not JSON: %s", out)
		}
		back, err := Parse("again.json", out)
		if err != nil {
			t.Fatalf("Parse(AppendGeoJSON()) = %v\n%s", err, out)
		}
		if !reflect.DeepEqual(s, back) {
			t.Errorf("read back a different set from\n%.2000s", out)
		}
	}
	var none *Set
	if got := string(none.AppendGeoJSON(nil)); got != `{"type":"FeatureCollection","features":[]}` {
		t.Errorf("nil set: %s", got)
	}
}
