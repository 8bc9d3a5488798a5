package events

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/caarlos0/env/v11"
)

func parseConfig(t *testing.T, environ map[string]string) Config {
	t.Helper()
	var c Config
	if err := env.ParseWithOptions(&c, env.Options{Environment: environ}); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestConfigDefaults(t *testing.T) {
	c := parseConfig(t, map[string]string{})
	if c != Defaults() {
		t.Errorf("the envDefault tags give %+v, Defaults() %+v", c, Defaults())
	}
	if err := c.Validate(); err != nil {
		t.Errorf("the defaults are not valid: %v", err)
	}
	c = parseConfig(t, map[string]string{
		"VEHICLE_OFFLINE_AFTER": "30m", "EVENT_OVERSPEED_KMH": "90.5", "EVENT_MOVING_KMH": "8",
		"EVENT_STOPPED_AFTER": "5m", "GEOFENCES_FILE": "/etc/fences.json",
	})
	want := Config{OfflineAfter: 30 * time.Minute, OverspeedKmh: 90.5, MovingKmh: 8, StoppedAfter: 5 * time.Minute, GeofencesFile: "/etc/fences.json"}
	if c != want {
		t.Errorf("parsed %+v, want %+v", c, want)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		environ map[string]string
		want    string
	}{
		{map[string]string{"VEHICLE_OFFLINE_AFTER": "0"}, ""},
		{map[string]string{"VEHICLE_OFFLINE_AFTER": "1s", "EVENT_MOVING_KMH": "0", "EVENT_STOPPED_AFTER": "0s", "EVENT_OVERSPEED_KMH": "1000"}, ""},
		{map[string]string{"VEHICLE_OFFLINE_AFTER": "-1m"}, `VEHICLE_OFFLINE_AFTER="-1m0s": must be 0 (off) or at least 1s`},
		{map[string]string{"VEHICLE_OFFLINE_AFTER": "500ms"}, `VEHICLE_OFFLINE_AFTER="500ms": must be 0 (off) or at least 1s`},
		{map[string]string{"EVENT_OVERSPEED_KMH": "-5"}, `EVENT_OVERSPEED_KMH="-5": must be between 0 and 1000 km/h`},
		{map[string]string{"EVENT_OVERSPEED_KMH": "NaN"}, `EVENT_OVERSPEED_KMH="NaN": must be between 0 and 1000 km/h`},
		{map[string]string{"EVENT_OVERSPEED_KMH": "+Inf"}, `EVENT_OVERSPEED_KMH="+Inf": must be between 0 and 1000 km/h`},
		{map[string]string{"EVENT_MOVING_KMH": "1e4"}, `EVENT_MOVING_KMH="10000": must be between 0 and 1000 km/h`},
		{map[string]string{"EVENT_STOPPED_AFTER": "-1s"}, `EVENT_STOPPED_AFTER="-1s": must be 0 (at the first slow position) or more`},
		{map[string]string{"VEHICLE_OFFLINE_AFTER": "-1s", "EVENT_MOVING_KMH": "-1"}, `VEHICLE_OFFLINE_AFTER="-1s": must be 0 (off) or at least 1s` + "\n" + `EVENT_MOVING_KMH="-1": must be between 0 and 1000 km/h`},
	} {
		c := parseConfig(t, tc.environ)
		got := ""
		if err := c.Validate(); err != nil {
			got = err.Error()
		}
		if got != tc.want {
			t.Errorf("%v:\n got %s\nwant %s", tc.environ, got, tc.want)
		}
	}
}

func TestLoadFences(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.json")
	bad := filepath.Join(dir, "bad.json")
	write(t, good, `{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"name":"depot"},"geometry":{"type":"Polygon","coordinates":[[[1,1],[2,1],[2,2],[1,1]]]}}]}`)
	write(t, bad, `{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"name":"depot"},"geometry":{"type":"Polygon","coordinates":[[[1,1],[2,1],[2,2],[1,2]]]}}]}`)

	c := Defaults()
	if s, err := c.LoadFences(); s != nil || err != nil {
		t.Errorf("LoadFences() without GEOFENCES_FILE = %v, %v; want nil, nil", s, err)
	}
	c.GeofencesFile = good
	if s, err := c.LoadFences(); err != nil || s.Len() != 1 || s.Fence(0).Name != "depot" {
		t.Errorf("LoadFences(good) = %v, %v", s, err)
	}
	for _, tc := range []struct{ file, want string }{
		{bad, `GEOFENCES_FILE="` + bad + `": features[0] "depot": ring 0 is not closed: its last position [1,2] is not its first [1,1]`},
		{filepath.Join(dir, "none.json"), `GEOFENCES_FILE="` + dir + `/none.json": cannot read: open ` + dir + `/none.json: no such file or directory`},
	} {
		c.GeofencesFile = tc.file
		s, err := c.LoadFences()
		if err == nil || err.Error() != tc.want || s != nil {
			t.Errorf("LoadFences(%s) = %v, %v\nwant %s", filepath.Base(tc.file), s, err, tc.want)
		}
	}
}

func write(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}
