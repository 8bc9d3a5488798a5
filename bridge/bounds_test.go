package bridge_test

// Bounds on what the platform sends, end to end: from the simulated
// platform's socket to what the bridge publishes on a real broker, keeps
// in its list of vehicles, counts and logs.

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/exlive2mqtt/exlive2mqtt/bridge"
	"github.com/exlive2mqtt/exlive2mqtt/exlive"
	"github.com/exlive2mqtt/exlive2mqtt/exlive/exlivesim"
	"github.com/exlive2mqtt/exlive2mqtt/internal/brokertest"
)

// TestPlatformNumbers: numbers from the platform are decimal, finite and in
// range. A coordinate that is not is a bad frame (not published); an
// optional field that is not is left out and counted; what is published
// never takes hundreds of digits.
func TestPlatformNumbers(t *testing.T) {
	brokertest.Each(t, func(t *testing.T, target brokertest.Target) {
		f := newFixture(t, target, setup{})
		f.waitLoggedIn()
		ftMark(t, f, "M0")
		cases := []struct {
			id     string
			fields map[string]string
			want   string // the payload published; "" for none
		}{
			{"n-hex", map[string]string{"veo": "0x1p-2", "dir": "0x10"}, `{"id":"n-hex","lat":31.2,"lng":121.4}`},
			{"n-underscore", map[string]string{"veo": "1_0", "oil": "1_000"}, `{"id":"n-underscore","lat":31.2,"lng":121.4}`},
			{"n-underflow", map[string]string{"oil": "1e-400", "dis": "-1e-400"}, `{"id":"n-underflow","lat":31.2,"lng":121.4}`},
			{"n-huge", map[string]string{"dis": "1e308", "oil": "-1e13", "veo": "10001"}, `{"id":"n-huge","lat":31.2,"lng":121.4}`},
			{"n-words", map[string]string{"veo": "Infinity", "dir": "NaN", "oil": "inf"}, `{"id":"n-words","lat":31.2,"lng":121.4}`},
			{"n-decimal", map[string]string{"veo": "+8.5", "dir": " 90 ", "oil": ".5", "dis": "1.5e3"},
				`{"id":"n-decimal","lat":31.2,"lng":121.4,"speed":8.5,"direction":90,"fuel":0.5,"mileage":1500}`},
			{"n-edges", map[string]string{"veo": "10000", "dir": "360", "oil": "-1000000000000", "dis": "1e12"},
				`{"id":"n-edges","lat":31.2,"lng":121.4,"speed":10000,"direction":360,"fuel":-1000000000000,"mileage":1000000000000}`},
			{"n-zero", map[string]string{"veo": "0", "dir": "-0", "oil": "0e-400", "dis": "0.000"},
				`{"id":"n-zero","lat":31.2,"lng":121.4,"speed":0,"direction":0,"fuel":0,"mileage":0}`},
			// Coordinates: bad frames.
			{"n-lat-hex", map[string]string{"lat": "0x1p-2"}, ""},
			{"n-lat-underflow", map[string]string{"lat": "1e-400"}, ""},
			{"n-lng-underscore", map[string]string{"lng": "1_21.4"}, ""},
		}
		for _, c := range cases {
			body := map[string]string{"id": c.id, "lat": "31.2", "lng": "121.4"}
			for k, v := range c.fields {
				body[k] = v
			}
			f.sim.SendRaw(rawPosition(body))
		}
		ftMark(t, f, "M1")
		// When the bridge received it is not the platform's number.
		received := regexp.MustCompile(`,"received":"[^"]*"`)
		for _, c := range cases {
			m, ok := f.sub.Last(f.topic("vehicles/" + c.id + "/position"))
			switch {
			case c.want == "" && ok:
				t.Errorf("%s: published %s from a bad frame", c.id, m.Payload)
			case c.want != "" && received.ReplaceAllString(m.Payload, "") != c.want:
				t.Errorf("%s: published %q (%v), want %s", c.id, m.Payload, ok, c.want)
			}
		}
		long := regexp.MustCompile(`[0-9]{25}`)
		for _, m := range f.sub.Messages() {
			if long.MatchString(m.Payload) {
				t.Errorf("%s: a number of 25 digits or more: %s", m.Topic, m.Payload)
			}
		}
		m := gather(t, f.bridge)
		for series, want := range map[string]float64{
			`exlive_fields_ignored_total{field="veo"}`:           4, // hex, underscore, over 10000, Infinity
			`exlive_fields_ignored_total{field="dir"}`:           2, // hex, NaN
			`exlive_fields_ignored_total{field="oil"}`:           4, // underscore, underflow, -1e13, inf
			`exlive_fields_ignored_total{field="dis"}`:           2, // underflow, 1e308
			`exlive_frames_skipped_total{reason="bad_field"}`:    3,
			`exlive_frames_skipped_total{reason="out_of_range"}`: 0,
		} {
			m.want(t, series, want)
		}
	})
}

// TestPlatformLongStrings: ids, codes and texts from the platform have
// bounds. A position or passthrough reply whose id is longer than 128 bytes
// (exlive.MaxIDLen) is counted and never published or kept, whatever its
// length (900 kB here); a longer code is left out; longer texts are cut at
// a character boundary to 1024 bytes (exlive.MaxTextLen). Each warning is
// logged at most once every ten seconds.
func TestPlatformLongStrings(t *testing.T) {
	brokertest.Each(t, func(t *testing.T, target brokertest.Target) {
		f := newFixture(t, target, setup{})
		f.ready() // the listed vehicles are kept too
		ftMark(t, f, "M0")
		start := time.Now()
		id128 := strings.Repeat("8", exlive.MaxIDLen)
		f.sim.SendRaw(rawPosition(map[string]string{"id": id128, "lat": "31.2", "lng": "121.4",
			"code": strings.Repeat("C", 200), "wstate": strings.Repeat("w", 2000), "cstate": "ACC",
			"posinfo": strings.Repeat("路", 400)}))
		f.sim.SendRaw(rawPosition(map[string]string{"id": id128 + "9", "lat": "31.2", "lng": "121.4"}))
		huge := strings.Repeat("h", 900_000)
		for i := range 5 {
			f.sim.SendRaw(rawPosition(map[string]string{"id": huge + fmt.Sprint(i), "lat": "31.2", "lng": "121.4"}))
		}
		f.sim.Send(&exlive.PassthroughReply{TerminalID: strings.Repeat("t", 200), Data: "7E"})
		f.sim.Send(&exlive.PassthroughReply{TerminalID: "", Data: "7E"})
		f.sim.Send(&exlive.PassthroughReply{TerminalID: "V1", Data: "7E"})
		ftMark(t, f, "M1")

		got := decode(t, f.sub.WaitTopic(testWait, f.topic("vehicles/"+id128+"/position")).Payload)
		if _, ok := got["code"]; ok || got["wstate"] != strings.Repeat("w", 1024) || got["cstate"] != "ACC" ||
			got["posinfo"] != strings.Repeat("路", 341) {
			t.Errorf("position with long texts published as %.200v", got)
		}
		f.sub.WaitTopic(testWait, f.topic("vehicles/V1/passthrough"))
		for _, m := range f.sub.Messages() {
			// The longest: P/vehicles/<128 bytes>/availability.
			if len(m.Topic) > 256 || len(m.Payload) > 8000 {
				t.Errorf("published on a topic of %d bytes a payload of %d", len(m.Topic), len(m.Payload))
			}
		}
		var ids []string
		for v := range f.bridge.Vehicles() {
			if len(v.ID) > exlive.MaxIDLen {
				t.Errorf("the bridge keeps a vehicle id of %d bytes", len(v.ID))
			}
			ids = append(ids, v.ID[:min(len(v.ID), 8)])
		}
		slices.Sort(ids)
		if want := []string{"88888888", "M0", "M1", "V1", "V2", "V3"}; !slices.Equal(ids, want) {
			t.Errorf("vehicles kept: %v, want %v", ids, want)
		}
		m := gather(t, f.bridge)
		for series, want := range map[string]float64{
			`bridge_positions_dropped_total{reason="bad_id"}`:   6,
			`bridge_passthrough_dropped_total{reason="bad_id"}`: 1,
			`bridge_passthrough_dropped_total{reason="no_id"}`:  1,
			`exlive_fields_ignored_total{field="code"}`:         1,
			`exlive_fields_truncated_total{field="wstate"}`:     1,
			`exlive_fields_truncated_total{field="posinfo"}`:    1,
			`exlive_fields_truncated_total{field="cstate"}`:     0,
			"mqtt_invalid_topics_total":                         0,
		} {
			m.want(t, series, want)
		}
		// Six positions dropped, one warning (two if ten seconds passed).
		most := 1 + int(time.Since(start)/(10*time.Second))
		for _, msg := range []string{"position without a usable vehicle id", "passthrough reply without a usable terminal id"} {
			if n := strings.Count(f.log.String(), msg); n < 1 || n > most {
				t.Errorf("%d warnings %q, want 1 to %d", n, msg, most)
			}
		}
		if strings.Contains(f.log.String(), huge[:1000]) {
			t.Error("the log holds the 900 kB id")
		}
	})
}

// TestPlatformLongIDsInInventory: a platform whose vehicle ids are all
// longer than exlive.MaxIDLen: its 1011 frames are skipped (bad_field), its
// positions dropped (bad_id), and the bridge keeps none of them.
func TestPlatformLongIDsInInventory(t *testing.T) {
	f := newFixture(t, brokertest.Targets(t)[0], setup{sim: exlivesim.Config{Vehicles: 3, IDPrefix: strings.Repeat("L", 200), Rate: 30}})
	f.waitLoggedIn()
	if inv := f.sub.WaitTopic(testWait, f.topic("bridge/vehicles")); inv.Payload != "[]" {
		t.Errorf("inventory published as %.100s", inv.Payload)
	}
	waitFor(t, testWait, "positions dropped", func() bool {
		return metric(t, f.bridge, `bridge_positions_dropped_total{reason="bad_id"}`) >= 3
	})
	m := gather(t, f.bridge)
	m.want(t, `exlive_frames_skipped_total{reason="bad_field"}`, 3)
	m.want(t, "bridge_positions_published_total", 0)
	if n := len(slices.Collect(f.bridge.Vehicles())); n != 0 {
		t.Errorf("the bridge keeps %d vehicles", n)
	}
}

// TestCollisionWarningsRateLimited: 20 000 vehicle ids that share topic
// levels two by two are 10 000 collisions, each counted, and logged at most
// once every ten seconds (the count of those held back in the next line).
func TestCollisionWarningsRateLimited(t *testing.T) {
	pairs := 10_000
	if raceEnabled {
		pairs = 2_000 // each a new vehicle twice over: slow under the race detector
	}
	f := newFixture(t, brokertest.Targets(t)[0], setup{edit: func(o *bridge.Options) { o.MQTT.Retain = false }})
	f.waitLoggedIn()
	ftMark(t, f, "M0")
	start := time.Now()
	for i := range pairs {
		for _, sep := range []string{"+", "#"} {
			f.sim.SendRaw(rawPosition(map[string]string{"id": fmt.Sprintf("c%s%d", sep, i), "lat": "31.2", "lng": "121.4"}))
		}
	}
	// The bridge works through them at its pace, which a busy machine
	// slows: the wait is for the work, not a bound on its speed.
	waitFor(t, 6*testWait, "every collision counted", func() bool {
		return metric(t, f.bridge, "bridge_topic_collisions_total") == float64(pairs)
	})
	most := 1 + int(time.Since(start)/(10*time.Second))
	if n := strings.Count(f.log.String(), "two vehicle ids share one topic level"); n < 1 || n > most {
		t.Errorf("%d collision warnings for %d collisions, want 1 to %d", n, pairs, most)
	}
}
