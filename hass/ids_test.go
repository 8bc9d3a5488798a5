package hass

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/exlive2mqtt/exlive2mqtt/topic"
)

func layout(prefix string) Config {
	return Config{Topics: topic.Layout{Prefix: prefix, DiscoveryPrefix: "ha"}}
}

// The bridge with the default prefix names everything as earlier versions
// did: an existing installation sees no change.
func TestLegacyIDsUnchanged(t *testing.T) {
	cfg := Config{}
	if !cfg.Legacy() || cfg.Node() != "exlive2mqtt" {
		t.Fatalf("default prefix: Legacy %v, Node %q", cfg.Legacy(), cfg.Node())
	}
	id, tp := cfg.Entity("sensor", Vehicle{ID: "12345"}, ObjectSpeed)
	if id != "exlive2mqtt_12345_speed" || tp != "homeassistant/sensor/exlive2mqtt/12345_speed/config" {
		t.Errorf("Entity = %q, %q", id, tp)
	}
	if got := cfg.DeviceID(Vehicle{ID: "a/b"}); got != "exlive2mqtt_a/b" {
		t.Errorf("DeviceID = %q", got)
	}
	b := Bridge(cfg)[0]
	if b.Topic != "homeassistant/binary_sensor/exlive2mqtt/exlive_bridge/config" || !strings.Contains(string(b.Payload), `"unique_id":"exlive2mqtt_bridge_exlive"`) {
		t.Errorf("bridge config %s: %s", b.Topic, b.Payload)
	}
	if LegacyFilter(cfg) != "" {
		t.Errorf("LegacyFilter of the default prefix = %q, want none", LegacyFilter(cfg))
	}
}

// Bridges on one broker, whatever their prefixes and vehicle ids, never
// share a discovery topic, a unique_id or a device identifier: not even
// prefixes and ids built to meet when joined ("a" + "b_V1" and "a_b" +
// "V1"), nor the default prefix against one that starts like it.
func TestBridgesKeptApart(t *testing.T) {
	prefixes := []string{"exlive", "exlive_b", "a", "a_b", "fleet/one", "fleet_one", "b"}
	// Not "bridge_exlive": in the legacy form its device is the bridge's
	// (ids.go).
	ids := []string{"V1", "b_V1", "exlive_b_V1", "a_b_V1", "fleet/7+a", "bridge", "bridge_b", "x"}
	topics := map[string]string{}
	uniques := map[string]string{}
	devices := map[string]string{}
	seen := func(m map[string]string, key, who, what string) {
		if prev, ok := m[key]; ok && prev != who {
			t.Errorf("%s %q of %s and of %s", what, key, who, prev)
		}
		m[key] = who
	}
	for _, p := range prefixes {
		cfg := layout(p)
		filter := ConfigFilter(cfg)
		for _, id := range ids {
			v := Vehicle{ID: id}
			who := p + " " + id
			seen(devices, cfg.DeviceID(v), who, "device")
			for _, m := range Configs(cfg, v) {
				seen(topics, m.Topic, who, "topic")
				if len(m.Payload) == 0 {
					continue // an entity turned off: its config is deleted
				}
				var e struct {
					UniqueID string `json:"unique_id"`
				}
				json.Unmarshal(m.Payload, &e)
				seen(uniques, e.UniqueID, who, "unique_id")
				if !topicMatches(filter, m.Topic) {
					t.Errorf("%s: %s is not on the bridge's filter %s", who, m.Topic, filter)
				}
				for _, other := range prefixes {
					if other != p && topicMatches(ConfigFilter(layout(other)), m.Topic) {
						t.Errorf("%s: %s is on bridge %s's filter too", who, m.Topic, other)
					}
				}
			}
		}
		for _, m := range Bridge(cfg) {
			seen(topics, m.Topic, p+" bridge", "topic")
			var e struct {
				UniqueID string `json:"unique_id"`
			}
			json.Unmarshal(m.Payload, &e)
			seen(uniques, e.UniqueID, p+" bridge", "unique_id")
			seen(devices, e.UniqueID, p+" bridge", "device")
			if !topicMatches(filter, m.Topic) {
				t.Errorf("%s bridge: %s is not on the filter %s", p, m.Topic, filter)
			}
		}
	}
}

func TestNode(t *testing.T) {
	for _, tc := range []struct{ prefix, want string }{
		{"", "exlive2mqtt"},
		{"exlive", "exlive2mqtt"},
		{"fleet", "exlive2mqtt-fleet"},
		{"acme/fleet", "exlive2mqtt-acme_fleet_" + Slug("acme/fleet")[len("acme_fleet_"):]},
	} {
		got := layout(tc.prefix).Node()
		if got != tc.want || !slugRE.MatchString(got) {
			t.Errorf("Node of prefix %q = %q, want %q", tc.prefix, got, tc.want)
		}
	}
}

// The configs a bridge with prefix "fleet" published before bridges were
// told apart (testdata/legacy_fleet.json holds them as that version wrote
// them) are stale for it, and for no other bridge.
func TestStale(t *testing.T) {
	b, err := os.ReadFile("testdata/legacy_fleet.json")
	if err != nil {
		t.Fatal(err)
	}
	var old []struct {
		Topic   string          `json:"topic"`
		Payload json.RawMessage `json:"payload"`
	}
	if err := json.Unmarshal(b, &old); err != nil {
		t.Fatal(err)
	}
	if len(old) != 9 {
		t.Fatalf("%d legacy configs, want 9", len(old))
	}
	fleet := layout("fleet")
	filter := LegacyFilter(fleet)
	if filter != "ha/+/exlive2mqtt/+/config" {
		t.Fatalf("LegacyFilter = %q", filter)
	}
	for _, m := range old {
		if !topicMatches(filter, m.Topic) {
			t.Errorf("%s is not on %s", m.Topic, filter)
		}
		if !Stale(fleet, m.Payload) {
			t.Errorf("%s: not stale for its own bridge", m.Topic)
		}
		for _, other := range []string{"exlive", "fleet2", "flee", "fleet/bridge"} {
			if Stale(layout(other), m.Payload) {
				t.Errorf("%s: stale for bridge %q", m.Topic, other)
			}
		}
	}
	// The configs of the default bridge, which stay under the legacy node,
	// are no other bridge's to clear; nor is an empty payload, nor junk.
	for _, m := range append(Configs(Config{}, plate), Bridge(Config{})...) {
		if Stale(fleet, m.Payload) {
			t.Errorf("the default bridge's %s is stale for fleet", m.Topic)
		}
	}
	for _, p := range []string{"", "{", `{"availability":[{"topic":"fleet/bridge/state"}]}`, `"fleet/bridge/state"`} {
		if Stale(fleet, []byte(p)) {
			t.Errorf("Stale(%q) = true", p)
		}
	}
}

func topicMatches(filter, t string) bool {
	f, l := strings.Split(filter, "/"), strings.Split(t, "/")
	if len(f) != len(l) {
		return false
	}
	for i := range f {
		if f[i] != "+" && f[i] != l[i] {
			return false
		}
	}
	return true
}
