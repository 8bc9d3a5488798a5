package mqtt_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eclipse/paho.mqtt.golang/packets"
	"github.com/exlive2mqtt/exlive2mqtt/internal/brokertest"
)

// sentPublish is a QoS 1 PUBLISH a tapped proxy saw the client send.
type sentPublish struct {
	conn  int
	id    uint16
	dup   bool
	topic string
}

// TestUnacknowledgedSentAgainOnce holds back the broker's acknowledgements
// of n QoS 1 messages the client writes itself, then cuts the connection:
// the client counts them late, and on the next connection writes each again
// exactly once, flagged as sent before, under its id, oldest first, ahead of
// anything new; then every message is published once by the counters.
func TestUnacknowledgedSentAgainOnce(t *testing.T) {
	brokertest.Each(t, func(t *testing.T, b brokertest.Target) {
		proxy := brokertest.NewProxy(t, strings.TrimPrefix(b.URL, "tcp://"))
		var mu sync.Mutex
		var sent []sentPublish
		proxy.Tap(func(conn int, pk packets.ControlPacket) {
			if p, ok := pk.(*packets.PublishPacket); ok && p.Qos == 1 {
				mu.Lock()
				sent = append(sent, sentPublish{conn, p.MessageID, p.Dup, p.TopicName})
				mu.Unlock()
			}
		})
		cfg := config(t, proxy.URL())
		cnt := brokertest.NewCounter(t, b.URL, cfg.TopicPrefix+"/n/#")
		c, l := start(t, cfg, nil)
		l.wait(t, true, 1)

		const n = 300
		publish := func(from int) {
			for i := from; i < from+n; i++ {
				if err := c.Publish(fmt.Sprintf("%s/n/%d", cfg.TopicPrefix, i), []byte("x"), false); err != nil {
					t.Fatal(err)
				}
			}
		}
		proxy.HoldAcks(true)
		publish(0)
		cnt.Wait(10*time.Second, "the first messages at the broker", func() bool { return cnt.Distinct() == n })
		// Unacknowledged past WriteTimeout (2 s): late, still in flight.
		waitFor(t, 10*time.Second, "the messages counted late", func() bool { return c.Stats().Late >= n })
		if st := c.Stats(); st.Late != n || st.InFlight != n || st.Published != 1 {
			t.Errorf("stats = %+v, want %d late and in flight, only the online state published", st, n)
		}

		proxy.HoldAcks(false)
		proxy.Cut()
		l.wait(t, true, 2)
		publish(n)
		cnt.Wait(20*time.Second, "every message", func() bool { return cnt.Distinct() == 2*n })
		if st := atRest(t, c, 10*time.Second); st.Published != 2*n+2 || st.Reconnects != 1 || st.Late != n {
			t.Errorf("stats = %+v, want %d published (and two online states), one reconnect, %d late", st, 2*n, n)
		}

		mu.Lock()
		defer mu.Unlock()
		var first, second []sentPublish
		for _, s := range sent {
			if !strings.HasPrefix(s.topic, cfg.TopicPrefix+"/n/") {
				continue // the online state: paho's
			}
			switch s.conn {
			case 1:
				first = append(first, s)
			case 2:
				second = append(second, s)
			default:
				t.Errorf("sent on connection %d: %+v", s.conn, s)
			}
		}
		if len(first) != n || len(second) != 2*n {
			t.Fatalf("sent %d messages on the first connection, %d on the second; want %d and %d", len(first), len(second), n, 2*n)
		}
		ids := make(map[uint16]bool)
		for i, s := range first {
			if want := fmt.Sprintf("%s/n/%d", cfg.TopicPrefix, i); s.topic != want || s.dup || ids[s.id] {
				t.Fatalf("first connection, message %d: %+v, want %s, not a duplicate, an id of its own", i, s, want)
			}
			ids[s.id] = true
			// Sent again first, in order, under the same id, flagged.
			if again := second[i]; again.topic != s.topic || again.id != s.id || !again.dup {
				t.Fatalf("second connection, message %d: %+v, want %+v sent again with DUP", i, again, s)
			}
		}
		for i, s := range second[n:] {
			if want := fmt.Sprintf("%s/n/%d", cfg.TopicPrefix, n+i); s.topic != want || s.dup {
				t.Fatalf("second connection, new message %d: %+v, want %s, not a duplicate", i, s, want)
			}
		}
	})
}
