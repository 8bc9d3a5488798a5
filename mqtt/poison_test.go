package mqtt_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/exlive2mqtt/exlive2mqtt/internal/brokertest"
	"github.com/exlive2mqtt/exlive2mqtt/mqtt"
)

// goodDelivered waits until sub has every topic of want.
func goodDelivered(t *testing.T, sub *brokertest.Subscriber, want []string) {
	t.Helper()
	sub.Wait(20*time.Second, fmt.Sprintf("the %d good messages", len(want)), func(ms []brokertest.Msg) bool {
		seen := make(map[string]bool)
		for _, m := range ms {
			seen[m.Topic] = true
		}
		for _, w := range want {
			if !seen[w] {
				return false
			}
		}
		return true
	})
}

// poisonStrikes is mqtt's: the connection losses that find a poison
// message.
const poisonStrikes = 2

// TestPoisonMessage: NATS's MQTT server closes the connection over a publish
// whose topic holds '.' or a space. With no topic rules in front, such a
// message between good ones must cost a bounded number of reconnects, not a
// loop: at QoS 1 it is found (the first unacknowledged message at two losses
// in a row), dropped, counted and logged once with its topic, and its topic
// is refused from then on; every good message is delivered.
func TestPoisonMessage(t *testing.T) {
	nats := brokertest.StartNATS(t)
	for name, bad := range map[string]string{"dot": "V.1", "space": "V 2"} {
		t.Run(name, func(t *testing.T) {
			cfg := config(t, nats.URL())
			p := cfg.TopicPrefix
			sub := brokertest.Subscribe(t, nats.URL(), p+"/n/#")
			c, l, logs := startLogged(t, cfg)
			t.Cleanup(func() {
				if t.Failed() {
					t.Logf("client log:\n%s", logs.String())
				}
			})
			l.wait(t, true, 1)
			var good []string
			publish := func(from, to int) {
				for i := from; i < to; i++ {
					topic := fmt.Sprintf("%s/n/good%d", p, i)
					if err := c.Publish(topic, []byte("x"), false); err != nil {
						t.Fatal(err)
					}
					good = append(good, topic)
				}
			}
			badTopic := p + "/n/" + bad
			publish(0, 10)
			if err := c.Publish(badTopic, []byte("x"), false); err != nil {
				t.Fatalf("Publish(%q) = %v before the broker refused it", badTopic, err)
			}
			publish(10, 20)
			goodDelivered(t, sub, good)
			st := atRest(t, c, 20*time.Second)
			t.Logf("poison found after %d reconnects", st.Reconnects)
			// Dropped: the poison, and the online state of a connection
			// lost before it was published (the next one states it). A
			// message sent just before the poison can be found first when
			// the broker's reset ate its acknowledgement (see
			// poisonStrikes): then two are counted.
			if st.Poison < 1 || st.Poison > 2 || st.Dropped < st.Poison || st.Dropped > st.Poison+st.Reconnects {
				t.Errorf("stats = %+v, want the poison message counted poison and dropped", st)
			}
			if st.Reconnects < 2 || st.Reconnects > 2*poisonStrikes+2 {
				t.Errorf("stats = %+v: %d reconnects, want 2 (two losses find the poison), at most %d", st, st.Reconnects, 2*poisonStrikes+2)
			}
			// The topic is refused now, before it reaches the broker.
			if err := c.Publish(badTopic, []byte("x"), false); !errors.Is(err, mqtt.ErrTopicRefused) {
				t.Errorf("Publish to the refused topic = %v, want ErrTopicRefused", err)
			}
			// The link has settled: more traffic, no more reconnects.
			publish(20, 40)
			goodDelivered(t, sub, good)
			after := atRest(t, c, 20*time.Second)
			if after.Reconnects != st.Reconnects || after.Invalid != 1 || after.Poison != st.Poison {
				t.Errorf("stats after = %+v, want %d reconnects and %d poison as before, 1 invalid", after, st.Reconnects, st.Poison)
			}
			if !c.Link().Connected {
				t.Error("link down after the poison was dropped")
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c.Stop(ctx)
			log := logs.String()
			if n := strings.Count(log, `"topic":"`+badTopic+`"`); n != 1 {
				t.Errorf("the log names the poison topic %d times, want once:\n%s", n, log)
			}
			for _, m := range sub.Messages() {
				if m.Topic == badTopic {
					t.Errorf("the broker delivered the poison message: %+v", m)
				}
			}
		})
	}
}

// TestPoisonMessageQoS0: at QoS 0 nothing is acknowledged, so nothing tells
// which message the broker refused; but nothing is sent again either. A
// message that makes NATS close the connection costs one reconnect, and the
// link then stays up.
func TestPoisonMessageQoS0(t *testing.T) {
	nats := brokertest.StartNATS(t)
	cfg := config(t, nats.URL())
	cfg.QoS = 0
	p := cfg.TopicPrefix
	sub := brokertest.Subscribe(t, nats.URL(), p+"/n/#")
	c, l, logs := startLogged(t, cfg)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("stats %+v; client log:\n%s", c.Stats(), logs.String())
		}
	})
	l.wait(t, true, 1)
	var before []string
	for i := range 10 {
		topic := fmt.Sprintf("%s/n/good%d", p, i)
		c.Publish(topic, []byte("x"), false)
		before = append(before, topic)
	}
	// Delivered before the poison is sent: NATS handles a connection's
	// publishes in order.
	goodDelivered(t, sub, before)
	if err := c.Publish(p+"/n/V.1", []byte("x"), false); err != nil {
		t.Fatal(err)
	}
	// Connected again. (The loss can be reported after the reconnect:
	// then the link never shows down, see linkState.)
	l.wait(t, true, 2)
	var after []string
	for i := 10; i < 30; i++ {
		topic := fmt.Sprintf("%s/n/good%d", p, i)
		c.Publish(topic, []byte("x"), false)
		after = append(after, topic)
	}
	goodDelivered(t, sub, after)
	st := atRest(t, c, 20*time.Second)
	if st.Reconnects != 1 {
		t.Errorf("stats = %+v: %d reconnects, want 1", st, st.Reconnects)
	}
	if st.Poison != 0 {
		t.Errorf("stats = %+v: QoS 0 messages counted as poison", st)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c.Stop(ctx)
}
