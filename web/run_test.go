package web

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// stubSource is the least Source: ready or not, no vehicles. block, when
// set, makes Vehicles signal entered and wait for block, to hold a request
// in flight.
type stubSource struct {
	ready   bool
	entered chan struct{}
	block   chan struct{}
}

func (s stubSource) Ready() (bool, string) {
	if s.ready {
		return true, ""
	}
	return false, "mqtt: disconnected"
}

func (s stubSource) Status() Status { return Status{} }

func (s stubSource) VehiclesVersion() uint64 { return 0 }

func (s stubSource) Geofences() []byte { return nil }

func (s stubSource) Events() [][]byte { return nil }

func (s stubSource) Vehicles() []Vehicle {
	if s.block != nil {
		s.entered <- struct{}{}
		<-s.block
	}
	return nil
}

func testLogger(t *testing.T) zerolog.Logger { return zerolog.New(zerolog.NewTestWriter(t)) }

// startRun runs s in the background and returns the address it listens on
// and a channel with Run's result.
func startRun(t *testing.T, ctx context.Context, s *Server) (string, <-chan error) {
	t.Helper()
	listening := make(chan string, 1)
	s.onListen = func(addr string) { listening <- addr }
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	select {
	case addr := <-listening:
		return addr, done
	case err := <-done:
		t.Fatalf("Run returned before listening: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not start listening")
	}
	return "", nil
}

func waitRun(t *testing.T, done <-chan error, within time.Duration) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(within):
		t.Fatalf("Run did not return within %v", within)
		return nil
	}
}

func TestRunServesUntilCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	s := New(Config{Addr: "127.0.0.1:0"}, stubSource{ready: true}, nil, testLogger(t))
	addr, done := startRun(t, ctx, s)

	if err := Healthcheck(t.Context(), Config{Addr: addr}, 5*time.Second); err != nil {
		t.Fatalf("Healthcheck against the running server: %v", err)
	}
	cancel()
	if err := waitRun(t, done, 5*time.Second); err != nil {
		t.Fatalf("Run after cancel = %v, want nil", err)
	}
	if _, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		t.Error("still listening after Run returned")
	}
}

func TestRunPortTaken(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()

	s := New(Config{Addr: ln.Addr().String()}, stubSource{}, nil, testLogger(t))
	done := make(chan error, 1)
	go func() { done <- s.Run(t.Context()) }()
	err = waitRun(t, done, 5*time.Second)
	if err == nil {
		t.Fatal("Run on a taken port returned nil")
	}
	if !errors.Is(err, syscall.EADDRINUSE) || !strings.HasPrefix(err.Error(), "web: listen on "+ln.Addr().String()) || !strings.Contains(err.Error(), "already in use") {
		t.Errorf("error %q does not say clearly that the port is taken", err)
	}
}

func TestRunDisabled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	s := New(Config{Addr: ""}, stubSource{}, nil, testLogger(t))
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	select {
	case err := <-done:
		t.Fatalf("Run with HTTP off returned before cancel: %v", err)
	default:
	}
	cancel()
	if err := waitRun(t, done, 5*time.Second); err != nil {
		t.Errorf("Run with HTTP off = %v, want nil", err)
	}
}

// A request in flight when the context ends still gets its answer.
func TestRunShutdownWaitsForRequests(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	entered, release := make(chan struct{}, 1), make(chan struct{})
	s := New(Config{Addr: "127.0.0.1:0"}, stubSource{ready: true, entered: entered, block: release}, nil, testLogger(t))
	addr, done := startRun(t, ctx, s)

	type result struct {
		code int
		err  error
	}
	answered := make(chan result, 1)
	go func() {
		resp, err := http.Get("http://" + addr + "/api/vehicles")
		if err != nil {
			answered <- result{err: err}
			return
		}
		resp.Body.Close()
		answered <- result{code: resp.StatusCode}
	}()
	waitEntered(t, entered)

	cancel()
	close(release)
	if r := <-answered; r.err != nil || r.code != http.StatusOK {
		t.Errorf("in-flight request: %d %v, want 200", r.code, r.err)
	}
	if err := waitRun(t, done, 5*time.Second); err != nil {
		t.Errorf("Run = %v, want nil", err)
	}
}

// A request that never ends does not keep Run from returning.
func TestRunShutdownIsBounded(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	entered, release := make(chan struct{}, 1), make(chan struct{})
	defer close(release)
	s := New(Config{Addr: "127.0.0.1:0"}, stubSource{ready: true, entered: entered, block: release}, nil, testLogger(t))
	s.shutdownTimeout = 50 * time.Millisecond
	addr, done := startRun(t, ctx, s)

	go func() {
		resp, err := http.Get("http://" + addr + "/api/vehicles")
		if err == nil {
			resp.Body.Close()
		}
	}()
	waitEntered(t, entered)
	cancel()
	if err := waitRun(t, done, 5*time.Second); err != nil {
		t.Errorf("Run = %v, want nil", err)
	}
}

func waitEntered(t *testing.T, entered <-chan struct{}) {
	t.Helper()
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the request never reached the handler")
	}
}

func TestHealthcheck(t *testing.T) {
	ready := httptest.NewServer(New(Config{}, stubSource{ready: true}, nil, testLogger(t)).Handler())
	defer ready.Close()
	notReady := httptest.NewServer(New(Config{}, stubSource{ready: false}, nil, testLogger(t)).Handler())
	defer notReady.Close()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close() // nothing listens here now

	_, readyPort, _ := net.SplitHostPort(ready.Listener.Addr().String())

	tests := []struct {
		name    string
		addr    string
		wantErr string // "" for nil
	}{
		{"ready", ready.Listener.Addr().String(), ""},
		{"port only means loopback", ":" + readyPort, ""},
		{"unspecified host means loopback", "0.0.0.0:" + readyPort, ""},
		{"not ready", notReady.Listener.Addr().String(), "503 Service Unavailable: {\"ready\":false,\"reason\":\"mqtt: disconnected\"}"},
		{"nothing listening", closed, "connection refused"},
		{"HTTP off", "", "HTTP_ADDR is empty"},
		{"bad address", "localhost", "missing port"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Healthcheck(t.Context(), Config{Addr: tt.addr}, 5*time.Second)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Healthcheck(%q) = %v, want nil", tt.addr, err)
				}
				return
			}
			if err == nil || !strings.HasPrefix(err.Error(), "web: healthcheck") || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Healthcheck(%q) = %v, want an error containing %q", tt.addr, err, tt.wantErr)
			}
		})
	}
}

func TestHealthcheckTimeout(t *testing.T) {
	// A listener that accepts but never answers, as a hung process would.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	start := time.Now()
	err = Healthcheck(t.Context(), Config{Addr: ln.Addr().String()}, 100*time.Millisecond)
	if err == nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Healthcheck against a hung server = %v, want a deadline error", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Healthcheck took %v with a 100ms timeout", d)
	}
}

func TestTileSource(t *testing.T) {
	tests := []struct{ url, want string }{
		{"", ""},
		{"/tiles/{z}/{x}/{y}.png", ""},
		{"https://tile.openstreetmap.org/{z}/{x}/{y}.png", "https://tile.openstreetmap.org"},
		{"https://{s}.tile.openstreetmap.org/{z}/{x}/{y}.png", "https://*.tile.openstreetmap.org"},
		{"HTTP://127.0.0.1:8080/{z}/{x}/{y}.png", "http://127.0.0.1:8080"},
		{"https://user:pw@tiles.example.org/{z}/{x}/{y}.png", "https://tiles.example.org"},
		{"https://tiles.example.org?x={x}", "https://tiles.example.org"},
		{"https://tiles-{s}.example.org/{z}/{x}/{y}.png", "https:"},
		{"https://evil.org; script-src *;/{z}.png", "https:"},
		{"javascript://x/{z}", ""},
	}
	for _, tt := range tests {
		if got := tileSource(tt.url); got != tt.want {
			t.Errorf("tileSource(%q) = %q, want %q", tt.url, got, tt.want)
		}
	}
}

func TestCompareIDs(t *testing.T) {
	ids := []string{"b", "10", "a", "9", "010", "18446744073709551616", "1"}
	got := sortedVehicles(func() []Vehicle {
		var vs []Vehicle
		for _, id := range ids {
			vs = append(vs, Vehicle{ID: id})
		}
		return vs
	}())
	var order []string
	for _, v := range got {
		order = append(order, v.ID)
	}
	// "010" and "10" are equal as numbers and then ordered as text; a
	// number too big for uint64 is text.
	want := "1 9 010 10 18446744073709551616 a b"
	if strings.Join(order, " ") != want {
		t.Errorf("order %v, want %s", order, want)
	}
}

// Requests of /api/vehicles beyond the bound get 503 with Retry-After at
// once, instead of queueing up memory; the probes are not held up.
func TestVehicleRequestsBounded(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	entered, release := make(chan struct{}, 1), make(chan struct{})
	s := New(Config{Addr: "127.0.0.1:0"}, stubSource{ready: true, entered: entered, block: release}, nil, testLogger(t))
	s.slots = make(chan struct{}, 1)
	addr, done := startRun(t, ctx, s)

	first := make(chan int, 1)
	go func() {
		resp, err := http.Get("http://" + addr + "/api/vehicles")
		if err != nil {
			first <- 0
			return
		}
		resp.Body.Close()
		first <- resp.StatusCode
	}()
	waitEntered(t, entered) // the first request holds the one slot

	resp, err := http.Get("http://" + addr + "/api/vehicles?limit=1")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "1" || !strings.Contains(string(body), "too many requests") {
		t.Errorf("second request: %d, Retry-After %q, %q; want 503, 1 and a reason", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	if err := Healthcheck(t.Context(), Config{Addr: addr}, 5*time.Second); err != nil {
		t.Errorf("readyz while the list is busy: %v", err)
	}

	close(release)
	if code := <-first; code != http.StatusOK {
		t.Errorf("first request: %d, want 200", code)
	}
	resp, err = http.Get("http://" + addr + "/api/vehicles")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("after the first is done: %d, want 200", resp.StatusCode)
	}
	cancel()
	if err := waitRun(t, done, 5*time.Second); err != nil {
		t.Errorf("Run = %v", err)
	}
}
