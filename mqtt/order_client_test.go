package mqtt_test

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/exlive2mqtt/exlive2mqtt/internal/brokertest"
)

// TestQoS0InOrder: QoS 0 messages, most written straight onto the
// connection by Publish or the sender (see direct.go), a large one now and
// then through paho, arrive every one and in order on each topic, and each
// is counted published once.
func TestQoS0InOrder(t *testing.T) {
	for _, b := range brokertest.Targets(t) {
		t.Run(b.Name, func(t *testing.T) {
			cfg := config(t, b.URL)
			cfg.QoS = 0
			p := cfg.TopicPrefix
			c, l := start(t, cfg, nil)
			l.wait(t, true, 1)
			sub := brokertest.Subscribe(t, b.URL, p+"/o/#")
			const n, topics = 6000, 5
			large := bytes.Repeat([]byte("L"), 100_000)
			for i := range n {
				topic := fmt.Sprintf("%s/o/%d", p, i%topics)
				if err := c.Publish(topic, []byte(strconv.Itoa(i)), false); err != nil {
					t.Fatal(err)
				}
				if i%1000 == 999 {
					if err := c.Publish(p+"/o/large", large, false); err != nil {
						t.Fatal(err)
					}
				}
				if i%200 == 199 {
					// Give a subscriber on a busy machine time to read:
					// QoS 0 is not queued for it without limit.
					time.Sleep(2 * time.Millisecond)
				}
			}
			want := n + n/1000
			msgs := sub.Wait(30*time.Second, "every message", func(m []brokertest.Msg) bool { return len(m) >= want })
			var next [topics]int // the message each topic is due next
			for k := range next {
				next[k] = k
			}
			for _, m := range msgs {
				if m.Topic == p+"/o/large" {
					if len(m.Payload) != len(large) {
						t.Fatalf("large message of %d bytes", len(m.Payload))
					}
					continue
				}
				i, err := strconv.Atoi(m.Payload)
				if err != nil || m.Topic != fmt.Sprintf("%s/o/%d", p, i%topics) {
					t.Fatalf("message %q on %s", m.Payload, m.Topic)
				}
				if k := i % topics; i != next[k] {
					t.Fatalf("topic %d: message %d, want %d (lost, twice or out of order)", k, i, next[k])
				}
				next[i%topics] += topics
			}
			if len(msgs) != want {
				t.Errorf("received %d messages, want %d", len(msgs), want)
			}
			st := atRest(t, c, 10*time.Second)
			// n + n/1000 messages and the online state.
			if st.Published != uint64(want)+1 || st.Dropped != 0 || st.Failed != 0 {
				t.Errorf("stats = %+v: want %d published, none dropped or failed", st, want+1)
			}
		})
	}
}

// TestQoS0QueuedGoFirst: messages queued while the broker was away go out
// before those published after it is back, on each topic, although the
// later ones could be written straight onto the connection.
func TestQoS0QueuedGoFirst(t *testing.T) {
	b := brokertest.Targets(t)[0]
	proxy := brokertest.NewProxy(t, strings.TrimPrefix(b.URL, "tcp://"))
	cfg := config(t, proxy.URL())
	cfg.QoS = 0
	cfg.QueueLimit = 20000
	p := cfg.TopicPrefix
	c, l := start(t, cfg, nil)
	l.wait(t, true, 1)
	sub := brokertest.Subscribe(t, b.URL, p+"/o/#")
	proxy.SetDown(true)
	l.wait(t, false, 1)
	const queued, n, topics = 5000, 8000, 5
	publish := func(i int) {
		if err := c.Publish(fmt.Sprintf("%s/o/%d", p, i%topics), []byte(strconv.Itoa(i)), false); err != nil {
			t.Fatal(err)
		}
	}
	for i := range queued {
		publish(i)
	}
	proxy.SetDown(false)
	l.wait(t, true, 2)
	// The sender is handing the queue on: Publish waits for room, then
	// would be free to write straight onto the connection.
	for i := queued; i < n; i++ {
		publish(i)
	}
	st := atRest(t, c, 30*time.Second)
	want := int(st.Published - (st.Reconnects + 1)) // the online state at each connection is not under o/
	msgs := sub.Wait(30*time.Second, "every message published", func(m []brokertest.Msg) bool { return len(m) >= want })
	last := [topics]int{-1, -1, -1, -1, -1}
	for _, m := range msgs {
		i, err := strconv.Atoi(m.Payload)
		if err != nil {
			t.Fatalf("payload %q", m.Payload)
		}
		if k := i % topics; i <= last[k] {
			t.Fatalf("topic %d: message %d after %d", k, i, last[k])
		}
		last[i%topics] = i
	}
	if len(msgs) != want || st.Dropped > 0 {
		t.Errorf("received %d, want the %d published; stats %+v", len(msgs), want, st)
	}
}
