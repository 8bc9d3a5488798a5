package bridge_test

// End-to-end tests of the integrations (docs/integrations.md): Home
// Assistant discovery, OwnTracks out and in, coordinate datums and GBK
// platforms, each between the simulated platform and a real broker.

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/exlive2mqtt/exlive2mqtt/bridge"
	"github.com/exlive2mqtt/exlive2mqtt/datum"
	"github.com/exlive2mqtt/exlive2mqtt/exlive"
	"github.com/exlive2mqtt/exlive2mqtt/exlive/exlivesim"
	"github.com/exlive2mqtt/exlive2mqtt/hass"
	"github.com/exlive2mqtt/exlive2mqtt/internal/brokertest"
	"github.com/exlive2mqtt/exlive2mqtt/internal/jinjatest"
	"github.com/exlive2mqtt/exlive2mqtt/opt"
	"github.com/exlive2mqtt/exlive2mqtt/owntracks"
	"github.com/exlive2mqtt/exlive2mqtt/topic"
	"golang.org/x/text/encoding/simplifiedchinese"
)

// igShanghai is the platform's zone for gpstime.
var igShanghai = time.FixedZone("CST", 8*3600)

// TestHomeAssistantDiscovery follows the discovery configs through a
// bridge's life: sent for every vehicle of the inventory, retained, sent
// again when Home Assistant says it is online, kept when an inventory comes
// back incomplete, and deleted when a vehicle leaves the inventory.
func TestHomeAssistantDiscovery(t *testing.T) {
	brokertest.Each(t, func(t *testing.T, target brokertest.Target) {
		var delays atomic.Int32
		f := newFixture(t, target, setup{
			sim: exlivesim.Config{Vehicles: 3},
			edit: func(o *bridge.Options) {
				o.Hass = bridge.HassConfig{Discovery: true, Prefix: o.MQTT.TopicPrefix + "/homeassistant"}
				o.HassDelay = func() time.Duration { delays.Add(1); return 0 }
				o.HassSweepQuiet = 100 * time.Millisecond
			},
		})
		haPrefix := f.opts.Hass.Prefix
		clearRetainedAtEnd(t, target.URL, haPrefix+"/#", f.stop)
		// Availability on (the default VEHICLE_OFFLINE_AFTER), no
		// geofences: the geofences entity is deleted (an empty payload).
		hcfg := hass.Config{Topics: topic.Layout{Prefix: f.prefix, DiscoveryPrefix: haPrefix}, Version: f.opts.Version, Availability: true}
		_, fleet := f.sim.Fleet()
		want := map[string]string{} // every config: topic → payload
		byVehicle := map[string]map[string]string{}
		for _, v := range fleet {
			byVehicle[v.ID] = map[string]string{}
			for _, m := range hass.Configs(hcfg, hass.Vehicle{ID: v.ID, Code: v.Code}) {
				want[m.Topic] = string(m.Payload)
				byVehicle[v.ID][m.Topic] = string(m.Payload)
			}
		}
		bridgeConfigs := map[string]string{}
		for _, m := range hass.Bridge(hcfg) {
			want[m.Topic] = string(m.Payload)
			bridgeConfigs[m.Topic] = string(m.Payload)
		}
		if len(want) != 3*12+1 {
			t.Fatalf("%d configs expected, want 37", len(want))
		}
		deleted := 0
		for _, p := range want {
			if p == "" {
				deleted++
			}
		}
		if deleted != 3 {
			t.Fatalf("%d configs deleted, want the geofences entity of each vehicle", deleted)
		}

		f.waitLoggedIn()
		waitPayloads(t, f.sub, 0, want, "the discovery configs of every vehicle")
		for i, v := range fleet {
			f.sim.Send(&exlive.Position{ID: v.ID, Code: v.Code, Lat: 31.23 + float64(i)/100, Lng: 121.47,
				Speed: opt.Some(40.0), Time: opt.Some(time.Now().Truncate(time.Second))})
			f.sub.WaitTopic(10*time.Second, f.topic("vehicles/"+v.ID+"/position"))
		}

		// What Home Assistant finds when it starts: every config, retained,
		// and exactly what package hass builds (hass/schema_test.go checks
		// those payloads against Home Assistant's schemas).
		held := retained(t, target.URL, haPrefix+"/#")
		for topic, payload := range want {
			m, ok := held[topic]
			switch {
			case payload == "" && ok:
				t.Errorf("%s: deleted, yet retained: %s", topic, m.Payload)
			case payload == "":
			case !ok:
				t.Errorf("%s: no retained config", topic)
			case m.Payload != payload:
				t.Errorf("%s: retained\n%s\nwant\n%s", topic, m.Payload, payload)
			}
		}
		if len(held) != len(want)-deleted {
			t.Errorf("%d retained configs, want %d", len(held), len(want)-deleted)
		}
		igCheckConfigs(t, f, fleet, held, false)

		// Home Assistant restarts and says so: every config again.
		before := len(f.sub.Messages())
		f.sub.Publish(haPrefix+"/status", []byte("online"), false)
		waitPayloads(t, f.sub, before, want, "every config again after Home Assistant came online")
		if n := delays.Load(); n < 2 {
			t.Errorf("HassDelay called %d times, want one per refresh (connect, online)", n)
		}

		// The platform restarts with two vehicles and at first answers no
		// inventory: an empty list removes nothing.
		addr := f.sim.Addr()
		f.sim.Close()
		sim := exlivesim.New(exlivesim.Config{Vehicles: 2})
		sim.SetSilent(true)
		if err := sim.Start(addr); err != nil {
			t.Fatalf("restart the platform on %s: %v", addr, err)
		}
		t.Cleanup(func() { sim.Close() })
		f.sim = sim
		f.log.waitText(t, "keeping the previous inventory")
		before = len(f.sub.Messages())
		f.sub.Publish(haPrefix+"/status", []byte("online"), false)
		waitPayloads(t, f.sub, before, want, "every config, V3's too, after an incomplete inventory")

		// Now it lists its two vehicles: V3 left, and its configs are
		// deleted (empty retained payloads).
		sim.SetSilent(false)
		before = len(f.sub.Messages())
		sim.DropAll()
		gone := map[string]string{}
		for topic := range byVehicle["V3"] {
			gone[topic] = ""
		}
		waitPayloads(t, f.sub, before, gone, "V3's configs deleted")

		// Home Assistant restarts again: V3 does not come back.
		kept := map[string]string{}
		for topic, payload := range want {
			if _, isGone := gone[topic]; !isGone && payload != "" {
				kept[topic] = payload
			}
		}
		before = len(f.sub.Messages())
		f.sub.Publish(haPrefix+"/status", []byte("online"), false)
		waitPayloads(t, f.sub, before, kept, "V1's and V2's configs again")
		f.stop() // delivers everything the refresh published
		for _, m := range f.sub.Messages()[before:] {
			if _, isGone := gone[m.Topic]; isGone && m.Payload != "" {
				t.Errorf("%s sent again after V3 left: %s", m.Topic, m.Payload)
			}
		}
		held = retained(t, target.URL, haPrefix+"/#")
		for topic := range gone {
			if m, ok := held[topic]; ok {
				t.Errorf("%s still retained: %s", topic, m.Payload)
			}
		}
		for topic := range kept {
			if _, ok := held[topic]; !ok {
				t.Errorf("%s no longer retained", topic)
			}
		}
	})
}

// igCheckConfigs checks what the configs promise Home Assistant against
// what the bridge publishes: the topics they read carry the vehicle's
// positions and the bridge's state, each vehicle is one device named after
// its plate with the entities docs/integrations.md lists, and no unique_id
// is used twice.
func igCheckConfigs(t *testing.T, f *fixture, fleet []exlive.Vehicle, held map[string]brokertest.Msg, geofences bool) {
	t.Helper()
	type entity struct {
		component, name, unit, deviceClass, reads string
	}
	// docs/integrations.md shows this table to users.
	wantEntities := []entity{
		{"device_tracker", "", "", "", "position"},
		{"sensor", "Speed", "km/h", "speed", "position"},
		{"sensor", "Direction", "°", "", "position"},
		{"sensor", "Fuel", "L", "volume_storage", "position"},
		{"sensor", "Mileage", "km", "distance", "position"},
		{"sensor", "Last fix", "", "timestamp", "position"},
		{"binary_sensor", "Alarm", "", "problem", "position"},
		{"binary_sensor", "GPS fix", "", "", "position"},
		{"binary_sensor", "Ignition", "", "", "position"},
		{"sensor", "Last seen", "", "timestamp", "position"},
		{"binary_sensor", "Online", "", "connectivity", "availability"},
	}
	if geofences {
		wantEntities = append(wantEntities, entity{"sensor", "Geofences", "", "", "geofences"})
	}
	state, ok := last(f.sub.Messages(), f.topic("bridge/state"))
	if !ok || state.Payload != "online" {
		t.Errorf("bridge state %q, want online", state.Payload)
	}
	uniqueIDs := map[string]string{}
	hcfg := hass.Config{Topics: topic.Layout{Prefix: f.prefix, DiscoveryPrefix: f.opts.Hass.Prefix}}
	for _, v := range fleet {
		position := f.topic("vehicles/" + v.ID + "/position")
		if _, ok := last(f.sub.Messages(), position); !ok {
			t.Errorf("nothing published on %s", position)
		}
		var got []entity
		for topic, m := range held {
			if m.Payload == "" {
				continue
			}
			var c struct {
				Name         *string `json:"name"`
				UniqueID     string  `json:"unique_id"`
				State        string  `json:"state_topic"`
				Attributes   string  `json:"json_attributes_topic"`
				Unit         string  `json:"unit_of_measurement"`
				DeviceClass  string  `json:"device_class"`
				Availability []struct {
					Topic string `json:"topic"`
				} `json:"availability"`
				Device struct {
					Identifiers []string `json:"identifiers"`
					Name        string   `json:"name"`
				} `json:"device"`
			}
			if err := json.Unmarshal([]byte(m.Payload), &c); err != nil {
				t.Errorf("%s: %v", topic, err)
				continue
			}
			if prev, dup := uniqueIDs[c.UniqueID]; dup && prev != topic {
				t.Errorf("unique_id %s in %s and %s", c.UniqueID, prev, topic)
			}
			uniqueIDs[c.UniqueID] = topic
			if !slices.Contains(c.Device.Identifiers, hcfg.DeviceID(hass.Vehicle{ID: v.ID})) {
				continue // another vehicle's, or the bridge's
			}
			if c.Device.Name != v.Code {
				t.Errorf("%s: device name %q, want the plate %q", topic, c.Device.Name, v.Code)
			}
			reads := c.State
			if reads == "" {
				reads = c.Attributes
			}
			vehicleTopic := f.topic("vehicles/" + v.ID + "/")
			if !strings.HasPrefix(reads, vehicleTopic) || c.Attributes != "" && c.Attributes != reads {
				t.Errorf("%s reads %q%q, not a topic of %s", topic, c.State, c.Attributes, vehicleTopic)
			}
			if _, ok := last(f.sub.Messages(), reads); !ok {
				t.Errorf("%s reads %s, where nothing was published", topic, reads)
			}
			// Every entity, the tracker above all, is available while the
			// bridge is: a vehicle that stops reporting stays on the map,
			// and only its Online entity says so.
			if len(c.Availability) != 1 || c.Availability[0].Topic != f.topic("bridge/state") {
				t.Errorf("%s: availability %+v, want %s", topic, c.Availability, f.topic("bridge/state"))
			}
			component := strings.Split(strings.TrimPrefix(topic, f.opts.Hass.Prefix+"/"), "/")[0]
			name := ""
			if c.Name != nil {
				name = *c.Name
			}
			got = append(got, entity{component, name, c.Unit, c.DeviceClass, strings.TrimPrefix(reads, vehicleTopic)})
		}
		for _, e := range wantEntities {
			if !slices.Contains(got, e) {
				t.Errorf("%s: no entity %+v among %+v", v.ID, e, got)
			}
		}
		if len(got) != len(wantEntities) {
			t.Errorf("%s: %d entities, want %d", v.ID, len(got), len(wantEntities))
		}
	}
}

// TestOwnTracksLocations: with OWNTRACKS_ENABLE every position is also an
// OwnTracks location, retained on owntracks/USER/V, with a card naming the
// vehicle; acc only when OWNTRACKS_ACC is set.
func TestOwnTracksLocations(t *testing.T) {
	brokertest.Each(t, func(t *testing.T, target brokertest.Target) {
		for _, acc := range []int{0, 25} {
			t.Run(fmt.Sprintf("acc=%d", acc), func(t *testing.T) {
				user := strings.ReplaceAll(brokertest.ClientID(t), "-", "")
				base := "owntracks/" + user
				sub := brokertest.Subscribe(t, target.URL, base+"/#")
				f := newFixture(t, target, setup{
					sim: exlivesim.Config{Vehicles: 2},
					edit: func(o *bridge.Options) {
						o.OwnTracks = bridge.OwnTracksConfig{Enable: true, User: user, Acc: acc}
					},
				})
				clearRetainedAtEnd(t, target.URL, base+"/#", f.stop)
				f.waitLoggedIn()
				f.sub.WaitTopic(10*time.Second, f.topic("bridge/vehicles"))

				fix := time.Date(2011, 11, 1, 12, 38, 39, 0, igShanghai)
				f.sim.Send(&exlive.Position{ID: "V1", Code: "沪A10000", Lat: 31.230416, Lng: 121.473701,
					Speed: opt.Some(42.6), Direction: opt.Some(359.6), Time: opt.Some(fix),
					Valid: opt.Some(true), Mileage: opt.Some(12345.6), PosInfo: "上海市黄浦区人民大道"})
				m := sub.WaitTopic(10*time.Second, base+"/V1")
				if !strings.HasPrefix(m.Payload, `{"_type":"location"`) {
					t.Errorf("location = %s", m.Payload)
				}
				l, err := owntracks.Decode([]byte(m.Payload))
				if err != nil {
					t.Fatalf("%s: %v", m.Payload, err)
				}
				want := owntracks.Location{Lat: 31.230416, Lon: 121.473701, Tst: fix.Unix(), Vel: opt.Some(43),
					Cog: opt.Some(0), Tid: "00", Odometer: opt.Some(12345.6), Addr: "上海市黄浦区人民大道"}
				if acc > 0 {
					want.Acc = opt.Some(acc)
				}
				if l != want {
					t.Errorf("location\n%+v\nwant\n%+v", l, want)
				}
				p := decode(t, m.Payload)
				for _, k := range []string{"tst", "vel", "cog"} {
					if v := igNum(t, p, k); v != math.Trunc(v) {
						t.Errorf("%s = %v, want an integer", k, v)
					}
				}
				if _, has := p["acc"]; has != (acc > 0) {
					t.Errorf("acc in %s: %v, want %v", m.Payload, has, acc > 0)
				}

				// Retained, with the card that names the vehicle, for
				// whoever subscribes later (OwnTracks Recorder, Home
				// Assistant's OwnTracks integration).
				sub.WaitTopic(10*time.Second, base+"/V1/info")
				held := retained(t, target.URL, base+"/#")
				if r, ok := held[base+"/V1"]; !ok || r.Payload != m.Payload {
					t.Errorf("retained location %q, want %q", r.Payload, m.Payload)
				}
				if r, ok := held[base+"/V1/info"]; !ok {
					t.Error("no retained card on " + base + "/V1/info")
				} else if card := decode(t, r.Payload); card["_type"] != "card" || card["name"] != "沪A10000" {
					t.Errorf("card = %s", r.Payload)
				}
			})
		}
	})
}

// TestOwnTracksLocationUpload: a phone running OwnTracks, its publish topic
// set to P/vehicles/V/position/set, feeds the vehicle's positions to the
// platform. The app publishes retained at QoS 1 by default; the broker hands
// a message to a subscriber that is already there as not retained, so that
// works, while the retained copy is refused after a restart as stale.
func TestOwnTracksLocationUpload(t *testing.T) {
	brokertest.Each(t, func(t *testing.T, target brokertest.Target) {
		f := newFixture(t, target, setup{sim: exlivesim.Config{Vehicles: 2, AnswerUploads: true}})
		clearRetainedAtEnd(t, target.URL, f.topic("vehicles/V1/position/#"), f.stop)
		f.waitLoggedIn()
		f.sub.WaitTopic(10*time.Second, f.topic("bridge/vehicles"))

		// As OwnTracks for Android 2.5 publishes it (iOS sends the same
		// keys for a location).
		location := `{"_type":"location","BSSID":"a4:2b:b0:00:00:01","SSID":"home","acc":12,"alt":35,"batt":87,"bs":1,` +
			`"conn":"w","created_at":1700000003,"lat":31.2304,"lon":121.4737,"m":1,"t":"u","tid":"p1",` +
			`"topic":"owntracks/ann/phone","tst":1700000000,"vac":3,"vel":36,"cog":91}`
		f.sub.Publish(f.topic("vehicles/V1/position/set"), []byte(location), true)
		res := f.sub.WaitTopic(10*time.Second, f.topic("vehicles/V1/position/result"))
		if r := decode(t, res.Payload); r["ok"] != true || r["cmd"] != "1007" {
			t.Errorf("result = %s", res.Payload)
		}
		waitSim(t, f.sim, "the 1007 upload", func(rs []exlivesim.Received) bool {
			return slices.ContainsFunc(rs, func(r exlivesim.Received) bool { return r.Msg.Cmd() == exlive.CmdPosition })
		})
		p, _, _ := lastReceived[*exlive.Position](f.sim)
		if p.ID != "V1" || p.Code != "沪A10000" || p.Lat != 31.2304 || p.Lng != 121.4737 {
			t.Errorf("platform got %+v", p)
		}
		if p.Speed != opt.Some(36.0) || p.Direction != opt.Some(91.0) || p.Valid != opt.Some(true) {
			t.Errorf("platform got speed %v, direction %v, valid %v", p.Speed, p.Direction, p.Valid)
		}
		// gpstime is tst in the platform's zone: 1700000000 is
		// 2023-11-14T22:13:20Z.
		if !p.Time.Valid || p.Time.V.In(igShanghai).Format(time.DateTime) != "2023-11-15 06:13:20" {
			t.Errorf("gpstime = %v, want 2023-11-15 06:13:20 (Beijing time)", p.Time)
		}

		// The app's last will and other messages are not locations: refused,
		// nothing sent.
		sent := f.sim.Count(exlive.CmdPosition)
		r := f.request("vehicles/V1/position", `{"_type":"lwt","tst":1700000100}`)
		if r["ok"] != false || !strings.Contains(fmt.Sprint(r["error"]), "not a location") {
			t.Errorf("lwt result = %v", r)
		}
		if n := f.sim.Count(exlive.CmdPosition); n != sent {
			t.Errorf("the platform got %d more positions", n-sent)
		}
	})
}

// TestDatums: a platform whose coordinates are GCJ-02 or BD-09 is published
// in WGS-84 (positions and OwnTracks), and uploads in WGS-84 reach it in its
// datum. The pairs are datum's reference points.
func TestDatums(t *testing.T) {
	cases := []struct {
		name             string
		d                datum.Datum
		platLat, platLng float64 // in the platform's datum
		wgsLat, wgsLng   float64
	}{
		// github.com/googollee/eviltransform's Shanghai vector.
		{"gcj02", datum.GCJ02, 31.17530398364597, 121.531541859215, 31.1774276, 121.5272106},
		// github.com/hujiulong/gcoord's WGS84 → BD09 vector.
		{"bd09", datum.BD09, 45.0083293, 123.0124491, 45, 123},
		{"wgs84", datum.WGS84, 31.230416, 121.473701, 31.230416, 121.473701},
	}
	brokertest.Each(t, func(t *testing.T, target brokertest.Target) {
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				user := strings.ReplaceAll(brokertest.ClientID(t), "-", "")
				ot := brokertest.Subscribe(t, target.URL, "owntracks/"+user+"/#")
				f := newFixture(t, target, setup{
					sim: exlivesim.Config{Vehicles: 1, AnswerUploads: true},
					edit: func(o *bridge.Options) {
						o.Exlive.Datum = c.d
						o.OwnTracks = bridge.OwnTracksConfig{Enable: true, User: user}
					},
				})
				clearRetainedAtEnd(t, target.URL, "owntracks/"+user+"/#", f.stop)
				f.waitLoggedIn()
				f.sub.WaitTopic(10*time.Second, f.topic("bridge/vehicles"))

				f.sim.Send(&exlive.Position{ID: "V1", Code: "沪A10000", Lat: c.platLat, Lng: c.platLng,
					Time: opt.Some(time.Date(2023, 11, 15, 6, 13, 20, 0, igShanghai))})
				p := decode(t, f.sub.WaitTopic(10*time.Second, f.topic("vehicles/V1/position")).Payload)
				if d := igMetres(igNum(t, p, "lat"), igNum(t, p, "lng"), c.wgsLat, c.wgsLng); d > 1 {
					t.Errorf("published %v,%v: %.2f m from the WGS-84 %v,%v", p["lat"], p["lng"], d, c.wgsLat, c.wgsLng)
				}
				l := decode(t, ot.WaitTopic(10*time.Second, "owntracks/"+user+"/V1").Payload)
				if d := igMetres(igNum(t, l, "lat"), igNum(t, l, "lon"), c.wgsLat, c.wgsLng); d > 1 {
					t.Errorf("OwnTracks %v,%v: %.2f m from the WGS-84 %v,%v", l["lat"], l["lon"], d, c.wgsLat, c.wgsLng)
				}

				r := f.request("vehicles/V1/position", fmt.Sprintf(`{"lat":%v,"lng":%v,"time":1700000000,"request_id":"d"}`, c.wgsLat, c.wgsLng))
				if r["ok"] != true {
					t.Fatalf("upload result = %v", r)
				}
				waitSim(t, f.sim, "the upload", func(rs []exlivesim.Received) bool {
					return slices.ContainsFunc(rs, func(r exlivesim.Received) bool { return r.Msg.Cmd() == exlive.CmdPosition })
				})
				up, _, _ := lastReceived[*exlive.Position](f.sim)
				if d := igMetres(up.Lat, up.Lng, c.platLat, c.platLng); d > 1 {
					t.Errorf("platform got %v,%v: %.2f m from the %s %v,%v", up.Lat, up.Lng, d, c.d, c.platLat, c.platLng)
				}
				if c.d == datum.WGS84 && (up.Lat != c.wgsLat || up.Lng != c.wgsLng || p["lat"] != c.wgsLat || p["lng"] != c.wgsLng) {
					t.Errorf("wgs84 changed coordinates: published %v,%v, uploaded %v,%v", p["lat"], p["lng"], up.Lat, up.Lng)
				}
			})
		}
	})
}

// TestGBKPlatform: a platform that speaks GBK, read with EXLIVE_ENCODING gbk
// or auto. Its text, with characters whose GBK trail byte is '\', '{' or
// '}', reaches MQTT as the right UTF-8, and what is sent to it goes in GBK.
func TestGBKPlatform(t *testing.T) {
	bs, lb, rb := igGBKChars(t, '\\', 3), igGBKChars(t, '{', 2), igGBKChars(t, '}', 2)
	// Trail bytes at the end of the text too, where a '\' would escape the
	// closing quote, and the ASCII characters they look like.
	text := "上海" + bs[0] + lb[0] + rb[0] + ` \"{}\ ` + lb[1] + rb[1] + bs[1] + bs[2]
	brokertest.Each(t, func(t *testing.T, target brokertest.Target) {
		for _, enc := range []exlive.Encoding{exlive.EncodingGBK, exlive.EncodingAuto} {
			t.Run(enc.String(), func(t *testing.T) {
				f := newFixture(t, target, setup{
					sim:  exlivesim.Config{Vehicles: 2, Encoding: exlive.EncodingGBK, AnswerUploads: true},
					edit: func(o *bridge.Options) { o.Exlive.Encoding = enc },
				})
				f.waitLoggedIn()
				groups := f.sub.WaitTopic(10*time.Second, f.topic("bridge/groups"))
				vehicles := f.sub.WaitTopic(10*time.Second, f.topic("bridge/vehicles"))
				if !strings.Contains(groups.Payload, `"name":"车队1"`) || !strings.Contains(vehicles.Payload, `"code":"沪A10000"`) {
					t.Errorf("inventory read from GBK:\n%s\n%s", groups.Payload, vehicles.Payload)
				}

				// Platform → MQTT: a position, a message (1003), a
				// passthrough reply (1013).
				f.sim.Send(&exlive.Position{ID: "V1", Code: "沪A10000", Lat: 31.23, Lng: 121.47,
					WState: bs[0], CState: "ACC开" + rb[0], PosInfo: text})
				f.sim.Send(&exlive.TextMessage{Msg: text})
				f.sim.Send(&exlive.PassthroughReply{TerminalID: "V1", Code: "沪A10000", Data: text})
				p := decode(t, f.sub.WaitTopic(10*time.Second, f.topic("vehicles/V1/position")).Payload)
				if p["posinfo"] != text || p["wstate"] != bs[0] || p["cstate"] != "ACC开"+rb[0] || p["code"] != "沪A10000" {
					t.Errorf("position = %v\nwant posinfo %q", p, text)
				}
				if m := decode(t, f.sub.WaitTopic(10*time.Second, f.topic("bridge/message")).Payload); m["msg"] != text {
					t.Errorf("message = %q, want %q", m["msg"], text)
				}
				if m := decode(t, f.sub.WaitTopic(10*time.Second, f.topic("vehicles/V1/passthrough")).Payload); m["data"] != text || m["code"] != "沪A10000" {
					t.Errorf("passthrough = %v, want data %q", m, text)
				}

				// MQTT → platform, in GBK: command and passthrough data, a
				// position's texts, a message.
				js := func(v map[string]any) string {
					b, err := json.Marshal(v)
					if err != nil {
						t.Fatal(err)
					}
					return string(b)
				}
				before := len(f.sub.Messages())
				for _, q := range []struct{ rest, payload string }{
					{"vehicles/V1/command", js(map[string]any{"data": text, "request_id": "g1"})},
					{"vehicles/V1/passthrough", js(map[string]any{"data": text, "request_id": "g2"})},
					{"vehicles/V1/position", js(map[string]any{"lat": 31.2, "lng": 121.4, "posinfo": text, "cstate": bs[1], "request_id": "g3"})},
					{"bridge/message", text},
				} {
					if r := f.request(q.rest, q.payload); r["ok"] != true {
						t.Errorf("%s: result %v", q.rest, r)
					}
				}
				waitSim(t, f.sim, "four uploads", func(rs []exlivesim.Received) bool {
					n := 0
					for _, r := range rs {
						switch r.Msg.Cmd() {
						case exlive.CmdVehicleCommand, exlive.CmdPassthrough, exlive.CmdPosition, exlive.CmdText:
							n++
						}
					}
					return n >= 4
				})
				cmd, rc, _ := lastReceived[*exlive.VehicleCommand](f.sim)
				if cmd.ID != "V1" || cmd.Data != text || !rc.GBK {
					t.Errorf("platform got 1004 %+v (GBK %v), want data %q", cmd, rc.GBK, text)
				}
				pt, rp, _ := lastReceived[*exlive.Passthrough](f.sim)
				if pt.TerminalID != "V1" || pt.Code != "沪A10000" || pt.Data != text || !rp.GBK {
					t.Errorf("platform got 1012 %+v (GBK %v), want data %q", pt, rp.GBK, text)
				}
				pos, rpos, _ := lastReceived[*exlive.Position](f.sim)
				if pos.PosInfo != text || pos.CState != bs[1] || pos.Code != "沪A10000" || !rpos.GBK {
					t.Errorf("platform got 1007 %+v (GBK %v), want posinfo %q", pos, rpos.GBK, text)
				}
				msg, rm, _ := lastReceived[*exlive.TextMessage](f.sim)
				if msg.Msg != text || !rm.GBK {
					t.Errorf("platform got 1003 %q (GBK %v), want %q", msg.Msg, rm.GBK, text)
				}
				// The platform's passthrough reply echoes the data back.
				reply := f.topic("vehicles/V1/passthrough")
				msgs := f.sub.Wait(10*time.Second, "the passthrough reply", func(ms []brokertest.Msg) bool {
					return count(ms[before:], reply) > 0
				})
				for _, m := range msgs[before:] {
					if m.Topic == reply {
						if d := decode(t, m.Payload); d["data"] != "ACK "+text {
							t.Errorf("passthrough reply = %v, want data %q", d, "ACK "+text)
						}
						break
					}
				}
			})
		}
	})
}

// igGBKChars finds n CJK characters whose GBK encoding ends in trail, by
// encoding the CJK block rather than trusting a table (as exlive's
// frame_test.go does).
func igGBKChars(t *testing.T, trail byte, n int) []string {
	t.Helper()
	enc := simplifiedchinese.GBK.NewEncoder()
	var found []string
	for r := rune(0x4E00); r <= 0x9FA5 && len(found) < n; r++ {
		b, err := enc.Bytes([]byte(string(r)))
		if err != nil {
			t.Fatal(err)
		}
		if len(b) == 2 && b[1] == trail {
			found = append(found, string(r))
		}
	}
	if len(found) < n {
		t.Fatalf("found %d characters with GBK trail byte %#x, want %d", len(found), trail, n)
	}
	return found
}

// igMetres returns the distance between two points in metres (haversine on
// the mean Earth radius: plenty for a one-metre tolerance).
func igMetres(lat1, lng1, lat2, lng2 float64) float64 {
	const r = 6371008.8
	φ1, φ2 := lat1*math.Pi/180, lat2*math.Pi/180
	dφ, dλ := φ2-φ1, (lng2-lng1)*math.Pi/180
	h := math.Sin(dφ/2)*math.Sin(dφ/2) + math.Cos(φ1)*math.Cos(φ2)*math.Sin(dλ/2)*math.Sin(dλ/2)
	return 2 * r * math.Asin(math.Sqrt(h))
}

// igNum reads a JSON number of a decoded payload.
func igNum(t *testing.T, p map[string]any, key string) float64 {
	t.Helper()
	f, ok := p[key].(float64)
	if !ok {
		t.Fatalf("%q is %v (%T), want a number; payload %v", key, p[key], p[key], p)
	}
	return f
}

// TestHomeAssistantEventEntities follows the entities of docs/events.md
// from their discovery configs to the retained topics they read: each
// config's template is rendered (with Python's Jinja2, as Home Assistant
// does, where it is installed) against what the broker retains on its
// topic, and gives the state Home Assistant would show; when the vehicle
// goes offline, only its Online entity changes, and the tracker stays
// available.
func TestHomeAssistantEventEntities(t *testing.T) {
	brokertest.Each(t, func(t *testing.T, target brokertest.Target) {
		f := newFixture(t, target, setup{
			sim: exlivesim.Config{Vehicles: 2, Rate: 0},
			edit: func(o *bridge.Options) {
				o.Hass = bridge.HassConfig{Discovery: true, Prefix: o.MQTT.TopicPrefix + "/homeassistant"}
				o.HassDelay = func() time.Duration { return 0 }
				o.HassSweepQuiet = 100 * time.Millisecond
				o.Events.OfflineAfter = time.Second
				o.Fences = evParse(t, evFences)
			},
		})
		haPrefix := f.opts.Hass.Prefix
		clearRetainedAtEnd(t, target.URL, haPrefix+"/#", f.stop)
		f.ready()
		_, fleet := f.sim.Fleet()
		// The configs are sent once the bridge has swept those of earlier
		// versions (announce.go): wait for them all.
		hcfg := hass.Config{Topics: topic.Layout{Prefix: f.prefix, DiscoveryPrefix: haPrefix}, Version: f.opts.Version, Availability: true, Geofences: true}
		want := map[string]string{}
		for _, v := range fleet {
			for _, m := range hass.Configs(hcfg, hass.Vehicle{ID: v.ID, Code: v.Code}) {
				want[m.Topic] = string(m.Payload)
			}
		}
		waitPayloads(t, f.sub, 0, want, "the discovery configs of every vehicle")
		evPosition{0, evOutside, 0, false, "ACC关"}.send(f, "V2")
		evPosition{0, evDepot, 12, true, "ACC开"}.send(f, "V1")
		// V1 goes offline a second after its last position. Until its
		// states are taken, it keeps reporting the same position: the
		// checks and the configs take longer than that on a busy machine.
		keep, kept := make(chan struct{}), make(chan struct{})
		go func() {
			defer close(kept)
			tick := time.NewTicker(100 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-keep:
					return
				case <-tick.C:
					evPosition{0, evDepot, 12, true, "ACC开"}.send(f, "V1")
				}
			}
		}()
		waitPayload(t, f.sub, 0, f.topic("vehicles/V1/geofences"), `["depot"]`)
		waitPayload(t, f.sub, 0, f.topic("vehicles/V2/geofences"), `[]`)

		held := retained(t, target.URL, haPrefix+"/#")
		igCheckConfigs(t, f, fleet, held, true)

		// The state of each of V1's entities, as Home Assistant renders it
		// from the retained topics (Python's Jinja2 where it is installed).
		python := jinjatest.Python(t)
		// V1's unique ids: "<node>/V1_<object>" (hass/ids.go).
		v1, _ := hcfg.Entity("sensor", hass.Vehicle{ID: "V1"}, "")
		states := func(topics map[string]brokertest.Msg) map[string]string {
			out := map[string]string{}
			var tpls []jinjatest.Job
			for _, m := range held {
				var c struct {
					UniqueID   string `json:"unique_id"`
					State      string `json:"state_topic"`
					Value      string `json:"value_template"`
					Attributes string `json:"json_attributes_topic"`
					AttrsTpl   string `json:"json_attributes_template"`
				}
				if json.Unmarshal([]byte(m.Payload), &c) != nil || !strings.HasPrefix(c.UniqueID, v1) {
					continue
				}
				name := strings.TrimPrefix(c.UniqueID, v1)
				if c.State != "" {
					payload := topics[c.State].Payload
					if c.Value == "" {
						out[name] = payload // compared with payload_on/off as it is
					} else {
						tpls = append(tpls, jinjatest.Job{Name: name, Template: c.Value, Payload: payload})
					}
				}
				if c.AttrsTpl != "" {
					tpls = append(tpls, jinjatest.Job{Name: name + " attributes", Template: c.AttrsTpl, Payload: topics[c.Attributes].Payload})
				}
			}
			for k, v := range jinjatest.Render(t, python, tpls) {
				out[k] = v
			}
			return out
		}
		close(keep)
		<-kept
		// Taken at once, rendered after: the snapshot is what counts.
		mark := len(f.sub.Messages())
		got := states(retained(t, target.URL, f.prefix+"/#"))
		received, _ := time.Parse(time.RFC3339, got[hass.ObjectLastSeen])
		for object, want := range map[string]string{
			hass.ObjectOnline: "online", hass.ObjectIgnition: "ON", hass.ObjectAlarm: "ON",
			hass.ObjectGeofences: "depot", hass.ObjectSpeed: "12", hass.ObjectValid: "ON",
		} {
			if got[object] != want {
				t.Errorf("%s: %q, want %q", object, got[object], want)
			}
		}
		if time.Since(received) > time.Minute || !strings.Contains(got[hass.ObjectGeofences+" attributes"], `"depot"`) {
			t.Errorf("last seen %q, geofences attributes %q", got[hass.ObjectLastSeen], got[hass.ObjectGeofences+" attributes"])
		}

		// Silent for a second or so: offline. The Online entity says so;
		// the others, the tracker above all, keep their state and stay
		// available (their availability is the bridge's state, online).
		waitPayload(t, f.sub, mark, f.topic("vehicles/V1/availability"), "offline")
		after := states(retained(t, target.URL, f.prefix+"/#"))
		for object, state := range got {
			switch {
			case object == hass.ObjectOnline:
				if after[object] != "offline" {
					t.Errorf("Online: %q after the vehicle went silent, want offline", after[object])
				}
			case after[object] != state:
				t.Errorf("%s changed from %q to %q when the vehicle went offline", object, state, after[object])
			}
		}
		if m, _ := f.sub.Last(f.topic("bridge/state")); m.Payload != "online" {
			t.Errorf("bridge state %q: the entities' availability", m.Payload)
		}
	})
}
