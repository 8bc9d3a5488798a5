package bridge_test

// End-to-end tests of running several bridges (docs/scaling.md): one per
// account into one broker and one Home Assistant, and what an upgrade does
// to the discovery configs earlier versions left.

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/exlive2mqtt/exlive2mqtt/bridge"
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
			hcfg := hass.Config{Topics: topic.Layout{Prefix: f.prefix, DiscoveryPrefix: ha}, Version: f.opts.Version}
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
		if len(want) != 2*(3*8+1) {
			t.Fatalf("%d distinct config topics for two bridges of 3 vehicles each, want 50", len(want))
		}
		waitPayloads(t, sub, 0, want, "both bridges' configs")
		held := retained(t, target.URL, ha+"/#")
		if len(held) != len(want) {
			t.Errorf("%d retained configs, want %d", len(held), len(want))
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
				old[m.Topic] = strings.ReplaceAll(string(m.Payload), `"exlive/`, `"`+f.prefix+"/")
			}
		}
		for _, m := range hass.Bridge(legacy) {
			old[m.Topic+"x"] = strings.ReplaceAll(string(m.Payload), `"exlive/`, `"`+f.prefix+"/")
		}
		for _, m := range hass.Configs(legacy, hass.Vehicle{ID: "V1", Code: "沪A1"}) {
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
		hcfg := hass.Config{Topics: topic.Layout{Prefix: f.prefix, DiscoveryPrefix: ha}, Version: f.opts.Version}
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
			if m, ok := held[tp]; !ok || m.Payload != p {
				t.Errorf("%s: new config not retained", tp)
			}
		}
		f.log.waitText(t, "Home Assistant configs of earlier versions swept")
		if !strings.Contains(f.log.brief(), `"cleared":25`) {
			t.Errorf("the sweep does not report 25 configs cleared:\n%s", f.log.brief())
		}
	})
}
