package mqtt_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
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

// TestStopCountsWhatIsLost stops the client while the broker is stuck and
// messages are in flight. Without a store directory they die with the
// process: Stop must count them as lost, not only what was still queued.
// With one, they stay in the store and are sent after the next start.
func TestStopCountsWhatIsLost(t *testing.T) {
	for _, withStore := range []bool{false, true} {
		name := "memory"
		if withStore {
			name = "store_dir"
		}
		t.Run(name, func(t *testing.T) {
			m := brokertest.StartMosquitto(t, "")
			cfg := config(t, m.URL())
			if withStore {
				cfg.StoreDir = t.TempDir()
			}
			p := cfg.TopicPrefix
			c, l := start(t, cfg, nil)
			l.wait(t, true, 1)
			cnt := brokertest.NewCounter(t, m.URL(), p+"/n/#")
			m.Pause()
			const n = 100
			for i := range n {
				if err := c.Publish(fmt.Sprintf("%s/n/%d", p, i), []byte("x"), false); err != nil {
					t.Fatal(err)
				}
			}
			waitFor(t, 10*time.Second, "paho to hold every message (in flight, not queued)", func() bool { return c.Stats().Queued == 0 })
			ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			defer cancel()
			lost := c.Stop(ctx)
			st := c.Stats()
			accountedFor(t, st)
			// The offline state, published at stop, is never kept.
			if withStore {
				if lost != 1 || st.Spilled != n || st.Dropped != 1 {
					t.Errorf("lost %d, stats %+v; want %d kept in the store and the offline state lost", lost, st, n)
				}
				// Started again with the same id and store: everything
				// arrives, and the state ends online, not offline.
				m.Resume()
				_, l := start(t, cfg, nil)
				l.wait(t, true, 1)
				cnt.Wait(10*time.Second, "every message", func() bool { return cnt.Distinct() >= n })
				state := brokertest.Subscribe(t, m.URL(), p+"/bridge/state")
				if s := state.WaitTopic(5*time.Second, p+"/bridge/state"); s.Payload != "online" {
					t.Errorf("retained state = %q, want online", s.Payload)
				}
				return
			}
			if lost != n+1 || st.Dropped != n+1 {
				t.Errorf("lost %d, stats %+v; want the %d messages in flight and the offline state counted as lost", lost, st, n)
			}
		})
	}
}

// TestQoS0LossesAreCounted floods QoS 0 messages through a link that is cut
// again and again. paho drops a QoS 0 message published while it is
// reconnecting and calls it a success, and never completes one published
// while it connects: every message must end up counted exactly once, as
// published, failed or dropped, never as a late acknowledgement QoS 0 does
// not have. A cut while the reconnect after the previous one is under way
// (paho's reports of the two can come in either order) must not leave the
// queue waiting for a connection that is up.
func TestQoS0LossesAreCounted(t *testing.T) {
	b := brokertest.Targets(t)[0]
	proxy := brokertest.NewProxy(t, strings.TrimPrefix(b.URL, "tcp://"))
	cfg := config(t, proxy.URL())
	cfg.QoS = 0
	cfg.WriteTimeout = 500 * time.Millisecond
	p := cfg.TopicPrefix
	c, l := start(t, cfg, nil)
	l.wait(t, true, 1)
	sub := brokertest.Subscribe(t, b.URL, p+"/n/#")
	const n = 20000
	cuts := 0
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for i := 0; i < n; {
		<-tick.C
		for range 50 {
			if err := c.Publish(fmt.Sprintf("%s/n/%d", p, i), []byte("x"), false); err != nil {
				t.Fatal(err)
			}
			i++
		}
		if i%2000 == 0 && c.Link().Connected {
			proxy.Cut()
			cuts++
		}
	}
	st := atRest(t, c, 30*time.Second)
	received := uint64(len(sub.Messages()))
	t.Logf("%d cuts: %d received, stats %+v", cuts, received, st)
	// n messages, and the online state at every connection.
	if st.Accepted != n+st.Reconnects+1 {
		t.Errorf("stats = %+v: %d accepted, want %d", st, st.Accepted, n+st.Reconnects+1)
	}
	if st.Late != 0 {
		t.Errorf("stats = %+v: QoS 0 messages counted as late", st)
	}
	// What was written may still die with a cut connection; what was not
	// counted as published can never arrive.
	if received > st.Published {
		t.Errorf("received %d, more than the %d counted as published", received, st.Published)
	}
}

// TestSlowSubscriberDoesNotHoldUpPublishing: a subscriber that stops
// reading (its handler blocks, so its client stops reading the socket) has
// the broker queue for it; the bridge's publishing goes on at full speed,
// nothing is dropped, and the subscriber gets everything once it reads
// again.
func TestSlowSubscriberDoesNotHoldUpPublishing(t *testing.T) {
	m := brokertest.StartMosquitto(t, "")
	cfg := config(t, m.URL())
	p := cfg.TopicPrefix
	release := make(chan struct{})
	var got atomic.Int64
	slow := paho.NewClient(paho.NewClientOptions().AddBroker(m.URL()).SetClientID(brokertest.ClientID(t)).
		SetCleanSession(true).SetOrderMatters(true))
	if tok := slow.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("slow subscriber: %v", tok.Error())
	}
	if tok := slow.Subscribe(p+"/n/#", 1, func(paho.Client, paho.Message) {
		<-release
		got.Add(1)
	}); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("slow subscriber: %v", tok.Error())
	}
	var once sync.Once
	free := func() { once.Do(func() { close(release) }) }
	t.Cleanup(func() { free(); slow.Disconnect(100) })

	c, l := start(t, cfg, nil)
	l.wait(t, true, 1)
	const n = 20000
	payload := []byte(strings.Repeat("x", 1024))
	begin := time.Now()
	for i := range n {
		if err := c.Publish(fmt.Sprintf("%s/n/%d", p, i), payload, false); err != nil {
			t.Fatal(err)
		}
	}
	st := atRest(t, c, 30*time.Second)
	took := time.Since(begin)
	t.Logf("%d messages of 1 KiB acknowledged in %s with a subscriber that reads nothing", n, took)
	if st.Published != n+st.Reconnects+1 {
		t.Errorf("stats = %+v, want the %d messages and an online state a connection published", st, n)
	}
	free()
	waitFor(t, 30*time.Second, "the slow subscriber to get everything", func() bool { return got.Load() >= n })
}

// TestUnwritableStoreDir: a store directory the bridge cannot write (a
// volume mounted read-only or owned by another user, a full disk) makes
// paho's file store panic on every write. The client must not crash: it
// says so, and delivers while the broker is there.
func TestUnwritableStoreDir(t *testing.T) {
	b := brokertest.Targets(t)[0]
	file := filepath.Join(t.TempDir(), "not-a-directory")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	proxy := brokertest.NewProxy(t, strings.TrimPrefix(b.URL, "tcp://"))
	cfg := config(t, proxy.URL())
	cfg.StoreDir = filepath.Join(file, "store")
	sub := brokertest.Subscribe(t, b.URL, cfg.TopicPrefix+"/n/#")
	c, l, logs := startLogged(t, cfg)
	l.wait(t, true, 1)
	for i := range 10 {
		if err := c.Publish(fmt.Sprintf("%s/n/%d", cfg.TopicPrefix, i), []byte("x"), false); err != nil {
			t.Fatal(err)
		}
	}
	sub.Wait(10*time.Second, "every message", func(ms []brokertest.Msg) bool { return len(ms) >= 10 })
	if !strings.Contains(logs.String(), "message store failed") {
		t.Errorf("nothing logged about the store:\n%s", logs.String())
	}
	// Acknowledged, though the store kept nothing. (The subscriber can
	// have a message before the client has its acknowledgement.)
	if st := atRest(t, c, 10*time.Second); st.Published != 11 {
		t.Errorf("stats = %+v, want the 10 and the online state published", st)
	}
	// Stopped in an outage, it cannot keep what it holds: counted as lost,
	// not as stored.
	proxy.SetDown(true)
	l.wait(t, false, 1)
	for i := range 5 {
		c.Publish(fmt.Sprintf("%s/n/late%d", cfg.TopicPrefix, i), []byte("x"), false)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	// The 5 and the offline state.
	if lost := c.Stop(ctx); lost != 6 || c.Stats().Dropped != 6 || c.Stats().Spilled != 0 {
		t.Errorf("lost %d, stats %+v; want the 5 and the offline state counted as lost", lost, c.Stats())
	}
}
