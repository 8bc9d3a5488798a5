package bridge_test

// End-to-end tests of running several bridges (docs/scaling.md): one per
// account into one broker and one Home Assistant, and what an upgrade does
// to the discovery configs earlier versions left.

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/exlive2mqtt/exlive2mqtt/bridge"
	"github.com/exlive2mqtt/exlive2mqtt/exlive"
	"github.com/exlive2mqtt/exlive2mqtt/exlive/exlivesim"
	"github.com/exlive2mqtt/exlive2mqtt/hass"
	"github.com/exlive2mqtt/exlive2mqtt/internal/brokertest"
	"github.com/exlive2mqtt/exlive2mqtt/topic"
)

// TestHomeAssistantTwoBridges runs two bridges, two accounts whose vehicles
// have the same ids, into one broker and one discovery prefix: each keeps
// its own entities, read from its own topics.
func TestHomeAssistantTwoBridges(t *testing.T) {
	brokertest.Each(t, func(t *testing.T, target brokertest.Target) {
		ha := brokertest.Prefix(t) + "/homeassistant"
		discovery := func(o *bridge.Options) {
			o.Hass = bridge.HassConfig{Discovery: true, Prefix: ha}
			o.HassDelay = func() time.Duration { return 0 }
			o.HassSweepQuiet = 100 * time.Millisecond
		}
		a := newFixture(t, target, setup{sim: exlivesim.Config{Vehicles: 3}, edit: discovery})
		b := newFixture(t, target, setup{sim: exlivesim.Config{Vehicles: 3}, edit: discovery})
		clearRetainedAtEnd(t, target.URL, ha+"/#", func() { a.stop(); b.stop() })
		sub := brokertest.Subscribe(t, target.URL, ha+"/#")

		want := map[string]string{}
		owner := map[string]string{} // config topic → the bridge's prefix
		for _, f := range []*fixture{a, b} {
			// Availability on (the default VEHICLE_OFFLINE_AFTER), no
			// geofences: that entity's config is deleted (an empty payload).
			hcfg := hass.Config{Topics: topic.Layout{Prefix: f.prefix, DiscoveryPrefix: ha}, Version: f.opts.Version, Availability: true}
			_, fleet := f.sim.Fleet()
			for _, v := range fleet {
				for _, m := range hass.Configs(hcfg, hass.Vehicle{ID: v.ID, Code: v.Code}) {
					want[m.Topic] = string(m.Payload)
					owner[m.Topic] = f.prefix
				}
			}
			for _, m := range hass.Bridge(hcfg) {
				want[m.Topic] = string(m.Payload)
				owner[m.Topic] = f.prefix
			}
		}
		if len(want) != 2*(3*12+1) {
			t.Fatalf("%d distinct config topics for two bridges of 3 vehicles each, want 74", len(want))
		}
		waitPayloads(t, sub, 0, want, "both bridges' configs")
		held := retained(t, target.URL, ha+"/#")
		if deleted := 2 * 3; len(held) != len(want)-deleted {
			t.Errorf("%d retained configs, want %d (%d less the geofences entity of each vehicle)", len(held), len(want)-deleted, len(want))
		}
		uniques := map[string]string{}
		devices := map[string]string{}
		for tp, m := range held {
			var c struct {
				UniqueID     string `json:"unique_id"`
				State        string `json:"state_topic"`
				Attributes   string `json:"json_attributes_topic"`
				Availability []struct {
					Topic string `json:"topic"`
				} `json:"availability"`
				Device struct {
					Identifiers []string `json:"identifiers"`
				} `json:"device"`
			}
			if err := json.Unmarshal([]byte(m.Payload), &c); err != nil {
				t.Fatalf("%s: %v", tp, err)
			}
			if prev, dup := uniques[c.UniqueID]; dup {
				t.Errorf("unique_id %s in %s and %s", c.UniqueID, prev, tp)
			}
			uniques[c.UniqueID] = tp
			prefix := owner[tp]
			for _, read := range []string{c.State, c.Attributes} {
				if read != "" && !strings.HasPrefix(read, prefix+"/") {
					t.Errorf("%s of bridge %s reads %s", tp, prefix, read)
				}
			}
			if len(c.Availability) > 0 && c.Availability[0].Topic != prefix+"/bridge/state" {
				t.Errorf("%s of bridge %s: availability %s", tp, prefix, c.Availability[0].Topic)
			}
			for _, d := range c.Device.Identifiers {
				if p, ok := devices[d]; ok && p != prefix {
					t.Errorf("device %s in both bridges", d)
				}
				devices[d] = prefix
			}
		}
		if len(devices) != 2*(3+1) {
			t.Errorf("%d devices, want 8 (3 vehicles and a bridge each)", len(devices))
		}
	})
}

// TestHomeAssistantOldConfigsCleared upgrades a bridge with its own prefix
// whose earlier version left its configs under the legacy node, which
// every bridge shared: the bridge clears those, and only those, before it
// sends its new ones, so that Home Assistant has removed each old entity
// when it creates the new one (which then takes the old entity id). The
// broker comes up only after the bridge knows its vehicles, so that
// configs sent at once would come before the old ones are found.
func TestHomeAssistantOldConfigsCleared(t *testing.T) {
	brokertest.Each(t, func(t *testing.T, target brokertest.Target) {
		ha := brokertest.Prefix(t) + "/homeassistant"
		proxy := brokertest.NewProxy(t, strings.TrimPrefix(target.URL, "tcp://"))
		proxy.SetDown(true)
		f := newFixture(t, target, setup{
			sim:     exlivesim.Config{Vehicles: 3},
			noStart: true,
			edit: func(o *bridge.Options) {
				o.MQTT.URL = proxy.URL()
				o.Hass = bridge.HassConfig{Discovery: true, Prefix: ha}
				o.HassDelay = func() time.Duration { return 0 }
				o.HassSweepQuiet = 300 * time.Millisecond
			},
		})
		clearRetainedAtEnd(t, target.URL, ha+"/#", f.stop)
		_, fleet := f.sim.Fleet()

		// What the earlier version retained: the legacy form of every id,
		// under the legacy node, reading this bridge's topics; and the
		// configs of the bridge with the default prefix, which stay.
		legacy := hass.Config{Topics: topic.Layout{Prefix: topic.DefaultPrefix, DiscoveryPrefix: ha}, Version: "0.9"}
		old := map[string]string{}
		other := map[string]string{}
		for _, v := range fleet {
			for _, m := range hass.Configs(legacy, hass.Vehicle{ID: v.ID, Code: v.Code}) {
				if len(m.Payload) == 0 {
					continue // an entity that version did not have
				}
				old[m.Topic] = strings.ReplaceAll(string(m.Payload), `"exlive/`, `"`+f.prefix+"/")
			}
		}
		for _, m := range hass.Bridge(legacy) {
			old[m.Topic+"x"] = strings.ReplaceAll(string(m.Payload), `"exlive/`, `"`+f.prefix+"/")
		}
		for _, m := range hass.Configs(legacy, hass.Vehicle{ID: "V1", Code: "沪A1"}) {
			if len(m.Payload) == 0 {
				continue
			}
			tp := strings.Replace(m.Topic, "/V1_", "/other1_", 1)
			other[tp] = string(m.Payload)
		}
		pub := brokertest.Subscribe(t, target.URL)
		for tp, p := range old {
			pub.Publish(strings.TrimSuffix(tp, "x"), []byte(p), true)
		}
		for tp, p := range other {
			pub.Publish(tp, []byte(p), true)
		}
		sub := brokertest.Subscribe(t, target.URL, ha+"/#")
		sub.Wait(testWait, "the old configs retained", func(ms []brokertest.Msg) bool { return len(ms) >= len(old)+len(other) })
		start := len(sub.Messages())

		f.start()
		f.log.waitText(t, "inventory collected")
		proxy.SetDown(false)
		hcfg := hass.Config{Topics: topic.Layout{Prefix: f.prefix, DiscoveryPrefix: ha}, Version: f.opts.Version, Availability: true}
		want := map[string]string{}
		for _, v := range fleet {
			for _, m := range hass.Configs(hcfg, hass.Vehicle{ID: v.ID, Code: v.Code}) {
				want[m.Topic] = string(m.Payload)
			}
		}
		cleared := map[string]string{}
		for tp := range old {
			cleared[strings.TrimSuffix(tp, "x")] = ""
		}
		ms := waitPayloads(t, sub, start, want, "the new configs")
		ms = waitPayloads(t, sub, start, cleared, "the old configs cleared")

		// Each old config was cleared before the first new one was sent.
		firstNew := -1
		for i, m := range ms[start:] {
			if _, ok := want[m.Topic]; ok && m.Payload != "" {
				firstNew = i
				break
			}
		}
		for i, m := range ms[start:] {
			if _, ok := cleared[m.Topic]; ok && m.Payload == "" && i > firstNew {
				t.Errorf("%s cleared after a new config was sent (message %d, first new %d)", m.Topic, i, firstNew)
			}
		}
		held := retained(t, target.URL, ha+"/#")
		for tp := range cleared {
			if m, ok := held[tp]; ok {
				t.Errorf("%s still retained: %s", tp, m.Payload)
			}
		}
		for tp, p := range other {
			if m, ok := held[tp]; !ok || m.Payload != p {
				t.Errorf("%s, another bridge's, no longer retained as it was", tp)
			}
		}
		for tp, p := range want {
			m, ok := held[tp]
			switch {
			case p == "" && ok:
				t.Errorf("%s: deleted, yet retained: %s", tp, m.Payload)
			case p != "" && (!ok || m.Payload != p):
				t.Errorf("%s: new config not retained", tp)
			}
		}
		f.log.waitText(t, "Home Assistant configs of earlier versions swept")
		if n := fmt.Sprintf(`"cleared":%d`, len(old)); !strings.Contains(f.log.brief(), n) {
			t.Errorf("the sweep does not report %d configs cleared:\n%s", len(old), f.log.brief())
		}
	})
}

// TestInventoryBehindBusyStream queues 100 000 positions (10 000 under
// -race) ahead of the platform's answers to the inventory requests, half
// ahead of the group list and half ahead of the group's vehicles, so that
// the bridge publishes them all before the first vehicle comes: the
// retained vehicle list is whole. The platform that answers heartbeats is
// tried against both brokers; the literal one, whose lists end on the
// reader's idle time alone, against the embedded one.
func TestInventoryBehindBusyStream(t *testing.T) {
	backlog := 50_000
	if raceEnabled {
		backlog = 5_000
	}
	brokertest.EachHeavy(t, func(t *testing.T, target brokertest.Target) {
		for _, literal := range []bool{false, true} {
			if literal && target.Name != "embedded" {
				continue
			}
			t.Run(map[bool]string{false: "dialect", true: "literal"}[literal], func(t *testing.T) {
				f := newFixture(t, target, setup{
					sim:   exlivesim.Config{Vehicles: 100, Groups: 1, Rate: 0, Backlog: backlog, Literal: literal},
					watch: []string{"bridge/+"},
					edit: func(o *bridge.Options) {
						if literal {
							// No barrier: the reader's idle time alone ends
							// a list (see exlive's TestInventoryBehindBacklog).
							o.Exlive.InventoryQuiet = 300 * time.Millisecond
							o.Exlive.CommandTimeout = 500 * time.Millisecond
						}
					},
				})
				start := time.Now()
				m := f.sub.WaitTopic(120*time.Second, f.topic("bridge/vehicles"))
				var list []struct {
					ID string `json:"id"`
				}
				if err := json.Unmarshal([]byte(m.Payload), &list); err != nil {
					t.Fatalf("vehicle list: %v", err)
				}
				if len(list) != 100 {
					t.Errorf("the vehicle list has %d vehicles, want 100", len(list))
				}
				held := retained(t, target.URL, f.topic("bridge/vehicles"))
				if r := held[f.topic("bridge/vehicles")]; r.Payload != m.Payload {
					t.Errorf("the retained vehicle list is not the one published")
				}
				if sent := f.sim.BacklogSent(); sent != 2*backlog {
					t.Errorf("%d positions queued ahead of the lists, want %d", sent, 2*backlog)
				}
				if got := gather(t, f.bridge).value(t, "exlive_positions_received_total"); got < float64(2*backlog) {
					t.Errorf("%v positions received by the time the list was published, want at least %d", got, 2*backlog)
				}
				t.Logf("list of %d vehicles published %s after the start, behind %d positions", len(list), time.Since(start).Round(time.Millisecond), 2*backlog)
			})
		}
	})
}

// TestInventoryThatShrinksIsConfirmed: a list with at most half the
// vehicles of the one before is kept back once, and published when the
// next says the same; an empty one is never published over a full one.
func TestInventoryThatShrinksIsConfirmed(t *testing.T) {
	brokertest.Each(t, func(t *testing.T, target brokertest.Target) {
		f := newFixture(t, target, setup{sim: exlivesim.Config{Vehicles: 10, Rate: 0}, watch: []string{"bridge/+"}})
		list := func(m brokertest.Msg) int {
			var l []json.RawMessage
			if err := json.Unmarshal([]byte(m.Payload), &l); err != nil {
				t.Fatalf("vehicle list: %v", err)
			}
			return len(l)
		}
		if n := list(f.sub.WaitTopic(testWait, f.topic("bridge/vehicles"))); n != 10 {
			t.Fatalf("first list: %d vehicles, want 10", n)
		}
		restart := func(cfg exlivesim.Config, silent bool) {
			t.Helper()
			addr := f.sim.Addr()
			f.sim.Close()
			sim := exlivesim.New(cfg)
			sim.SetSilent(silent)
			if err := sim.Start(addr); err != nil {
				t.Fatalf("restart the platform on %s: %v", addr, err)
			}
			t.Cleanup(func() { sim.Close() })
			f.sim = sim
		}

		// The platform comes back listing 5 of the 10: kept back.
		restart(exlivesim.Config{Vehicles: 5, Rate: 0}, false)
		opsWaitMetric(t, f.bridge, `bridge_inventories_kept_total{reason="shrunk"}`, 1)
		f.log.waitText(t, "keeping the previous inventory until the next one says the same")
		if n := count(f.sub.Messages(), f.topic("bridge/vehicles")); n != 1 {
			t.Fatalf("%d lists published, want the first only", n)
		}
		// Then lists nothing at all: kept back too, however often.
		before := len(f.sub.Messages())
		restart(exlivesim.Config{Vehicles: 5, Rate: 0}, true)
		f.log.waitText(t, "platform listed no vehicles; keeping the previous inventory")
		// Lists the 5 again: the fleet did shrink, and the list says so.
		restart(exlivesim.Config{Vehicles: 5, Rate: 0}, false)
		msgs := f.sub.Wait(testWait, "the list of 5", func(ms []brokertest.Msg) bool {
			return len(after(ms, before, f.topic("bridge/vehicles"))) > 0
		})
		got := after(msgs, before, f.topic("bridge/vehicles"))
		if n := list(got[0]); len(got) != 1 || n != 5 {
			t.Errorf("lists published after the shrink was confirmed: %d, the first of %d vehicles; want one of 5", len(got), n)
		}
		m := gather(t, f.bridge)
		m.want(t, `bridge_inventories_kept_total{reason="shrunk"}`, 1)
		m.want(t, `bridge_inventories_kept_total{reason="empty"}`, 1)
	})
}

// TestSeveralPlatformAddresses gives the bridge a closed port and then the
// platform: it logs in to the second, and its session topic and status say
// which address is in use.
func TestSeveralPlatformAddresses(t *testing.T) {
	down := closedAddr(t)
	brokertest.Each(t, func(t *testing.T, target brokertest.Target) {
		f := newFixture(t, target, setup{
			watch: []string{"bridge/+"},
			edit:  func(o *bridge.Options) { o.Exlive.Addr = down + "," + o.Exlive.Addr },
		})
		up := f.sim.Addr()
		f.waitSession(0, `"state":"disconnected"`, `"addr":"`+down+`"`, "refused")
		payload, _ := f.waitSession(0, `"state":"logged_in"`)
		if !strings.Contains(payload, `"addr":"`+up+`"`) {
			t.Errorf("session %s, want the address in use %s", payload, up)
		}
		if st := f.bridge.Status().Session; st.Addr != up || st.State != "logged_in" {
			t.Errorf("status page: session %s at %q, want logged_in at %s", st.State, st.Addr, up)
		}
	})
}

// TestSameAccountTwoBridges runs two bridges on one account of a platform
// that allows one session per account, as an accidental second deployment
// would: they do not knock each other out in a tight loop, and both say,
// on their session topic, on the status page and in a metric, that another
// client may be using the account. When one stops, the other's hint goes.
func TestSameAccountTwoBridges(t *testing.T) {
	brokertest.Each(t, func(t *testing.T, target brokertest.Target) {
		retry := func(o *bridge.Options) {
			o.Exlive.RetryMin, o.Exlive.RetryMax = 20*time.Millisecond, 400*time.Millisecond
			o.Exlive.HealthyAfter = 1500 * time.Millisecond
		}
		a := newFixture(t, target, setup{sim: exlivesim.Config{Rate: 0, Exclusive: true}, watch: []string{"bridge/+"}, edit: retry})
		a.waitLoggedIn()
		b := newFixture(t, target, setup{watch: []string{"bridge/+"}, edit: func(o *bridge.Options) {
			retry(o)
			o.Exlive.Addr = a.sim.Addr()
		}})
		for _, f := range []*fixture{a, b} {
			payload, _ := f.waitSession(0, `"conflict":true`)
			if !strings.Contains(payload, `"hint":"`+exlive.ConflictHint+`"`) {
				t.Errorf("session %s lacks the hint", payload)
			}
			opsWaitMetric(t, f.bridge, "exlive_session_conflict", 1)
			if h := f.bridge.Status().Session.Hint; h != exlive.ConflictHint {
				t.Errorf("status page hint %q", h)
			}
			f.log.waitText(t, "another client may be logged in with this account")
		}
		before, _ := a.sim.Logins()
		window := 2 * time.Second
		time.Sleep(window) // a span of time is what is measured
		after, _ := a.sim.Logins()
		t.Logf("%d logins in %s after both saw the conflict; %d in all", after-before, window, after)
		if limit := 2*int(window/(400*time.Millisecond*4/5)) + 2; after-before > limit {
			t.Errorf("%d logins in %s, want at most %d", after-before, window, limit)
		}

		// A is stopped: B's next session lasts, and the hint goes.
		a.stop()
		from := len(b.sub.Messages())
		payload, _ := b.waitSession(from, `"state":"logged_in"`)
		for strings.Contains(payload, `"conflict":true`) {
			payload, from = b.waitSession(from+1, `"state":"logged_in"`)
		}
		opsWaitMetric(t, b.bridge, "exlive_session_conflict", 0)
		if h := b.bridge.Status().Session.Hint; h != "" {
			t.Errorf("status page hint %q after the other bridge stopped", h)
		}
	})
}
