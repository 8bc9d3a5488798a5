package bridge_test

import (
	"encoding/json"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/exlive2mqtt/exlive2mqtt/bridge"
	"github.com/exlive2mqtt/exlive2mqtt/exlive"
	"github.com/exlive2mqtt/exlive2mqtt/exlive/exlivesim"
	"github.com/exlive2mqtt/exlive2mqtt/internal/brokertest"
	"github.com/exlive2mqtt/exlive2mqtt/topic"
)

func TestPositionsSessionAndInventory(t *testing.T) {
	brokertest.Each(t, func(t *testing.T, target brokertest.Target) {
		f := newFixture(t, target, setup{sim: exlivesim.Config{Vehicles: 3, Rate: 30}})
		f.waitLoggedIn()
		pos := f.sub.WaitTopic(10*time.Second, f.topic("vehicles/V1/position"))
		p := decode(t, pos.Payload)
		for _, k := range []string{"id", "code", "lat", "lng", "speed", "direction", "time", "valid", "alarm", "fuel", "mileage", "cstate", "posinfo"} {
			if _, ok := p[k]; !ok {
				t.Errorf("position lacks %q: %s", k, pos.Payload)
			}
		}
		if p["id"] != "V1" || p["code"] != "沪A10000" {
			t.Errorf("position = %s", pos.Payload)
		}
		if _, err := time.Parse(time.RFC3339, p["time"].(string)); err != nil {
			t.Errorf("time %v is not RFC 3339", p["time"])
		}
		if _, ok := p["wstate"]; ok {
			t.Errorf("empty wstate published: %s", pos.Payload)
		}
		groups := f.sub.WaitTopic(10*time.Second, f.topic("bridge/groups"))
		if !strings.Contains(groups.Payload, `"groupid":"1"`) || !strings.Contains(groups.Payload, `"name":"车队1"`) {
			t.Errorf("groups = %s", groups.Payload)
		}
		vehicles := f.sub.WaitTopic(10*time.Second, f.topic("bridge/vehicles"))
		for _, id := range []string{"V1", "V2", "V3"} {
			if !strings.Contains(vehicles.Payload, `"id":"`+id+`"`) {
				t.Errorf("vehicles lacks %s: %s", id, vehicles.Payload)
			}
		}
		if m, _ := last(f.sub.Messages(), f.topic("bridge/state")); m.Payload != "online" {
			t.Errorf("state = %q", m.Payload)
		}
	})
}

func TestCommandAnsweredOnResult(t *testing.T) {
	brokertest.Each(t, func(t *testing.T, target brokertest.Target) {
		f := newFixture(t, target, setup{})
		f.waitLoggedIn()
		f.sub.WaitTopic(10*time.Second, f.topic("bridge/vehicles"))
		r := f.request("vehicles/V1/command", `{"data":"STOP","request_id":"r1"}`)
		if r["ok"] != true || r["request_id"] != "r1" || r["cmd"] != "1004" || r["result"] != exlive.ResultSucceed {
			t.Errorf("result = %v", r)
		}
		r = f.request("vehicles/V1/command", `RESTART`)
		if r["ok"] != true {
			t.Errorf("plain command result = %v", r)
		}
		f.sim.SetAnswer("离线", 0, false)
		r = f.request("vehicles/V1/command", `{"data":"STOP","request_id":"r2"}`)
		if r["ok"] != false || r["result"] != "离线" || r["request_id"] != "r2" {
			t.Errorf("refused result = %v", r)
		}
		var sent []string
		for _, rec := range f.sim.Received() {
			if c, ok := rec.Msg.(*exlive.VehicleCommand); ok {
				sent = append(sent, c.ID+":"+c.Data)
			}
		}
		if want := []string{"V1:STOP", "V1:RESTART", "V1:STOP"}; !slices.Equal(sent, want) {
			t.Errorf("platform received %v, want %v", sent, want)
		}
	})
}

func TestRequestWhileOfflineIsRefusedAndNeverSent(t *testing.T) {
	brokertest.Each(t, func(t *testing.T, target brokertest.Target) {
		f := newFixture(t, target, setup{})
		f.waitLoggedIn()
		f.sub.WaitTopic(10*time.Second, f.topic("bridge/vehicles"))
		f.sim.Close() // the platform goes away for good
		f.sub.Wait(10*time.Second, "session disconnected", func(ms []brokertest.Msg) bool {
			m, ok := last(ms, f.topic("bridge/session"))
			return ok && !strings.Contains(m.Payload, "logged_in")
		})
		r := f.request("vehicles/V1/command", `{"data":"STOP","request_id":"x"}`)
		if r["ok"] != false || r["error"] != "not logged in to the platform" {
			t.Errorf("result = %v", r)
		}
	})
}

// The tests below prove the published rows of docs/topics.md's topic
// table, one row or a few at a time, over real TCP, a real broker and the
// simulated platform. Requests (the subscribed rows) are in requests_test.go.

// ctSessions returns the session payloads on topic among ms, decoded.
func ctSessions(t *testing.T, ms []brokertest.Msg, topic string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, m := range after(ms, 0, topic) {
		out = append(out, decode(t, m.Payload))
	}
	return out
}

// ctWaitSession waits for a session payload in state among those received
// after the first from (see fixture.waitSession), and returns it decoded
// and its index.
func ctWaitSession(t *testing.T, f *fixture, from int, state string) (map[string]any, int) {
	t.Helper()
	p, i := f.waitSession(from, `"state":"`+state+`"`)
	return decode(t, p), i
}

// ctCheckSession checks the shape of a session payload: a known state, an
// RFC 3339 since no later than now, and an error exactly when wantErr.
func ctCheckSession(t *testing.T, s map[string]any, wantErr bool) {
	t.Helper()
	switch s["state"] {
	case "connecting", "logged_in", "login_failed", "disconnected":
	default:
		t.Errorf("session state %v is not one of docs/topics.md's", s["state"])
	}
	since, err := time.Parse(time.RFC3339, str(s["since"]))
	if err != nil {
		t.Errorf("session since %v: %v", s["since"], err)
	} else if since.After(time.Now().Add(time.Second)) || time.Since(since) > time.Minute {
		t.Errorf("session since %v is not now", since)
	}
	for k := range s {
		switch k {
		case "state", "since", "error", "retry_in", "addr":
		case "conflict", "hint":
			// Only while another client seems to be using the account
			// (TestSameAccountTwoBridges), and then both.
			if s["conflict"] != true || str(s["hint"]) == "" {
				t.Errorf("session payload %v: conflict and hint go together", s)
			}
		default:
			t.Errorf("session payload has unexpected member %q: %v", k, s)
		}
	}
	// The platform address the state is about is always named.
	if a := str(s["addr"]); a == "" {
		t.Errorf("session %v names no address", s)
	}
	if e, has := s["error"]; has != wantErr || (has && str(e) == "") {
		t.Errorf("session %v: error present = %v, want %v", s, has, wantErr)
	}
}

func TestContractBridgeStateAndLastWill(t *testing.T) {
	brokertest.Each(t, func(t *testing.T, target brokertest.Target) {
		u, err := url.Parse(target.URL)
		if err != nil {
			t.Fatal(err)
		}
		proxy := brokertest.NewProxy(t, u.Host)
		f := newFixture(t, target, setup{edit: func(o *bridge.Options) { o.MQTT.URL = proxy.URL() }})
		state := f.topic("bridge/state")
		i := waitPayload(t, f.sub, 0, state, "online")
		if m := retained(t, target.URL, state)[state]; m.Payload != "online" {
			t.Errorf("retained state = %q, want online", m.Payload)
		}
		f.waitLoggedIn()

		// The link is cut without a goodbye: the broker publishes the
		// bridge's last will.
		proxy.SetDown(true)
		i = waitPayload(t, f.sub, i+1, state, "offline")
		if m := retained(t, target.URL, state)[state]; m.Payload != "offline" {
			t.Errorf("retained state after the link was cut = %q, want offline", m.Payload)
		}

		// Back again: online, and the session state is stated anew (the
		// broker may have lost what it retained).
		proxy.SetDown(false)
		i = waitPayload(t, f.sub, i+1, state, "online")
		if s, _ := ctWaitSession(t, f, i+1, "logged_in"); s == nil {
			t.Fatal("session not stated again after reconnecting")
		}

		// A clean stop says offline itself.
		f.stop()
		j := waitPayload(t, f.sub, i+1, state, "offline")
		if after := after(f.sub.Messages(), j+1, state); len(after) != 0 {
			t.Errorf("state after the clean stop's offline: %v", after)
		}
		if m := retained(t, target.URL, state)[state]; m.Payload != "offline" {
			t.Errorf("retained state after stop = %q, want offline", m.Payload)
		}
	})
}

func TestContractSessionStates(t *testing.T) {
	brokertest.Each(t, func(t *testing.T, target brokertest.Target) {
		f := newFixture(t, target, setup{})
		topic := f.topic("bridge/session")
		_, i := ctWaitSession(t, f, 0, "logged_in")
		var seq []string
		for _, s := range ctSessions(t, f.sub.Messages()[:i+1], topic) {
			seq = append(seq, str(s["state"]))
			ctCheckSession(t, s, false)
		}
		if k := slices.Index(seq, "connecting"); k < 0 || seq[len(seq)-1] != "logged_in" || k > slices.Index(seq, "logged_in") {
			t.Errorf("session states %v: want connecting, then logged_in", seq)
		}
		if m := retained(t, target.URL, topic)[topic]; !strings.Contains(m.Payload, `"state":"logged_in"`) {
			t.Errorf("retained session = %q", m.Payload)
		}

		// The platform drops the connection: disconnected with why, then
		// connecting and logged in again.
		f.sim.DropAll()
		s, j := ctWaitSession(t, f, i+1, "disconnected")
		ctCheckSession(t, s, true)
		s, j = ctWaitSession(t, f, j+1, "connecting")
		ctCheckSession(t, s, false)
		s, j = ctWaitSession(t, f, j+1, "logged_in")
		ctCheckSession(t, s, false)

		// A clean stop: disconnected, no error, and it is what stays.
		f.stop()
		s, _ = ctWaitSession(t, f, j+1, "disconnected")
		ctCheckSession(t, s, false)
		if m := retained(t, target.URL, topic)[topic]; m.Payload == "" || !strings.Contains(m.Payload, `"state":"disconnected"`) {
			t.Errorf("retained session after stop = %q", m.Payload)
		}
	})
}

func TestContractSessionLoginFailed(t *testing.T) {
	brokertest.Each(t, func(t *testing.T, target brokertest.Target) {
		f := newFixture(t, target, setup{edit: func(o *bridge.Options) { o.Exlive.Pass = "not-the-password" }})
		topic := f.topic("bridge/session")
		s, i := ctWaitSession(t, f, 0, "login_failed")
		ctCheckSession(t, s, true)
		if !strings.Contains(str(s["error"]), exlivesim.LoginRefused) {
			t.Errorf("login_failed error = %v, want the platform's %q", s["error"], exlivesim.LoginRefused)
		}
		var seq []string
		for _, s := range ctSessions(t, f.sub.Messages()[:i+1], topic) {
			seq = append(seq, str(s["state"]))
		}
		if slices.Contains(seq, "logged_in") || !slices.Contains(seq, "connecting") {
			t.Errorf("session states %v", seq)
		}
		// Retrying after the wait: login_failed, or connecting again.
		if m := retained(t, target.URL, topic)[topic]; !strings.Contains(m.Payload, `"state":"login_failed"`) && !strings.Contains(m.Payload, `"state":"connecting"`) {
			t.Errorf("retained session = %q", m.Payload)
		}
		if _, refused := f.sim.Logins(); refused < 1 {
			t.Errorf("platform refused %d logins", refused)
		}
	})
}

func TestContractInventory(t *testing.T) {
	brokertest.Each(t, func(t *testing.T, target brokertest.Target) {
		f := newFixture(t, target, setup{sim: exlivesim.Config{Vehicles: 5, Groups: 2}})
		f.ready()
		groups, vehicles := f.sim.Fleet()
		var wantG, wantV []map[string]string
		for _, g := range groups {
			wantG = append(wantG, map[string]string{"groupid": g.ID, "name": g.Name, "customer": g.Customer, "relation": g.Relation})
			for _, v := range vehicles {
				if v.GroupID == g.ID {
					wantV = append(wantV, map[string]string{"id": v.ID, "code": v.Code, "sim": v.SIM, "groupid": v.GroupID})
				}
			}
		}
		for _, c := range []struct {
			topic string
			want  []map[string]string
		}{{f.topic("bridge/groups"), wantG}, {f.topic("bridge/vehicles"), wantV}} {
			m := f.sub.WaitTopic(testWait, c.topic)
			var got []map[string]string
			if err := json.Unmarshal([]byte(m.Payload), &got); err != nil {
				t.Fatalf("%s: %q is not an array of objects of strings: %v", c.topic, m.Payload, err)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("%s = %v, want %v", c.topic, got, c.want)
			}
			if r := retained(t, target.URL, c.topic)[c.topic]; r.Payload != m.Payload {
				t.Errorf("%s retained %q, want %q", c.topic, r.Payload, m.Payload)
			}
		}
	})
}

// TestContractPlatformTraffic covers what the platform sends besides
// inventory: messages, passthrough replies and positions, and which of
// them the broker retains.
func TestContractPlatformTraffic(t *testing.T) {
	brokertest.Each(t, func(t *testing.T, target brokertest.Target) {
		f := newFixture(t, target, setup{})
		f.ready()

		// 1003 from the platform.
		before := time.Now().Truncate(time.Second)
		text := "调度通知：\"请回电\"\n第二行"
		f.sim.Send(&exlive.TextMessage{Msg: text})
		m := decode(t, f.sub.WaitTopic(testWait, f.topic("bridge/message")).Payload)
		if len(m) != 2 || m["msg"] != text {
			t.Errorf("message = %v, want msg %q and time", m, text)
		}
		if tm, err := time.Parse(time.RFC3339, str(m["time"])); err != nil || tm.Before(before) || tm.After(time.Now()) {
			t.Errorf("message time %v: %v", m["time"], err)
		}

		// 1013 after a 1012, and one the platform sends on its own.
		if r := f.ask("vehicles/V1/passthrough", "pt1", `{"data":"7E0102","request_id":"pt1"}`); r["ok"] != true {
			t.Errorf("passthrough result = %v", r)
		}
		pt := decode(t, f.sub.WaitTopic(testWait, f.topic("vehicles/V1/passthrough")).Payload)
		if len(pt) != 4 || pt["terminalid"] != "V1" || pt["code"] != "沪A10000" || pt["data"] != "ACK 7E0102" {
			t.Errorf("passthrough reply = %v", pt)
		}
		if _, err := time.Parse(time.RFC3339, str(pt["time"])); err != nil {
			t.Errorf("passthrough time: %v", err)
		}
		f.sim.Send(&exlive.PassthroughReply{TerminalID: "V2", Code: "沪A10001", Data: "HELLO"})
		pt = decode(t, f.sub.WaitTopic(testWait, f.topic("vehicles/V2/passthrough")).Payload)
		if pt["terminalid"] != "V2" || pt["data"] != "HELLO" {
			t.Errorf("unsolicited passthrough reply = %v", pt)
		}

		// A position as the spec writes it becomes the example of
		// docs/topics.md, typed; gpstime is read in Asia/Shanghai. Empty
		// fields, wstate among them, are left out.
		sent := time.Now()
		f.sim.SendRaw(rawPosition(map[string]string{
			"code": "沪A12345", "id": "V1", "lat": "31.230416", "lng": "121.473701", "veo": "42.5", "dir": "180",
			"gpstime": "2011-11-01 12:38:39", "av": "1", "alarm": "0", "oil": "37.2", "dis": "12345.6",
			"cstate": "ACC开", "posinfo": "上海市黄浦区人民大道",
		}))
		want := `{"id":"V1","code":"沪A12345","lat":31.230416,"lng":121.473701,"speed":42.5,"direction":180,` +
			`"time":"2011-11-01T04:38:39Z","received":"…","valid":true,"alarm":false,"ignition":true,"fuel":37.2,"mileage":12345.6,` +
			`"cstate":"ACC开","posinfo":"上海市黄浦区人民大道"}`
		pos := f.sub.WaitTopic(testWait, f.topic("vehicles/V1/position"))
		if got := ctReceived(t, pos.Payload, sent, time.Now()); got != want {
			t.Errorf("position =\n%s\nwant\n%s", got, want)
		}
		p := decode(t, pos.Payload)
		for k, v := range p {
			var ok bool
			switch k {
			case "lat", "lng", "speed", "direction", "fuel", "mileage":
				_, ok = v.(float64)
			case "valid", "alarm", "ignition":
				_, ok = v.(bool)
			default:
				_, ok = v.(string)
			}
			if !ok {
				t.Errorf("position %s is a %T", k, v)
			}
		}

		// Every optional field empty: none is invented.
		sent = time.Now()
		f.sim.SendRaw(rawPosition(map[string]string{"id": "V2", "lat": "31.2", "lng": "121.5"}))
		pos = f.sub.WaitTopic(testWait, f.topic("vehicles/V2/position"))
		if got := ctReceived(t, pos.Payload, sent, time.Now()); got != `{"id":"V2","lat":31.2,"lng":121.5,"received":"…"}` {
			t.Errorf("position with empty fields = %s", got)
		}

		// A lat that is not a number: dropped, counted, logged. The good
		// position after it, on the same connection, proves it was not
		// published.
		f.sim.SendRaw(rawPosition(map[string]string{"id": "V3", "lat": "north", "lng": "121.5"}))
		f.sim.SendRaw(rawPosition(map[string]string{"id": "V3", "lat": "31.3", "lng": "121.5"}))
		f.sub.WaitTopic(testWait, f.topic("vehicles/V3/position"))
		if ps := after(f.sub.Messages(), 0, f.topic("vehicles/V3/position")); len(ps) != 1 || !strings.Contains(ps[0].Payload, `"lat":31.3`) {
			t.Errorf("positions of V3 = %v, want only the good one", ps)
		}
		if n := metric(t, f.bridge, `exlive_frames_skipped_total{reason="bad_field"}`); n != 1 {
			t.Errorf("bad_field frames counted %v, want 1", n)
		}
		f.log.waitText(t, `lat is not a number`)

		// What the broker retains: the bridge's state, session and
		// inventory and each vehicle's latest position and availability;
		// never a message, a passthrough reply, a result or an event.
		// V3's availability is published after its first position: wait
		// until the broker has passed it on before asking what it holds.
		f.sub.WaitTopic(testWait, f.topic("vehicles/V3/availability"))
		held := retained(t, target.URL, f.prefix+"/#")
		var topics []string
		for topic := range held {
			topics = append(topics, strings.TrimPrefix(topic, f.prefix+"/"))
		}
		slices.Sort(topics)
		wantTopics := []string{"bridge/groups", "bridge/session", "bridge/state", "bridge/vehicles",
			"vehicles/V1/availability", "vehicles/V1/position", "vehicles/V2/availability", "vehicles/V2/position",
			"vehicles/V3/availability", "vehicles/V3/position"}
		if !slices.Equal(topics, wantTopics) {
			t.Errorf("retained topics = %v, want %v", topics, wantTopics)
		}
		if r := held[f.topic("vehicles/V1/position")]; ctReceived(t, r.Payload, sent.Add(-time.Minute), time.Now()) != want {
			t.Errorf("retained position = %s", r.Payload)
		}
	})
}

// ctReceived checks that the position payload's "received" is a time
// between from and to (to the second), and returns the payload with its
// value replaced by "…", to be compared whole.
func ctReceived(t *testing.T, payload string, from, to time.Time) string {
	t.Helper()
	m := regexp.MustCompile(`"received":"([^"]*)"`).FindStringSubmatchIndex(payload)
	if m == nil {
		t.Errorf("position has no received: %s", payload)
		return payload
	}
	at, err := time.Parse(time.RFC3339, payload[m[2]:m[3]])
	if err != nil || at.Before(from.Truncate(time.Second)) || at.After(to) || at.Location() != time.UTC {
		t.Errorf("received %q: want RFC 3339 in UTC between %s and %s (%v)", payload[m[2]:m[3]], from, to, err)
	}
	return payload[:m[2]] + "…" + payload[m[3]:]
}

func TestContractPositionRetainOff(t *testing.T) {
	brokertest.Each(t, func(t *testing.T, target brokertest.Target) {
		f := newFixture(t, target, setup{
			sim:  exlivesim.Config{Vehicles: 2, Rate: 40},
			edit: func(o *bridge.Options) { o.MQTT.Retain = false }, // MQTT_RETAIN=false
		})
		f.ready()
		f.sub.WaitTopic(testWait, f.topic("vehicles/V1/position"))
		f.sub.WaitTopic(testWait, f.topic("vehicles/V2/position"))
		held := retained(t, target.URL, f.prefix+"/#")
		for topic := range held {
			if strings.HasSuffix(topic, "/position") {
				t.Errorf("%s retained with MQTT_RETAIN=false", topic)
			}
		}
		if _, ok := held[f.topic("bridge/state")]; !ok {
			t.Error("bridge/state not retained with MQTT_RETAIN=false (it is always retained)")
		}
	})
}

// TestContractTopicSafety: a vehicle id with / + # or NUL is published as one
// level with _, a request to that level reaches the real id, and two ids
// that share a level make requests to it ambiguous.
func TestContractTopicSafety(t *testing.T) {
	brokertest.Each(t, func(t *testing.T, target brokertest.Target) {
		f := newFixture(t, target, setup{sim: exlivesim.Config{Vehicles: 2, IDPrefix: "a/b+c#"}})
		f.ready()
		if v := f.sub.WaitTopic(testWait, f.topic("bridge/vehicles")); !strings.Contains(v.Payload, `"id":"a/b+c#1"`) {
			t.Errorf("vehicles = %s, want the real ids", v.Payload)
		}
		f.sim.Send(&exlive.Position{ID: "a/b+c#1", Code: "沪A10000", Lat: 31.2, Lng: 121.4})
		f.sim.Send(&exlive.Position{ID: "n\x00ul", Lat: 31.2, Lng: 121.4})
		if p := decode(t, f.sub.WaitTopic(testWait, f.topic("vehicles/a_b_c_1/position")).Payload); p["id"] != "a/b+c#1" {
			t.Errorf("position id = %v, want the real id", p["id"])
		}
		if p := decode(t, f.sub.WaitTopic(testWait, f.topic("vehicles/n_ul/position")).Payload); p["id"] != "n\x00ul" {
			t.Errorf("position id = %q, want the real id", p["id"])
		}

		// Requests on the level reach the real id.
		if r := f.ask("vehicles/a_b_c_1/command", "c1", `{"data":"STOP","request_id":"c1"}`); r["ok"] != true {
			t.Errorf("command result = %v", r)
		}
		if r := f.ask("vehicles/a_b_c_1/passthrough", "p1", `{"data":"AA","request_id":"p1"}`); r["ok"] != true {
			t.Errorf("passthrough result = %v", r)
		}
		if pt := decode(t, f.sub.WaitTopic(testWait, f.topic("vehicles/a_b_c_1/passthrough")).Payload); pt["terminalid"] != "a/b+c#1" {
			t.Errorf("passthrough reply = %v", pt)
		}
		cmds := received[*exlive.VehicleCommand](f.sim)
		if len(cmds) != 1 || *cmds[0] != (exlive.VehicleCommand{ID: "a/b+c#1", Data: "STOP"}) {
			t.Errorf("platform received commands %v", cmds)
		}
		if pts := received[*exlive.Passthrough](f.sim); len(pts) != 1 || pts[0].TerminalID != "a/b+c#1" {
			t.Errorf("platform received passthrough %v", pts)
		}

		// A second id with the same level: logged, counted, and requests
		// to the level are refused, since they could be meant for either.
		f.sim.Send(&exlive.Position{ID: "a+b/c#1", Lat: 31.2, Lng: 121.4})
		f.log.waitText(t, "two vehicle ids share one topic level")
		if n := metric(t, f.bridge, "bridge_topic_collisions_total"); n != 1 {
			t.Errorf("collisions counted %v, want 1", n)
		}
		r := f.ask("vehicles/a_b_c_1/command", "c2", `{"data":"STOP2","request_id":"c2"}`)
		if r["ok"] != false || !strings.Contains(str(r["error"]), "ambiguous") {
			t.Errorf("command to an ambiguous level: %v", r)
		}
		// The other vehicle still works, and its command, sent after,
		// shows nothing of the refused one reached the platform.
		if r := f.ask("vehicles/a_b_c_2/command", "c3", `{"data":"GO","request_id":"c3"}`); r["ok"] != true {
			t.Errorf("command result = %v", r)
		}
		var got []string
		for _, c := range received[*exlive.VehicleCommand](f.sim) {
			got = append(got, c.ID+" "+c.Data)
		}
		if want := []string{"a/b+c#1 STOP", "a/b+c#2 GO"}; !slices.Equal(got, want) {
			t.Errorf("platform received %v, want %v", got, want)
		}

		// No topic the bridge published has a wildcard or an extra level.
		for _, m := range f.sub.Messages() {
			rest, ok := strings.CutPrefix(m.Topic, f.prefix+"/vehicles/")
			if !ok {
				continue
			}
			levels := strings.Split(rest, "/")
			if strings.ContainsAny(m.Topic, "+#\x00") || len(levels) < 2 || len(levels) > 3 {
				t.Errorf("topic %q", m.Topic)
			}
		}
	})
}

// TestContractTopicRules: under MQTT_TOPIC_RULES=nats or rabbitmq, an id
// with the characters that broker refuses is published on a level with _
// in their place, the payloads keep the real id, a request to the level
// reaches the real id, and an id that maps to the same level is a
// collision, counted, as under the default rules. On the brokers
// themselves: TestBrokerMatrix.
func TestContractTopicRules(t *testing.T) {
	brokertest.Each(t, func(t *testing.T, target brokertest.Target) {
		for _, tc := range []struct {
			rules        topic.Rules
			level, other string // the level of "fleet.a b*1", and another id with that level
		}{
			{topic.RulesNATS, "fleet_a_b_1", "fleet_a b>1"},
			{topic.RulesRabbitMQ, "fleet_a b_1", "fleet*a b.1"},
		} {
			t.Run(tc.rules.String(), func(t *testing.T) {
				f := newFixture(t, target, setup{
					sim:  exlivesim.Config{Vehicles: 2, IDPrefix: "fleet.a b*"},
					edit: func(o *bridge.Options) { o.Topics.Rules = tc.rules },
				})
				f.ready()
				if v := f.sub.WaitTopic(testWait, f.topic("bridge/vehicles")); !strings.Contains(v.Payload, `"id":"fleet.a b*1"`) {
					t.Errorf("vehicles = %s, want the real ids", v.Payload)
				}
				f.sim.Send(&exlive.Position{ID: "fleet.a b*1", Code: "沪A10000", Lat: 31.2, Lng: 121.4})
				if p := decode(t, f.sub.WaitTopic(testWait, f.topic("vehicles/"+tc.level+"/position")).Payload); p["id"] != "fleet.a b*1" {
					t.Errorf("position id = %v, want the real id", p["id"])
				}
				if r := f.ask("vehicles/"+tc.level+"/command", "c1", `{"data":"STOP","request_id":"c1"}`); r["ok"] != true {
					t.Errorf("command result = %v", r)
				}
				cmds := received[*exlive.VehicleCommand](f.sim)
				if len(cmds) != 1 || *cmds[0] != (exlive.VehicleCommand{ID: "fleet.a b*1", Data: "STOP"}) {
					t.Errorf("platform received commands %v", cmds)
				}

				f.sim.Send(&exlive.Position{ID: tc.other, Lat: 31.2, Lng: 121.4})
				f.log.waitText(t, "two vehicle ids share one topic level")
				if n := metric(t, f.bridge, "bridge_topic_collisions_total"); n != 1 {
					t.Errorf("collisions counted %v, want 1", n)
				}
				if r := f.ask("vehicles/"+tc.level+"/command", "c2", `{"data":"STOP","request_id":"c2"}`); r["ok"] != false || !strings.Contains(str(r["error"]), "ambiguous") {
					t.Errorf("command to an ambiguous level: %v", r)
				}
				for _, m := range f.sub.Messages() {
					if c, ok := tc.rules.Refused(strings.TrimPrefix(m.Topic, f.prefix)); ok {
						t.Errorf("published on %q, with %q", m.Topic, c)
					}
				}
			})
		}
	})
}
