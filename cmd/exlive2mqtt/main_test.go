package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/exlive2mqtt/exlive2mqtt/exlive"
	"github.com/exlive2mqtt/exlive2mqtt/exlive/exlivesim"
	"github.com/exlive2mqtt/exlive2mqtt/internal/brokertest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Secrets the settings tests set, which must never be printed.
const (
	mtExlivePass   = "Ex-Pass-c0ffee-Ŧ"
	mtMQTTPass     = "Mq-Pass-5eed-Ж"
	mtFilePass     = "File-Pass-abad1dea"
	mtURLPass      = "Url-Pass-feedface"
	mtWrongPass    = "Wrong-Pass-deadbeef"
	mtMQTTFilePass = "Mq-File-Pass-0ddba11"
)

func mtEnviron(m map[string]string) []string {
	var out []string
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	return out
}

func mtHostname() (string, error) { return "testhost", nil }

// TestSettingsErrors: bad settings are one *ConfigError naming every bad
// variable with its value, secrets excepted, from loadSettings and from run,
// which prints nothing and connects nowhere.
func TestSettingsErrors(t *testing.T) {
	dir := t.TempDir()
	passFile := filepath.Join(dir, "exlive-pass")
	mqttPassFile := filepath.Join(dir, "mqtt-pass")
	if err := os.WriteFile(passFile, []byte(mtFilePass+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(mqttPassFile, []byte(mtMQTTFilePass), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "no-such-file")
	good := map[string]string{
		"EXLIVE_ADDR": "127.0.0.1:1502", "EXLIVE_USER": "acct", "EXLIVE_PASS": mtExlivePass,
		"MQTT_URL": "tcp://127.0.0.1:1883", "MQTT_PASSWORD": mtMQTTPass,
	}
	for _, c := range []struct {
		name string
		env  map[string]string // over good; "-" removes a variable
		want []string          // each problem, in full or its start
	}{
		{
			name: "required",
			env:  map[string]string{"EXLIVE_ADDR": "-", "EXLIVE_USER": "-", "EXLIVE_PASS": "-"},
			want: []string{"EXLIVE_ADDR: required", "EXLIVE_USER: required", "EXLIVE_PASS: required"},
		},
		{
			name: "values that do not parse",
			env: map[string]string{
				"EXLIVE_HEARTBEAT": "soon", "MQTT_RETAIN": "maybe", "EXLIVE_ENCODING": "latin1",
				"EXLIVE_TIMEZONE": "Mars/Olympus", "MQTT_QUEUE_LIMIT": "lots", "EXLIVE_DATUM": "itrf",
			},
			want: []string{`EXLIVE_HEARTBEAT="soon"`, `MQTT_RETAIN="maybe"`, `EXLIVE_ENCODING="latin1"`,
				`EXLIVE_TIMEZONE="Mars/Olympus"`, `MQTT_QUEUE_LIMIT="lots"`, `EXLIVE_DATUM="itrf"`},
		},
		{
			name: "values out of range",
			env: map[string]string{
				"EXLIVE_ADDR": "http://platform/", "MQTT_QOS": "2", "MQTT_URL": "ftp://127.0.0.1:21",
				"EXLIVE_MAX_FRAME": "12", "BRIDGE_MAX_REQUEST": "0", "LOG_LEVEL": "loud", "LOG_FORMAT": "xml",
				"EXLIVE_RETRY_MIN": "5s", "EXLIVE_RETRY_MAX": "1s", "MQTT_TOPIC_PREFIX": "a/+/b",
				"EXLIVE_IDLE_TIMEOUT": "10s", "OWNTRACKS_USER": "a/b", "EXLIVE_MAX_RATE": "-1", "EXLIVE_MAX_BURST": "0",
			},
			want: []string{`EXLIVE_ADDR="http://platform/"`, `MQTT_QOS="2"`, `MQTT_URL="ftp://127.0.0.1:21"`,
				`EXLIVE_MAX_FRAME="12"`, `BRIDGE_MAX_REQUEST="0"`, `LOG_LEVEL="loud"`, `LOG_FORMAT="xml"`,
				`EXLIVE_RETRY_MAX="1s"`, `MQTT_TOPIC_PREFIX="a/+/b"`, `EXLIVE_IDLE_TIMEOUT="10s"`, `OWNTRACKS_USER="a/b"`,
				`EXLIVE_MAX_RATE="-1": must be between 0 (no limit) and 1000000 requests a second`,
				`EXLIVE_MAX_BURST="0": must be between 1 and 1048576`},
		},
		{
			name: "topic rules",
			env:  map[string]string{"MQTT_TOPIC_RULES": "emqx"},
			want: []string{`MQTT_TOPIC_RULES="emqx": want mqtt, nats or rabbitmq`},
		},
		{
			// The topics the bridge publishes under as they are must suit
			// the broker too; the Home Assistant prefix only when used.
			name: "topics the rules refuse",
			env: map[string]string{"MQTT_TOPIC_RULES": "NATS", "MQTT_TOPIC_PREFIX": "/fleet one/", "OWNTRACKS_USER": "a>b",
				"HASS_DISCOVERY": "true", "HASS_PREFIX": "home.assistant"},
			want: []string{`MQTT_TOPIC_PREFIX="fleet one": has ' ', which the broker of MQTT_TOPIC_RULES=nats refuses or changes in a topic`,
				`OWNTRACKS_USER="a>b": has '>'`, `HASS_PREFIX="home.assistant": has '.'`},
		},
		{
			name: "topics the rules refuse, Home Assistant off",
			env:  map[string]string{"MQTT_TOPIC_RULES": "rabbitmq", "MQTT_TOPIC_PREFIX": "fleet.one", "HASS_PREFIX": "home.assistant"},
			want: []string{`MQTT_TOPIC_PREFIX="fleet.one": has '.', which the broker of MQTT_TOPIC_RULES=rabbitmq`},
		},
		{
			// One message names every bad variable, whether it failed to
			// parse or was read and found wrong.
			name: "parse and range errors together",
			env:  map[string]string{"EXLIVE_HEARTBEAT": "soon", "MQTT_QOS": "2", "LOG_LEVEL": "loud", "EXLIVE_USER": "-"},
			want: []string{`EXLIVE_HEARTBEAT="soon"`, `MQTT_QOS="2"`, `LOG_LEVEL="loud"`, "EXLIVE_USER: required"},
		},
		{
			name: "password and its file",
			env:  map[string]string{"EXLIVE_PASS_FILE": passFile, "MQTT_PASSWORD_FILE": mqttPassFile, "MQTT_QOS": "7"},
			want: []string{"EXLIVE_PASS_FILE: set together with PASS", "MQTT_PASSWORD_FILE: set together with PASSWORD", `MQTT_QOS="7"`},
		},
		{
			name: "password files read, and one missing",
			env: map[string]string{"EXLIVE_PASS": "-", "EXLIVE_PASS_FILE": passFile,
				"MQTT_PASSWORD": "-", "MQTT_PASSWORD_FILE": missing, "EXLIVE_HEARTBEAT": "0s"},
			want: []string{`MQTT_PASSWORD_FILE="` + missing + `": cannot read`, `EXLIVE_HEARTBEAT="0s"`},
		},
		{
			name: "credentials in the broker URL",
			env:  map[string]string{"MQTT_URL": "tcp://bridge:" + mtURLPass + "@127.0.0.1:1883"},
			want: []string{`MQTT_URL="tcp://bridge@127.0.0.1:1883": put the user name and password in MQTT_USERNAME and MQTT_PASSWORD`},
		},
		{
			name: "credentials in a broken broker URL",
			env:  map[string]string{"MQTT_URL": "tcp://bridge:" + mtURLPass + "@127.0.0.1:port"},
			want: []string{`MQTT_URL="…@127.0.0.1:port"`},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			env := make(map[string]string)
			for k, v := range good {
				env[k] = v
			}
			for k, v := range c.env {
				if v == "-" {
					delete(env, k)
				} else {
					env[k] = v
				}
			}
			_, err := loadSettings(env, os.ReadFile, mtHostname)
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("loadSettings = %v, want a *ConfigError", err)
			}
			if len(ce.Problems) != len(c.want) {
				t.Errorf("%d problems, want %d:\n%s", len(ce.Problems), len(c.want), err)
			}
			for _, w := range c.want {
				found := false
				for _, p := range ce.Problems {
					found = found || strings.HasPrefix(p, w)
				}
				if !found {
					t.Errorf("no problem starts with %s:\n%s", w, err)
				}
			}
			mtNoSecret(t, "the error", err.Error())

			// run reports the same, before printing or connecting anything.
			var stdout, stderr bytes.Buffer
			rerr := run(context.Background(), nil, mtEnviron(env), &stdout, &stderr)
			if !errors.As(rerr, &ce) || rerr.Error() != err.Error() {
				t.Errorf("run = %v, want %v", rerr, err)
			}
			if stdout.Len()+stderr.Len() > 0 {
				t.Errorf("run printed %q %q", stdout.String(), stderr.String())
			}
		})
	}
}

// mtNoSecret fails the test if s holds any secret the tests use.
func mtNoSecret(t *testing.T, where, s string) {
	t.Helper()
	for _, secret := range []string{mtExlivePass, mtMQTTPass, mtFilePass, mtURLPass, mtWrongPass, mtMQTTFilePass} {
		if strings.Contains(s, secret) {
			t.Errorf("%s holds the secret %q", where, secret)
		}
	}
}

// mtDesignDefaults are the defaults the settings table of docs/settings.md
// promises: every variable and its default ("required" and "empty" where
// -h shows none).
var mtDesignDefaults = []struct{ name, def string }{
	{"EXLIVE_ADDR", "required"}, {"EXLIVE_USER", "required"}, {"EXLIVE_PASS", "required"}, {"EXLIVE_PASS_FILE", "empty"},
	{"EXLIVE_LOGIN_VER", "4.6936"}, {"EXLIVE_LOGIN_TYPE", "json_common"}, {"EXLIVE_LOGIN_MODE", "empty"},
	{"EXLIVE_HEARTBEAT", "30s"}, {"EXLIVE_IDLE_TIMEOUT", "0 (off)"},
	{"EXLIVE_RETRY_MIN", "1s"}, {"EXLIVE_RETRY_MAX", "60s"}, {"EXLIVE_COMMAND_TIMEOUT", "10s"},
	{"EXLIVE_MAX_FRAME", "1048576"}, {"EXLIVE_ENCODING", "auto"}, {"EXLIVE_TIMEZONE", "Asia/Shanghai"},
	{"EXLIVE_INVENTORY_INTERVAL", "1h"},
	{"MQTT_URL", "tcp://localhost:1883"}, {"MQTT_USERNAME", "empty"}, {"MQTT_PASSWORD", "empty"}, {"MQTT_PASSWORD_FILE", "empty"},
	{"MQTT_CLIENT_ID", "exlive2mqtt-HOSTNAME"}, {"MQTT_TOPIC_PREFIX", "exlive"}, {"MQTT_TOPIC_RULES", "mqtt"}, {"MQTT_QOS", "1"}, {"MQTT_RETAIN", "true"},
	{"MQTT_CA_FILE", "empty"}, {"MQTT_CERT_FILE", "empty"}, {"MQTT_KEY_FILE", "empty"}, {"MQTT_TLS_INSECURE", "false"},
	{"MQTT_STORE_DIR", "empty"}, {"MQTT_QUEUE_LIMIT", "100000"}, {"MQTT_KEEPALIVE", "30s"}, {"MQTT_WRITE_TIMEOUT", "10s"},
	{"BRIDGE_READ_ONLY", "false"}, {"EXLIVE_DATUM", "wgs84"},
	{"EXLIVE_MAX_RATE", "0"}, {"EXLIVE_MAX_BURST", "10"}, {"BRIDGE_PASSTHROUGH_ANY_TERMINAL", "false"},
	{"HASS_DISCOVERY", "false"}, {"HASS_PREFIX", "homeassistant"},
	{"OWNTRACKS_ENABLE", "false"}, {"OWNTRACKS_USER", "exlive"},
	{"VEHICLE_OFFLINE_AFTER", "10m"}, {"EVENT_OVERSPEED_KMH", "0 (off)"}, {"EVENT_MOVING_KMH", "5"}, {"EVENT_STOPPED_AFTER", "3m"},
	{"GEOFENCES_FILE", "empty"},
	{"HTTP_ADDR", "127.0.0.1:9883"}, {"HTTP_WEB_CONFIG_FILE", "empty"}, {"HTTP_ALLOWED_HOSTS", "empty"}, {"LOG_LEVEL", "info"}, {"LOG_FORMAT", "json"},
}

func TestHelpListsEverySetting(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), []string{"-h"}, nil, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	// "  NAME  DEFAULT  help", columns two or more spaces apart.
	line := regexp.MustCompile(`(?m)^ +([A-Z][A-Z0-9_]+) {2,}(.*?) {2,}(.*)$`)
	listed := make(map[string][2]string)
	for _, m := range line.FindAllStringSubmatch(stdout.String(), -1) {
		listed[m[1]] = [2]string{m[2], m[3]}
	}
	for _, d := range mtDesignDefaults {
		got, ok := listed[d.name]
		if !ok {
			t.Errorf("-h does not list %s", d.name)
			continue
		}
		def, help := got[0], got[1]
		same := false
		switch d.def {
		case "required":
			same = def == "(none)"
		case "empty":
			same = def == "(none)" || def == `""`
		case "exlive2mqtt-HOSTNAME":
			same = def == "(none)" && strings.Contains(help, d.def)
		default:
			want := strings.TrimSuffix(d.def, " (off)")
			dw, err1 := time.ParseDuration(want + map[bool]string{true: "s"}[want == "0"])
			dg, err2 := time.ParseDuration(def)
			same = def == want || (err1 == nil && err2 == nil && dw == dg)
		}
		if !same {
			t.Errorf("-h lists %s with default %q, docs/settings.md says %q", d.name, def, d.def)
		}
	}
	if stderr.Len() > 0 {
		t.Errorf("-h wrote to stderr: %q", stderr.String())
	}
}

func TestVersionAndUnknownCommand(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), []string{"version"}, nil, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	if out := stdout.String(); !strings.HasSuffix(out, " ("+runtime.Version()+")\n") || strings.Count(out, "\n") != 1 {
		t.Errorf("version printed %q", out)
	}
	stdout.Reset()
	err := run(context.Background(), []string{"frobnicate"}, nil, &stdout, &stderr)
	var ce *ConfigError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), `"frobnicate"`) {
		t.Errorf("unknown command: %v, want a *ConfigError naming it", err)
	}
	if stdout.Len()+stderr.Len() > 0 {
		t.Errorf("unknown command printed %q %q", stdout.String(), stderr.String())
	}
}

// TestBinaryExitStatus runs the built program: bad settings and an unknown
// command exit 2 having connected nowhere; version and -h exit 0; probe
// exits 0 when the login held and 1 when the platform refused it.
func TestBinaryExitStatus(t *testing.T) {
	bin := mtBuild(t, "-ldflags", "-X main.version=1.2.3-test")
	platform, broker := mtListen(t), mtListen(t)
	env := []string{
		"EXLIVE_ADDR=" + platform.addr(), "EXLIVE_USER=acct", "EXLIVE_PASS=" + mtExlivePass,
		"MQTT_URL=tcp://" + broker.addr(), "MQTT_PASSWORD=" + mtMQTTPass,
		"HTTP_ADDR=127.0.0.1:0", "EXLIVE_HEARTBEAT=soon", "MQTT_QOS=2",
		"GORACE=atexit_sleep_ms=0",
	}
	fences := filepath.Join(t.TempDir(), "fences.json")
	if err := os.WriteFile(fences, []byte(`{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"name":"yard"},`+
		`"geometry":{"type":"Polygon","coordinates":[[[1,1],[2,1],[1,1]]]}}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	// env without EXLIVE_HEARTBEAT and MQTT_QOS: only the file is bad.
	goodEnv := append(slices.Clone(env[:6]), "GEOFENCES_FILE="+fences, "GORACE=atexit_sleep_ms=0")
	for _, c := range []struct {
		name   string
		args   []string
		env    []string
		status int
		out    string // in stdout and stderr
	}{
		{"bad settings", nil, env, 2, `EXLIVE_HEARTBEAT="soon"`},
		{"bad geofences file", nil, goodEnv, 2, `GEOFENCES_FILE="` + fences + `": features[0] "yard": ring 0 has 3 positions`},
		{"unknown command", []string{"frobnicate"}, env, 2, `unknown command "frobnicate"`},
		{"version", []string{"version"}, []string{"GORACE=atexit_sleep_ms=0"}, 0, "1.2.3-test (" + runtime.Version() + ")"},
		{"help", []string{"-h"}, []string{"GORACE=atexit_sleep_ms=0"}, 0, "EXLIVE_ADDR"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cmd := exec.Command(bin, c.args...)
			cmd.Env = c.env
			out, err := cmd.CombinedOutput()
			if code := cmd.ProcessState.ExitCode(); code != c.status {
				t.Errorf("exit status %d (%v), want %d; output:\n%s", code, err, c.status, out)
			}
			if !strings.Contains(string(out), c.out) {
				t.Errorf("output lacks %q:\n%s", c.out, out)
			}
			mtNoSecret(t, "the output", string(out))
		})
	}
	if n := platform.dialled(t); n != 0 {
		t.Errorf("the platform was dialled %d times", n)
	}
	if n := broker.dialled(t); n != 0 {
		t.Errorf("the broker was dialled %d times", n)
	}

	// probe: 0 when the login held, 1 when it did not.
	sim := ptStartSim(t, exlivesim.Config{Rate: 10})
	for _, c := range []struct {
		pass   string
		status int
		out    string
	}{
		{mtExlivePass, 0, "OK: the login held for the whole 1s"},
		{mtWrongPass, 1, `probe: the platform refused the login: "` + exlivesim.LoginRefused + `"`},
	} {
		cmd := exec.Command(bin, "probe", "-wait", "1s")
		cmd.Env = append(ptEnv(sim.Addr(), c.pass), "GORACE=atexit_sleep_ms=0")
		out, err := cmd.CombinedOutput()
		if code := cmd.ProcessState.ExitCode(); code != c.status {
			t.Errorf("probe: exit status %d (%v), want %d; output:\n%s", code, err, c.status, out)
		}
		if !strings.Contains(string(out), c.out) {
			t.Errorf("probe output lacks %q:\n%s", c.out, out)
		}
		mtNoSecret(t, "the probe's output", string(out))
	}
}

// mtBuild builds this command into the test's temporary directory (with
// the race detector when the test has it) and returns its path.
func mtBuild(t *testing.T, flags ...string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "exlive2mqtt")
	args := append([]string{"build", "-o", bin}, flags...)
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "-race" && s.Value == "true" {
				args = append(args, "-race")
			}
		}
	}
	goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goTool); err != nil {
		goTool = "go"
	}
	if out, err := exec.Command(goTool, append(args, ".")...).CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// mtListener counts the connections made to it.
type mtListener struct {
	ln    net.Listener
	mu    sync.Mutex
	from  []string // remote addresses, in the order accepted
	added chan struct{}
	done  chan struct{}
}

func mtListen(t *testing.T) *mtListener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := &mtListener{ln: ln, added: make(chan struct{}, 1), done: make(chan struct{})}
	go func() {
		defer close(l.done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			l.mu.Lock()
			l.from = append(l.from, c.RemoteAddr().String())
			l.mu.Unlock()
			c.Close()
			select {
			case l.added <- struct{}{}:
			default:
			}
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-l.done
	})
	return l
}

func (l *mtListener) addr() string { return l.ln.Addr().String() }

// dialled returns how many connections came before now. It connects once
// itself and waits for that connection to be accepted: connections are
// accepted in the order they were made, so every earlier one is counted.
func (l *mtListener) dialled(t *testing.T) int {
	t.Helper()
	c, err := net.Dial("tcp", l.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	me := c.LocalAddr().String()
	deadline := time.After(10 * time.Second)
	for {
		l.mu.Lock()
		for i, from := range l.from {
			if from == me {
				l.mu.Unlock()
				return i
			}
		}
		l.mu.Unlock()
		select {
		case <-l.added:
		case <-deadline:
			t.Fatal("own connection not accepted")
		}
	}
}

// mtListening finds the HTTP server's address in the log.
var mtListening = regexp.MustCompile(`"addr":"(127\.0\.0\.1:\d+)"[^\n]*"message":"http server listening"`)

// mtWriter collects output and lets a test wait for text in it.
type mtWriter struct {
	mu      sync.Mutex
	b       bytes.Buffer
	changed chan struct{}
}

func newMTWriter() *mtWriter { return &mtWriter{changed: make(chan struct{})} }

func (w *mtWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	close(w.changed)
	w.changed = make(chan struct{})
	return w.b.Write(p)
}

func (w *mtWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// wait waits for re to match the output from byte from on, and returns its
// last submatch.
func (w *mtWriter) wait(t *testing.T, from int, re *regexp.Regexp) string {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		w.mu.Lock()
		m := re.FindStringSubmatch(w.b.String()[from:])
		ch := w.changed
		w.mu.Unlock()
		if m != nil {
			return m[len(m)-1]
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("timed out waiting for %s in:\n%s", re, w.String())
		}
	}
}

// TestNoSecretInOutput runs the whole program at trace level against the
// simulated platform and the embedded broker (which takes any password),
// drives traffic, a disconnect and a login failure, and looks for the
// passwords everywhere the program writes: stdout, the log, every MQTT
// topic and payload, and every HTTP endpoint.
func TestNoSecretInOutput(t *testing.T) {
	sim := exlivesim.New(exlivesim.Config{Accounts: map[string]string{"acct": mtExlivePass}, Vehicles: 3, Rate: 30})
	if err := sim.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	brokerURL := brokertest.Embedded(t).URL()
	sub := brokertest.Subscribe(t, brokerURL, "#")
	mqttPassFile := filepath.Join(t.TempDir(), "mqtt-pass")
	if err := os.WriteFile(mqttPassFile, []byte(mtMQTTFilePass+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	const prefix = "sec"
	base := map[string]string{
		"EXLIVE_ADDR": sim.Addr(), "EXLIVE_USER": "acct", "EXLIVE_PASS": mtExlivePass,
		"EXLIVE_RETRY_MIN": "50ms", "EXLIVE_RETRY_MAX": "200ms", "EXLIVE_INVENTORY_QUIET": "50ms",
		"MQTT_URL": brokerURL, "MQTT_USERNAME": "bridge", "MQTT_PASSWORD": mtMQTTPass,
		"MQTT_TOPIC_PREFIX": prefix, "MQTT_CLIENT_ID": brokertest.ClientID(t),
		"HTTP_ADDR": "127.0.0.1:0", "LOG_LEVEL": "trace", "LOG_FORMAT": "json",
	}
	var stdout bytes.Buffer
	logs := newMTWriter()
	var bodies []string
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}

	// runFor runs the program with env until it has done what drive does,
	// then reads every HTTP endpoint and stops it.
	runFor := func(env map[string]string, drive func()) {
		t.Helper()
		logs.mu.Lock()
		from := logs.b.Len()
		logs.mu.Unlock()
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- run(ctx, nil, mtEnviron(env), &stdout, logs) }()
		defer func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("run = %v", err)
				}
			case <-time.After(15 * time.Second):
				t.Fatal("run did not return")
			}
		}()
		addr := logs.wait(t, from, mtListening)
		drive()
		for _, path := range []string{"/metrics", "/api/status", "/api/config", "/api/vehicles", "/", "/healthz", "/readyz"} {
			resp, err := client.Get("http://" + addr + path)
			if err != nil {
				t.Errorf("GET %s: %v", path, err)
				continue
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			bodies = append(bodies, path+": "+string(b))
		}
	}
	state := func(from int, want string) int {
		t.Helper()
		idx := -1
		sub.Wait(10*time.Second, "session "+want, func(ms []brokertest.Msg) bool {
			for i := from; i < len(ms); i++ {
				if ms[i].Topic == prefix+"/bridge/session" && strings.Contains(ms[i].Payload, `"state":"`+want+`"`) {
					idx = i
					return true
				}
			}
			return false
		})
		return idx
	}

	runFor(base, func() {
		i := state(0, "logged_in")
		sub.WaitTopic(10*time.Second, prefix+"/vehicles/V1/position")
		sub.WaitTopic(10*time.Second, prefix+"/bridge/vehicles")
		sub.Publish(prefix+"/vehicles/V1/command/set", []byte(`{"data":"STOP","request_id":"s1"}`), false)
		sub.WaitTopic(10*time.Second, prefix+"/vehicles/V1/command/result")
		sim.DropAll()
		i = state(i+1, "disconnected")
		state(i+1, "logged_in")
	})
	// Restarted with a wrong password, the MQTT one from a file.
	wrong := make(map[string]string)
	for k, v := range base {
		wrong[k] = v
	}
	wrong["EXLIVE_PASS"] = mtWrongPass
	delete(wrong, "MQTT_PASSWORD")
	wrong["MQTT_PASSWORD_FILE"] = mqttPassFile
	runFor(wrong, func() {
		state(len(sub.Messages()), "login_failed")
	})

	// The passwords were used...
	var passes []string
	for _, r := range sim.Received() {
		if l, ok := r.Msg.(*exlive.Login); ok {
			passes = append(passes, l.Pass.Reveal())
		}
	}
	if len(passes) < 3 || passes[0] != mtExlivePass || passes[len(passes)-1] != mtWrongPass {
		t.Errorf("the platform was sent the passwords %q", passes)
	}
	// ...and never shown.
	mtNoSecret(t, "stdout", stdout.String())
	mtNoSecret(t, "the log", logs.String())
	for _, m := range sub.Messages() {
		mtNoSecret(t, "MQTT "+m.Topic, m.Topic+" "+m.Payload)
	}
	for _, b := range bodies {
		mtNoSecret(t, "HTTP "+b[:strings.IndexByte(b, ':')], b)
	}
	if !strings.Contains(logs.String(), `"state":"login_failed"`) || len(bodies) != 14 {
		t.Errorf("traffic not as driven: %d bodies; log:\n%s", len(bodies), logs.String())
	}

	// Every log line is one JSON object, each member named once.
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		if err := mtOneJSONObject(line); err != nil {
			t.Errorf("log line %s: %v", line, err)
		}
	}
}

// mtOneJSONObject checks that line is a JSON object without a repeated
// member name.
func mtOneJSONObject(line string) error {
	dec := json.NewDecoder(strings.NewReader(line))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return fmt.Errorf("not a JSON object")
	}
	seen := make(map[string]bool)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		key := tok.(string)
		if seen[key] {
			return fmt.Errorf("member %q twice", key)
		}
		seen[key] = true
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return err
		}
	}
	if _, err := dec.Token(); err != nil {
		return err
	}
	if dec.More() {
		return fmt.Errorf("more after the object")
	}
	return nil
}
