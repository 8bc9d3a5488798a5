package exlive_test

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/exlive2mqtt/exlive2mqtt/exlive"
	"github.com/exlive2mqtt/exlive2mqtt/exlive/exlivesim"
	"github.com/rs/zerolog"
)

// closedAddr returns an address on which nothing listens: a listener's,
// closed.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// dialLog dials as the session would and records every address it is
// asked for, with the time.
type dialLog struct {
	mu    sync.Mutex
	addrs []string
	at    []time.Time
}

func (d *dialLog) dial(ctx context.Context, addr string) (net.Conn, error) {
	d.mu.Lock()
	d.addrs = append(d.addrs, addr)
	d.at = append(d.at, time.Now())
	d.mu.Unlock()
	return exlive.Dial(ctx, addr)
}

func (d *dialLog) tries() ([]string, []time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.addrs...), append([]time.Time(nil), d.at...)
}

// TestSeveralAddresses: with EXLIVE_ADDR listing a closed port and a
// platform, the session tries the first, goes on to the second at once,
// logs in there and says so; after a drop it starts again with the one
// that worked.
func TestSeveralAddresses(t *testing.T) {
	down := closedAddr(t)
	srv := startSim(t, exlivesim.Config{Rate: 0})
	cfg := testConfig(down + "," + srv.Addr())
	cfg.RetryMin, cfg.RetryMax = time.Second, 2*time.Second // a wait would show
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	d := &dialLog{}
	s := exlive.New(cfg, rec, testLog(t))
	s.SetDialer(d.dial)
	run(t, s)

	rec.wait(t, "logged_in", func() bool { return rec.countState(exlive.StateLoggedIn) == 1 })
	rec.mu.Lock()
	var got []string
	for _, st := range rec.states {
		got = append(got, string(st.State)+" "+st.Addr)
		if st.State == exlive.StateDisconnected && st.Retry != 0 {
			t.Errorf("waited %s after the first address, before trying the second", st.Retry)
		}
	}
	last := rec.states[len(rec.states)-1]
	rec.mu.Unlock()
	want := []string{"connecting " + down, "disconnected " + down, "connecting " + srv.Addr(), "logged_in " + srv.Addr()}
	if len(got) < len(want) || !equalStrings(got[len(got)-len(want):], want) {
		t.Errorf("states %q, want them to end %q", got, want)
	}
	if last.Addr != srv.Addr() || s.State().Addr != srv.Addr() {
		t.Errorf("state says %q (State: %q), want the address in use %s", last.Addr, s.State().Addr, srv.Addr())
	}

	// The platform drops the session: the next pass starts with it.
	srv.DropAll()
	rec.wait(t, "logged_in again", func() bool { return rec.countState(exlive.StateLoggedIn) == 2 })
	addrs, _ := d.tries()
	if n := len(addrs); n < 3 || addrs[n-1] != srv.Addr() || addrs[n-2] != srv.Addr() {
		t.Errorf("dialled %q; after the drop, want the platform's address first", addrs)
	}
}

// TestSeveralAddressesBackoff: when no address answers, the session tries
// them all in a row, then waits, longer after each pass: the backoff is
// over the whole list, not per address.
func TestSeveralAddressesBackoff(t *testing.T) {
	a, b := closedAddr(t), closedAddr(t)
	cfg := testConfig(a + "," + b)
	cfg.RetryMin, cfg.RetryMax = 100*time.Millisecond, 800*time.Millisecond
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	d := &dialLog{}
	s := exlive.New(cfg, rec, testLog(t))
	s.SetDialer(d.dial)
	run(t, s)

	// Five passes: the waits are 100, 200, 400 and 800 ms, less up to a
	// fifth. The tenth attempt is reported before it is dialled: wait
	// for the dial too.
	rec.wait(t, "five passes", func() bool {
		n := 0
		for _, st := range rec.states {
			if st.State == exlive.StateConnecting {
				n++
			}
		}
		addrs, _ := d.tries()
		return n >= 10 && len(addrs) >= 10
	})
	addrs, at := d.tries()
	var retries []time.Duration
	rec.mu.Lock()
	for _, st := range rec.states {
		if st.State != exlive.StateDisconnected {
			continue
		}
		// Within a pass the session goes on at once (the first address's
		// failure announces no wait); it waits after the last. Said by
		// the session, not timed, so a busy machine cannot make it look
		// like a wait.
		switch {
		case st.Addr == a && st.Retry != 0:
			t.Errorf("after %s, the first of the list: a wait of %s, want none", a, st.Retry)
		case st.Addr == b && st.Retry == 0:
			t.Errorf("after %s, the last of the list: no wait", b)
		case st.Addr == b:
			retries = append(retries, st.Retry)
		}
	}
	rec.mu.Unlock()
	for i := 0; i+1 < 10; i += 2 {
		if addrs[i] != a || addrs[i+1] != b {
			t.Fatalf("dialled %q, want %s and %s in turn", addrs[:10], a, b)
		}
	}
	if len(retries) < 4 {
		t.Fatalf("%d waits announced after five passes, want at least 4", len(retries))
	}
	for k := range 4 {
		want := min(cfg.RetryMin<<k, cfg.RetryMax)
		if retries[k] < want*4/5 || retries[k] > want {
			t.Errorf("wait after pass %d = %s, want within [%s, %s]", k+1, retries[k], want*4/5, want)
		}
		if gap := at[2*k+2].Sub(at[2*k+1]); gap < retries[k] {
			t.Errorf("pass %d began %s after the last, before its wait of %s", k+2, gap, retries[k])
		}
	}
}

// TestSameAccountTwice runs two sessions on one account of a platform that
// allows one session per account: each login closes the other's session.
// They must not knock each other out in a tight loop: once the platform has
// closed three sessions in a row soon after login, each session says that
// another client may be using the account and waits EXLIVE_RETRY_MAX. When
// one stops, the other's session lasts, and the hint goes.
func TestSameAccountTwice(t *testing.T) {
	srv := startSim(t, exlivesim.Config{Rate: 0, Exclusive: true})
	cfg := testConfig(srv.Addr())
	cfg.RetryMin, cfg.RetryMax = 20*time.Millisecond, 400*time.Millisecond
	cfg.HealthyAfter = 1500 * time.Millisecond
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	recA, recB := newRecorder(), newRecorder()
	a := exlive.New(cfg, recA, testLog(t))
	stopA := run(t, a)
	recA.wait(t, "A logged in", func() bool { return recA.countState(exlive.StateLoggedIn) == 1 })
	b := exlive.New(cfg, recB, testLog(t))
	run(t, b)

	conflict := func(r *recorder) bool {
		for _, st := range r.states {
			if st.Conflict {
				return true
			}
		}
		return false
	}
	recA.wait(t, "A to see the conflict", func() bool { return conflict(recA) })
	recB.wait(t, "B to see the conflict", func() bool { return conflict(recB) })

	// Logins over two seconds, now that both wait RetryMax (320-400 ms)
	// after each session: about five each; a tight loop would make
	// hundreds.
	before, _ := srv.Logins()
	window := 2 * time.Second
	time.Sleep(window) // a span of time is what is measured
	after, _ := srv.Logins()
	t.Logf("%d logins in %s after both saw the conflict; %d in all", after-before, window, after)
	if n := after - before; n > 2*int(window/(cfg.RetryMax*4/5))+2 {
		t.Errorf("%d logins in %s, want at most %d", n, window, 2*int(window/(cfg.RetryMax*4/5))+2)
	}
	for name, r := range map[string]*recorder{"A": recA, "B": recB} {
		r.mu.Lock()
		var retries []time.Duration
		for _, st := range r.states {
			if st.Retry > 0 {
				retries = append(retries, st.Retry)
			}
		}
		r.mu.Unlock()
		if len(retries) < 4 {
			t.Errorf("%s: %d waits, want several", name, len(retries))
			continue
		}
		for _, w := range retries[len(retries)-2:] {
			if w < cfg.RetryMax*4/5 {
				t.Errorf("%s: waits %v: the last are not EXLIVE_RETRY_MAX", name, retries)
			}
		}
	}

	// A goes away: B's next session lasts, and B says the conflict is
	// over.
	stopA()
	recB.wait(t, "B's conflict cleared", func() bool {
		n := len(recB.states)
		return n > 0 && recB.states[n-1].State == exlive.StateLoggedIn && !recB.states[n-1].Conflict && conflict(recB)
	})
	if b.State().Conflict {
		t.Error("B's state still says conflict")
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func testLog(t *testing.T) zerolog.Logger {
	return zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
}
