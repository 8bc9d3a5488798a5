package datum_test

import (
	"fmt"
	"log"

	"github.com/exlive2mqtt/exlive2mqtt/datum"
)

func Example() {
	// The platform's datum normally comes from configuration.
	d, err := datum.Parse("GCJ-02")
	if err != nil {
		log.Fatal(err)
	}

	// A fix near Tiananmen as reported by the platform, in GCJ-02.
	lat, lng := 39.91334545536069, 116.38404722455657

	wLat, wLng := d.ToWGS84(lat, lng)
	fmt.Printf("%v (%.6f, %.6f) = WGS-84 (%.6f, %.6f)\n", d, lat, lng, wLat, wLng)

	// Converting back reproduces the platform's value.
	bLat, bLng := d.FromWGS84(wLat, wLng)
	fmt.Printf("back to %v: (%.6f, %.6f)\n", d, bLat, bLng)

	// Outside China nothing moves.
	fmt.Println(d.ToWGS84(51.5074, -0.1278))
	// Output:
	// gcj02 (39.913345, 116.384047) = WGS-84 (39.911954, 116.377817)
	// back to gcj02: (39.913345, 116.384047)
	// 51.5074 -0.1278
}

func ExampleParse() {
	for _, s := range []string{"wgs84", "BD-09", "baidu"} {
		d, err := datum.Parse(s)
		fmt.Println(d, err)
	}
	// Output:
	// wgs84 <nil>
	// bd09 <nil>
	// wgs84 datum: unknown datum "baidu" (want wgs84, gcj02 or bd09)
}

func ExampleBD09ToGCJ02() {
	// A Baidu coordinate for the same spot; BD-09 is GCJ-02 shifted again.
	lat, lng := datum.BD09ToGCJ02(39.92133699351021, 116.41036949371029)
	fmt.Printf("%.6f %.6f\n", lat, lng)
	// Output:
	// 39.915000 116.404000
}
