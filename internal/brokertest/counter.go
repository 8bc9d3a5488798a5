package brokertest

import (
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// Counter is a persistent subscriber (clean session off, its own client id)
// that counts distinct messages: a broker that restarts from its
// persistence keeps what is meant for it, and QoS 1 may deliver twice, so
// tests that must lose nothing count topic and payload pairs, not
// deliveries.
type Counter struct {
	t       testing.TB
	c       paho.Client
	mu      sync.Mutex
	seen    map[string]struct{}
	changed chan struct{}
}

// NewCounter connects to url, subscribes to filter at QoS 1 and returns
// once the broker has acknowledged the subscription. setup may change the
// client's options (credentials, say).
func NewCounter(t testing.TB, url, filter string, setup ...func(*paho.ClientOptions)) *Counter {
	t.Helper()
	cnt := &Counter{t: t, seen: make(map[string]struct{}), changed: make(chan struct{})}
	subscribed := make(chan error, 1)
	opts := paho.NewClientOptions().AddBroker(url).SetClientID(ClientID(t)).
		SetCleanSession(false).SetAutoReconnect(true).SetConnectRetry(true).
		SetConnectRetryInterval(100 * time.Millisecond).SetMaxReconnectInterval(200 * time.Millisecond).
		// The default handler catches what the broker kept for us and
		// sends before the subscription is made again.
		SetDefaultPublishHandler(cnt.record).
		SetOnConnectHandler(func(c paho.Client) {
			tok := c.Subscribe(filter, 1, nil)
			tok.WaitTimeout(5 * time.Second)
			select {
			case subscribed <- tok.Error():
			default:
			}
		})
	for _, f := range setup {
		f(opts)
	}
	cnt.c = paho.NewClient(opts)
	cnt.c.Connect()
	t.Cleanup(func() { cnt.c.Disconnect(100) })
	select {
	case err := <-subscribed:
		if err != nil {
			t.Fatalf("counter: subscribe: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("counter: not subscribed")
	}
	return cnt
}

func (c *Counter) record(_ paho.Client, m paho.Message) {
	c.mu.Lock()
	c.seen[m.Topic()+"\x00"+string(m.Payload())] = struct{}{}
	close(c.changed)
	c.changed = make(chan struct{})
	c.mu.Unlock()
}

// Has reports whether topic with payload has been received.
func (c *Counter) Has(topic, payload string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.seen[topic+"\x00"+payload]
	return ok
}

// Distinct returns how many distinct messages have been received.
func (c *Counter) Distinct() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.seen)
}

// Count returns how many distinct messages arrived on topics ending in
// suffix.
func (c *Counter) Count(suffix string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for k := range c.seen {
		topic, _, _ := strings.Cut(k, "\x00")
		if strings.HasSuffix(topic, suffix) {
			n++
		}
	}
	return n
}

// Wait waits until cond holds, at most timeout; cond is checked again
// after every message.
func (c *Counter) Wait(timeout time.Duration, what string, cond func() bool) {
	c.t.Helper()
	deadline := time.After(timeout)
	for {
		c.mu.Lock()
		ch := c.changed
		c.mu.Unlock()
		if cond() {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			c.t.Fatalf("timed out after %s waiting for %s: %d distinct messages received", timeout, what, c.Distinct())
		}
	}
}

// WaitCount waits until n distinct messages have arrived on topics ending
// in suffix, at most timeout.
func (c *Counter) WaitCount(timeout time.Duration, suffix string, n int) {
	c.t.Helper()
	c.Wait(timeout, "distinct messages on *"+suffix, func() bool { return c.Count(suffix) >= n })
}
