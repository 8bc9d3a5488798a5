package geofence_test

import (
	"fmt"

	"github.com/exlive2mqtt/exlive2mqtt/geofence"
)

func ExampleSet_Contains() {
	s, err := geofence.Parse("fences.json", []byte(`{"type":"FeatureCollection","features":[
		{"type":"Feature","properties":{"name":"depot"},
		 "geometry":{"type":"Polygon","coordinates":[[[113.99,22.59],[114.01,22.59],[114.01,22.61],[113.99,22.61],[113.99,22.59]]]}},
		{"type":"Feature","properties":{"name":"gate","radius":300,"vehicles":["V1"]},
		 "geometry":{"type":"Point","coordinates":[114.0,22.6]}}]}`))
	if err != nil {
		panic(err)
	}
	buf := make([]string, 0, 8) // reused: Contains then allocates nothing
	fmt.Println(s.Contains(buf[:0], "V1", 22.6, 114.0))
	fmt.Println(s.Contains(buf[:0], "V2", 22.6, 114.0))
	fmt.Println(s.Contains(buf[:0], "V1", 22.5, 114.0))
	// Output:
	// [depot gate]
	// [depot]
	// []
}

func ExampleParse_error() {
	_, err := geofence.Parse("fences.json", []byte(`{"type":"FeatureCollection","features":[
		{"type":"Feature","properties":{"name":"home"},"geometry":{"type":"Point","coordinates":[114.0,22.6]}}]}`))
	fmt.Println(err)
	// Output:
	// geofence: fences.json: features[0] "home": a Point needs a radius in metres, more than 0: properties.radius is missing
}
