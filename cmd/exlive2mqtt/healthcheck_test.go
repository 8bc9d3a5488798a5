package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/exlive2mqtt/exlive2mqtt/exlive/exlivesim"
	"github.com/exlive2mqtt/exlive2mqtt/internal/brokertest"
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

// opsHealthcheck runs `exlive2mqtt healthcheck` with HTTP_ADDR=addr. A
// non-nil error is what makes main exit 1.
func opsHealthcheck(addr string) error {
	var out bytes.Buffer
	return run(context.Background(), []string{"healthcheck"}, []string{"HTTP_ADDR=" + addr}, &out, &out)
}

// opsWaitHealth runs the health check until its outcome is what is wanted.
func opsWaitHealth(t *testing.T, addr string, healthy bool, what string) error {
	t.Helper()
	deadline := time.Now().Add(opsWait)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		err := opsHealthcheck(addr)
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

	ctx, cancel := context.WithCancel(context.Background())
	logs := newOpsLog()
	done := make(chan error, 1)
	environ := []string{
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
	}
	go func() { done <- run(ctx, nil, environ, io.Discard, logs) }()
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
	addr := logs.httpAddr(t, done)

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
