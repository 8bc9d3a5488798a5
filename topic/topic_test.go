package topic_test

import (
	"strings"
	"testing"

	"github.com/exlive2mqtt/exlive2mqtt/mqtt"
	"github.com/exlive2mqtt/exlive2mqtt/topic"
)

// The layout of docs/topics.md and docs/integrations.md, with a prefix of
// two levels.
func TestLayout(t *testing.T) {
	l := topic.Layout{Prefix: "p/q", DiscoveryPrefix: "ha", OwnTracksUser: "fleet"}
	for _, tc := range []struct{ got, want string }{
		{l.State(), "p/q/bridge/state"},
		{l.Session(), "p/q/bridge/session"},
		{l.Groups(), "p/q/bridge/groups"},
		{l.Vehicles(), "p/q/bridge/vehicles"},
		{l.Message(), "p/q/bridge/message"},
		{l.Position("V1"), "p/q/vehicles/V1/position"},
		{l.Passthrough("V1"), "p/q/vehicles/V1/passthrough"},
		{l.Availability("V1"), "p/q/vehicles/V1/availability"},
		{l.Event("V1"), "p/q/vehicles/V1/event"},
		{l.Geofences("V1"), "p/q/vehicles/V1/geofences"},
		{l.Set(topic.KindCommand, "V1"), "p/q/vehicles/V1/command/set"},
		{l.Set(topic.KindPassthrough, "V1"), "p/q/vehicles/V1/passthrough/set"},
		{l.Set(topic.KindPosition, "V1"), "p/q/vehicles/V1/position/set"},
		{l.Set(topic.KindMessage, "ignored"), "p/q/bridge/message/set"},
		{l.Set(topic.KindGroups, ""), "p/q/bridge/groups/set"},
		{l.Set(topic.KindVehicles, ""), "p/q/bridge/vehicles/set"},
		{l.SetFilter(topic.KindCommand), "p/q/vehicles/+/command/set"},
		{l.SetFilter(topic.KindVehicles), "p/q/bridge/vehicles/set"},
		{l.Result(topic.KindPassthrough, "V1"), "p/q/vehicles/V1/passthrough/result"},
		{l.Result(topic.KindMessage, ""), "p/q/bridge/message/result"},
		{l.All(), "p/q/#"},
		{l.BridgeFilter(), "p/q/bridge/+"},
		{l.PositionFilter(), "p/q/vehicles/+/position"},
		{l.OwnTracks("V1"), "owntracks/fleet/V1"},
		{l.OwnTracksCard("V1"), "owntracks/fleet/V1/info"},
		{l.DiscoveryConfig("exlive2mqtt", "sensor", "V1_speed"), "ha/sensor/exlive2mqtt/V1_speed/config"},
		{l.DiscoveryFilter("exlive2mqtt-b"), "ha/+/exlive2mqtt-b/+/config"},
		{l.DiscoveryStatus(), "ha/status"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}

func TestKinds(t *testing.T) {
	want := []struct {
		name    string
		vehicle bool
	}{{"command", true}, {"passthrough", true}, {"position", true}, {"message", false}, {"groups", false}, {"vehicles", false}}
	if int(topic.NumKinds) != len(want) {
		t.Fatalf("%d kinds, want %d", topic.NumKinds, len(want))
	}
	for k := range topic.NumKinds {
		if k.String() != want[k].name || k.Vehicle() != want[k].vehicle {
			t.Errorf("kind %d = %q, vehicle %v; want %q, %v", k, k, k.Vehicle(), want[k].name, want[k].vehicle)
		}
	}
	if s := topic.NumKinds.String(); s != "kind(6)" {
		t.Errorf("NumKinds.String() = %q", s)
	}
}

func TestParseSet(t *testing.T) {
	l := topic.Layout{Prefix: "p/q"}
	for k := range topic.NumKinds {
		level := ""
		if k.Vehicle() {
			level = "沪A 1"
		}
		gotLevel, gotKind, ok := l.ParseSet(l.Set(k, level))
		if !ok || gotKind != k || gotLevel != level {
			t.Errorf("ParseSet(Set(%s, %q)) = %q, %s, %v", k, level, gotLevel, gotKind, ok)
		}
	}
	// The level as it stands in the topic, even one no vehicle has.
	if level, k, ok := l.ParseSet("p/q/vehicles//command/set"); !ok || level != "" || k != topic.KindCommand {
		t.Errorf("empty level: %q, %s, %v", level, k, ok)
	}
	for _, bad := range []string{
		"", "p/q", "p/q/bridge/state", "p/q/vehicles/V1/position", "p/q/vehicles/V1/command/result",
		"p/q/vehicles/V1/message/set",   // not a vehicle's request
		"p/q/bridge/command/set",        // a vehicle's request without a vehicle
		"p/q/vehicles/V1/x/command/set", // two levels for V
		"p/q/vehicles/V1/nope/set", "p/q/bridge/nope/set",
		"p/qq/bridge/message/set", "x/p/q/bridge/message/set", "p/q/bridge/message/set/set",
	} {
		if level, k, ok := l.ParseSet(bad); ok {
			t.Errorf("ParseSet(%q) = %q, %s, true; want not a request", bad, level, k)
		}
	}
}

func TestParsePosition(t *testing.T) {
	l := topic.Layout{Prefix: "p/q"}
	if level, ok := l.ParsePosition(l.Position("V1")); !ok || level != "V1" {
		t.Errorf("ParsePosition(Position(V1)) = %q, %v", level, ok)
	}
	for _, bad := range []string{"p/q/vehicles/V1/passthrough", "p/q/bridge/vehicles", "p/q/vehicles/a/b/position", "p/vehicles/V1/position"} {
		if level, ok := l.ParsePosition(bad); ok {
			t.Errorf("ParsePosition(%q) = %q, true", bad, level)
		}
	}
}

// levelCases are the cases that pinned both rules the code had (mqtt.Level
// and hass.TopicLevel): Level keeps every one.
var levelCases = []struct{ id, want string }{
	{"V1", "V1"},
	{"12345", "12345"},
	{"沪A12345", "沪A12345"},
	{"a/b", "a_b"},
	{"a+b#c", "a_b_c"},
	{"a/b+c#d", "a_b_c_d"},
	{"nul\x00", "nul_"},
	{"ctl\x01\x7f", "ctl__"},
	{"a\x00b\nc\x7f", "a_b_c_"},
	{"c1\u0085", "c1_"},
	{"bad\xff", "bad_"},
	{"a\xffb", "a_b"},
	{"nonchar\uFFFE", "nonchar_"},
	{"nonchar\uFDD0", "nonchar_"},
	{"a b.c*>", "a b.c*>"}, // kept: MQTT allows them (Rules replace them for NATS, RabbitMQ)
	{"", ""},
}

func TestLevel(t *testing.T) {
	var l topic.Layout
	for _, tc := range levelCases {
		got := l.Level(tc.id)
		if got != tc.want {
			t.Errorf("Level(%q) = %q, want %q", tc.id, got, tc.want)
		}
		if got != "" && mqtt.ValidTopic("p/"+got) != nil {
			t.Errorf("Level(%q) = %q is not a valid level", tc.id, got)
		}
	}
	// The hot path: a safe id is its own level, with no allocation.
	if n := testing.AllocsPerRun(100, func() { _ = l.Level("沪A12345") }); n != 0 {
		t.Errorf("Level of a safe id allocates %v times", n)
	}
}

// rulesCases are ids with the characters some broker refuses, and their
// levels under each Rules.
var rulesCases = []struct{ id, mqtt, nats, rabbitmq string }{
	{"V1", "V1", "V1", "V1"},
	{"沪A 12345", "沪A 12345", "沪A_12345", "沪A 12345"},
	{"fleet.a b1", "fleet.a b1", "fleet_a_b1", "fleet_a b1"},
	{"a..b", "a..b", "a__b", "a__b"},
	{"*", "*", "_", "_"},
	{">", ">", "_", ">"},
	{"a*b>c", "a*b>c", "a_b_c", "a_b>c"},
	{"a/b.c d+e#", "a_b.c d_e_", "a_b_c_d_e_", "a_b_c d_e_"},
	{"é.\u00a0\u3000x", "é.\u00a0\u3000x", "é_\u00a0\u3000x", "é_\u00a0\u3000x"}, // other spaces are kept: both brokers carry them
	{"中.\x00\xff", "中.__", "中___", "中___"},
}

func TestLevelRules(t *testing.T) {
	for _, tc := range rulesCases {
		for _, c := range []struct {
			rules topic.Rules
			want  string
		}{{topic.RulesMQTT, tc.mqtt}, {topic.RulesNATS, tc.nats}, {topic.RulesRabbitMQ, tc.rabbitmq}} {
			l := topic.Layout{Rules: c.rules}
			got := l.Level(tc.id)
			if got != c.want {
				t.Errorf("%s: Level(%q) = %q, want %q", c.rules, tc.id, got, c.want)
			}
			if l.Level(got) != got {
				t.Errorf("%s: Level(%q) changed it again", c.rules, got)
			}
		}
	}
	// The hot path stays free of allocations under every rule.
	for r := range 3 {
		l := topic.Layout{Rules: topic.Rules(r)}
		if n := testing.AllocsPerRun(100, func() { _ = l.Level("沪A12345") }); n != 0 {
			t.Errorf("%s: Level of a safe id allocates %v times", l.Rules, n)
		}
	}
}

func TestParseRules(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want topic.Rules
	}{{"mqtt", topic.RulesMQTT}, {"nats", topic.RulesNATS}, {"rabbitmq", topic.RulesRabbitMQ}, {"NATS", topic.RulesNATS}, {"RabbitMQ", topic.RulesRabbitMQ}} {
		var r topic.Rules
		if err := r.UnmarshalText([]byte(tc.in)); err != nil || r != tc.want {
			t.Errorf("UnmarshalText(%q) = %v, %v; want %v", tc.in, r, err, tc.want)
		}
		if b, _ := tc.want.MarshalText(); string(b) != strings.ToLower(tc.in) {
			t.Errorf("MarshalText(%v) = %q", tc.want, b)
		}
	}
	for _, bad := range []string{"", "mosquitto", "nats ", "emqx"} {
		r := topic.RulesNATS
		err := r.UnmarshalText([]byte(bad))
		if err == nil || err.Error() != "want mqtt, nats or rabbitmq" || r != topic.RulesNATS {
			t.Errorf("UnmarshalText(%q) = %v, %v; want the error and r unchanged", bad, r, err)
		}
	}
	if s := topic.Rules(9).String(); s != "rules(9)" {
		t.Errorf("Rules(9).String() = %q", s)
	}
	// A value only code could make replaces what MQTT's rules do.
	if got := (topic.Layout{Rules: 9}).Level("a.b/c"); got != "a.b_c" {
		t.Errorf("Level under Rules(9) = %q, want a.b_c", got)
	}
}

func TestRulesRefused(t *testing.T) {
	for _, tc := range []struct {
		rules topic.Rules
		in    string
		want  string // "" for none
	}{
		{topic.RulesMQTT, "a.b c/d", ""},
		{topic.RulesNATS, "fleet/one", ""},
		{topic.RulesNATS, "fleet/one two", " "},
		{topic.RulesNATS, "x.y/z", "."},
		{topic.RulesNATS, "a/b>", ">"},
		{topic.RulesRabbitMQ, "fleet one/x", ""},
		{topic.RulesRabbitMQ, "fleet/a*", "*"},
		{topic.RulesRabbitMQ, "home.assistant", "."},
		{topic.RulesNATS, "a/+/#", ""}, // MQTT's own: the settings' own checks say so
	} {
		got := ""
		if c, ok := tc.rules.Refused(tc.in); ok {
			got = string(c)
		}
		if got != tc.want {
			t.Errorf("%s.Refused(%q) = %q, want %q", tc.rules, tc.in, got, tc.want)
		}
	}
}

// FuzzLevel: whatever the id and the rules, its level is one level that
// mqtt.ValidTopic accepts and the rules leave as it is, and a safe id is
// its own level.
func FuzzLevel(f *testing.F) {
	for _, tc := range levelCases {
		f.Add(tc.id, uint8(0))
	}
	for _, tc := range rulesCases {
		f.Add(tc.id, uint8(1))
		f.Add(tc.id, uint8(2))
	}
	f.Fuzz(func(t *testing.T, id string, rules uint8) {
		l := topic.Layout{Rules: topic.Rules(rules % 3)}
		got := l.Level(id)
		if strings.Contains(got, "/") || (got != "" && mqtt.ValidTopic("p/"+got) != nil) {
			t.Fatalf("Level(%q) = %q is not one valid level", id, got)
		}
		if l.Level(got) != got {
			t.Fatalf("Level(Level(%q)) changed it again", id)
		}
		if c, ok := l.Rules.Refused(got); ok {
			t.Fatalf("%s: Level(%q) = %q keeps %q", l.Rules, id, got, c)
		}
		if l.Rules == topic.RulesMQTT && mqtt.ValidTopic("p/"+id) == nil && id != "" && !strings.Contains(id, "/") && got != id {
			t.Fatalf("Level(%q) = %q changed a valid level", id, got)
		}
	})
}

// TestAppendPosition: the appended topic is Position(Level(id)) for every
// id, after what dst held, and a safe id costs no allocation.
func TestAppendPosition(t *testing.T) {
	l := topic.Layout{Prefix: "fleet/a"}
	for _, tc := range levelCases {
		got := string(l.AppendPosition([]byte("held"), tc.id))
		if want := "held" + l.Position(l.Level(tc.id)); got != want {
			t.Errorf("AppendPosition(%q) = %q, want %q", tc.id, got, want)
		}
	}
	buf := make([]byte, 0, 64)
	if n := testing.AllocsPerRun(100, func() { buf = l.AppendPosition(buf[:0], "沪A12345") }); n != 0 {
		t.Errorf("AppendPosition of a safe id allocates %v times", n)
	}
}
