package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/exlive2mqtt/exlive2mqtt/exlive/exlivesim"
	"github.com/exlive2mqtt/exlive2mqtt/internal/brokertest"
	"github.com/exlive2mqtt/exlive2mqtt/internal/certtest"
	"go.uber.org/goleak"
)

const opsWait = 15 * time.Second

// opsNoLeaks checks, when the test and its cleanups are over, that the test
// left no goroutine behind. It is registered first, so it runs last.
func opsNoLeaks(t *testing.T) {
	t.Helper()
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
}

// opsLog collects what run writes to stderr, from several goroutines.
type opsLog struct {
	mu      sync.Mutex
	b       bytes.Buffer
	changed chan struct{}
}

func newOpsLog() *opsLog { return &opsLog{changed: make(chan struct{})} }

func (l *opsLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	close(l.changed)
	l.changed = make(chan struct{})
	return l.b.Write(p)
}

func (l *opsLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// httpAddr waits for the HTTP server's "listening" line in the JSON log and
// returns the address it is bound to, so that tests can ask for port 0.
// done is the channel run's result comes on: a run that ends first fails
// the test with its error.
func (l *opsLog) httpAddr(t *testing.T, done <-chan error) string {
	t.Helper()
	deadline := time.After(opsWait)
	for {
		l.mu.Lock()
		text, changed := l.b.String(), l.changed
		l.mu.Unlock()
		sc := bufio.NewScanner(strings.NewReader(text))
		for sc.Scan() {
			var line struct {
				Message string `json:"message"`
				Addr    string `json:"addr"`
			}
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Message == "http server listening" && line.Addr != "" {
				return line.Addr
			}
		}
		select {
		case <-changed:
		case err := <-done:
			t.Fatalf("run ended before the HTTP server listened: %v\n%s", err, text)
		case <-deadline:
			t.Fatalf("no 'http server listening' in the log after %v:\n%s", opsWait, text)
		}
	}
}

// opsClosedAddr returns a loopback address where nothing listens.
func opsClosedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// opsHealthcheck runs `exlive2mqtt healthcheck` with HTTP_ADDR=addr and
// the other variables of env. A non-nil error is what makes main exit 1.
func opsHealthcheck(addr string, env ...string) error {
	var out bytes.Buffer
	return run(context.Background(), []string{"healthcheck"}, append([]string{"HTTP_ADDR=" + addr}, env...), &out, &out)
}

// opsRun runs the program with args and environ until the test ends, and
// returns the address its HTTP server listens on and its log.
func opsRun(t *testing.T, args, environ []string) (addr string, logs *opsLog) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	logs = newOpsLog()
	done := make(chan error, 1)
	go func() { done <- run(ctx, args, environ, io.Discard, logs) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("run = %v", err)
			}
		case <-time.After(opsWait):
			t.Error("run did not stop")
		}
	})
	return logs.httpAddr(t, done), logs
}

// opsWaitHealth runs the health check, with the variables of env, until
// its outcome is what is wanted.
func opsWaitHealth(t *testing.T, addr string, healthy bool, what string, env ...string) error {
	t.Helper()
	deadline := time.Now().Add(opsWait)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		err := opsHealthcheck(addr, env...)
		if (err == nil) == healthy {
			return err
		}
		if time.Now().After(deadline) {
			t.Fatalf("healthcheck: waited %v for %s; last result: %v", opsWait, what, err)
		}
		<-tick.C
	}
}

func TestHealthcheckWithoutBridge(t *testing.T) {
	opsNoLeaks(t)
	err := opsHealthcheck(opsClosedAddr(t))
	if err == nil {
		t.Fatal("healthcheck passed with nothing listening")
	}
	var ce *ConfigError
	if errors.As(err, &ce) {
		t.Errorf("healthcheck error is a ConfigError (exit 2), want a plain failure (exit 1): %v", err)
	}

	err = opsHealthcheck("")
	if err == nil || !strings.Contains(err.Error(), "HTTP_ADDR is empty") {
		t.Errorf("healthcheck with HTTP_ADDR empty = %v, want an error saying HTTP is off", err)
	}
}

// The health check passes while the running bridge is ready, and fails as
// soon as a link is down: the container turns unhealthy, and healthy again.
func TestHealthcheckFollowsTheRunningBridge(t *testing.T) {
	opsNoLeaks(t)
	sim := exlivesim.New(exlivesim.Config{Vehicles: 2, Rate: 2})
	if err := sim.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	platform := brokertest.NewProxy(t, sim.Addr())
	brk := brokertest.Embedded(t)

	addr, _ := opsRun(t, nil, []string{
		"EXLIVE_ADDR=" + platform.Addr(),
		"EXLIVE_USER=" + exlivesim.DefaultUser,
		"EXLIVE_PASS=" + exlivesim.DefaultPass,
		"EXLIVE_RETRY_MIN=20ms",
		"EXLIVE_RETRY_MAX=200ms",
		"EXLIVE_INVENTORY_QUIET=50ms",
		"MQTT_URL=" + brk.URL(),
		"MQTT_CLIENT_ID=" + brokertest.ClientID(t),
		"MQTT_TOPIC_PREFIX=" + brokertest.Prefix(t),
		"MQTT_RETRY_MAX=200ms",
		"HTTP_ADDR=127.0.0.1:0",
		"LOG_FORMAT=json",
	})

	opsWaitHealth(t, addr, true, "ready")

	platform.SetDown(true)
	err := opsWaitHealth(t, addr, false, "not ready with the platform away")
	t.Logf("platform away: %v", err)
	if !strings.Contains(err.Error(), "503") || !strings.Contains(err.Error(), "EXLIVE session") {
		t.Errorf("healthcheck error = %v, want the 503 and the reason", err)
	}

	platform.SetDown(false)
	opsWaitHealth(t, addr, true, "ready again")
}

// HTTP_ADDR and HTTP_TILE_URL set to "" mean off and a blank map, not their
// defaults (caarlos0/env would give an empty variable its default).
func TestEmptyHTTPSettingsStayEmpty(t *testing.T) {
	base := map[string]string{
		"EXLIVE_ADDR": "127.0.0.1:1502", "EXLIVE_USER": "u", "EXLIVE_PASS": "p",
	}
	host := func() (string, error) { return "test", nil }

	s, err := loadSettings(base, nil, host)
	if err != nil {
		t.Fatal(err)
	}
	if s.HTTP.Addr != "127.0.0.1:9883" || !strings.HasPrefix(s.HTTP.TileURL, "https://") {
		t.Errorf("unset: HTTP_ADDR=%q HTTP_TILE_URL=%q, want the defaults", s.HTTP.Addr, s.HTTP.TileURL)
	}

	base["HTTP_ADDR"], base["HTTP_TILE_URL"] = "", ""
	s, err = loadSettings(base, nil, host)
	if err != nil {
		t.Fatal(err)
	}
	if s.HTTP.Addr != "" || s.HTTP.TileURL != "" {
		t.Errorf("set to empty: HTTP_ADDR=%q HTTP_TILE_URL=%q, want both empty", s.HTTP.Addr, s.HTTP.TileURL)
	}
}

// The whole program with HTTP_WEB_CONFIG_FILE: HTTPS with a login, probes
// open, and `exlive2mqtt healthcheck` given the same settings passes over
// TLS; without the file it speaks plain HTTP and fails.
func TestHTTPWithTLSAndLogin(t *testing.T) {
	opsNoLeaks(t)
	sim := exlivesim.New(exlivesim.Config{Vehicles: 2, Rate: 2})
	if err := sim.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	brk := brokertest.Embedded(t)

	ca := certtest.NewCA(t, "exlive2mqtt test CA")
	pair := ca.Server(t, "bridge")
	webConfig := filepath.Join(t.TempDir(), "web.yml")
	// The hash is htpasswd's for fleet / "change me", as in docs/security.md.
	err := os.WriteFile(webConfig, []byte("tls_server_config:\n  cert_file: "+pair.CertFile+"\n  key_file: "+pair.KeyFile+
		"\nbasic_auth_users:\n  fleet: $2y$10$Gv5JDu70R7yvgxv8F6AFCOpgQ/CFC.JWvdm7LS390JBIRd4XBFK3K\n"), 0o600)
	if err != nil {
		t.Fatal(err)
	}

	addr, logs := opsRun(t, nil, []string{
		"EXLIVE_ADDR=" + sim.Addr(),
		"EXLIVE_USER=" + exlivesim.DefaultUser,
		"EXLIVE_PASS=" + exlivesim.DefaultPass,
		"EXLIVE_INVENTORY_QUIET=50ms",
		"MQTT_URL=" + brk.URL(),
		"MQTT_CLIENT_ID=" + brokertest.ClientID(t),
		"MQTT_TOPIC_PREFIX=" + brokertest.Prefix(t),
		"HTTP_ADDR=127.0.0.1:0",
		"HTTP_WEB_CONFIG_FILE=" + webConfig,
		"LOG_FORMAT=json",
	})
	if !strings.Contains(logs.String(), `"tls":true,"auth":"basic"`) {
		t.Errorf("the listening line does not say TLS and basic auth:\n%s", logs)
	}

	opsWaitHealth(t, addr, true, "ready, asked over TLS", "HTTP_WEB_CONFIG_FILE="+webConfig)
	if err := opsHealthcheck(addr); err == nil {
		t.Error("healthcheck over plain HTTP against the TLS server passed")
	}

	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	get := func(path, user, pass string) int {
		req, _ := http.NewRequest("GET", "https://"+addr+path, nil)
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for path, want := range map[string][3]int{ // without, wrong, right login
		"/api/vehicles": {401, 401, 200},
		"/metrics":      {401, 401, 200},
		"/":             {401, 401, 200},
		"/readyz":       {200, 200, 200},
		"/healthz":      {200, 200, 200},
	} {
		got := [3]int{get(path, "", ""), get(path, "fleet", "wrong"), get(path, "fleet", "change me")}
		if got != want {
			t.Errorf("GET %s without, with a wrong and with the right login: %v, want %v", path, got, want)
		}
	}
}

// A web configuration file that cannot work stops the program at start
// with exit status 2, naming the variable.
func TestBadWebConfigFileIsASettingsError(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "web.yml")
	if err := os.WriteFile(bad, []byte("basic_auth_users:\n  fleet: not-a-bcrypt-hash\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := loadSettings(map[string]string{
		"EXLIVE_ADDR": "127.0.0.1:1502", "EXLIVE_USER": "u", "EXLIVE_PASS": "p",
		"HTTP_WEB_CONFIG_FILE": bad, "HTTP_ALLOWED_HOSTS": "ok.example,https://bad.example",
	}, nil, func() (string, error) { return "test", nil })
	var ce *ConfigError
	if !errors.As(err, &ce) {
		t.Fatalf("loadSettings = %v, want a ConfigError", err)
	}
	for _, want := range []string{"HTTP_WEB_CONFIG_FILE=", "bcrypt", "HTTP_ALLOWED_HOSTS=", "https://bad.example"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "not-a-bcrypt-hash") {
		t.Errorf("error %q shows the file's password field", err)
	}
}
