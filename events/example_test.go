package events_test

import (
	"fmt"
	"time"

	"github.com/exlive2mqtt/exlive2mqtt/events"
	"github.com/exlive2mqtt/exlive2mqtt/geofence"
)

// The bridge's part, in short: each position goes through Observe on the
// read loop, and Sweep runs every second on another goroutine. What they
// return is published on P/vehicles/V/availability (retained),
// P/vehicles/V/geofences (retained) and P/vehicles/V/event.
func Example() {
	fences, err := geofence.Parse("fences.json", []byte(`{"type":"FeatureCollection","features":[
		{"type":"Feature","properties":{"name":"depot","speed_limit":20},
		 "geometry":{"type":"Polygon","coordinates":[[[113.99,22.59],[114.01,22.59],[114.01,22.61],[113.99,22.61],[113.99,22.59]]]}}]}`))
	if err != nil {
		panic(err)
	}
	c := events.Defaults()
	c.OverspeedKmh = 80
	start := time.Date(2024, 5, 1, 8, 0, 0, 0, time.UTC)
	e := events.New(c, events.Options{Fences: fences, Start: start})

	publish := func(evs []events.Event, u events.Update) {
		if u.Online {
			fmt.Println("availability:", events.AvailabilityOnline)
		}
		if u.FencesChanged {
			fmt.Println("geofences:", string(events.AppendGeofences(nil, u.Fences)))
		}
		for _, ev := range evs {
			fmt.Println("event:", string(events.AppendEvent(nil, &ev)))
		}
	}
	var buf []events.Event
	for i, p := range []events.Position{
		{ID: "V1", Lat: 22.55, Lng: 114.05, Speed: 60, HasSpeed: true, CState: "ACC开"},
		{ID: "V1", Lat: 22.60, Lng: 114.00, Speed: 25, HasSpeed: true, CState: "ACC开"},
		{ID: "V1", Lat: 22.60, Lng: 114.00, Speed: 0, HasSpeed: true, CState: "ACC关"},
	} {
		now := start.Add(time.Duration(i) * time.Minute)
		p.Time = now
		var u events.Update
		buf, u = e.Observe(buf[:0], &p, now)
		publish(buf, u)
	}
	e.Sweep(start.Add(time.Hour), func(ev events.Event) {
		fmt.Println("availability:", events.AvailabilityOffline)
		fmt.Println("event:", string(events.AppendEvent(nil, &ev)))
	})
	// Output:
	// availability: online
	// geofences: []
	// geofences: ["depot"]
	// event: {"type":"geofence_enter","id":"V1","time":"2024-05-01T08:01:00Z","lat":22.6,"lng":114,"geofence":"depot"}
	// event: {"type":"overspeed","id":"V1","time":"2024-05-01T08:01:00Z","lat":22.6,"lng":114,"speed":25,"limit":20}
	// event: {"type":"ignition_off","id":"V1","time":"2024-05-01T08:02:00Z","lat":22.6,"lng":114}
	// availability: offline
	// event: {"type":"offline","id":"V1","time":"2024-05-01T09:00:00Z","lat":22.6,"lng":114,"last_seen":"2024-05-01T08:02:00Z"}
}
