package hass

import (
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/exlive2mqtt/exlive2mqtt/internal/jinjatest"
)

// positionFields are the keys of the position payload in the design's
// contract (P/vehicles/V/position). Templates may read nothing else.
var positionFields = []string{
	"id", "code", "lat", "lng", "speed", "direction", "time", "received", "valid", "alarm", "ignition",
	"fuel", "mileage", "wstate", "cstate", "posinfo",
}

// fullPosition is the contract's example payload.
const fullPosition = `{"id":"V1","code":"沪A12345","lat":31.230416,"lng":121.473701,"speed":42.5,"direction":180,
 "time":"2011-11-01T04:38:39Z","received":"2011-11-01T04:38:41Z","valid":true,"alarm":false,"ignition":true,
 "fuel":37.2,"mileage":12345.6,"wstate":"","cstate":"ACC开","posinfo":"上海市黄浦区人民大道"}`

// dictMethods are attributes of a Python dict. value_json.items resolves to
// the method, not to a key called "items", so no payload field may be named
// like one, and only p.items() may be called on purpose.
var dictMethods = []string{"clear", "copy", "fromkeys", "get", "items", "keys", "pop", "popitem", "setdefault", "update", "values"}

type template struct{ uid, text string }

// allOn turns on every entity Configs can make.
var allOn = Config{Availability: true, Geofences: true}

// templates returns the templates of the configs of plate that read the
// topic ending in /suffix (position, geofences), the value template of an
// entity under its unique_id and its attributes template under the
// unique_id and " attrs".
func templates(t *testing.T, suffix string, want int) []template {
	t.Helper()
	var out []template
	for _, m := range Configs(allOn, plate) {
		var p struct {
			UniqueID      string `json:"unique_id"`
			StateTopic    string `json:"state_topic"`
			AttrsTopic    string `json:"json_attributes_topic"`
			ValueTemplate string `json:"value_template"`
			AttrsTemplate string `json:"json_attributes_template"`
		}
		if err := json.Unmarshal(m.Payload, &p); err != nil {
			t.Fatal(err)
		}
		if p.ValueTemplate != "" && strings.HasSuffix(p.StateTopic, "/"+suffix) {
			out = append(out, template{p.UniqueID, p.ValueTemplate})
		}
		if p.AttrsTemplate != "" && strings.HasSuffix(p.AttrsTopic, "/"+suffix) {
			out = append(out, template{p.UniqueID + " attrs", p.AttrsTemplate})
		}
	}
	if len(out) != want {
		t.Fatalf("found %d templates reading %s, want %d", len(out), suffix, want)
	}
	return out
}

// TestTemplateFields checks, without a Jinja engine, that templates read
// only fields of the position payload and test each before printing it.
func TestTemplateFields(t *testing.T) {
	for _, f := range positionFields {
		if slices.Contains(dictMethods, f) {
			t.Errorf("position field %q shadows a dict method in templates", f)
		}
	}
	ref := regexp.MustCompile(`\b(value_json|p)\.([A-Za-z_][A-Za-z0-9_]*)`)
	for _, tpl := range templates(t, "position", 10) {
		if strings.Count(tpl.text, "{%") != strings.Count(tpl.text, "%}") || strings.Count(tpl.text, "{{") != strings.Count(tpl.text, "}}") {
			t.Errorf("%s: unbalanced delimiters in %s", tpl.uid, tpl.text)
		}
		if strings.Count(tpl.text, "{% if") != strings.Count(tpl.text, "{% endif %}") {
			t.Errorf("%s: unbalanced if/endif in %s", tpl.uid, tpl.text)
		}
		for _, m := range ref.FindAllStringSubmatch(tpl.text, -1) {
			field := m[2]
			if field == "items" && m[1] == "p" {
				continue
			}
			if !slices.Contains(positionFields, field) {
				t.Errorf("%s reads %s.%s, which the position payload does not have", tpl.uid, m[1], field)
				continue
			}
			guard := m[1] + "." + field + " is defined"
			number := m[1] + "." + field + " is number"
			if !strings.Contains(tpl.text, guard) && !strings.Contains(tpl.text, number) {
				t.Errorf("%s prints %s.%s without testing that it is present", tpl.uid, m[1], field)
			}
		}
	}
}

// TestTemplatesRender renders every template with Python's Jinja2 (which
// Home Assistant uses) against the full payload, an empty one, and the full
// one less each field in turn. It is skipped where python3 with jinja2 is
// not installed.
func TestTemplatesRender(t *testing.T) {
	python := jinjatest.Python(t)
	var full map[string]any
	if err := json.Unmarshal([]byte(fullPosition), &full); err != nil {
		t.Fatal(err)
	}
	payloads := map[string]any{"full": full, "empty": map[string]any{}}
	for _, f := range positionFields {
		m := map[string]any{}
		for k, v := range full {
			if k != f {
				m[k] = v
			}
		}
		payloads["no "+f] = m
	}
	out := render(t, python, templates(t, "position", 10), payloads)

	// Sensors: the value when present; "None" (unknown) or "" (keep the
	// last state) when missing, as the package doc explains.
	for _, tc := range []struct{ object, field, present, missing string }{
		{ObjectSpeed, "speed", "42.5", "None"},
		{ObjectDirection, "direction", "180", "None"},
		{ObjectFixTime, "time", "2011-11-01T04:38:39Z", "None"},
		{ObjectValid, "valid", "ON", "None"},
		{ObjectFuel, "fuel", "37.2", ""},
		{ObjectMileage, "mileage", "12345.6", ""},
		{ObjectAlarm, "alarm", "OFF", ""},
		{ObjectIgnition, "ignition", "ON", ""},
		{ObjectLastSeen, "received", "2011-11-01T04:38:41Z", "None"},
	} {
		got := out["exlive2mqtt_12345_"+tc.object]
		for name, s := range got {
			want := tc.present
			if name == "empty" || name == "no "+tc.field {
				want = tc.missing
			}
			if s != want {
				t.Errorf("%s with %s payload rendered %q, want %q", tc.object, name, s, want)
			}
		}
	}

	// Tracker: JSON with latitude/longitude when both are there, none of
	// lat/lng, and every other field passed through.
	for name, s := range out["exlive2mqtt_12345_tracker attrs"] {
		var attrs map[string]any
		if err := json.Unmarshal([]byte(s), &attrs); err != nil {
			t.Errorf("tracker attributes for %s payload are not JSON: %v: %s", name, err, s)
			continue
		}
		_, hasLat := attrs["latitude"].(float64)
		_, hasLon := attrs["longitude"].(float64)
		wantCoords := name != "empty" && name != "no lat" && name != "no lng"
		if hasLat != wantCoords || hasLon != wantCoords {
			t.Errorf("tracker attributes for %s payload: latitude/longitude present = %v/%v, want %v: %s", name, hasLat, hasLon, wantCoords, s)
		}
		if _, ok := attrs["lat"]; ok {
			t.Errorf("tracker attributes for %s payload keep lat: %s", name, s)
		}
		if name == "full" {
			if attrs["latitude"] != 31.230416 || attrs["longitude"] != 121.473701 || attrs["posinfo"] != "上海市黄浦区人民大道" || attrs["speed"] != 42.5 {
				t.Errorf("tracker attributes for the full payload: %s", s)
			}
		}
	}
}

// render renders each template against each payload, and returns the
// results by template and payload name.
func render(t *testing.T, python string, tpls []template, payloads map[string]any) map[string]map[string]string {
	t.Helper()
	var jobs []jinjatest.Job
	for _, tpl := range tpls {
		for name, payload := range payloads {
			b, err := json.Marshal(payload)
			if err != nil {
				t.Fatal(err)
			}
			jobs = append(jobs, jinjatest.Job{Name: tpl.uid + "\x00" + name, Template: tpl.text, Payload: string(b)})
		}
	}
	out := map[string]map[string]string{}
	for key, s := range jinjatest.Render(t, python, jobs) {
		uid, name, _ := strings.Cut(key, "\x00")
		if out[uid] == nil {
			out[uid] = map[string]string{}
		}
		out[uid][name] = s
	}
	return out
}

// TestGeofencesTemplatesRender renders the geofences sensor's templates
// against what the bridge publishes on P/vehicles/V/geofences (a JSON
// array of names) and against what it never publishes, which must change
// nothing rather than raise.
func TestGeofencesTemplatesRender(t *testing.T) {
	python := jinjatest.Python(t)
	long := make([]any, 40)
	for i := range long {
		long[i] = fmt.Sprintf("fence number %02d", i)
	}
	payloads := map[string]any{
		"two": []any{"depot", "Shenzhen Bay"}, "none": []any{}, "long": long,
		"object": map[string]any{"a": 1}, "text": "depot",
	}
	out := render(t, python, templates(t, "geofences", 2), payloads)
	state, attrs := out["exlive2mqtt_12345_geofences"], out["exlive2mqtt_12345_geofences attrs"]
	for name, want := range map[string]string{"two": "depot, Shenzhen Bay", "none": "none", "object": "", "text": ""} {
		if state[name] != want {
			t.Errorf("state of %s = %q, want %q", name, state[name], want)
		}
	}
	if s := state["long"]; utf8.RuneCountInString(s) != 255 || !strings.HasPrefix(s, "fence number 00, fence number 01") {
		t.Errorf("state of a long list = %d characters: %q", utf8.RuneCountInString(s), s)
	}
	for name, want := range map[string]string{
		"two": `{"geofences": ["depot", "Shenzhen Bay"]}`, "none": `{"geofences": []}`, "object": "{}", "text": "{}",
	} {
		var got, w any
		if err := json.Unmarshal([]byte(attrs[name]), &got); err != nil {
			t.Errorf("attributes of %s are not JSON: %q", name, attrs[name])
		}
		_ = json.Unmarshal([]byte(want), &w)
		if !reflect.DeepEqual(got, w) {
			t.Errorf("attributes of %s = %s, want %s", name, attrs[name], want)
		}
	}
}
