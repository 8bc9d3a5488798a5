package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"regexp"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/exlive2mqtt/exlive2mqtt/exlive"
	"github.com/exlive2mqtt/exlive2mqtt/exlive/exlivesim"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// startSim runs exlive-sim with args until the test ends and returns the
// address it listens on.
func startSim(t *testing.T, args ...string) string {
	t.Helper()
	line := runSim(t, append([]string{"-listen", "127.0.0.1:0", "-rate", "0"}, args...)...)
	m := regexp.MustCompile(`listening on (127\.0\.0\.1:\d+)`).FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("exlive-sim printed %q", line)
	}
	return m[1]
}

// runSim runs exlive-sim with args until the test ends and returns the
// first line it prints.
func runSim(t *testing.T, args ...string) string {
	t.Helper()
	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, args, pw, io.Discard)
		pw.Close()
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run = %v", err)
		}
	})
	line, err := bufio.NewReader(pr).ReadString('\n')
	go io.Copy(io.Discard, pr)
	if err != nil {
		t.Fatal(err)
	}
	return line
}

// loginAnswer logs in to addr and returns the raw bytes of the platform's
// answer and what it decoded to.
func loginAnswer(t *testing.T, addr string) (exlive.Frame, *exlive.Answer) {
	t.Helper()
	nc, err := exlive.Dial(context.Background(), addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	cfg := exlive.Defaults()
	cfg.Addr, cfg.User, cfg.Pass = addr, exlivesim.DefaultUser, exlivesim.DefaultPass
	var got exlive.Frame
	var answer *exlive.Answer
	tap := tapFunc(func(f exlive.Frame, m exlive.Message) {
		if a, ok := m.(*exlive.Answer); ok && answer == nil {
			got, answer = exlive.Frame{Data: bytes.Clone(f.Data), Wire: bytes.Clone(f.Wire)}, &exlive.Answer{Command: a.Command, Result: a.Result}
		}
	})
	c := exlive.NewClient(nc, cfg, nil, zerolog.Nop())
	c.SetTap(tap)
	if err := c.Login(context.Background()); err != nil {
		t.Fatal(err)
	}
	c.Close()
	return got, answer
}

type tapFunc func(exlive.Frame, exlive.Message)

func (f tapFunc) Sent(time.Time, exlive.Message, []byte) {}
func (f tapFunc) Received(_ time.Time, fr exlive.Frame, m exlive.Message, _ error) {
	f(fr, m)
}

// TestForms: by default the simulator answers as live servers do, laid out
// over lines; -literal answers as the specification does, one compact
// frame a line.
func TestForms(t *testing.T) {
	f, a := loginAnswer(t, startSim(t))
	if a.Result != "succeed" || !strings.Contains(string(f.Wire), "\n") || strings.HasSuffix(string(f.Wire), "\r\n") {
		t.Errorf("dialect: answer %q, wire %q", a.Result, f.Wire)
	}
	f, a = loginAnswer(t, startSim(t, "-literal"))
	if a.Result != "success" || strings.Count(string(f.Wire), "\n") != 0 {
		t.Errorf("literal: answer %q, wire %q", a.Result, f.Wire)
	}
	f, a = loginAnswer(t, startSim(t, "-answer", "ok", "-encoding", "utf-8"))
	if a.Result != "succeed" {
		t.Errorf("-answer changes the answers to commands, not the login's: %q", a.Result)
	}
	var stderr bytes.Buffer
	if err := run(context.Background(), []string{"-encoding", "ebcdic"}, io.Discard, &stderr); err == nil || !strings.Contains(err.Error(), "want utf-8 or gbk") {
		t.Errorf("-encoding ebcdic: %v", err)
	}
}

// TestExclusiveAndBacklog: -exclusive closes an account's older session
// when it logs in again; -backlog queues positions ahead of the inventory's
// answers.
func TestExclusiveAndBacklog(t *testing.T) {
	addr := startSim(t, "-exclusive", "-backlog", "500", "-vehicles", "3", "-groups", "1")
	cfg := exlive.Defaults()
	cfg.Addr, cfg.User, cfg.Pass = addr, exlivesim.DefaultUser, exlivesim.DefaultPass
	login := func() *exlive.Client {
		t.Helper()
		nc, err := exlive.Dial(context.Background(), addr)
		if err != nil {
			t.Fatal(err)
		}
		c := exlive.NewClient(nc, cfg, nil, zerolog.Nop())
		if err := c.Login(context.Background()); err != nil {
			t.Fatal(err)
		}
		return c
	}
	first := login()
	served := make(chan error, 1)
	go func() { served <- first.Serve(context.Background()) }()
	second := login()
	defer second.Close()
	select {
	case err := <-served:
		// The end of the stream, or a reset when the platform closed with
		// a heartbeat of ours unread.
		if !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
			t.Errorf("the first session ended with %v, want the platform closing it", err)
		}
	case <-time.After(10 * time.Second):
		first.Close()
		t.Fatal("the first session stayed open after the second login")
	}

	var positions atomic.Int64
	inv := make(chan int64, 1)
	h := exlive.Handlers{
		Message:   func(m exlive.Message) { positions.Add(1) },
		Inventory: func(exlive.Inventory) { inv <- positions.Load() },
	}
	second.Close()
	nc, err := exlive.Dial(context.Background(), addr)
	if err != nil {
		t.Fatal(err)
	}
	cfg.InventoryQuiet = 50 * time.Millisecond
	c := exlive.NewClient(nc, cfg, h, zerolog.Nop())
	if err := c.Login(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { served <- c.Serve(ctx) }()
	select {
	case n := <-inv:
		if n < 1000 {
			t.Errorf("%d positions before the inventory, want the backlog of 500 ahead of each of its two lists", n)
		}
	case <-time.After(10 * time.Second):
		t.Error("no inventory")
	}
	cancel()
	<-served
}
