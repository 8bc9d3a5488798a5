package bridge_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/exlive2mqtt/exlive2mqtt/exlive"
	"github.com/exlive2mqtt/exlive2mqtt/exlive/exlivesim"
	"github.com/exlive2mqtt/exlive2mqtt/internal/brokertest"
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
		if r["ok"] != true || r["request_id"] != "r1" || r["cmd"] != "1004" || r["result"] != "success" {
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
