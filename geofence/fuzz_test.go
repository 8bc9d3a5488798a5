package geofence

import (
	"errors"
	"math/rand/v2"
	"slices"
	"testing"
)

// FuzzParse feeds Parse anything: it must not panic, must fail with an
// *Error naming the file, or give a Set whose fences have unique names in
// order and that answers Containing anywhere.
func FuzzParse(f *testing.F) {
	poly := `{"type":"Polygon","coordinates":` + square + `}`
	for _, seed := range []string{
		``, `null`, `[]`, `{}`, `{"type":"FeatureCollection","features":[]}`,
		collection(feature(`{"name":"a"}`, poly)),
		collection(feature(`{"name":"a","speed_limit":30,"vehicles":["V1",2]}`, poly), feature(`{"name":"b","radius":100}`, `{"type":"Point","coordinates":[114,22.6]}`)),
		collection(feature(`{"name":"m"}`, `{"type":"MultiPolygon","coordinates":[`+square+`,[[[1,1],[2,1],[2,2],[1,2],[1,1]]]]}`)),
		collection(feature(`{"name":"h"}`, `{"type":"Polygon","coordinates":[[[0,0],[10,0],[10,10],[0,10],[0,0]],[[4,4],[6,4],[6,6],[4,6],[4,4]]]}`)),
		collection(feature(`{"name":"pole","radius":1e7}`, `{"type":"Point","coordinates":[180,90]}`)),
		collection(feature(`{"name":"a"}`, poly), feature(`{"name":"a"}`, poly)),
		collection(feature(`{"name":"x"}`, `{"type":"Polygon","coordinates":[[[1,1],[2,1],[2,2],[1,2]]]}`)),
		randomFences(rand.New(rand.NewPCG(5, 6)), 20, 6, true),
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Parse("fuzz.json", data)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.File != "fuzz.json" || s != nil {
				t.Fatalf("error %v is not an *Error naming the file, or came with a Set", err)
			}
			return
		}
		names := make([]string, s.Len())
		for i := range names {
			names[i] = s.Fence(i).Name
		}
		if !slices.IsSorted(names) || len(slices.Compact(slices.Clone(names))) != len(names) {
			t.Fatalf("names not unique and sorted: %q", names)
		}
		for _, p := range [][2]float64{{0, 0}, {22.6, 114}, {90, 180}, {-90, -180}, {1.5, 1.5}, {5, 5}} {
			got := s.Containing(nil, "V1", p[0], p[1])
			for i := 1; i < len(got); i++ {
				if got[i-1].Name >= got[i].Name {
					t.Fatalf("Containing(%v) out of order: %s, %s", p, got[i-1].Name, got[i].Name)
				}
			}
		}
	})
}
