package bridge_test

// The request rows of docs/topics.md: every /set topic reaches the
// platform as its frame, and every request gets exactly one answer of the
// right kind, or none where docs/topics.md says none.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/exlive2mqtt/exlive2mqtt/bridge"
	"github.com/exlive2mqtt/exlive2mqtt/exlive"
	"github.com/exlive2mqtt/exlive2mqtt/exlive/exlivesim"
	"github.com/exlive2mqtt/exlive2mqtt/internal/brokertest"
	"github.com/exlive2mqtt/exlive2mqtt/opt"
	"github.com/rs/zerolog"
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
			{"vehicles/EXT-2/position", "long", `{"lat":1,"lng":2,"posinfo":"` + strings.Repeat("路", 342) + `","request_id":"long"}`, "posinfo longer than 1024 bytes"},
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

// TestRequestRetriedAfterRefusal: a request_id is remembered only once its
// request was carried out. A request refused (unknown vehicle, not logged
// in, invalid, expired) and sent again with the same request_id is handled
// as new, and carried out once it can be; a repeat of one carried out gets
// the first answer again, whether it comes before or after that answer,
// and is not sent twice.
func TestRequestRetriedAfterRefusal(t *testing.T) {
	brokertest.Each(t, func(t *testing.T, target brokertest.Target) {
		f := newFixture(t, target, setup{noStart: true})
		proxy := brokertest.NewProxy(t, f.sim.Addr())
		f.opts.Exlive.Addr = proxy.Addr()
		f.start()
		f.ready()
		past, future := time.Now().Add(-time.Minute), time.Now().Add(time.Hour)

		// Unknown vehicle, then the platform tells of it.
		ctExpect(t, "unknown", f.ask("vehicles/V9/command", "r-unknown", `{"data":"U","request_id":"r-unknown"}`),
			map[string]any{"request_id": "r-unknown", "cmd": "1004", "ok": false, "error": "unknown vehicle"})
		f.sim.SendRaw(rawPosition(map[string]string{"id": "V9", "lat": "31.2", "lng": "121.4"}))
		f.sub.WaitTopic(testWait, f.topic("vehicles/V9/position"))
		ctExpect(t, "unknown, retried", f.ask("vehicles/V9/command", "r-unknown", `{"data":"U","request_id":"r-unknown"}`),
			map[string]any{"request_id": "r-unknown", "cmd": "1004", "ok": true, "result": exlive.ResultSucceed})

		// Invalid, then right.
		ctExpect(t, "invalid", f.ask("vehicles/V1/command", "r-invalid", `{"request_id":"r-invalid"}`),
			map[string]any{"request_id": "r-invalid", "cmd": "1004", "ok": false, "error": `missing "data"`})
		ctExpect(t, "invalid, retried", f.ask("vehicles/V1/command", "r-invalid", `{"data":"I","request_id":"r-invalid"}`),
			map[string]any{"request_id": "r-invalid", "cmd": "1004", "ok": true, "result": exlive.ResultSucceed})

		// Expired, then given more time.
		ctExpect(t, "expired", f.ask("vehicles/V1/command", "r-exp", `{"data":"E","request_id":"r-exp","expires":"`+past.Format(time.RFC3339)+`"}`),
			map[string]any{"request_id": "r-exp", "cmd": "1004", "ok": false, "error": "expired"})
		ctExpect(t, "expired, retried", f.ask("vehicles/V1/command", "r-exp", `{"data":"E","request_id":"r-exp","expires":"`+future.Format(time.RFC3339)+`"}`),
			map[string]any{"request_id": "r-exp", "cmd": "1004", "ok": true, "result": exlive.ResultSucceed})

		// Not logged in, then back.
		before := len(f.sub.Messages())
		proxy.SetDown(true)
		_, i := ctWaitSession(t, f, before, "disconnected")
		ctExpect(t, "offline", f.ask("vehicles/V2/passthrough", "r-off", `{"data":"O","request_id":"r-off"}`),
			map[string]any{"request_id": "r-off", "cmd": "1012", "ok": false, "error": "not logged in to the platform"})
		proxy.SetDown(false)
		ctWaitSession(t, f, i+1, "logged_in")
		ctExpect(t, "offline, retried", f.ask("vehicles/V2/passthrough", "r-off", `{"data":"O","request_id":"r-off"}`),
			map[string]any{"request_id": "r-off", "cmd": "1012", "ok": true, "result": exlive.ResultSucceed})

		// A repeat of one carried out and answered: the same answer, not
		// sent again.
		first := f.results("vehicles/V9/command", "r-unknown")
		again := f.ask("vehicles/V9/command", "r-unknown", `{"data":"U","request_id":"r-unknown"}`)
		ctExpect(t, "repeat of an answered request", again, first[len(first)-1])

		// Repeats that come while the answer is awaited get it when it
		// comes.
		f.sim.SetAnswer(f.sim.Succeed(), 300*time.Millisecond, false)
		for range 3 {
			f.set("vehicles/V1/command", `{"data":"SLOW","request_id":"r-slow"}`)
		}
		for _, r := range f.waitResults("vehicles/V1/command", "r-slow", 3) {
			ctExpect(t, "slow and its repeats", r, map[string]any{"request_id": "r-slow", "cmd": "1004", "ok": true, "result": exlive.ResultSucceed})
		}
		f.sim.SetAnswer(f.sim.Succeed(), 0, false)

		f.settle()
		if got, want := ctPlatformData(f.sim, "command"), []string{"V9 U", "V1 I", "V1 E", "V1 SLOW"}; !slices.Equal(got, want) {
			t.Errorf("platform received commands %v, want %v", got, want)
		}
		if got, want := ctPlatformData(f.sim, "passthrough"), []string{"V2 O"}; !slices.Equal(got, want) {
			t.Errorf("platform received passthrough %v, want %v", got, want)
		}
		m := gather(t, f.bridge)
		m.want(t, `bridge_requests_total{cmd="1004",outcome="repeated"}`, 3)
		m.want(t, `bridge_requests_total{cmd="1004",outcome="ok"}`, 4)
	})
}

// TestPassthroughTerminal: P/vehicles/V/passthrough/set reaches V's device
// only, so that broker permissions given per vehicle topic hold; a
// terminalid of another device is refused and nothing is sent, unless
// BRIDGE_PASSTHROUGH_ANY_TERMINAL allows it.
func TestPassthroughTerminal(t *testing.T) {
	brokertest.Each(t, func(t *testing.T, target brokertest.Target) {
		f := newFixture(t, target, setup{})
		f.ready()
		ctExpect(t, "another terminal", f.ask("vehicles/V1/passthrough", "other", `{"terminalid":"OTHER-999","data":"7E01","request_id":"other"}`),
			map[string]any{"request_id": "other", "cmd": "1012", "ok": false,
				"error": `terminalid "OTHER-999" is not the vehicle of this topic (BRIDGE_PASSTHROUGH_ANY_TERMINAL=true allows it)`})
		ctExpect(t, "another vehicle of the fleet", f.ask("vehicles/V1/passthrough", "v2", `{"terminalid":"V2","data":"7E02","request_id":"v2"}`),
			map[string]any{"request_id": "v2", "cmd": "1012", "ok": false,
				"error": `terminalid "V2" is not the vehicle of this topic (BRIDGE_PASSTHROUGH_ANY_TERMINAL=true allows it)`})
		ctExpect(t, "its own terminal", f.ask("vehicles/V1/passthrough", "own", `{"terminalid":"V1","data":"7E03","request_id":"own"}`),
			map[string]any{"request_id": "own", "cmd": "1012", "ok": true, "result": exlive.ResultSucceed})
		f.settle()
		f.once("vehicles/V1/passthrough", "1012", "other", "refused")
		if got, want := ctPlatformData(f.sim, "passthrough"), []string{"V1 7E03"}; !slices.Equal(got, want) {
			t.Errorf("platform received %v, want %v", got, want)
		}

		// Allowed by the setting.
		f.stop()
		f.opts.Bridge.PassthroughAnyTerminal = true
		f.start()
		f.ready()
		ctExpect(t, "another terminal, allowed", f.ask("vehicles/V1/passthrough", "other2", `{"terminalid":"OTHER-999","data":"7E04","request_id":"other2"}`),
			map[string]any{"request_id": "other2", "cmd": "1012", "ok": true, "result": exlive.ResultSucceed})
		if got, want := ctPlatformData(f.sim, "passthrough"), []string{"V1 7E03", "OTHER-999 7E04"}; !slices.Equal(got, want) {
			t.Errorf("platform received %v, want %v", got, want)
		}
	})
}

// TestEmptyVehicleLevel: a request on P/vehicles//KIND/set (an empty
// level, a valid topic) is answered on P/vehicles//KIND/result, which
// every subscriber to P/vehicles/+/KIND/result gets, and nothing is sent.
func TestEmptyVehicleLevel(t *testing.T) {
	brokertest.Each(t, func(t *testing.T, target brokertest.Target) {
		f := newFixture(t, target, setup{})
		f.ready()
		plus := brokertest.Subscribe(t, target.URL, f.topic("vehicles/+/command/result"), f.topic("vehicles/+/passthrough/result"), f.topic("vehicles/+/position/result"))
		for _, c := range []struct{ kind, cmd, payload string }{
			{"command", "1004", `{"data":"X","request_id":"e-command"}`},
			{"passthrough", "1012", `{"data":"X","request_id":"e-passthrough"}`},
			{"position", "1007", `{"lat":31.2,"lng":121.4,"request_id":"e-position"}`},
		} {
			id := "e-" + c.kind
			ctExpect(t, c.kind, f.ask("vehicles//"+c.kind, id, c.payload),
				map[string]any{"request_id": id, "cmd": c.cmd, "ok": false, "error": "unknown vehicle"})
			m := plus.WaitTopic(testWait, f.topic("vehicles//"+c.kind+"/result"))
			if r := decode(t, m.Payload); r["request_id"] != id {
				t.Errorf("the subscriber to vehicles/+/%s/result got %s", c.kind, m.Payload)
			}
		}
		f.settle()
		if sent := requests(f.sim.Received()); len(sent) != 0 {
			t.Errorf("the platform received %v", sent)
		}
		var levels []string
		for _, a := range f.log.byRequest()["e-command"] {
			levels = append(levels, fmt.Sprintf("%s %q %v", a.Outcome, a.TopicLevel, a.HasVehicle))
		}
		if want := []string{`refused "" true`}; !slices.Equal(levels, want) {
			t.Errorf("audit of e-command: %v, want %v", levels, want)
		}
	})
}

// TestRequestRateLimit: with EXLIVE_MAX_RATE, requests over the rate wait
// their turn, at most EXLIVE_COMMAND_TIMEOUT from their arrival, and are
// then refused as busy, with their request_id; sent again later, a busy
// one is carried out.
func TestRequestRateLimit(t *testing.T) {
	brokertest.Each(t, func(t *testing.T, target brokertest.Target) {
		// 1 a second with a burst of 2: of five at once, two go at
		// once, the third a second later (within the 1.5 s it may
		// wait), the fourth and fifth would go at 2 s and 3 s, too late.
		f := newFixture(t, target, setup{edit: func(o *bridge.Options) {
			o.Exlive.MaxRate, o.Exlive.MaxBurst = 1, 2
			o.Exlive.CommandTimeout = 1500 * time.Millisecond
		}})
		f.ready()
		// The bridge's MQTT client hands messages to handlers
		// concurrently: which of the five come first is not known.
		for i := 1; i <= 5; i++ {
			f.set("vehicles/V1/command", fmt.Sprintf(`{"data":"R%d","request_id":"rate-%d"}`, i, i))
		}
		var ok, busy []string
		for i := 1; i <= 5; i++ {
			id := fmt.Sprintf("rate-%d", i)
			r := f.resultAfter(0, "vehicles/V1/command", id)
			switch {
			case reflect.DeepEqual(r, map[string]any{"request_id": id, "cmd": "1004", "ok": true, "result": exlive.ResultSucceed}):
				ok = append(ok, id)
			case reflect.DeepEqual(r, map[string]any{"request_id": id, "cmd": "1004", "ok": false, "error": "busy: over EXLIVE_MAX_RATE"}):
				busy = append(busy, id)
			default:
				t.Errorf("%s: result %v, want ok, or busy", id, r)
			}
		}
		if len(ok) != 3 || len(busy) != 2 {
			t.Fatalf("carried out %v, busy %v; want 3 and 2", ok, busy)
		}
		var at []time.Time
		for _, r := range f.sim.Received() {
			if _, ok := r.Msg.(*exlive.VehicleCommand); ok {
				at = append(at, r.At)
			}
		}
		if len(at) != 3 {
			t.Fatalf("platform received %d commands, want 3", len(at))
		}
		// The limiter never lets the third go sooner (the first two are
		// its burst).
		if gap := at[2].Sub(at[0]); gap < 900*time.Millisecond {
			t.Errorf("the third command came %v after the first, want about 1s", gap)
		}
		// Busy is not remembered: sent again, it is carried out.
		id := busy[0]
		data := "R" + strings.TrimPrefix(id, "rate-")
		ctExpect(t, id+" again", f.ask("vehicles/V1/command", id, `{"data":"`+data+`","request_id":"`+id+`"}`),
			map[string]any{"request_id": id, "cmd": "1004", "ok": true, "result": exlive.ResultSucceed})
		if got := ctPlatformData(f.sim, "command"); len(got) != 4 || got[3] != "V1 "+data {
			t.Errorf("platform received %v, want 4 commands, the last %s", got, data)
		}
	})
}

// TestRequestFlood publishes 20 000 commands as fast as a client can,
// against a bridge limited to 500 requests a second (EXLIVE_MAX_RATE) with
// a short queue: every one gets exactly one answer, every answer carries
// its request_id, the busy ones too, whether refused on arrival (queue
// full) or after waiting for the rate; the platform receives exactly the
// ones answered ok, never faster than the rate allows; and the counts of
// bridge_requests_total add up to 20 000.
func TestRequestFlood(t *testing.T) {
	const (
		n     = 20_000
		rate  = 500
		burst = 50
	)
	brokertest.EachHeavy(t, func(t *testing.T, target brokertest.Target) {
		clock := &sendClock{}
		// Positions keep coming meanwhile, stamped with when they were
		// sent: how late they are published tells what the flood costs
		// them.
		f := newFixture(t, target, setup{sim: exlivesim.Config{Vehicles: 3, Rate: 20, StampSent: true}, edit: func(o *bridge.Options) {
			o.Dial = func(ctx context.Context, addr string) (net.Conn, error) {
				nc, err := exlive.Dial(ctx, addr)
				return clockConn{nc, clock}, err
			}
			// The default timeout: answers wait their turn behind the
			// busy ones on the broker link.
			o.Exlive.MaxRate, o.Exlive.MaxBurst = rate, burst
			o.Exlive.CommandTimeout = exlive.DefaultCommandTimeout
			o.Bridge.RequestQueue = 64
			o.Log = o.Log.Level(zerolog.InfoLevel) // not a debug line per frame
		}})
		f.ready()

		// The answers, counted by request_id as they come.
		var (
			mu       sync.Mutex
			answers  = make(map[string][]map[string]any, n)
			total    int
			noID     int
			allIn    = make(chan struct{})
			resultOf = f.topic("vehicles/+/command/result")
			late     []time.Duration // of positions
		)
		c := paho.NewClient(paho.NewClientOptions().AddBroker(target.URL).SetClientID(brokertest.ClientID(t)).SetCleanSession(true))
		if tok := c.Connect(); !tok.WaitTimeout(testWait) || tok.Error() != nil {
			t.Fatalf("connect: %v", tok.Error())
		}
		defer c.Disconnect(100)
		tok := c.Subscribe(resultOf, 1, func(_ paho.Client, m paho.Message) {
			var r map[string]any
			if err := json.Unmarshal(m.Payload(), &r); err != nil {
				t.Errorf("answer %q: %v", m.Payload(), err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			id := str(r["request_id"])
			if id == "" {
				noID++
			}
			answers[id] = append(answers[id], r)
			if total++; total == n {
				close(allIn)
			}
		})
		if !tok.WaitTimeout(testWait) || tok.Error() != nil {
			t.Fatalf("subscribe: %v", tok.Error())
		}
		tok = c.Subscribe(f.topic("vehicles/+/position"), 0, func(_ paho.Client, m paho.Message) {
			var p struct{ WState string }
			if json.Unmarshal(m.Payload(), &p) != nil || m.Retained() {
				return
			}
			if ns, err := strconv.ParseInt(p.WState, 10, 64); err == nil {
				mu.Lock()
				late = append(late, time.Since(time.Unix(0, ns)))
				mu.Unlock()
			}
		})
		if !tok.WaitTimeout(testWait) || tok.Error() != nil {
			t.Fatalf("subscribe: %v", tok.Error())
		}

		// In runs of 1000 unacknowledged publishes: as fast as the
		// broker takes them.
		start := time.Now()
		toks := make([]paho.Token, 0, 1000)
		for i := range n {
			level := fmt.Sprintf("V%d", 1+i%3)
			toks = append(toks, c.Publish(f.topic("vehicles/"+level+"/command/set"), 1, false,
				fmt.Sprintf(`{"data":"F%d","request_id":"flood-%d"}`, i, i)))
			if len(toks) == cap(toks) || i == n-1 {
				for _, tok := range toks {
					if !tok.WaitTimeout(time.Minute) || tok.Error() != nil {
						t.Fatalf("publish: %v", tok.Error())
					}
				}
				toks = toks[:0]
			}
		}
		published := time.Since(start)
		select {
		case <-allIn:
		case <-time.After(time.Minute):
			mu.Lock()
			m := gather(t, f.bridge)
			t.Fatalf("%d answers of %d after a minute; the bridge:\n%s%s", total, n, m.grep("bridge_requests_total"), m.grep("mqtt_"))
		}
		f.settle() // any answer beyond n would be in by now
		mu.Lock()
		defer mu.Unlock()

		outcomes := map[string]int{}
		for i := range n {
			id := fmt.Sprintf("flood-%d", i)
			rs := answers[id]
			if len(rs) != 1 {
				t.Errorf("%s: %d answers: %v", id, len(rs), rs)
				continue
			}
			switch r := rs[0]; {
			case r["ok"] == true && r["result"] == exlive.ResultSucceed:
				outcomes["ok"]++
			case r["ok"] == false:
				outcomes[str(r["error"])]++
			default:
				t.Errorf("%s: %v", id, r)
			}
		}
		if total != n || noID != 0 || len(answers) != n {
			t.Errorf("%d answers for %d distinct ids, %d without request_id; want %d, %d, 0", total, len(answers), noID, n, n)
		}
		t.Logf("%d commands published in %v: %v", n, published.Round(time.Millisecond), outcomes)
		if len(late) > 0 {
			slices.Sort(late)
			t.Logf("%d positions meanwhile, published after the platform sent them: median %v, 99th percentile %v, at most %v",
				len(late), late[len(late)/2].Round(time.Millisecond), late[len(late)*99/100].Round(time.Millisecond), late[len(late)-1].Round(time.Millisecond))
		}
		// Sent: ok, or timeout. The platform answers at once, but the
		// bridge reads its answers only as fast as its broker link takes
		// what the bridge publishes, and the flood's busy answers take
		// most of that: on a slow machine (the race detector) some are
		// read after EXLIVE_COMMAND_TIMEOUT.
		sent := outcomes["ok"] + outcomes["timeout"]
		for outcome := range outcomes {
			// Busy on arrival (the queue is full), after waiting for the
			// rate, or while EXLIVE_MAX_PENDING await their answers.
			switch outcome {
			case "ok", "timeout", "busy: too many requests waiting", "busy: over EXLIVE_MAX_RATE", "busy: too many requests awaiting the platform's answer":
				continue
			}
			t.Errorf("answers %q: not ok, timeout or busy", outcome)
		}
		if outcomes["busy: too many requests waiting"] == 0 || outcomes["ok"] < burst {
			t.Errorf("outcomes %v: want some refused as busy on arrival, and at least the burst carried out", outcomes)
		}

		// The platform received exactly those sent.
		if n := len(received[*exlive.VehicleCommand](f.sim)); n != sent {
			t.Errorf("platform received %d commands, %d answered ok or timeout", n, sent)
		}
		// Sent at the rate: overall, and in any second, at most the burst
		// and the rate's worth (and one: the limiter counts when a
		// request takes its turn, the clock when its frame is written).
		// Timed as the bridge writes them: when the platform reads them
		// they may have bunched up in the socket.
		at := clock.times()
		if len(at) != sent {
			t.Errorf("the bridge wrote %d commands, %d answered ok or timeout", len(at), sent)
		}
		if len(at) > 0 {
			span := at[len(at)-1].Sub(at[0])
			if most := burst + rate*span.Seconds() + 1; float64(len(at)) > most {
				t.Errorf("%d commands sent in %v, want at most %.0f", len(at), span, most)
			}
		}
		busiest := 0
		for i, j := 0, 0; j < len(at); j++ {
			for at[j].Sub(at[i]) > time.Second {
				i++
			}
			busiest = max(busiest, j-i+1)
		}
		if most := burst + rate + 1; busiest > most {
			t.Errorf("%d commands sent within a second, want at most %d", busiest, most)
		}
		t.Logf("at most %d commands sent in any second", busiest)

		m := gather(t, f.bridge)
		var counted float64
		for _, outcome := range []string{"ok", "refused", "invalid", "rejected", "timeout", "lost", "expired", "repeated"} {
			v, _ := m.get(t, `bridge_requests_total{cmd="1004",outcome="`+outcome+`"}`)
			counted += v
		}
		if counted != n {
			t.Errorf("bridge_requests_total{cmd=\"1004\"} = %v, want %d", counted, n)
		}
		m.want(t, `bridge_requests_total{cmd="1004",outcome="ok"}`, float64(outcomes["ok"]))
	})
}

// sendClock records when the bridge writes each 1004 to the platform.
type sendClock struct {
	mu sync.Mutex
	at []time.Time
}

func (c *sendClock) times() []time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.at)
}

// clockConn is the bridge's connection to the platform, timing its writes.
type clockConn struct {
	net.Conn
	c *sendClock
}

func (cc clockConn) Write(p []byte) (int, error) {
	now := time.Now()
	if n := bytes.Count(p, []byte(`"cmd":"1004"`)); n > 0 {
		cc.c.mu.Lock()
		for range n {
			cc.c.at = append(cc.c.at, now)
		}
		cc.c.mu.Unlock()
	}
	return cc.Conn.Write(p)
}
