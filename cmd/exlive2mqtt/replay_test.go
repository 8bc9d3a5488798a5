package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/exlive2mqtt/exlive2mqtt/exlive"
	"github.com/exlive2mqtt/exlive2mqtt/exlive/exlivesim"
	"github.com/exlive2mqtt/exlive2mqtt/internal/brokertest"
	"github.com/exlive2mqtt/exlive2mqtt/topic"
	"github.com/exlive2mqtt/exlive2mqtt/web"
)

// The committed capture: `exlive2mqtt probe -capture` of the simulator's
// dialect, a regression test of what the bridge makes of it. Regenerate it
// with UPDATE_CAPTURE=1 go test -run TestCaptureFixture ./cmd/exlive2mqtt.
const (
	rtFixture = "../../exlive/exlivesim/testdata/sim-dialect.capture.jsonl"
	// The fixture's account's password, which the capture must not hold.
	rtFixturePass = "Fixture-Pass-7f3a"
)

// rtCapture runs a probe with -capture against a simulated fleet of six
// vehicles in two groups, logged in as acct with pass.
func rtCapture(t *testing.T, path, user, pass, wait string) {
	t.Helper()
	sim := exlivesim.New(exlivesim.Config{Accounts: map[string]string{user: pass}, Vehicles: 6, Groups: 2, Rate: 10})
	if err := sim.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	env := []string{"EXLIVE_ADDR=" + sim.Addr(), "EXLIVE_USER=" + user, "EXLIVE_PASS=" + pass, "EXLIVE_INVENTORY_QUIET=200ms"}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"probe", "-wait", wait, "-capture", path}, env, &out, io.Discard); err != nil {
		t.Fatalf("probe = %v\n%s", err, out.String())
	}
}

// rtPositions decodes the positions of a capture that the bridge must
// publish, in order: those the decoder reads (it refuses coordinates out of
// range).
func rtPositions(t *testing.T, c *exlivesim.Capture) []exlive.Position {
	t.Helper()
	loc, err := time.LoadLocation(exlive.DefaultTimezone)
	if err != nil {
		t.Fatal(err)
	}
	dec := exlive.NewDecoder(loc)
	var ps []exlive.Position
	for _, f := range c.PlatformFrames() {
		if f.Cmd != exlive.CmdPosition || f.Text == nil {
			continue
		}
		m, err := dec.Decode(f.Text)
		if err != nil {
			t.Logf("capture line %d: not published: %v", f.Line, err)
			continue
		}
		p, ok := m.(*exlive.Position)
		if !ok {
			t.Logf("capture line %d: not published: %T %+v", f.Line, m, m)
			continue
		}
		ps = append(ps, *p)
	}
	return ps
}

// TestCaptureFixture: the committed capture is what the probe writes today
// (the format the replay reads), masks the password, and holds a session
// worth replaying: the whole inventory, heartbeats answered, a few dozen
// positions of every vehicle.
func TestCaptureFixture(t *testing.T) {
	if os.Getenv("UPDATE_CAPTURE") == "1" {
		rtCapture(t, rtFixture, "demo", rtFixturePass, "3s")
		t.Logf("wrote %s", rtFixture)
	}
	raw, err := os.ReadFile(rtFixture)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte(rtFixturePass)) || !bytes.Contains(raw, []byte(`\"pass\":\"`+maskText+`\"`)) {
		t.Error("the fixture's login is not masked")
	}
	c, err := exlivesim.LoadCapture(rtFixture)
	if err != nil {
		t.Fatal(err)
	}
	if c.ClearPassword || c.User != "demo" {
		t.Errorf("fixture: user %q, clear password %v", c.User, c.ClearPassword)
	}
	counts := map[exlive.Cmd]int{}
	for _, f := range c.PlatformFrames() {
		counts[f.Cmd]++
	}
	ps := rtPositions(t, c)
	ids := map[string]bool{}
	for _, p := range ps {
		ids[p.ID] = true
	}
	if counts[exlive.CmdGroup] != 2 || counts[exlive.CmdVehicle] != 6 || len(ids) != 6 || len(ps) < 20 || len(ps) > 60 {
		t.Errorf("fixture holds %v frames by command, %d positions of %d vehicles: want 2 groups, 6 vehicles, a few dozen positions of all six", counts, len(ps), len(ids))
	}
	for _, cmd := range []exlive.Cmd{exlive.CmdLogin, exlive.CmdHeartbeat} {
		if !c.Answers(cmd) {
			t.Errorf("fixture holds no answer to %s", cmd)
		}
	}
	// docs/operations.md shows what the demo says of it.
	ops, err := os.ReadFile(operationsFile)
	if err != nil {
		t.Fatal(err)
	}
	if want := "replay of capture.jsonl: " + c.Describe(1) + "."; !strings.Contains(string(ops), want) {
		t.Errorf("%s does not show the demo's line for the fixture: %q", operationsFile, want)
	}
	if want := fmt.Sprintf("(six vehicles in two groups, %d positions in %s)", len(ps), c.Duration().Round(time.Second)); !strings.Contains(string(ops), want) {
		t.Errorf("%s does not describe the fixture as %q", operationsFile, want)
	}
}

// rtPayload is what the test reads of a position on MQTT.
type rtPayload struct {
	ID   string    `json:"id"`
	Lat  float64   `json:"lat"`
	Lng  float64   `json:"lng"`
	Time time.Time `json:"time"`
}

// rtBridgeOnReplay replays c at speed 0 to a bridge publishing to url, and
// checks that the positions on MQTT are the capture's: the same vehicles,
// coordinates and times, in the same order. The bridge logs in with a
// password the capture never held.
func rtBridgeOnReplay(t *testing.T, c *exlivesim.Capture, url string) {
	t.Helper()
	want := rtPositions(t, c)
	rp := exlivesim.NewReplay(c, exlivesim.ReplayConfig{Speed: 0})
	if err := rp.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rp.Close() })
	prefix := brokertest.Prefix(t)
	layout := topic.Layout{Prefix: prefix}
	sub := brokertest.Subscribe(t, url, layout.PositionFilter())
	_, logs := opsRun(t, nil, []string{
		"EXLIVE_ADDR=" + rp.Addr(),
		"EXLIVE_USER=" + c.User,
		"EXLIVE_PASS=" + mtWrongPass,
		"EXLIVE_INVENTORY_QUIET=100ms",
		"MQTT_URL=" + url,
		"MQTT_CLIENT_ID=" + brokertest.ClientID(t),
		"MQTT_TOPIC_PREFIX=" + prefix,
		"HTTP_ADDR=127.0.0.1:0",
		"LOG_FORMAT=json",
	})
	msgs := sub.Wait(opsWait, "the capture's positions", func(ms []brokertest.Msg) bool { return len(ms) >= len(want) })
	if len(msgs) != len(want) {
		t.Errorf("%d positions on MQTT, the capture has %d", len(msgs), len(want))
	}
	for i, m := range msgs[:min(len(msgs), len(want))] {
		var got rtPayload
		if err := json.Unmarshal([]byte(m.Payload), &got); err != nil {
			t.Fatalf("position %d: %v: %s", i, err, m.Payload)
		}
		w := want[i]
		if m.Topic != layout.Position(layout.Level(w.ID)) || got.ID != w.ID || got.Lat != w.Lat || got.Lng != w.Lng || !got.Time.Equal(w.Time.V) {
			t.Errorf("position %d: %s %+v, want %s %.6f,%.6f at %s", i, m.Topic, got, w.ID, w.Lat, w.Lng, w.Time.V.UTC())
		}
	}
	if rp.Logins() != 1 {
		t.Errorf("the bridge logged in %d times, want once", rp.Logins())
	}
	mtNoSecret(t, "the bridge's log", logs.String())
}

// TestReplayEndToEnd: capture → replay → the same positions on MQTT, for
// every capture committed beside the fixture (a capture that showed a bug
// becomes a regression test by being copied there), on every broker.
func TestReplayEndToEnd(t *testing.T) {
	opsNoLeaks(t)
	paths, err := filepath.Glob(filepath.Join(filepath.Dir(rtFixture), "*.capture.jsonl"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no captures beside %s: %v", rtFixture, err)
	}
	for _, path := range paths {
		t.Run(filepath.Base(path), func(t *testing.T) {
			c, err := exlivesim.LoadCapture(path)
			if err != nil {
				t.Fatal(err)
			}
			brokertest.Each(t, func(t *testing.T, target brokertest.Target) {
				rtBridgeOnReplay(t, c, target.URL)
			})
		})
	}
}

// TestCaptureAndReplay: a capture made now, of an account whose password
// is a secret, holds no trace of the password, and replays to the same
// positions on MQTT for a bridge that logs in with another one.
func TestCaptureAndReplay(t *testing.T) {
	opsNoLeaks(t)
	path := filepath.Join(t.TempDir(), "capture.jsonl")
	rtCapture(t, path, "acct", mtExlivePass, "2s")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	mtNoSecret(t, "the capture", string(raw))
	c, err := exlivesim.LoadCapture(path)
	if err != nil {
		t.Fatal(err)
	}
	if c.ClearPassword {
		t.Error("the capture's login holds a password")
	}
	if n := len(rtPositions(t, c)); n < 10 {
		t.Fatalf("the capture holds %d positions in 2 s at 10 a second", n)
	}
	rtBridgeOnReplay(t, c, brokertest.Embedded(t).URL())
}

// TestDemoReplay: `exlive2mqtt demo -replay FILE` runs the whole demo on a
// capture: the status page shows every vehicle where the capture left it.
func TestDemoReplay(t *testing.T) {
	opsNoLeaks(t)
	c, err := exlivesim.LoadCapture(rtFixture)
	if err != nil {
		t.Fatal(err)
	}
	last := map[string]exlive.Position{}
	for _, p := range rtPositions(t, c) {
		last[p.ID] = p
	}
	addr, _ := opsRun(t, []string{"demo", "-replay", rtFixture, "-speed", "0", "-listen", "127.0.0.1:0", "-http", "127.0.0.1:0"}, []string{"LOG_FORMAT=json"})
	waitVehicles(t, "http://"+addr, "every vehicle where the capture left it", func(vs []web.Vehicle) bool {
		where := 0
		for _, v := range vs {
			p, ok := last[v.ID]
			if ok && v.Lat != nil && v.Lng != nil && v.Time != nil && *v.Lat == p.Lat && *v.Lng == p.Lng && v.Time.Equal(p.Time.V) {
				where++
			}
		}
		return where == len(last)
	})
}

// TestDemoReplayErrors: a capture that cannot be read, and flags that do
// not go with -replay, are settings errors that say what is wrong.
func TestDemoReplayErrors(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.jsonl")
	if err := os.WriteFile(bad, []byte(`{"capture":"exlive2mqtt probe","format":1}`+"\n"+`{"ms":1,"dir":"in","wire":"{}"`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-replay", bad}, bad + ":2: invalid JSON"},
		{[]string{"-replay", filepath.Join(t.TempDir(), "none.jsonl")}, "no such file"},
		{[]string{"-replay", rtFixture, "-vehicles", "3"}, "not with -replay"},
		{[]string{"-speed", "2"}, "-speed applies to -replay FILE only"},
		{[]string{"-replay", rtFixture, "-speed", "-1"}, "-speed -1: want 0"},
	} {
		err := run(context.Background(), append([]string{"demo", "-listen", "127.0.0.1:0", "-http", ""}, tc.args...), nil, io.Discard, io.Discard)
		var ce *ConfigError
		if !errors.As(err, &ce) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("demo %v = %v, want a settings error with %q", tc.args, err, tc.want)
		}
	}
}
