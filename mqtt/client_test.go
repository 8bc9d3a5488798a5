package mqtt_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/exlive2mqtt/exlive2mqtt/internal/brokertest"
	"github.com/exlive2mqtt/exlive2mqtt/mqtt"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func config(t *testing.T, url string) mqtt.Config {
	t.Helper()
	cfg := mqtt.Defaults()
	cfg.URL = url
	cfg.ClientID = brokertest.ClientID(t)
	cfg.TopicPrefix = brokertest.Prefix(t)
	cfg.RetryMax = 200 * time.Millisecond
	cfg.WriteTimeout = 2 * time.Second
	if err := cfg.Validate(nil); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// bridgeState is the state topic the bridge gives its client, under the
// test's prefix.
func bridgeState(cfg mqtt.Config) mqtt.State {
	return mqtt.State{Topic: cfg.TopicPrefix + "/bridge/state", Online: "online", Offline: "offline"}
}

// start starts a client and stops it when the test ends.
func start(t *testing.T, cfg mqtt.Config, subs map[string]func(mqtt.Incoming)) (*mqtt.Client, *links) {
	t.Helper()
	l := &links{changed: make(chan struct{})}
	c, err := mqtt.New(cfg, bridgeState(cfg), zerolog.Nop(), l.add)
	if err != nil {
		t.Fatal(err)
	}
	for f, h := range subs {
		c.Subscribe(f, h)
	}
	c.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		c.Stop(ctx)
		accountedFor(t, c.Stats())
	})
	return c, l
}

// accountedFor checks the counters of a client at rest (stopped, or with
// nothing queued or in flight): every message it accepted ended in exactly
// one outcome.
func accountedFor(t testing.TB, st mqtt.Stats) {
	t.Helper()
	if st.Queued != 0 || st.InFlight != 0 {
		t.Errorf("stats = %+v: messages still queued or in flight", st)
	}
	if settled := st.Published + st.Failed + st.Dropped + st.Spilled; st.Accepted != settled {
		t.Errorf("stats = %+v: %d accepted, %d settled (published + failed + dropped + spilled)", st, st.Accepted, settled)
	}
}

// atRest waits until c has nothing queued or in flight, checks its
// counters add up, and returns them.
func atRest(t testing.TB, c *mqtt.Client, timeout time.Duration) mqtt.Stats {
	t.Helper()
	var st mqtt.Stats
	waitFor(t, timeout, "nothing queued or in flight", func() bool {
		st = c.Stats()
		return st.Queued == 0 && st.InFlight == 0
	})
	accountedFor(t, st)
	return st
}

// links records link changes.
type links struct {
	mu      sync.Mutex
	all     []mqtt.Link
	changed chan struct{}
}

func (l *links) add(link mqtt.Link) {
	l.mu.Lock()
	l.all = append(l.all, link)
	close(l.changed)
	l.changed = make(chan struct{})
	l.mu.Unlock()
}

func (l *links) wait(t *testing.T, connected bool, n int) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		l.mu.Lock()
		k := 0
		for _, x := range l.all {
			if x.Connected == connected {
				k++
			}
		}
		ch := l.changed
		l.mu.Unlock()
		if k >= n {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("timed out waiting for link connected=%v #%d", connected, n)
		}
	}
}

func TestPublishOnlineAndOffline(t *testing.T) {
	brokertest.Each(t, func(t *testing.T, b brokertest.Target) {
		cfg := config(t, b.URL)
		sub := brokertest.Subscribe(t, b.URL, cfg.TopicPrefix+"/#")
		c, l := start(t, cfg, nil)
		l.wait(t, true, 1)
		if m := sub.WaitTopic(5*time.Second, cfg.TopicPrefix+"/bridge/state"); m.Payload != "online" {
			t.Fatalf("state = %q, want online", m.Payload)
		}
		for i := range 100 {
			if err := c.Publish(fmt.Sprintf("%s/vehicles/V%d/position", cfg.TopicPrefix, i), []byte(`{"n":1}`), true); err != nil {
				t.Fatal(err)
			}
		}
		sub.Wait(5*time.Second, "100 positions", func(ms []brokertest.Msg) bool {
			n := 0
			for _, m := range ms {
				if strings.HasSuffix(m.Topic, "/position") {
					n++
				}
			}
			return n == 100
		})
		// Stop returns once the offline state is delivered, woken by its
		// acknowledgement: long before its context ends.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		begin := time.Now()
		if lost := c.Stop(ctx); lost != 0 {
			t.Errorf("lost %d at stop", lost)
		}
		if took := time.Since(begin); took > 15*time.Second {
			t.Errorf("Stop took %s with nothing left to deliver but the offline state", took)
		}
		sub.Wait(5*time.Second, "offline", func(ms []brokertest.Msg) bool {
			return lastPayload(ms, cfg.TopicPrefix+"/bridge/state") == "offline"
		})
		st := c.Stats()
		accountedFor(t, st)
		if st.Accepted != 102 || st.Published != 102 {
			t.Errorf("stats = %+v, want 102 accepted and published (100 + online + offline)", st)
		}
		// The state is retained: a newcomer sees offline.
		late := brokertest.Subscribe(t, b.URL, cfg.TopicPrefix+"/bridge/state")
		if m := late.WaitTopic(5*time.Second, cfg.TopicPrefix+"/bridge/state"); m.Payload != "offline" || !m.Retained {
			t.Errorf("retained state = %+v, want offline retained", m)
		}
	})
}

func TestLastWillOnLostConnection(t *testing.T) {
	brokertest.Each(t, func(t *testing.T, b brokertest.Target) {
		proxy := brokertest.NewProxy(t, strings.TrimPrefix(b.URL, "tcp://"))
		cfg := config(t, proxy.URL())
		cfg.Keepalive = time.Second
		sub := brokertest.Subscribe(t, b.URL, cfg.TopicPrefix+"/bridge/state")
		_, l := start(t, cfg, nil)
		l.wait(t, true, 1)
		sub.WaitTopic(5*time.Second, cfg.TopicPrefix+"/bridge/state")
		proxy.SetDown(true)
		// The broker sees the connection drop without a DISCONNECT and
		// publishes the will.
		sub.Wait(10*time.Second, "the will", func(ms []brokertest.Msg) bool {
			return lastPayload(ms, cfg.TopicPrefix+"/bridge/state") == "offline"
		})
		l.wait(t, false, 1)
		proxy.SetDown(false)
		l.wait(t, true, 2)
		sub.Wait(10*time.Second, "online again", func(ms []brokertest.Msg) bool {
			return lastPayload(ms, cfg.TopicPrefix+"/bridge/state") == "online"
		})
	})
}

func TestOutageQueueDeliversEverythingAfter(t *testing.T) {
	brokertest.EachHeavy(t, func(t *testing.T, b brokertest.Target) {
		proxy := brokertest.NewProxy(t, strings.TrimPrefix(b.URL, "tcp://"))
		cfg := config(t, proxy.URL())
		sub := brokertest.Subscribe(t, b.URL, cfg.TopicPrefix+"/n/#")
		c, l := start(t, cfg, nil)
		l.wait(t, true, 1)
		proxy.SetDown(true)
		l.wait(t, false, 1)
		const n = 5000
		for i := range n {
			if err := c.Publish(fmt.Sprintf("%s/n/%d", cfg.TopicPrefix, i), []byte("x"), false); err != nil {
				t.Fatal(err)
			}
		}
		if q := c.Stats().Queued; q != n {
			t.Errorf("queued during the outage = %d, want %d", q, n)
		}
		proxy.SetDown(false)
		msgs := sub.Wait(20*time.Second, "every message", func(ms []brokertest.Msg) bool { return len(ms) >= n })
		seen := make(map[string]bool)
		for _, m := range msgs {
			seen[m.Topic] = true
		}
		if len(seen) != n {
			t.Errorf("%d distinct messages delivered, want %d", len(seen), n)
		}
		if st := atRest(t, c, 10*time.Second); st.Published != n+st.Reconnects+1 || st.Dropped != 0 {
			t.Errorf("stats = %+v, want %d published (one online state a connection) and none dropped", st, n)
		}
	})
}

func TestOutageQueueLimitDropsOldestAndCounts(t *testing.T) {
	b := brokertest.Targets(t)[0]
	proxy := brokertest.NewProxy(t, strings.TrimPrefix(b.URL, "tcp://"))
	cfg := config(t, proxy.URL())
	cfg.QueueLimit = 100
	sub := brokertest.Subscribe(t, b.URL, cfg.TopicPrefix+"/n/#")
	c, l := start(t, cfg, nil)
	l.wait(t, true, 1)
	proxy.SetDown(true)
	l.wait(t, false, 1)
	for i := range 150 {
		c.Publish(fmt.Sprintf("%s/n/%03d", cfg.TopicPrefix, i), []byte("x"), false)
	}
	if st := c.Stats(); st.Dropped != 50 || st.Queued != 100 {
		t.Fatalf("stats = %+v, want 50 dropped and 100 queued", st)
	}
	proxy.SetDown(false)
	msgs := sub.Wait(10*time.Second, "the 100 newest", func(ms []brokertest.Msg) bool { return len(ms) >= 100 })
	if msgs[0].Topic != cfg.TopicPrefix+"/n/050" {
		t.Errorf("first delivered = %s, want n/050 (the oldest 50 dropped)", msgs[0].Topic)
	}
	if st := atRest(t, c, 10*time.Second); st.Dropped != 50 || st.Published != 100+st.Reconnects+1 {
		t.Errorf("stats = %+v, want 50 dropped and the 100 newest published", st)
	}
}

func TestInvalidTopicsNeverReachTheBroker(t *testing.T) {
	brokertest.Each(t, func(t *testing.T, b brokertest.Target) {
		cfg := config(t, b.URL)
		sub := brokertest.Subscribe(t, b.URL, cfg.TopicPrefix+"/#")
		c, l := start(t, cfg, nil)
		l.wait(t, true, 1)
		p := cfg.TopicPrefix
		for _, topic := range []string{p + "/a/+/b", p + "/a/#", p + "/a\x00b", "", p + "/" + strings.Repeat("x", 70000), p + "/bad\xffutf8", p + "/ctl\x01"} {
			if err := c.Publish(topic, []byte("x"), false); err == nil {
				t.Errorf("Publish(%q) accepted", topic)
			}
		}
		// The connection is still good: a broker would have dropped it
		// for a wildcard in a publish.
		c.Publish(p+"/after", []byte("ok"), false)
		sub.WaitTopic(5*time.Second, p+"/after")
		if st := c.Stats(); st.Invalid != 7 || st.Reconnects != 0 {
			t.Errorf("stats = %+v, want 7 invalid and no reconnect", st)
		}
	})
}

func TestSubscriptionsSurviveReconnect(t *testing.T) {
	brokertest.Each(t, func(t *testing.T, b brokertest.Target) {
		proxy := brokertest.NewProxy(t, strings.TrimPrefix(b.URL, "tcp://"))
		cfg := config(t, proxy.URL())
		got := make(chan mqtt.Incoming, 10)
		_, l := start(t, cfg, map[string]func(mqtt.Incoming){
			cfg.TopicPrefix + "/vehicles/+/command/set": func(in mqtt.Incoming) { got <- in },
		})
		l.wait(t, true, 1)
		pub := brokertest.Subscribe(t, b.URL)
		pub.Publish(cfg.TopicPrefix+"/vehicles/V1/command/set", []byte("one"), false)
		if in := <-got; in.Payload == nil || string(in.Payload) != "one" || in.Retained {
			t.Fatalf("got %+v", in)
		}
		proxy.Cut()
		l.wait(t, true, 2)
		pub.Publish(cfg.TopicPrefix+"/vehicles/V1/command/set", []byte("two"), false)
		for {
			select {
			case in := <-got:
				if string(in.Payload) == "two" {
					return
				}
				// QoS 1 is at least once: "one" may come again if its
				// acknowledgement was cut off, flagged as a duplicate
				// when the broker knows.
				t.Logf("again: %q duplicate=%v", in.Payload, in.Duplicate)
			case <-time.After(10 * time.Second):
				t.Fatal("no request after reconnect")
			}
		}
	})
}

func TestValidate(t *testing.T) {
	read := func(path string) ([]byte, error) {
		if path == "/run/secrets/mqtt" {
			return []byte("s3cret\n"), nil
		}
		return nil, errors.New("no such file")
	}
	host := func() (string, error) { return "box", nil }
	for _, tc := range []struct {
		name string
		edit func(*mqtt.Config)
		want []string // substrings of the error, in order; nil: valid
	}{
		{"defaults", func(*mqtt.Config) {}, nil},
		{"bad scheme", func(c *mqtt.Config) { c.URL = "http://x:1" }, []string{`URL="http://x:1": scheme`}},
		{"no host", func(c *mqtt.Config) { c.URL = "localhost" }, []string{`URL="localhost": want scheme://host:port`}},
		{"credentials in url", func(c *mqtt.Config) { c.URL = "tcp://u:hunter2@x:1" }, []string{`URL="tcp://u@x:1": put the user name`}},
		{"qos", func(c *mqtt.Config) { c.QoS = 2 }, []string{`QOS="2": must be 0 or 1`}},
		{"prefix", func(c *mqtt.Config) { c.TopicPrefix = "a/+/b" }, []string{`TOPIC_PREFIX="a/+/b"`}},
		{"cert without key", func(c *mqtt.Config) { c.CertFile = "/run/secrets/mqtt" }, []string{"CERT_FILE, KEY_FILE: set both"}},
		{"missing ca", func(c *mqtt.Config) { c.CAFile = "/nope.pem" }, []string{`CA_FILE="/nope.pem": cannot read`}},
		{"both passwords", func(c *mqtt.Config) { c.Password = "x"; c.PasswordFile = "/run/secrets/mqtt" }, []string{"PASSWORD_FILE: set together with PASSWORD"}},
		{"several", func(c *mqtt.Config) { c.QueueLimit = 0; c.WriteTimeout = 0; c.InFlight = 0 },
			[]string{`QUEUE_LIMIT="0"`, `INFLIGHT="0"`, `WRITE_TIMEOUT="0s"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := mqtt.Defaults()
			tc.edit(&cfg)
			err := errors.Join(cfg.Validate(host), cfg.ReadFiles(read))
			if tc.want == nil {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if cfg.ClientID != "exlive2mqtt-box" {
					t.Errorf("client id = %q", cfg.ClientID)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			msg := err.Error()
			if strings.Contains(msg, "hunter2") || strings.Contains(msg, "s3cret") {
				t.Fatalf("error leaks a secret: %s", msg)
			}
			at := 0
			for _, w := range tc.want {
				i := strings.Index(msg[at:], w)
				if i < 0 {
					t.Fatalf("error %q lacks %q (in order)", msg, w)
				}
				at += i + len(w)
			}
		})
	}
	cfg := mqtt.Defaults()
	cfg.PasswordFile = "/run/secrets/mqtt"
	if err := cfg.Validate(host); err != nil || cfg.Password != "" {
		t.Fatalf("Validate read the password file: %v, %q", err, cfg.Password.Reveal())
	}
	if err := cfg.ReadFiles(read); err != nil || cfg.Password.Reveal() != "s3cret" {
		t.Fatalf("password file: %v, %q", err, cfg.Password.Reveal())
	}
	// Validate reads no file: a CA file that cannot be read is ReadFiles'
	// error alone.
	cfg = mqtt.Defaults()
	cfg.CAFile = "/nope.pem"
	if err := cfg.Validate(host); err != nil {
		t.Fatalf("Validate = %v, want nil: it reads no file", err)
	}
}

func lastPayload(ms []brokertest.Msg, topic string) string {
	for i := len(ms) - 1; i >= 0; i-- {
		if ms[i].Topic == topic {
			return ms[i].Payload
		}
	}
	return ""
}
