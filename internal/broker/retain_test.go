package broker

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// TestRetainedWhileSubscribing publishes retained messages on many topics
// while other clients subscribe, again and again, to a filter that matches
// them, as the bridge and its tests do (discovery configs, vehicle states,
// configs cleared with an empty payload).
// Under the race detector, mochi v2.7.9 alone reports a data race here
// (retain.go); with the guard it is quiet, and a subscription made after
// the publishing has every retained message.
func TestRetainedWhileSubscribing(t *testing.T) {
	b, err := Start("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	connect := func(id string) paho.Client {
		c := paho.NewClient(paho.NewClientOptions().AddBroker(b.URL()).SetClientID(id).SetAutoReconnect(false))
		if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("connect %s: %v", id, tok.Error())
		}
		return c
	}
	wait := func(what string, tok paho.Token) {
		if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Errorf("%s: %v", what, tok.Error())
		}
	}
	const publishers, topics, rounds, subscribers = 4, 30, 4, 4
	var publishing sync.WaitGroup
	var done atomic.Bool
	for p := range publishers {
		c := connect(fmt.Sprintf("pub%d", p))
		defer c.Disconnect(0)
		publishing.Add(1)
		go func() {
			defer publishing.Done()
			// Each round sets or clears (an empty payload) every topic's
			// retained message: the last one sets them.
			for r := range rounds {
				payload := map[bool]string{true: "on", false: ""}[r%2 == 1]
				for i := range topics {
					wait("publish", c.Publish(fmt.Sprintf("t/%d/%d/state", p, i), 1, true, payload))
				}
			}
		}()
	}
	var subscribing sync.WaitGroup
	for s := range subscribers {
		c := connect(fmt.Sprintf("sub%d", s))
		defer c.Disconnect(0)
		subscribing.Add(1)
		go func() {
			defer subscribing.Done()
			for !done.Load() {
				wait("subscribe", c.Subscribe("t/#", 0, func(paho.Client, paho.Message) {}))
				wait("unsubscribe", c.Unsubscribe("t/#"))
			}
		}()
	}
	publishing.Wait()
	done.Store(true)
	subscribing.Wait()

	var got atomic.Int64
	c := connect("last")
	defer c.Disconnect(0)
	wait("subscribe", c.Subscribe("t/#", 0, func(_ paho.Client, m paho.Message) {
		if m.Retained() {
			got.Add(1)
		}
	}))
	deadline := time.Now().Add(10 * time.Second)
	for got.Load() < publishers*topics && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := got.Load(); n != publishers*topics {
		t.Errorf("a subscription after the publishing got %d retained messages, want %d", n, publishers*topics)
	}
}
