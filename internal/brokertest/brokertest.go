// Package brokertest gives integration tests real brokers to run against:
// the embedded broker always, so tests pass on a machine with nothing
// installed, and the broker EXLIVE2MQTT_TEST_MQTT_URL names (Mosquitto in
// CI) as well. It also has a subscriber that records what it receives, and
// a TCP proxy that can cut the link to a broker without touching the broker.
package brokertest

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/exlive2mqtt/exlive2mqtt/internal/broker"
)

// EnvURL is the variable that names a real broker for the tests.
const EnvURL = "EXLIVE2MQTT_TEST_MQTT_URL"

// EnvBrokers names the brokers that take seconds to start, which tests run
// against only when asked: "all", or a comma-separated list of "nats" and
// "rabbitmq". .ci/run sets it for the broker matrix.
const EnvBrokers = "EXLIVE2MQTT_TEST_BROKERS"

// Wanted reports whether EnvBrokers asks for the broker name.
func Wanted(name string) bool {
	for _, w := range strings.Split(os.Getenv(EnvBrokers), ",") {
		if w = strings.TrimSpace(w); w == "all" || w == name {
			return true
		}
	}
	return false
}

// Target is a broker a test runs against.
type Target struct {
	Name string // "embedded" or "external"
	URL  string
}

// Targets returns the brokers to test against. The embedded one is started
// now and stopped when the test ends.
func Targets(t testing.TB) []Target {
	t.Helper()
	targets := []Target{{Name: "embedded", URL: Embedded(t).URL()}}
	if u := os.Getenv(EnvURL); u != "" {
		targets = append(targets, Target{Name: "external", URL: u})
	}
	return targets
}

// Each runs f as a subtest against every target.
func Each(t *testing.T, f func(t *testing.T, target Target)) {
	t.Helper()
	for _, target := range Targets(t) {
		t.Run(target.Name, func(t *testing.T) { f(t, target) })
	}
}

// Heavy returns the brokers for tests that push thousands of messages at
// once: the embedded broker, and a private Mosquitto without the default
// limit of 1000 queued messages per subscriber (the machine's Mosquitto
// would drop what the test subscriber cannot take fast enough, which says
// nothing about the bridge).
func Heavy(t testing.TB) []Target {
	t.Helper()
	return []Target{
		{Name: "embedded", URL: Embedded(t).URL()},
		{Name: "mosquitto", URL: StartMosquitto(t, "").URL()},
	}
}

// EachHeavy runs f as a subtest against every Heavy target.
func EachHeavy(t *testing.T, f func(t *testing.T, target Target)) {
	t.Helper()
	for _, target := range Heavy(t) {
		t.Run(target.Name, func(t *testing.T) { f(t, target) })
	}
}

// Embedded starts an embedded broker on 127.0.0.1:0 for the test.
func Embedded(t testing.TB) *broker.Broker {
	t.Helper()
	b, err := broker.Start("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// Prefix returns a topic prefix no other test uses, so tests can share a
// real broker and its retained messages.
func Prefix(t testing.TB) string {
	var b [6]byte
	rand.Read(b[:])
	name := strings.NewReplacer("/", "_", "+", "_", "#", "_", " ", "_").Replace(t.Name())
	if len(name) > 40 {
		name = name[:40]
	}
	return "test/" + name + "-" + hex.EncodeToString(b[:])
}

// ClientID returns a client id no other test uses.
func ClientID(t testing.TB) string {
	var b [6]byte
	rand.Read(b[:])
	return "t-" + hex.EncodeToString(b[:])
}

// Msg is a message a Subscriber received.
type Msg struct {
	Topic    string
	Payload  string
	Retained bool
	At       time.Time
}

// Subscriber is a plain paho client that records what it receives.
type Subscriber struct {
	t       testing.TB
	c       paho.Client
	mu      sync.Mutex
	msgs    []Msg
	changed chan struct{}
}

// Subscribe connects to url and subscribes to filters at QoS 1. It returns
// once the broker has acknowledged the subscriptions.
func Subscribe(t testing.TB, url string, filters ...string) *Subscriber {
	t.Helper()
	s := &Subscriber{t: t, changed: make(chan struct{})}
	subscribed := make(chan error, 1)
	opts := paho.NewClientOptions().AddBroker(url).SetClientID(ClientID(t)).
		SetCleanSession(true).SetOrderMatters(true).SetAutoReconnect(true).
		SetMaxReconnectInterval(500 * time.Millisecond).
		SetOnConnectHandler(func(c paho.Client) {
			var err error
			for _, f := range filters {
				tok := c.Subscribe(f, 1, s.record)
				if !tok.WaitTimeout(5 * time.Second) {
					err = errors.New("subscribe " + f + ": no answer")
				} else if tok.Error() != nil {
					err = tok.Error()
				}
			}
			select {
			case subscribed <- err:
			default:
			}
		})
	s.c = paho.NewClient(opts)
	if tok := s.c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscriber connect to %s: %v", url, tok.Error())
	}
	t.Cleanup(func() { s.c.Disconnect(100) })
	select {
	case err := <-subscribed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("subscriber: subscriptions not acknowledged")
	}
	return s
}

func (s *Subscriber) record(_ paho.Client, m paho.Message) {
	s.mu.Lock()
	s.msgs = append(s.msgs, Msg{Topic: m.Topic(), Payload: string(m.Payload()), Retained: m.Retained(), At: time.Now()})
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
}

// Messages returns what has been received so far.
func (s *Subscriber) Messages() []Msg {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Msg(nil), s.msgs...)
}

// Publish publishes a message from the subscriber's own client (QoS 1).
func (s *Subscriber) Publish(topic string, payload []byte, retain bool) {
	s.t.Helper()
	tok := s.c.Publish(topic, 1, retain, payload)
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		s.t.Fatalf("publish %s: %v", topic, tok.Error())
	}
}

// Wait waits until cond holds for what has been received, at most timeout.
func (s *Subscriber) Wait(timeout time.Duration, what string, cond func([]Msg) bool) []Msg {
	s.t.Helper()
	deadline := time.After(timeout)
	for {
		s.mu.Lock()
		ok := cond(s.msgs)
		msgs := append([]Msg(nil), s.msgs...)
		ch := s.changed
		s.mu.Unlock()
		if ok {
			return msgs
		}
		select {
		case <-ch:
		case <-deadline:
			s.t.Fatalf("timed out after %s waiting for %s; received %d messages: %s", timeout, what, len(msgs), summary(msgs))
			return nil
		}
	}
}

// WaitTopic waits for a message on topic and returns the latest one.
func (s *Subscriber) WaitTopic(timeout time.Duration, topic string) Msg {
	s.t.Helper()
	msgs := s.Wait(timeout, "a message on "+topic, func(ms []Msg) bool {
		for _, m := range ms {
			if m.Topic == topic {
				return true
			}
		}
		return false
	})
	var last Msg
	for _, m := range msgs {
		if m.Topic == topic {
			last = m
		}
	}
	return last
}

// Last returns the latest message on topic, if any.
func (s *Subscriber) Last(topic string) (Msg, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := len(s.msgs) - 1; i >= 0; i-- {
		if s.msgs[i].Topic == topic {
			return s.msgs[i], true
		}
	}
	return Msg{}, false
}

func summary(msgs []Msg) string {
	var b strings.Builder
	for i, m := range msgs {
		if i == 10 {
			b.WriteString(" …")
			break
		}
		p := m.Payload
		if len(p) > 80 {
			p = p[:80] + "…"
		}
		b.WriteString("\n  " + m.Topic + " " + p)
	}
	return b.String()
}
