package events

import (
	"encoding/json"
	"testing"
	"time"
)

func TestAppendEvent(t *testing.T) {
	when := time.Date(2024, 5, 1, 16, 0, 0, 0, time.FixedZone("CST", 8*3600))
	base := Event{ID: "V1", Code: "粤B12345", Time: when, Lat: 22.543096, Lng: 114.057865, HasLocation: true}
	with := func(f func(*Event)) *Event { e := base; f(&e); return &e }
	for _, tc := range []struct {
		ev   *Event
		want string
	}{
		{with(func(e *Event) { e.Type = Online }), `{"type":"online","id":"V1","code":"粤B12345","time":"2024-05-01T08:00:00Z","lat":22.543096,"lng":114.057865}`},
		{with(func(e *Event) { e.Type, e.Since = Offline, when.Add(-11*time.Minute) }),
			`{"type":"offline","id":"V1","code":"粤B12345","time":"2024-05-01T08:00:00Z","lat":22.543096,"lng":114.057865,"last_seen":"2024-05-01T07:49:00Z"}`},
		{with(func(e *Event) { e.Type, e.Code, e.HasLocation = Offline, "", false }), `{"type":"offline","id":"V1","time":"2024-05-01T08:00:00Z"}`},
		{with(func(e *Event) { e.Type = AlarmOn }), `{"type":"alarm_on","id":"V1","code":"粤B12345","time":"2024-05-01T08:00:00Z","lat":22.543096,"lng":114.057865}`},
		{with(func(e *Event) { e.Type = AlarmOff }), `{"type":"alarm_off","id":"V1","code":"粤B12345","time":"2024-05-01T08:00:00Z","lat":22.543096,"lng":114.057865}`},
		{with(func(e *Event) { e.Type = IgnitionOn }), `{"type":"ignition_on","id":"V1","code":"粤B12345","time":"2024-05-01T08:00:00Z","lat":22.543096,"lng":114.057865}`},
		{with(func(e *Event) { e.Type, e.HasLocation = IgnitionOff, false }), `{"type":"ignition_off","id":"V1","code":"粤B12345","time":"2024-05-01T08:00:00Z"}`},
		{with(func(e *Event) { e.Type, e.Speed, e.Limit = Overspeed, 92.5, 80 }),
			`{"type":"overspeed","id":"V1","code":"粤B12345","time":"2024-05-01T08:00:00Z","lat":22.543096,"lng":114.057865,"speed":92.5,"limit":80}`},
		{with(func(e *Event) { e.Type, e.Geofence = GeofenceEnter, `depot "north"` }),
			`{"type":"geofence_enter","id":"V1","code":"粤B12345","time":"2024-05-01T08:00:00Z","lat":22.543096,"lng":114.057865,"geofence":"depot \"north\""}`},
		{with(func(e *Event) { e.Type, e.Geofence = GeofenceExit, "深圳湾" }),
			`{"type":"geofence_exit","id":"V1","code":"粤B12345","time":"2024-05-01T08:00:00Z","lat":22.543096,"lng":114.057865,"geofence":"深圳湾"}`},
		{with(func(e *Event) { e.Type, e.Speed = Moving, 12 }),
			`{"type":"moving","id":"V1","code":"粤B12345","time":"2024-05-01T08:00:00Z","lat":22.543096,"lng":114.057865,"speed":12}`},
		{with(func(e *Event) { e.Type, e.Since = Stopped, when.Add(-3*time.Minute) }),
			`{"type":"stopped","id":"V1","code":"粤B12345","time":"2024-05-01T08:00:00Z","lat":22.543096,"lng":114.057865,"since":"2024-05-01T07:57:00Z"}`},
	} {
		got := string(AppendEvent(nil, tc.ev))
		if got != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.ev.Type, got, tc.want)
		}
		if !json.Valid([]byte(got)) {
			t.Errorf("%s: not JSON: %s", tc.ev.Type, got)
		}
	}
	buf := make([]byte, 0, 256)
	ev := with(func(e *Event) { e.Type, e.Speed, e.Limit = Overspeed, 92.5, 80 })
	if n := testing.AllocsPerRun(100, func() { buf = AppendEvent(buf[:0], ev) }); n != 0 {
		t.Errorf("AppendEvent allocates %v times with room in dst", n)
	}
}

func TestAppendGeofences(t *testing.T) {
	for _, tc := range []struct {
		names []string
		want  string
	}{
		{nil, `[]`},
		{[]string{"depot"}, `["depot"]`},
		{[]string{"a \"b\"", "深圳湾", "x\ny"}, `["a \"b\"","深圳湾","x\ny"]`},
	} {
		if got := string(AppendGeofences(nil, tc.names)); got != tc.want {
			t.Errorf("AppendGeofences(%q) = %s, want %s", tc.names, got, tc.want)
		}
	}
}

func TestTypes(t *testing.T) {
	seen := map[string]bool{}
	for _, ty := range Types() {
		s := ty.String()
		if s == "" || s == "unknown" || seen[s] {
			t.Errorf("type %d: name %q", ty, s)
		}
		seen[s] = true
	}
	if len(seen) != 11 {
		t.Errorf("%d types, want 11", len(seen))
	}
	if Type(0).String() != "" || Type(200).String() != "unknown" {
		t.Errorf("Type(0) = %q, Type(200) = %q", Type(0), Type(200))
	}
}
