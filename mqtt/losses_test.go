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
)

// What is lost, and how it is counted: the client stopped with messages in
// flight, QoS 0 through a link cut again and again, a subscriber that reads
// nothing, a store directory that cannot be written.

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
