package bridge_test

// The request rows of docs/topics.md: every /set topic reaches the
// platform as its frame, and every request gets exactly one answer of the
// right kind, or none where docs/topics.md says none.

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/exlive2mqtt/exlive2mqtt/bridge"
	"github.com/exlive2mqtt/exlive2mqtt/exlive"
	"github.com/exlive2mqtt/exlive2mqtt/exlive/exlivesim"
	"github.com/exlive2mqtt/exlive2mqtt/internal/brokertest"
	"github.com/exlive2mqtt/exlive2mqtt/opt"
)

// ctAnswered are the requests the platform answers with 8000 by protocol.
var ctAnswered = []struct{ name, cmd string }{{"command", "1004"}, {"passthrough", "1012"}}

// ctExpect checks a result payload member by member: want lists every
// member it may have.
func ctExpect(t *testing.T, what string, got map[string]any, want map[string]any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s: result %v, want %v", what, got, want)
	}
}

// once checks, after a settle, that request id on P/rest got exactly one
// result and one audit line of outcome (besides any "repeated" ones).
func (f *fixture) once(rest, cmd, id, outcome string) {
	f.t.Helper()
	if rs := f.results(rest, id); len(rs) != 1 {
		f.t.Errorf("request %s on %s: %d results, want exactly 1: %v", id, rest, len(rs), rs)
	}
	var outcomes []string
	for _, a := range f.waitAudit(cmd, id) {
		if a.Outcome != "repeated" {
			outcomes = append(outcomes, a.Outcome)
		}
	}
	if !slices.Equal(outcomes, []string{outcome}) {
		f.t.Errorf("request %s on %s: outcomes %v, want [%s]", id, rest, outcomes, outcome)
	}
}

// ctPlatformData returns the data of the commands (1004) or passthrough
// (1012) the platform received, as "vehicle data".
func ctPlatformData(sim *exlivesim.Server, kind string) []string {
	var out []string
	for _, r := range sim.Received() {
		switch m := r.Msg.(type) {
		case *exlive.VehicleCommand:
			if kind == "command" {
				out = append(out, m.ID+" "+m.Data)
			}
		case *exlive.Passthrough:
			if kind == "passthrough" {
				out = append(out, m.TerminalID+" "+m.Data)
			}
		}
	}
	return out
}

func TestRequestsReachThePlatform(t *testing.T) {
	brokertest.Each(t, func(t *testing.T, target brokertest.Target) {
		// The platform answers only 1004 and 1012 (as far as anyone
		// knows): the other requests get no answer, and the bridge
		// publishes none for them once it stops waiting.
		f := newFixture(t, target, setup{edit: func(o *bridge.Options) { o.Exlive.CommandTimeout = 300 * time.Millisecond }})
		f.ready()

		// command/set: a JSON object, or any other bytes as data.
		ctExpect(t, "command", f.ask("vehicles/V1/command", "c1", `{"data":"STOP","request_id":"c1"}`),
			map[string]any{"request_id": "c1", "cmd": "1004", "ok": true, "result": exlive.ResultSucceed})
		ctExpect(t, "plain command", f.ask("vehicles/V2/command", "", "RESTART 1 2"),
			map[string]any{"cmd": "1004", "ok": true, "result": exlive.ResultSucceed})
		ctExpect(t, "JSON array command", f.ask("vehicles/V1/command", "", `[1,2]`),
			map[string]any{"cmd": "1004", "ok": true, "result": exlive.ResultSucceed})
		if got, want := received[*exlive.VehicleCommand](f.sim), []*exlive.VehicleCommand{
			{ID: "V1", Data: "STOP"}, {ID: "V2", Data: "RESTART 1 2"}, {ID: "V1", Data: "[1,2]"},
		}; !reflect.DeepEqual(got, want) {
			t.Errorf("platform received commands %v, want %v", got, want)
		}

		// passthrough/set: terminalid defaults to the vehicle's id, code to
		// its code; both can be given (terminalid only as the vehicle's
		// own: TestPassthroughTerminal); plain bytes are the data.
		for _, c := range []struct{ rest, id, payload string }{
			{"vehicles/V2/passthrough", "p1", `{"data":"7E02","request_id":"p1"}`},
			{"vehicles/V2/passthrough", "p2", `{"data":"7E03","code":"X9","terminalid":"V2","request_id":"p2"}`},
			{"vehicles/V3/passthrough", "", `HELLO`},
		} {
			want := map[string]any{"cmd": "1012", "ok": true, "result": exlive.ResultSucceed}
			if c.id != "" {
				want["request_id"] = c.id
			}
			ctExpect(t, c.payload, f.ask(c.rest, c.id, c.payload), want)
		}
		if got, want := received[*exlive.Passthrough](f.sim), []*exlive.Passthrough{
			{TerminalID: "V2", Code: "沪A10001", Data: "7E02"},
			{TerminalID: "V2", Code: "X9", Data: "7E03"},
			{TerminalID: "V3", Code: "沪A10002", Data: "HELLO"},
		}; !reflect.DeepEqual(got, want) {
			t.Errorf("platform received passthrough %v, want %v", got, want)
		}

		// position/set: the position payload, time in RFC 3339 or epoch
		// seconds, written as gpstime in Asia/Shanghai. code defaults to
		// the vehicle's.
		fix := time.Date(2011, 11, 1, 4, 38, 39, 0, time.UTC)
		f.set("vehicles/V1/position", `{"lat":31.230416,"lng":121.473701,"speed":42.5,"direction":180,`+
			`"time":"2011-11-01T04:38:39Z","valid":true,"alarm":false,"fuel":37.2,"mileage":12345.6,`+
			`"wstate":"W1","cstate":"ACC开","posinfo":"上海市黄浦区人民大道","request_id":"u1"}`)
		f.set("vehicles/V2/position", fmt.Sprintf(`{"lat":-33.5,"lng":151.25,"time":%d,"code":"自定","request_id":"u2"}`, fix.Unix()))
		waitSim(t, f.sim, "two position uploads", func(rs []exlivesim.Received) bool {
			n := 0
			for _, r := range rs {
				if r.Msg.Cmd() == exlive.CmdPosition {
					n++
				}
			}
			return n == 2
		})
		ups := received[*exlive.Position](f.sim)
		slices.SortFunc(ups, func(a, b *exlive.Position) int { return strings.Compare(a.ID, b.ID) })
		u := ups[0]
		if u.ID != "V1" || u.Code != "沪A10000" || u.Lat != 31.230416 || u.Lng != 121.473701 ||
			u.Speed != opt.Some(42.5) || u.Direction != opt.Some(180.0) || u.Valid != opt.Some(true) ||
			u.Alarm != opt.Some(false) || u.Fuel != opt.Some(37.2) || u.Mileage != opt.Some(12345.6) ||
			u.WState != "W1" || u.CState != "ACC开" || u.PosInfo != "上海市黄浦区人民大道" {
			t.Errorf("platform received position %+v", *u)
		}
		// The platform reads gpstime in Asia/Shanghai: the same instant
		// means the bridge wrote Beijing wall-clock time.
		shanghai, _ := time.LoadLocation("Asia/Shanghai")
		for _, u := range ups {
			if !u.Time.Valid || !u.Time.V.Equal(fix) || u.Time.V.In(shanghai).Format(exlive.TimeLayout) != "2011-11-01 12:38:39" {
				t.Errorf("position %s: gpstime %v, want %v", u.ID, u.Time, fix.In(shanghai))
			}
		}
		if u := ups[1]; u.ID != "V2" || u.Code != "自定" || u.Lat != -33.5 || u.Lng != 151.25 || u.Speed.Valid || u.Valid.Valid {
			t.Errorf("platform received position %+v", *u)
		}

		// bridge/message/set → 1003; groups → 1005, vehicles → 1006, the
		// payload as data, JSON or not.
		f.set("bridge/message", "你好，司机")
		f.set("bridge/message", `{"msg":"请回电","request_id":"m1"}`)
		f.set("bridge/groups", "G1")
		f.set("bridge/groups", `{"groups":[1,2],"request_id":"not-read"}`)
		f.set("bridge/vehicles", `[{"id":"V9"}]`)
		waitSim(t, f.sim, "the messages and data", func(rs []exlivesim.Received) bool {
			n := 0
			for _, r := range rs {
				switch r.Msg.Cmd() {
				case exlive.CmdText, exlive.CmdGroupData, exlive.CmdVehicleData:
					n++
				}
			}
			return n == 5
		})
		var texts, groups, vehicles []string
		for _, r := range f.sim.Received() {
			switch m := r.Msg.(type) {
			case *exlive.TextMessage:
				texts = append(texts, m.Msg)
			case *exlive.GroupData:
				groups = append(groups, m.Data)
			case *exlive.VehicleData:
				vehicles = append(vehicles, m.Data)
			}
		}
		slices.Sort(texts)
		slices.Sort(groups)
		if want := []string{"你好，司机", "请回电"}; !slices.Equal(texts, want) {
			t.Errorf("platform received messages %q, want %q", texts, want)
		}
		if want := []string{"G1", `{"groups":[1,2],"request_id":"not-read"}`}; !slices.Equal(groups, want) {
			t.Errorf("platform received group data %q, want %q", groups, want)
		}
		if want := []string{`[{"id":"V9"}]`}; !slices.Equal(vehicles, want) {
			t.Errorf("platform received vehicle data %q, want %q", vehicles, want)
		}

		// Unanswered, none of these is published on its /result: wait
		// until the bridge has given up on each (its audit line), then
		// settle.
		f.log.wait(t, "the bridge to stop waiting for answers", func(as []audit) bool {
			n := 0
			for _, a := range as {
				if a.Outcome == "sent" {
					n++
				}
			}
			return n == 7
		})
		f.settle()
		for _, rest := range []string{"vehicles/V1/position", "vehicles/V2/position", "bridge/message", "bridge/groups", "bridge/vehicles"} {
			for _, m := range f.sub.Messages() {
				if m.Topic == f.topic(rest+"/result") && !strings.Contains(m.Payload, "barrier-") {
					t.Errorf("unanswered request answered on %s: %s", m.Topic, m.Payload)
				}
			}
		}
	})
}

func TestRequestsUploadsAnswered(t *testing.T) {
	brokertest.Each(t, func(t *testing.T, target brokertest.Target) {
		// A platform that answers 1003, 1005, 1006 and 1007 with 8000:
		// each answer is published on the request's /result.
		f := newFixture(t, target, setup{sim: exlivesim.Config{AnswerUploads: true}})
		f.ready()
		for _, c := range []struct {
			rest, id, payload, cmd string
		}{
			{"vehicles/V1/position", "u1", `{"lat":31.2,"lng":121.4,"request_id":"u1"}`, "1007"},
			{"bridge/message", "m1", `{"msg":"hello","request_id":"m1"}`, "1003"},
			{"bridge/message", "", `plain hello`, "1003"},
			{"bridge/groups", "", `{"g":1}`, "1005"},
			{"bridge/vehicles", "", `V1,V2`, "1006"},
		} {
			want := map[string]any{"cmd": c.cmd, "ok": true, "result": exlive.ResultSucceed}
			if c.id != "" {
				want["request_id"] = c.id
			}
			ctExpect(t, c.rest+" "+c.payload, f.ask(c.rest, c.id, c.payload), want)
		}
		f.settle()
		f.once("vehicles/V1/position", "1007", "u1", "ok")
		f.once("bridge/message", "1003", "m1", "ok")
		for _, rest := range []string{"bridge/groups", "bridge/vehicles"} {
			if rs := f.results(rest, ""); len(rs) != 1 {
				t.Errorf("%s: %d results, want 1: %v", rest, len(rs), rs)
			}
		}
	})
}

// TestRequestAnswers: success, in the live dialect's word and in the
// specification's, and the platform's refusal, for commands and
// passthrough, each answered once with the caller's request_id.
func TestRequestAnswers(t *testing.T) {
	brokertest.Each(t, func(t *testing.T, target brokertest.Target) {
		f := newFixture(t, target, setup{})
		f.ready()
		for _, k := range ctAnswered {
			rest := "vehicles/V1/" + k.name
			ctExpect(t, k.name+" succeed", f.ask(rest, k.name+"-ok", `{"data":"A","request_id":"`+k.name+`-ok"}`),
				map[string]any{"request_id": k.name + "-ok", "cmd": k.cmd, "ok": true, "result": exlive.ResultSucceed})
			f.sim.SetAnswer("设备不在线", 0, false)
			ctExpect(t, k.name+" failure", f.ask(rest, k.name+"-no", `{"data":"B","request_id":"`+k.name+`-no"}`),
				map[string]any{"request_id": k.name + "-no", "cmd": k.cmd, "ok": false, "result": "设备不在线"})
			f.sim.SetAnswer(exlive.ResultSuccess, 0, false)
			ctExpect(t, k.name+" success", f.ask(rest, k.name+"-spec", `{"data":"C","request_id":"`+k.name+`-spec"}`),
				map[string]any{"request_id": k.name + "-spec", "cmd": k.cmd, "ok": true, "result": exlive.ResultSuccess})
			f.sim.SetAnswer(f.sim.Succeed(), 0, false)
		}
		f.settle()
		for _, k := range ctAnswered {
			f.once("vehicles/V1/"+k.name, k.cmd, k.name+"-ok", "ok")
			f.once("vehicles/V1/"+k.name, k.cmd, k.name+"-no", "rejected")
			f.once("vehicles/V1/"+k.name, k.cmd, k.name+"-spec", "ok")
			if got := ctPlatformData(f.sim, k.name); !slices.Equal(got, []string{"V1 A", "V1 B", "V1 C"}) {
				t.Errorf("platform received %s %v", k.name, got)
			}
		}
	})
}

// TestRequestTimeout: no answer within EXLIVE_COMMAND_TIMEOUT is ok:false,
// error "timeout", once.
func TestRequestTimeout(t *testing.T) {
	brokertest.Each(t, func(t *testing.T, target brokertest.Target) {
		f := newFixture(t, target, setup{edit: func(o *bridge.Options) { o.Exlive.CommandTimeout = 300 * time.Millisecond }})
		f.ready()
		f.sim.SetAnswer("", 0, true)
		for _, k := range ctAnswered {
			id := k.name + "-slow"
			start := time.Now()
			ctExpect(t, k.name+" timeout", f.ask("vehicles/V1/"+k.name, id, `{"data":"A","request_id":"`+id+`"}`),
				map[string]any{"request_id": id, "cmd": k.cmd, "ok": false, "error": "timeout"})
			if d := time.Since(start); d < 300*time.Millisecond {
				t.Errorf("%s timed out after %s, before EXLIVE_COMMAND_TIMEOUT", k.name, d)
			}
		}
		f.settle()
		for _, k := range ctAnswered {
			f.once("vehicles/V1/"+k.name, k.cmd, k.name+"-slow", "timeout")
			if got := ctPlatformData(f.sim, k.name); !slices.Equal(got, []string{"V1 A"}) {
				t.Errorf("platform received %s %v", k.name, got)
			}
		}
	})
}

// TestRequestRefusals: requests the bridge refuses without sending
// anything, each answered once.
func TestRequestRefusals(t *testing.T) {
	brokertest.Each(t, func(t *testing.T, target brokertest.Target) {
		const maxRequest = 256
		f := newFixture(t, target, setup{edit: func(o *bridge.Options) { o.Bridge.MaxRequest = maxRequest }})
		f.ready()
		past, future := time.Now().Add(-time.Minute), time.Now().Add(time.Hour)
		big := `{"data":"` + strings.Repeat("x", maxRequest) + `","request_id":"big"}`
		for _, k := range ctAnswered {
			rest := "vehicles/V1/" + k.name
			for _, c := range []struct {
				id, payload string
				rest        string // when not rest
				want        map[string]any
			}{
				// Not valid UTF-8, or too large: refused unread, so the
				// answer cannot carry the request_id.
				{id: "", payload: "\xff\xfe{\"data\":\"A\"}",
					want: map[string]any{"cmd": k.cmd, "ok": false, "error": "payload is not valid UTF-8"}},
				{id: "", payload: big,
					want: map[string]any{"cmd": k.cmd, "ok": false, "error": fmt.Sprintf("payload too large: %d bytes, at most %d", len(big), maxRequest)}},
				{id: "nodata", payload: `{"request_id":"nodata","code":"X"}`,
					want: map[string]any{"request_id": "nodata", "cmd": k.cmd, "ok": false, "error": `missing "data"`}},
				{id: "exp-rfc", payload: `{"data":"A","request_id":"exp-rfc","expires":"` + past.Format(time.RFC3339) + `"}`,
					want: map[string]any{"request_id": "exp-rfc", "cmd": k.cmd, "ok": false, "error": "expired"}},
				{id: "exp-epoch", payload: fmt.Sprintf(`{"data":"A","request_id":"exp-epoch","expires":%d}`, past.Unix()),
					want: map[string]any{"request_id": "exp-epoch", "cmd": k.cmd, "ok": false, "error": "expired"}},
				{id: "unknown", payload: `{"data":"A","request_id":"unknown"}`, rest: "vehicles/NOPE/" + k.name,
					want: map[string]any{"request_id": "unknown", "cmd": k.cmd, "ok": false, "error": "unknown vehicle"}},
				// Not expired yet: carried out.
				{id: "fresh-rfc", payload: `{"data":"F1","request_id":"fresh-rfc","expires":"` + future.Format(time.RFC3339) + `"}`,
					want: map[string]any{"request_id": "fresh-rfc", "cmd": k.cmd, "ok": true, "result": exlive.ResultSucceed}},
				{id: "fresh-epoch", payload: fmt.Sprintf(`{"data":"F2","request_id":"fresh-epoch","expires":%d}`, future.Unix()),
					want: map[string]any{"request_id": "fresh-epoch", "cmd": k.cmd, "ok": true, "result": exlive.ResultSucceed}},
			} {
				r := rest
				if c.rest != "" {
					r = c.rest
				}
				ctExpect(t, k.name+" "+c.id+" "+c.payload[:min(len(c.payload), 40)], f.ask(r, c.id, c.payload), c.want)
			}

			// The same request_id twice (QoS 1 is at least once): carried
			// out once, and both deliveries get its answer.
			dup := `{"data":"DUP","request_id":"dup"}`
			f.set(rest, dup)
			f.set(rest, dup)
			f.log.wait(t, "both deliveries of dup", func(as []audit) bool {
				n := 0
				for _, a := range as {
					if a.RequestID == "dup" && a.Cmd == k.cmd {
						n++
					}
				}
				return n == 2
			})
		}
		f.settle()
		for _, k := range ctAnswered {
			rest := "vehicles/V1/" + k.name
			f.once(rest, k.cmd, "nodata", "invalid")
			f.once(rest, k.cmd, "exp-rfc", "expired")
			f.once(rest, k.cmd, "exp-epoch", "expired")
			f.once("vehicles/NOPE/"+k.name, k.cmd, "unknown", "refused")
			f.once(rest, k.cmd, "fresh-rfc", "ok")
			f.once(rest, k.cmd, "fresh-epoch", "ok")
			if rs := f.waitResults(rest, "dup", 2); !reflect.DeepEqual(rs[0], rs[1]) || rs[0]["ok"] != true {
				t.Errorf("%s: the answers to dup and its repeat: %v", k.name, rs)
			}
			var outcomes []string
			for _, a := range f.waitAudit(k.cmd, "dup") {
				outcomes = append(outcomes, a.Outcome)
			}
			if want := []string{"ok", "repeated"}; !slices.Equal(outcomes, want) && !slices.Equal(outcomes, []string{"repeated", "ok"}) {
				t.Errorf("%s: dup's audit outcomes %v, want %v", k.name, outcomes, want)
			}
			if rs := f.results(rest, ""); len(rs) != 2 {
				t.Errorf("%s: %d answers without request_id, want 2 (not UTF-8, too large): %v", k.name, len(rs), rs)
			}
			if got, want := ctPlatformData(f.sim, k.name), []string{"V1 F1", "V1 F2", "V1 DUP"}; !slices.Equal(got, want) {
				t.Errorf("platform received %s %v, want %v", k.name, got, want)
			}
		}
	})
}

// TestRequestRetainedRefused: a request retained on the broker reaches the
// bridge again at every (re)subscription; it is refused, never carried out.
func TestRequestRetainedRefused(t *testing.T) {
	brokertest.Each(t, func(t *testing.T, target brokertest.Target) {
		f := newFixture(t, target, setup{noStart: true})
		for _, k := range ctAnswered {
			f.sub.Publish(f.topic("vehicles/V1/"+k.name+"/set"), []byte(`{"data":"OLD","request_id":"old-`+k.name+`"}`), true)
		}
		f.start()
		f.ready()
		for _, k := range ctAnswered {
			id := "old-" + k.name
			ctExpect(t, "retained "+k.name, f.resultAfter(0, "vehicles/V1/"+k.name, id),
				map[string]any{"request_id": id, "cmd": k.cmd, "ok": false, "error": "retained requests are not carried out"})
			ctExpect(t, k.name, f.ask("vehicles/V1/"+k.name, "new", `{"data":"NEW","request_id":"new"}`),
				map[string]any{"request_id": "new", "cmd": k.cmd, "ok": true, "result": exlive.ResultSucceed})
		}
		f.settle()
		for _, k := range ctAnswered {
			f.once("vehicles/V1/"+k.name, k.cmd, "old-"+k.name, "refused")
			if got := ctPlatformData(f.sim, k.name); !slices.Equal(got, []string{"V1 NEW"}) {
				t.Errorf("platform received %s %v", k.name, got)
			}
		}
		f.stop()
		for _, k := range ctAnswered {
			f.sub.Publish(f.topic("vehicles/V1/"+k.name+"/set"), nil, true)
		}
	})
}

// TestRequestOffline: a request while the session is not logged in is
// refused at once, and nothing is sent when it logs in again; one whose
// connection drops before the answer is answered so.
func TestRequestOffline(t *testing.T) {
	brokertest.Each(t, func(t *testing.T, target brokertest.Target) {
		f := newFixture(t, target, setup{noStart: true})
		proxy := brokertest.NewProxy(t, f.sim.Addr())
		f.opts.Exlive.Addr = proxy.Addr()
		f.start()
		f.ready()

		// Sent, and the connection drops before the answer.
		f.sim.SetAnswer("", 0, true)
		before := len(f.sub.Messages())
		for _, k := range ctAnswered {
			f.set("vehicles/V1/"+k.name, `{"data":"LOST","request_id":"lost"}`)
		}
		waitSim(t, f.sim, "both requests", func(rs []exlivesim.Received) bool {
			n := 0
			for _, r := range rs {
				if c := r.Msg.Cmd(); c == exlive.CmdVehicleCommand || c == exlive.CmdPassthrough {
					n++
				}
			}
			return n == 2
		})
		proxy.SetDown(true)
		for _, k := range ctAnswered {
			ctExpect(t, k.name+" lost", f.resultAfter(before, "vehicles/V1/"+k.name, "lost"),
				map[string]any{"request_id": "lost", "cmd": k.cmd, "ok": false, "error": "connection to the platform lost before it answered"})
		}
		f.sim.SetAnswer(f.sim.Succeed(), 0, false)
		_, i := ctWaitSession(t, f, before, "disconnected")

		// Not logged in: refused at once, every kind of request.
		for _, k := range ctAnswered {
			ctExpect(t, k.name+" offline", f.ask("vehicles/V1/"+k.name, "off", `{"data":"OFF","request_id":"off"}`),
				map[string]any{"request_id": "off", "cmd": k.cmd, "ok": false, "error": "not logged in to the platform"})
		}
		ctExpect(t, "position offline", f.ask("vehicles/V1/position", "off", `{"lat":1,"lng":2,"request_id":"off"}`),
			map[string]any{"request_id": "off", "cmd": "1007", "ok": false, "error": "not logged in to the platform"})
		ctExpect(t, "message offline", f.ask("bridge/message", "off", `{"msg":"OFF","request_id":"off"}`),
			map[string]any{"request_id": "off", "cmd": "1003", "ok": false, "error": "not logged in to the platform"})

		// Back: what was refused stays unsent. A request after it, once
		// answered, shows the platform received nothing before it.
		proxy.SetDown(false)
		ctWaitSession(t, f, i+1, "logged_in")
		for _, k := range ctAnswered {
			ctExpect(t, k.name+" after", f.ask("vehicles/V1/"+k.name, "after", `{"data":"AFTER","request_id":"after"}`),
				map[string]any{"request_id": "after", "cmd": k.cmd, "ok": true, "result": exlive.ResultSucceed})
		}
		f.settle()
		for _, k := range ctAnswered {
			f.once("vehicles/V1/"+k.name, k.cmd, "lost", "lost")
			f.once("vehicles/V1/"+k.name, k.cmd, "off", "refused")
			if got, want := ctPlatformData(f.sim, k.name), []string{"V1 LOST", "V1 AFTER"}; !slices.Equal(got, want) {
				t.Errorf("platform received %s %v, want %v", k.name, got, want)
			}
		}
		f.once("vehicles/V1/position", "1007", "off", "refused")
		for _, r := range f.sim.Received() {
			if m, ok := r.Msg.(*exlive.TextMessage); ok {
				t.Errorf("platform received a message %q refused while offline", m.Msg)
			}
			if _, ok := r.Msg.(*exlive.Position); ok {
				t.Error("platform received a position refused while offline")
			}
		}
	})
}

// TestPositionUploadForAnyVehicle: P/vehicles/V/position/set uploads for any
// V, listed in the inventory or not, in both payloads (a level the bridge
// knows maps back to its real id); commands and passthrough to a vehicle
// the bridge does not know stay refused.
func TestPositionUploadForAnyVehicle(t *testing.T) {
	brokertest.Each(t, func(t *testing.T, target brokertest.Target) {
		f := newFixture(t, target, setup{sim: exlivesim.Config{Vehicles: 2, IDPrefix: "a/b", AnswerUploads: true}})
		f.ready()
		tst := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).Unix()
		for _, c := range []struct{ rest, id, payload string }{
			// Listed, under its sanitised level.
			{"vehicles/a_b1/position", "known", `{"lat":31.2,"lng":121.4,"request_id":"known"}`},
			// Not listed: the level is the id.
			{"vehicles/EXT-1/position", "ext", `{"lat":22.5,"lng":114.1,"speed":10,"code":"外部1","request_id":"ext"}`},
			// An OwnTracks phone the platform has never heard of.
			{"vehicles/phone7/position", "", fmt.Sprintf(`{"_type":"location","lat":39.9,"lon":116.4,"tst":%d,"vel":36}`, tst)},
			// Not listed, with an id that is not a topic level: the
			// payload names it.
			{"vehicles/粤B_123/position", "slash", `{"id":"粤B/123","lat":23.1,"lng":113.3,"request_id":"slash"}`},
		} {
			if r := f.ask(c.rest, c.id, c.payload); r["ok"] != true || r["cmd"] != "1007" {
				t.Errorf("%s: result %v, want ok", c.rest, r)
			}
		}
		waitSim(t, f.sim, "four uploads", func(rs []exlivesim.Received) bool {
			n := 0
			for _, r := range rs {
				if r.Msg.Cmd() == exlive.CmdPosition {
					n++
				}
			}
			return n == 4
		})
		got := map[string]*exlive.Position{}
		for _, p := range received[*exlive.Position](f.sim) {
			got[p.ID] = p
		}
		if p := got["a/b1"]; p == nil || p.Code != "沪A10000" || p.Lat != 31.2 {
			t.Errorf("upload for the listed vehicle: %+v, want id a/b1 with its code", p)
		}
		if p := got["EXT-1"]; p == nil || p.Code != "外部1" || p.Lat != 22.5 || p.Speed != opt.Some(10.0) {
			t.Errorf("upload for EXT-1: %+v", p)
		}
		if p := got["phone7"]; p == nil || p.Lat != 39.9 || p.Lng != 116.4 || !p.Time.Valid || p.Time.V.Unix() != tst || p.Speed != opt.Some(36.0) {
			t.Errorf("OwnTracks upload for phone7: %+v", p)
		}
		if p := got["粤B/123"]; p == nil || p.Lat != 23.1 {
			t.Errorf("upload for 粤B/123: %+v", p)
		}

		// Refused, and never sent: an id that is not the topic's, and
		// commands and passthrough to vehicles the bridge does not know.
		for _, c := range []struct{ rest, id, payload, want string }{
			{"vehicles/EXT-2/position", "other", `{"id":"other","lat":1,"lng":2,"request_id":"other"}`, `id "other" is not the vehicle of this topic`},
			{"vehicles/EXT-1/command", "cmd", `{"data":"STOP","request_id":"cmd"}`, "unknown vehicle"},
			{"vehicles/EXT-1/passthrough", "pt", `{"data":"AA","request_id":"pt"}`, "unknown vehicle"},
		} {
			if r := f.ask(c.rest, c.id, c.payload); r["ok"] != false || r["error"] != c.want {
				t.Errorf("%s: result %v, want ok:false %q", c.rest, r, c.want)
			}
		}
		f.settle()
		if n := len(received[*exlive.Position](f.sim)); n != 4 {
			t.Errorf("platform received %d uploads, want 4", n)
		}
		if n := len(received[*exlive.VehicleCommand](f.sim)) + len(received[*exlive.Passthrough](f.sim)); n != 0 {
			t.Errorf("platform received %d commands for an unknown vehicle", n)
		}
	})
}
