package bridge_test

// End-to-end tests of the events and availability (docs/events.md):
// positions from the simulated platform, through the bridge, to a real
// broker.

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/exlive2mqtt/exlive2mqtt/bridge"
	"github.com/exlive2mqtt/exlive2mqtt/events"
	"github.com/exlive2mqtt/exlive2mqtt/exlive"
	"github.com/exlive2mqtt/exlive2mqtt/exlive/exlivesim"
	"github.com/exlive2mqtt/exlive2mqtt/geofence"
	"github.com/exlive2mqtt/exlive2mqtt/internal/brokertest"
	"github.com/exlive2mqtt/exlive2mqtt/opt"
	"github.com/exlive2mqtt/exlive2mqtt/topic"
)

// evFences is a depot (a square of about 2 km, 20 km/h inside) and a yard
// (a circle of 300 m) in Shenzhen.
const evFences = `{"type":"FeatureCollection","features":[
 {"type":"Feature","properties":{"name":"depot","speed_limit":20},
  "geometry":{"type":"Polygon","coordinates":[[[113.99,22.59],[114.01,22.59],[114.01,22.61],[113.99,22.61],[113.99,22.59]]]}},
 {"type":"Feature","properties":{"name":"yard","radius":300},
  "geometry":{"type":"Point","coordinates":[114.2,22.7]}}]}`

// Where the test's vehicles go.
var (
	evOutside = [2]float64{22.55, 114.05}
	evDepot   = [2]float64{22.60, 114.00}
	evYard    = [2]float64{22.7005, 114.2005}
)

func evParse(t *testing.T, geojson string) *geofence.Set {
	t.Helper()
	s, err := geofence.Parse("test.json", []byte(geojson))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// evPosition is a position of vehicle id at where, at t0 + minutes of
// gpstime (read in Asia/Shanghai, as the simulated platform writes it).
type evPosition struct {
	minutes float64
	where   [2]float64
	speed   float64
	alarm   bool
	cstate  string
}

var evT0 = time.Date(2024, 5, 1, 8, 0, 0, 0, igShanghai)

// send sends the position, with the code the platform lists for id.
func (p evPosition) send(f *fixture, id string) {
	code := ""
	_, fleet := f.sim.Fleet()
	for _, v := range fleet {
		if v.ID == id {
			code = v.Code
		}
	}
	f.sim.Send(&exlive.Position{
		ID: id, Code: code, Lat: p.where[0], Lng: p.where[1],
		Speed: opt.Some(p.speed), Time: opt.Some(evT0.Add(time.Duration(p.minutes * float64(time.Minute)))),
		Valid: opt.Some(true), Alarm: opt.Some(p.alarm), CState: p.cstate,
	})
}

// evEvents returns the events published for vehicle id so far, decoded.
func evEvents(t *testing.T, f *fixture, id string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, m := range after(f.sub.Messages(), 0, f.topic("vehicles/"+id+"/event")) {
		if m.Retained {
			t.Errorf("event retained: %s", m.Payload)
		}
		out = append(out, decode(t, m.Payload))
	}
	return out
}

// evWaitEvents waits until vehicle id has had n events.
func evWaitEvents(t *testing.T, f *fixture, id string, n int) []map[string]any {
	t.Helper()
	topic := f.topic("vehicles/" + id + "/event")
	f.sub.Wait(testWait, fmt.Sprintf("%d events of %s", n, id), func(ms []brokertest.Msg) bool { return count(ms, topic) >= n })
	return evEvents(t, f, id)
}

// evPayloads returns the payloads published on P/rest, in order.
func evPayloads(f *fixture, rest string) []string {
	var out []string
	for _, m := range after(f.sub.Messages(), 0, f.topic(rest)) {
		out = append(out, m.Payload)
	}
	return out
}

// TestEvents drives one vehicle through every event a position raises,
// and checks each payload, the geofences and availability topics, the
// metrics, and what the status page gets.
func TestEvents(t *testing.T) {
	brokertest.Each(t, func(t *testing.T, target brokertest.Target) {
		f := newFixture(t, target, setup{
			sim: exlivesim.Config{Vehicles: 3, Rate: 0},
			edit: func(o *bridge.Options) {
				o.Events.OverspeedKmh = 80
				o.Fences = evParse(t, evFences)
			},
		})
		f.ready()
		for _, p := range []evPosition{
			// The first position tells what is known: no event.
			{0, evOutside, 0, false, "ACC关"},
			{1, evOutside, 60, true, "ACC开,定位"},     // alarm_on, ignition_on, moving
			{2, evOutside, 95, true, "ACC开"},        // overspeed 95 > 80
			{3, evDepot, 10, false, "ACC开"},         // alarm_off, geofence_enter; 10 ≤ 20: overspeed over
			{4, evDepot, 30, false, "ACC开"},         // overspeed 30 > 20, the depot's limit
			{5, evDepot, 0, false, "GPS;acc off"},   // ignition_off; slow from here
			{6, evDepot, 3, false, "ACC OFF"},       // slow for 1 min: still moving
			{9, evOutside, 0, false, "ACC OFF"},     // geofence_exit; stopped after 4 min slow
			{1.5, evDepot, 120, true, "ACC ON"},     // stale: older than the last, changes nothing
			{10, evOutside, 0, false, "ACC ONLINE"}, // not an ignition state: no change
		} {
			p.send(f, "V1")
		}
		// V2's first position comes after all of V1's on the same
		// connection: once it is published, every event of V1 is too.
		evPosition{0, evYard, 0, false, ""}.send(f, "V2")
		f.sub.WaitTopic(testWait, f.topic("vehicles/V2/geofences"))

		at := func(minutes float64) string {
			return evT0.Add(time.Duration(minutes * float64(time.Minute))).UTC().Format(time.RFC3339)
		}
		out, depot := map[string]any{"lat": evOutside[0], "lng": evOutside[1]}, map[string]any{"lat": evDepot[0], "lng": evDepot[1]}
		ev := func(typ string, minutes float64, where map[string]any, extra ...any) map[string]any {
			m := map[string]any{"type": typ, "id": "V1", "code": "沪A10000", "time": at(minutes), "lat": where["lat"], "lng": where["lng"]}
			for i := 0; i < len(extra); i += 2 {
				m[extra[i].(string)] = extra[i+1]
			}
			return m
		}
		want := []map[string]any{
			ev("alarm_on", 1, out), ev("ignition_on", 1, out), ev("moving", 1, out, "speed", 60.0),
			ev("overspeed", 2, out, "speed", 95.0, "limit", 80.0),
			ev("alarm_off", 3, depot), ev("geofence_enter", 3, depot, "geofence", "depot"),
			ev("overspeed", 4, depot, "speed", 30.0, "limit", 20.0),
			ev("ignition_off", 5, depot),
			ev("geofence_exit", 9, out, "geofence", "depot"), ev("stopped", 9, out, "since", at(5)),
		}
		got := evWaitEvents(t, f, "V1", len(want))
		if len(got) != len(want) {
			t.Errorf("%d events, want %d", len(got), len(want))
		}
		for i := range min(len(got), len(want)) {
			if fmt.Sprint(got[i]) != fmt.Sprint(want[i]) {
				t.Errorf("event %d =\n%v\nwant\n%v", i, got[i], want[i])
			}
		}
		if evs := evEvents(t, f, "V2"); len(evs) != 0 {
			t.Errorf("V2's first position raised %v", evs)
		}

		// Availability and geofences, in order and retained.
		if got := evPayloads(f, "vehicles/V1/availability"); !slices.Equal(got, []string{"online"}) {
			t.Errorf("availability of V1 = %q, want online once", got)
		}
		if got := evPayloads(f, "vehicles/V1/geofences"); !slices.Equal(got, []string{`[]`, `["depot"]`, `[]`}) {
			t.Errorf("geofences of V1 = %q", got)
		}
		if got := evPayloads(f, "vehicles/V2/geofences"); !slices.Equal(got, []string{`["yard"]`}) {
			t.Errorf("geofences of V2 = %q", got)
		}
		held := retained(t, target.URL, f.prefix+"/#")
		for rest, want := range map[string]string{
			"vehicles/V1/availability": "online", "vehicles/V2/availability": "online",
			"vehicles/V1/geofences": "[]", "vehicles/V2/geofences": `["yard"]`,
		} {
			if m := held[f.topic(rest)]; m.Payload != want {
				t.Errorf("retained %s = %q, want %q", rest, m.Payload, want)
			}
		}
		if m, ok := held[f.topic("vehicles/V1/event")]; ok {
			t.Errorf("an event is retained: %s", m.Payload)
		}

		// The position payload carries the ignition: off in the last
		// position, from ACC OFF (ACC ONLINE tells nothing, and is left out).
		positions := evPayloads(f, "vehicles/V1/position")
		if len(positions) != 10 || !strings.Contains(positions[7], `"ignition":false`) || strings.Contains(positions[9], "ignition") {
			t.Errorf("positions of V1: %q", positions)
		}

		// Metrics: every type counted, and present from the start.
		m := gather(t, f.bridge)
		for _, typ := range events.Types() {
			n := 0.0
			for _, e := range want {
				if e["type"] == typ.String() {
					n++
				}
			}
			m.want(t, `bridge_events_total{type="`+typ.String()+`"}`, n)
		}
		m.want(t, "bridge_vehicles_online", 2)

		// The status page: the latest events, newest first, as published;
		// each vehicle's availability, last seen and geofences.
		recent := f.bridge.RecentEvents()
		published := after(f.sub.Messages(), 0, f.topic("vehicles/V1/event"))
		if len(recent) != len(published) {
			t.Fatalf("%d recent events, want %d", len(recent), len(published))
		}
		for i, p := range published {
			if string(recent[len(recent)-1-i]) != p.Payload {
				t.Errorf("recent event %d = %s, want %s", len(recent)-1-i, recent[len(recent)-1-i], p.Payload)
			}
		}
		for v := range f.bridge.Vehicles() {
			switch v.ID {
			case "V1", "V2":
				fences := []string(nil)
				if v.ID == "V2" {
					fences = []string{"yard"}
				}
				if !v.Online.Valid || !v.Online.V || !v.LastSeen.Valid || time.Since(v.LastSeen.V) > time.Minute || !slices.Equal(v.Geofences, fences) {
					t.Errorf("%s: online %v, last seen %v, geofences %q", v.ID, v.Online, v.LastSeen, v.Geofences)
				}
			case "V3": // listed, never heard from
				if v.Online.Valid || v.LastSeen.Valid {
					t.Errorf("V3: online %v, last seen %v", v.Online, v.LastSeen)
				}
			}
		}
	})
}

// TestAvailability: a vehicle goes offline VEHICLE_OFFLINE_AFTER after its
// last position, and online again with its next; listed vehicles never
// heard from go offline without an event.
func TestAvailability(t *testing.T) {
	brokertest.Each(t, func(t *testing.T, target brokertest.Target) {
		f := newFixture(t, target, setup{
			sim:  exlivesim.Config{Vehicles: 3, Rate: 0},
			edit: func(o *bridge.Options) { o.Events.OfflineAfter = time.Second },
		})
		f.ready()
		sent := time.Now()
		evPosition{0, evOutside, 0, false, ""}.send(f, "V1")
		online := waitPayload(t, f.sub, 0, f.topic("vehicles/V1/availability"), "online")
		// Offline between 1 and 3 s after the position (the wheel's
		// second, and the sweep's).
		offline := waitPayload(t, f.sub, online, f.topic("vehicles/V1/availability"), "offline")
		decided := f.sub.Messages()[offline].At
		if d := decided.Sub(sent); d < time.Second || d > 3*time.Second+time.Second {
			t.Errorf("offline %s after the position, want 1 to 3 s (and a second of slack)", d)
		}
		evs := evWaitEvents(t, f, "V1", 1)
		off := evs[0]
		lastSeen, err := time.Parse(time.RFC3339, str(off["last_seen"]))
		if off["type"] != "offline" || off["lat"] != evOutside[0] || off["lng"] != evOutside[1] || err != nil ||
			lastSeen.Before(sent.Add(-time.Second)) || lastSeen.After(decided) {
			t.Errorf("offline event = %v", off)
		}
		if tm, err := time.Parse(time.RFC3339, str(off["time"])); err != nil || tm.Before(lastSeen) || tm.After(decided) {
			t.Errorf("offline event time %v, want when it was decided", off["time"])
		}
		// V2 and V3 were listed and never sent a position: offline, with
		// no event, a second or so after the inventory.
		for _, id := range []string{"V2", "V3"} {
			waitPayload(t, f.sub, 0, f.topic("vehicles/"+id+"/availability"), "offline")
		}
		waitFor(t, testWait, "no vehicle online", func() bool { return metric(t, f.bridge, "bridge_vehicles_online") == 0 })

		// Back: online, with an online event.
		evPosition{1, evOutside, 0, false, ""}.send(f, "V1")
		evs = evWaitEvents(t, f, "V1", 2)
		if evs[1]["type"] != "online" || evs[1]["time"] != evT0.Add(time.Minute).UTC().Format(time.RFC3339) {
			t.Errorf("online event = %v", evs[1])
		}
		waitPayload(t, f.sub, offline, f.topic("vehicles/V1/availability"), "online")
		for _, id := range []string{"V2", "V3"} {
			if evs := evEvents(t, f, id); len(evs) != 0 {
				t.Errorf("%s, never heard from, had events %v", id, evs)
			}
		}
		m := gather(t, f.bridge)
		m.want(t, `bridge_events_total{type="offline"}`, 1)
		m.want(t, `bridge_events_total{type="online"}`, 1)
		if events.AvailabilityOnline != topic.Online || events.AvailabilityOffline != topic.Offline {
			t.Error("a vehicle's availability and the bridge's state say online and offline in other words")
		}
	})
}

// TestAvailabilityOff: with VEHICLE_OFFLINE_AFTER=0 no availability is
// published, and the events of positions still are.
func TestAvailabilityOff(t *testing.T) {
	brokertest.Each(t, func(t *testing.T, target brokertest.Target) {
		f := newFixture(t, target, setup{
			sim:  exlivesim.Config{Vehicles: 1, Rate: 0},
			edit: func(o *bridge.Options) { o.Events.OfflineAfter = 0 },
		})
		f.ready()
		evPosition{0, evOutside, 0, false, "ACC关"}.send(f, "V1")
		evPosition{1, evOutside, 0, false, "ACC开"}.send(f, "V1")
		if evs := evWaitEvents(t, f, "V1", 1); evs[0]["type"] != "ignition_on" {
			t.Errorf("events = %v", evs)
		}
		for _, m := range f.sub.Messages() {
			if strings.HasSuffix(m.Topic, "/availability") || strings.HasSuffix(m.Topic, "/geofences") {
				t.Errorf("published %s = %s", m.Topic, m.Payload)
			}
		}
		for v := range f.bridge.Vehicles() {
			if v.Online.Valid || !v.LastSeen.Valid {
				t.Errorf("%s: online %v, last seen %v", v.ID, v.Online, v.LastSeen)
			}
		}
	})
}

// TestSetFences: new geofences take effect with each vehicle's next
// position: it leaves the fences that are gone and enters the new ones.
func TestSetFences(t *testing.T) {
	brokertest.Each(t, func(t *testing.T, target brokertest.Target) {
		f := newFixture(t, target, setup{
			sim:  exlivesim.Config{Vehicles: 1, Rate: 0},
			edit: func(o *bridge.Options) { o.Fences = evParse(t, evFences) },
		})
		f.ready()
		evPosition{0, evDepot, 0, false, ""}.send(f, "V1")
		waitPayload(t, f.sub, 0, f.topic("vehicles/V1/geofences"), `["depot"]`)

		// The depot is renamed "main depot", and grows a "gate" inside.
		moved := strings.Replace(evFences, `"name":"depot"`, `"name":"main depot"`, 1)
		moved = strings.TrimSuffix(moved, "]}") + `,{"type":"Feature","properties":{"name":"gate","radius":50},` +
			`"geometry":{"type":"Point","coordinates":[114.0,22.6]}}]}`
		f.bridge.SetFences(evParse(t, moved))
		if n := f.bridge.Fences().Len(); n != 3 {
			t.Errorf("Fences().Len() = %d, want 3", n)
		}
		evPosition{1, evDepot, 0, false, ""}.send(f, "V1")
		waitPayload(t, f.sub, 0, f.topic("vehicles/V1/geofences"), `["gate","main depot"]`)
		f.bridge.SetFences(nil)
		evPosition{2, evDepot, 0, false, ""}.send(f, "V1")
		waitPayload(t, f.sub, 0, f.topic("vehicles/V1/geofences"), `[]`)
		var got []string
		for _, e := range evWaitEvents(t, f, "V1", 5) {
			got = append(got, str(e["type"])+" "+str(e["geofence"]))
		}
		want := []string{"geofence_exit depot", "geofence_enter gate", "geofence_enter main depot",
			"geofence_exit gate", "geofence_exit main depot"}
		if !slices.Equal(got, want) {
			t.Errorf("events %q, want %q", got, want)
		}
	})
}
