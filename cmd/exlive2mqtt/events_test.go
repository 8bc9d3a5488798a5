package main

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/exlive2mqtt/exlive2mqtt/exlive"
	"github.com/exlive2mqtt/exlive2mqtt/exlive/exlivesim"
	"github.com/exlive2mqtt/exlive2mqtt/internal/brokertest"
	"github.com/exlive2mqtt/exlive2mqtt/opt"
)

// fenceFeature is a GeoJSON feature of a fence: a square of about 2 km
// around lng, lat.
func fenceFeature(name string, lng, lat float64) string {
	c := func(x, y float64) string {
		return "[" + strconv.FormatFloat(x, 'f', -1, 64) + "," + strconv.FormatFloat(y, 'f', -1, 64) + "]"
	}
	const d = 0.01
	return `{"type":"Feature","properties":{"name":"` + name + `"},"geometry":{"type":"Polygon","coordinates":[[` +
		c(lng-d, lat-d) + "," + c(lng+d, lat-d) + "," + c(lng+d, lat+d) + "," + c(lng-d, lat+d) + "," + c(lng-d, lat-d) + `]]}}`
}

func fenceCollection(features ...string) string {
	return `{"type":"FeatureCollection","features":[` + strings.Join(features, ",") + `]}`
}

// TestGeofencesFileErrors: each bad GEOFENCES_FILE of the issue stops the
// program before it connects anywhere, with a settings error (exit status
// 2) that names the variable, the file and the bad feature.
func TestGeofencesFileErrors(t *testing.T) {
	dir := t.TempDir()
	good := fenceFeature("depot", 114, 22.6)
	env := map[string]string{
		"EXLIVE_ADDR": "127.0.0.1:1502", "EXLIVE_USER": "acct", "EXLIVE_PASS": mtExlivePass,
		"MQTT_URL": "tcp://127.0.0.1:1883",
	}
	for _, c := range []struct {
		name, file string // file: the content; "-" for none, "/" for a directory
		want       string // after GEOFENCES_FILE="…":
	}{
		{"missing", "-", "cannot read: open "},
		{"a directory", "/", "cannot read: read "},
		{"not JSON", `{"type":"FeatureCollection",`, "not JSON: unexpected end of JSON input"},
		{"not GeoJSON", `{"type":"Feature"}`, `not a GeoJSON FeatureCollection: type is "Feature"`},
		{"a feature without a name", fenceCollection(good, strings.Replace(good, `"name":"depot"`, `"title":"yard"`, 1)),
			`features[1]: no name: properties.name is missing, want a non-empty string`},
		{"a ring not closed", fenceCollection(good, `{"type":"Feature","properties":{"name":"yard"},"geometry":{"type":"Polygon","coordinates":[[[1,1],[2,1],[2,2],[1,2],[1,1.5]]]}}`),
			`features[1] "yard": ring 0 is not closed: its last position [1,1.5] is not its first [1,1]`},
		{"a ring of 3 points", fenceCollection(`{"type":"Feature","properties":{"name":"yard"},"geometry":{"type":"Polygon","coordinates":[[[1,1],[2,1],[1,1]]]}}`),
			`features[0] "yard": ring 0 has 3 positions, want at least 4 (the last one the first again)`},
		{"a point without a radius", fenceCollection(good, `{"type":"Feature","properties":{"name":"gate"},"geometry":{"type":"Point","coordinates":[114,22.6]}}`),
			`features[1] "gate": a Point needs a radius in metres, more than 0: properties.radius is missing`},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "-")+".json")
			switch c.file {
			case "-":
			case "/":
				if err := os.Mkdir(path, 0o755); err != nil {
					t.Fatal(err)
				}
			default:
				if err := os.WriteFile(path, []byte(c.file), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			e := map[string]string{"GEOFENCES_FILE": path}
			for k, v := range env {
				e[k] = v
			}
			var stdout, stderr strings.Builder
			err := run(context.Background(), nil, mtEnviron(e), &stdout, &stderr)
			var ce *ConfigError
			if !errors.As(err, &ce) || len(ce.Problems) != 1 {
				t.Fatalf("run = %v, want a *ConfigError with one problem", err)
			}
			if want := `GEOFENCES_FILE="` + path + `": ` + c.want; !strings.HasPrefix(ce.Problems[0], want) {
				t.Errorf("problem\n%s\nwant it to start with\n%s", ce.Problems[0], want)
			}
			if stdout.Len()+stderr.Len() > 0 {
				t.Errorf("run printed %q %q", stdout.String(), stderr.String())
			}
		})
	}
}

// TestUnknownVariables: a variable that looks like a setting and is not
// one is reported, the events' prefixless ones included; others are not.
func TestUnknownVariables(t *testing.T) {
	env := map[string]string{
		"EXLIVE_ADDR": "x", "EXLIVE_ADRR": "x", "MQTT_QOS": "1", "MQTT_QSO": "1",
		"VEHICLE_OFFLINE_AFTER": "1m", "VEHICLE_OFFLINE_AFTR": "1m", "EVENT_OVERSPEED_KMH": "80", "EVENT_OVERSPEED_KMM": "80",
		"GEOFENCES_FILE": "f", "GEOFENCES_FILES": "f", "EXLIVE2MQTT_TEST_MQTT_URL": "x",
		"PATH": "/bin", "HOME": "/root", "LOG_COLOR": "x", "HTTP_PROXY": "x", "VEHICLES": "x", "EVENTS": "x",
	}
	want := []string{"EVENT_OVERSPEED_KMM", "EXLIVE_ADRR", "GEOFENCES_FILES", "MQTT_QSO", "VEHICLE_OFFLINE_AFTR"}
	if got := unknownVariables(env); !slices.Equal(got, want) {
		t.Errorf("unknownVariables = %q, want %q", got, want)
	}
}

// TestGeofencesReloadOnSIGHUP runs the built program against the simulated
// platform and each broker: a fence of GEOFENCES_FILE is entered; the file
// changes and SIGHUP puts the new fences in force (the status page's too);
// a bad file on the next SIGHUP is logged and the fences stay as they were.
func TestGeofencesReloadOnSIGHUP(t *testing.T) {
	bin := mtBuild(t)
	brokertest.Each(t, func(t *testing.T, target brokertest.Target) {
		sim := exlivesim.New(exlivesim.Config{Vehicles: 1, Rate: 0})
		if err := sim.Start("127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		defer sim.Close()
		prefix := brokertest.Prefix(t)
		sub := brokertest.Subscribe(t, target.URL, prefix+"/#")
		file := filepath.Join(t.TempDir(), "fences.json")
		write := func(content string) {
			t.Helper()
			// Written whole and renamed, as an editor or a config
			// management tool does: SIGHUP never finds half a file.
			tmp := file + ".new"
			if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(tmp, file); err != nil {
				t.Fatal(err)
			}
		}
		write(fenceCollection(fenceFeature("depot", 114, 22.6)))

		cmd := exec.Command(bin)
		cmd.Env = mtEnviron(map[string]string{
			"EXLIVE_ADDR": sim.Addr(), "EXLIVE_USER": exlivesim.DefaultUser, "EXLIVE_PASS": exlivesim.DefaultPass,
			"EXLIVE_RETRY_MIN": "50ms", "EXLIVE_RETRY_MAX": "200ms", "EXLIVE_INVENTORY_QUIET": "50ms",
			"MQTT_URL": target.URL, "MQTT_TOPIC_PREFIX": prefix, "MQTT_CLIENT_ID": brokertest.ClientID(t),
			"HTTP_ADDR": "127.0.0.1:0", "GEOFENCES_FILE": file, "GORACE": "atexit_sleep_ms=0",
		})
		logs := newMTWriter()
		cmd.Stdout, cmd.Stderr = logs, logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		defer func() {
			cmd.Process.Signal(syscall.SIGTERM)
			select {
			case err := <-exited:
				if err != nil {
					t.Errorf("the program ended with %v:\n%s", err, logs)
				}
			case <-time.After(15 * time.Second):
				cmd.Process.Kill()
				t.Errorf("the program did not stop on SIGTERM:\n%s", logs)
			}
			// A shared broker keeps what the program retained.
			seen := map[string]bool{}
			for _, m := range sub.Messages() {
				if !seen[m.Topic] {
					seen[m.Topic] = true
					sub.Publish(m.Topic, nil, true)
				}
			}
		}()
		base := "http://" + logs.wait(t, 0, mtListening)
		if s := logs.wait(t, 0, regexp.MustCompile(`"geofences":(\d+)[^\n]*"message":"starting"`)); s != "1" {
			t.Errorf("started with %s geofences, want 1", s)
		}
		sub.WaitTopic(10*time.Second, prefix+"/bridge/vehicles")

		geofences := prefix + "/vehicles/V1/geofences"
		n := 0 // positions sent, each a second of gpstime after the last
		at := func(lat, lng float64) {
			n++
			sim.Send(&exlive.Position{ID: "V1", Lat: lat, Lng: lng, Speed: opt.Some(0.0), Time: opt.Some(time.Now().Add(time.Duration(n) * time.Second))})
		}
		waitFences := func(want string) {
			t.Helper()
			sub.Wait(10*time.Second, geofences+" = "+want, func(ms []brokertest.Msg) bool {
				for i := len(ms) - 1; i >= 0; i-- {
					if ms[i].Topic == geofences {
						return ms[i].Payload == want
					}
				}
				return false
			})
		}
		at(22.6, 114)
		waitFences(`["depot"]`)

		// The depot moves 50 km away and a yard is where it was.
		write(fenceCollection(fenceFeature("depot", 114.5, 22.6), fenceFeature("yard", 114, 22.6)))
		from := len(logs.String())
		cmd.Process.Signal(syscall.SIGHUP)
		logs.wait(t, from, regexp.MustCompile(`"geofences":2[^\n]*"message":"geofences reloaded"`))
		at(22.6, 114)
		waitFences(`["yard"]`)
		if fc := httpGet(t, base+"/api/geofences"); !strings.Contains(fc, `"name":"yard"`) || !strings.Contains(fc, `[114.49,22.59]`) {
			t.Errorf("/api/geofences after the reload: %s", fc)
		}

		// A bad file: logged, and the fences stay: leaving the yard is
		// still seen.
		write(fenceCollection(fenceFeature("depot", 114.5, 22.6), `{"type":"Feature","properties":{"name":"broken"},"geometry":{"type":"Point","coordinates":[114,22.6]}}`))
		from = len(logs.String())
		cmd.Process.Signal(syscall.SIGHUP)
		line := logs.wait(t, from, regexp.MustCompile(`([^\n]*"message":"geofences not reloaded; the previous ones stay in force"[^\n]*)`))
		for _, want := range []string{`GEOFENCES_FILE=\"` + file + `\"`, `features[1] \"broken\": a Point needs a radius`, `"kept":2`, `"level":"error"`} {
			if !strings.Contains(line, want) {
				t.Errorf("the log line lacks %s:\n%s", want, line)
			}
		}
		at(22.7, 114)
		waitFences(`[]`)
		var events []string
		sub.Wait(10*time.Second, "three events", func(ms []brokertest.Msg) bool {
			events = events[:0]
			for _, m := range ms {
				if m.Topic == prefix+"/vehicles/V1/event" {
					events = append(events, m.Payload)
				}
			}
			return len(events) >= 3
		})
		if len(events) != 3 || !strings.Contains(events[0], `"type":"geofence_exit"`) || !strings.Contains(events[0], `"geofence":"depot"`) ||
			!strings.Contains(events[1], `"type":"geofence_enter"`) || !strings.Contains(events[2], `"type":"geofence_exit"`) || !strings.Contains(events[2], `"geofence":"yard"`) {
			t.Errorf("events: %q", events)
		}
	})
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v", url, resp.StatusCode, err)
	}
	return string(b)
}
