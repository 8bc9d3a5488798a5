package hass

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/exlive2mqtt/exlive2mqtt/topic"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// goldenDoc renders messages as an indented JSON array of
// {topic, retain, payload}, payloads indented in place. json.Indent keeps
// key order and string escapes, so the file shows the exact payload bytes,
// only spread over lines for review.
func goldenDoc(t *testing.T, msgs []Message) []byte {
	t.Helper()
	var b bytes.Buffer
	b.WriteString("[\n")
	for i, m := range msgs {
		topic, _ := json.Marshal(m.Topic)
		var payload bytes.Buffer
		if len(m.Payload) == 0 {
			payload.WriteString(`""`)
		} else if err := json.Indent(&payload, m.Payload, "    ", "  "); err != nil {
			t.Fatalf("%s: payload is not JSON: %v", m.Topic, err)
		}
		b.WriteString("  {\n    \"topic\": ")
		b.Write(topic)
		if m.Retain {
			b.WriteString(",\n    \"retain\": true")
		} else {
			b.WriteString(",\n    \"retain\": false")
		}
		b.WriteString(",\n    \"payload\": ")
		b.Write(payload.Bytes())
		b.WriteString("\n  }")
		if i < len(msgs)-1 {
			b.WriteString(",")
		}
		b.WriteString("\n")
	}
	b.WriteString("]\n")
	return b.Bytes()
}

func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./hass -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the generated output; run go test ./hass -update and review the diff.\n--- got ---\n%s", path, got)
	}
}

var (
	plate = Vehicle{ID: "12345", Code: "沪A12345", Level: "12345"}
	// An id with characters that are illegal in topic levels and discovery
	// ids, no code, and no Level so that Config.Topics.Level derives it.
	awkward = Vehicle{ID: "fleet/7+a"}
)

func TestGolden(t *testing.T) {
	cfg := Config{Version: "1.2.3", Availability: true, Geofences: true}
	checkGolden(t, "plate.json", goldenDoc(t, Configs(cfg, plate)))
	// Without availability and geofences: those two entities deleted.
	checkGolden(t, "awkward_id.json", goldenDoc(t, Configs(Config{Topics: topic.Layout{Prefix: "fleet", DiscoveryPrefix: "ha"}}, awkward)))
	checkGolden(t, "bridge.json", goldenDoc(t, Bridge(cfg)))
}

func TestConfigsAreStable(t *testing.T) {
	a, b := Configs(Config{}, plate), Configs(Config{}, plate)
	if len(a) == 0 || !slices.EqualFunc(a, b, func(x, y Message) bool {
		return x.Topic == y.Topic && bytes.Equal(x.Payload, y.Payload) && x.Retain == y.Retain
	}) {
		t.Fatal("Configs is not deterministic")
	}
}

func TestEmptyID(t *testing.T) {
	if m := Configs(Config{}, Vehicle{Code: "沪A1"}); m != nil {
		t.Fatalf("Configs with empty ID = %v, want nil", m)
	}
}

func TestRemove(t *testing.T) {
	// Whatever the entities turned on, Remove deletes every one.
	add, del := Configs(allOn, plate), Remove(Config{}, plate)
	if len(add) != len(del) {
		t.Fatalf("Remove returned %d messages, Configs %d", len(del), len(add))
	}
	for i := range add {
		if del[i].Topic != add[i].Topic || len(del[i].Payload) != 0 || del[i].Payload == nil || !del[i].Retain {
			t.Errorf("Remove()[%d] = %+v, want empty retained payload on %s", i, del[i], add[i].Topic)
		}
	}
}

func TestDeviceName(t *testing.T) {
	for _, tc := range []struct {
		v    Vehicle
		want string
	}{
		{plate, "沪A12345"},
		{Vehicle{ID: "77"}, "77"},
	} {
		var p struct {
			Device struct{ Name string } `json:"device"`
		}
		if err := json.Unmarshal(Configs(Config{}, tc.v)[0].Payload, &p); err != nil {
			t.Fatal(err)
		}
		if p.Device.Name != tc.want {
			t.Errorf("%+v: device name %q, want %q", tc.v, p.Device.Name, tc.want)
		}
	}
}

var slugRE = regexp.MustCompile(`^[a-zA-Z0-9_-]+$`)

func TestSlug(t *testing.T) {
	for _, tc := range []struct{ id, want string }{
		{"12345", "12345"},
		{"abc_DEF-9", "abc_DEF-9"},
		{"a/b", "a_b_"},
		{"沪A12345", "_A12345_"},
		{"", ""},
	} {
		got := Slug(tc.id)
		if !slugRE.MatchString(got) {
			t.Errorf("Slug(%q) = %q, not [a-zA-Z0-9_-]+", tc.id, got)
		}
		if !strings.HasPrefix(got, tc.want) {
			t.Errorf("Slug(%q) = %q, want prefix %q", tc.id, got, tc.want)
		}
	}
	// Ids that sanitize alike must keep distinct slugs.
	seen := map[string]string{}
	for _, id := range []string{"a/b", "a+b", "a#b", "a_b", "a b", "a\x00b", "ab", strings.Repeat("x", 64), strings.Repeat("x", 65), strings.Repeat("x", 66), "", "_"} {
		s := Slug(id)
		if prev, ok := seen[s]; ok {
			t.Errorf("Slug(%q) = Slug(%q) = %q", id, prev, s)
		}
		seen[s] = id
		if !slugRE.MatchString(s) {
			t.Errorf("Slug(%q) = %q, not [a-zA-Z0-9_-]+", id, s)
		}
	}
	if got := Slug(strings.Repeat("x", 200)); len(got) > 64+11 {
		t.Errorf("Slug of a 200-byte id is %d bytes long", len(got))
	}
}

func FuzzSlug(f *testing.F) {
	f.Add("12345")
	f.Add("沪A12345")
	f.Add("a/b+c#\x00")
	f.Fuzz(func(t *testing.T, id string) {
		s := Slug(id)
		if !slugRE.MatchString(s) {
			t.Fatalf("Slug(%q) = %q", id, s)
		}
		if slugRE.MatchString(id) && len(id) <= 64 && s != id {
			t.Fatalf("Slug(%q) = %q, want the id itself", id, s)
		}
	})
}

func TestConfigFilter(t *testing.T) {
	if got := ConfigFilter(Config{}); got != "homeassistant/+/exlive2mqtt/+/config" {
		t.Errorf("ConfigFilter = %q", got)
	}
	// Every topic we build must match the filter, or start-up clean-up
	// would never see it.
	cfg := Config{Topics: topic.Layout{DiscoveryPrefix: "ha"}}
	msgs := append(Configs(cfg, awkward), Bridge(cfg)...)
	filter := strings.Split(ConfigFilter(cfg), "/")
	for _, m := range msgs {
		levels := strings.Split(m.Topic, "/")
		if len(levels) != len(filter) {
			t.Errorf("%s does not match %s", m.Topic, ConfigFilter(cfg))
			continue
		}
		for i := range filter {
			if filter[i] != "+" && filter[i] != levels[i] {
				t.Errorf("%s does not match %s", m.Topic, ConfigFilter(cfg))
			}
		}
	}
}

func TestClear(t *testing.T) {
	in := []Message{{Topic: "a", Payload: []byte("x"), Retain: false}}
	out := Clear(in)
	if string(in[0].Payload) != "x" {
		t.Error("Clear modified its argument")
	}
	if out[0].Topic != "a" || len(out[0].Payload) != 0 || !out[0].Retain {
		t.Errorf("Clear = %+v", out)
	}
}
