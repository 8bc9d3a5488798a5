package mqtt_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/exlive2mqtt/exlive2mqtt/internal/brokertest"
	"github.com/exlive2mqtt/exlive2mqtt/mqtt"
)

// Broker faults against real brokers: a private Mosquitto that the tests
// stop, kill, pause and start again, and the embedded broker.

// waitFor waits until cond holds, checking every few milliseconds: for
// states that signal no change.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(timeout)
	for !cond() {
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
	}
}

// persistentBroker starts a private Mosquitto that saves its state every
// second, so that a subscriber's session survives even SIGKILL once saved.
func persistentBroker(t *testing.T) *brokertest.Mosquitto {
	t.Helper()
	return brokertest.StartMosquitto(t, "autosave_interval 1")
}

// waitSaved waits until m has written its database after since.
func waitSaved(t *testing.T, m *brokertest.Mosquitto, since time.Time) {
	t.Helper()
	path := filepath.Join(m.Dir(), "mosquitto.db")
	waitFor(t, 10*time.Second, "mosquitto to save its database", func() bool {
		fi, err := os.Stat(path)
		return err == nil && fi.ModTime().After(since)
	})
}

// connectedAfter returns how long after t0 the client's link came up
// again, waiting for it at most 10 s.
func (l *links) connectedAfter(t *testing.T, t0 time.Time) time.Duration {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		l.mu.Lock()
		var at time.Time
		for _, x := range l.all {
			if x.Connected && !x.Since.Before(t0) {
				at = x.Since
				break
			}
		}
		ch := l.changed
		l.mu.Unlock()
		if !at.IsZero() {
			return at.Sub(t0)
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatal("no reconnect within 10 s of the broker's return")
		}
	}
}

// TestRequestsKeptWhileAwayAreHandled: the session is persistent, so a
// broker keeps the messages published to the client's subscriptions while
// it is away and sends them as soon as it connects again, before it has
// subscribed anew. Each must reach its handler (and be acknowledged): a
// message with no handler is never acknowledged, and a broker sends
// nothing more once its in-flight window for the client is full of them.
func TestRequestsKeptWhileAwayAreHandled(t *testing.T) {
	brokertest.EachHeavy(t, func(t *testing.T, b brokertest.Target) {
		cfg := config(t, b.URL)
		filter := cfg.TopicPrefix + "/vehicles/+/command/set"
		got := make(chan string, 200)
		h := map[string]func(mqtt.Incoming){filter: func(in mqtt.Incoming) { got <- string(in.Payload) }}
		first, l := start(t, cfg, h)
		l.wait(t, true, 1)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		first.Stop(ctx)

		pub := brokertest.Subscribe(t, b.URL)
		const n = 60 // more than Mosquitto's default in-flight window of 20
		for i := range n {
			pub.Publish(fmt.Sprintf("%s/vehicles/V%d/command/set", cfg.TopicPrefix, i), []byte(fmt.Sprint(i)), false)
		}
		// The embedded broker (mochi-mqtt v2.7.9) acknowledges a publish
		// before it has stored it for an offline session, and loses it
		// when the session is taken up at that moment (a plain paho
		// client loses it too). A last message nobody counts fences the
		// others.
		pub.Publish(cfg.TopicPrefix+"/vehicles/fence/command/set", []byte("fence"), false)
		start(t, cfg, h)
		seen := make(map[string]bool)
		deadline := time.After(10 * time.Second)
		for len(seen) < n {
			select {
			case p := <-got:
				if p != "fence" {
					seen[p] = true
				}
			case <-deadline:
				var missing []int
				for i := range n {
					if !seen[fmt.Sprint(i)] {
						missing = append(missing, i)
					}
				}
				t.Fatalf("%d of %d requests kept by the broker were handled; missing %v", len(seen), n, missing)
			}
		}
	})
}

// TestBrokerDownAtStart: the client starts while the broker is down,
// queues, connects within 5 s of the broker's start and delivers all.
func TestBrokerDownAtStart(t *testing.T) {
	m := persistentBroker(t)
	cfg := config(t, m.URL())
	cnt := brokertest.NewCounter(t, m.URL(), cfg.TopicPrefix+"/n/#")
	since := time.Now()
	waitSaved(t, m, since)
	m.Stop()

	c, l := start(t, cfg, nil)
	const n = 2000
	for i := range n {
		if err := c.Publish(fmt.Sprintf("%s/n/%d", cfg.TopicPrefix, i), []byte("x"), false); err != nil {
			t.Fatal(err)
		}
	}
	if c.Link().Connected {
		t.Fatal("connected to a broker that is down")
	}
	up := time.Now()
	if err := m.Restart(); err != nil {
		t.Fatal(err)
	}
	if d := l.connectedAfter(t, up); d > 5*time.Second {
		t.Errorf("connected %s after the broker started, want within 5 s", d)
	}
	cnt.Wait(20*time.Second, "every message", func() bool { return cnt.Distinct() == n })
	if st := atRest(t, c, 10*time.Second); st.Published != n+st.Reconnects+1 {
		t.Errorf("stats = %+v, want every message and the online state published", st)
	}
}

// TestBrokerRestartLosesNothing restarts Mosquitto with SIGTERM (it saves
// its state) and SIGKILL (it loses what it had not saved) while thousands
// of QoS 1 messages flow: the client reconnects within 5 s of the broker's
// return, subscribes again, states online again, and every message
// published before, during and after the outage is delivered.
func TestBrokerRestartLosesNothing(t *testing.T) {
	for _, kill := range []bool{false, true} {
		name := "sigterm"
		if kill {
			name = "sigkill"
		}
		t.Run(name, func(t *testing.T) {
			m := persistentBroker(t)
			cfg := config(t, m.URL())
			cfg.Keepalive = 2 * time.Second
			p := cfg.TopicPrefix
			requests := make(chan string, 10)
			c, l := start(t, cfg, map[string]func(mqtt.Incoming){
				p + "/req/set": func(in mqtt.Incoming) { requests <- string(in.Payload) },
			})
			l.wait(t, true, 1)
			cnt := brokertest.NewCounter(t, m.URL(), p+"/n/#")
			waitSaved(t, m, time.Now())

			n := 0
			publish := func(k int) {
				for range k {
					if err := c.Publish(fmt.Sprintf("%s/n/%d", p, n), []byte("x"), false); err != nil {
						t.Fatal(err)
					}
					n++
				}
			}
			publish(3000)
			if kill {
				// What Mosquitto acknowledged and had not saved dies with
				// it: only what reached the subscriber before is safe.
				cnt.Wait(20*time.Second, "the messages before the kill", func() bool { return cnt.Distinct() >= n })
				m.Kill()
			} else {
				// Messages in flight when the broker stops must come
				// through too.
				m.Stop()
			}
			l.wait(t, false, 1)
			publish(3000)
			up := time.Now()
			if err := m.Restart(); err != nil {
				t.Fatal(err)
			}
			if d := l.connectedAfter(t, up); d > 5*time.Second {
				t.Errorf("reconnected %s after the broker's return, want within 5 s", d)
			}
			publish(1000)
			cnt.Wait(30*time.Second, "every message", func() bool { return cnt.Distinct() == n })
			// Each message is published once, however often paho sent it.
			if st := atRest(t, c, 10*time.Second); st.Published != uint64(n)+st.Reconnects+1 {
				t.Errorf("stats = %+v, want the %d messages and an online state a connection published", st, n)
			}

			// Subscribed again, and online again, retained.
			pub := brokertest.Subscribe(t, m.URL(), p+"/bridge/state")
			if s := pub.WaitTopic(5*time.Second, p+"/bridge/state"); s.Payload != "online" {
				t.Errorf("retained state after the restart = %q", s.Payload)
			}
			pub.Publish(p+"/req/set", []byte("after"), false)
			select {
			case r := <-requests:
				if r != "after" {
					t.Errorf("request = %q", r)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("no subscription after the restart")
			}
		})
	}
}

// TestStuckBrokerNeverBlocksPublish freezes Mosquitto (SIGSTOP: its
// connections stay open, nothing moves, like a broker on a full disk) while
// 2 000 messages a second are published with an in-flight window of 8:
// Publish never blocks for longer than the write timeout, the window's
// overflow is counted as late, and after the broker resumes every message
// is delivered and the retained state is online.
func TestStuckBrokerNeverBlocksPublish(t *testing.T) {
	m := persistentBroker(t)
	cfg := config(t, m.URL())
	cfg.InFlight = 8
	cfg.WriteTimeout = time.Second
	cfg.Keepalive = 2 * time.Second
	p := cfg.TopicPrefix
	c, l := start(t, cfg, nil)
	l.wait(t, true, 1)
	cnt := brokertest.NewCounter(t, m.URL(), p+"/n/#")

	m.Pause()
	payload := []byte(strings.Repeat("x", 1024))
	n := 0
	var worst time.Duration
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for begin := time.Now(); time.Since(begin) < 3*time.Second; {
		<-tick.C
		for range 100 {
			t0 := time.Now()
			if err := c.Publish(fmt.Sprintf("%s/n/%d", p, n), payload, false); err != nil {
				t.Fatal(err)
			}
			worst = max(worst, time.Since(t0))
			n++
		}
	}
	if limit := cfg.WriteTimeout + cfg.WriteTimeout/2; worst > limit {
		t.Errorf("Publish blocked for %s with the broker stuck, want at most the write timeout (%s)", worst, cfg.WriteTimeout)
	}
	st := c.Stats()
	t.Logf("stuck for 3 s: %d published, slowest Publish %s, stats %+v", n, worst, st)
	if st.Late == 0 {
		t.Errorf("stats = %+v: a full in-flight window must count late acknowledgements", st)
	}

	m.Resume()
	// Whether paho gave the link up (keepalive) or not, it is up again
	// within 5 s.
	waitFor(t, 5*time.Second, "the link up after the broker resumed", func() bool { return c.Link().Connected })
	cnt.Wait(30*time.Second, "every message", func() bool { return cnt.Distinct() == n })
	// Acknowledged late, or sent again after a reconnect: each message is
	// published once.
	if st := atRest(t, c, 10*time.Second); st.Published != uint64(n)+st.Reconnects+1 {
		t.Errorf("stats = %+v, want the %d messages and an online state a connection published", st, n)
	}
	state := brokertest.Subscribe(t, m.URL(), p+"/bridge/state")
	state.Wait(5*time.Second, "state online", func(ms []brokertest.Msg) bool {
		return lastPayload(ms, p+"/bridge/state") == "online"
	})
}
