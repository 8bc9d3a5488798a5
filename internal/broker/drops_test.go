package broker

import (
	"bytes"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// TestDropsAreCountedAndLogged: a subscriber that stops reading fills its
// write queue, and what comes for it then is dropped by mochi: counted in
// Dropped and said in the broker's log, not lost without a word. (A queue
// of 1 here; Start's holds maxWritesPending.)
func TestDropsAreCountedAndLogged(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var logMu sync.Mutex
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&lockedBuffer{mu: &logMu, b: &logs}, nil))
	b, err := start(ln, log, maxInflight, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	connect := func(id string, order bool) paho.Client {
		c := paho.NewClient(paho.NewClientOptions().AddBroker(b.URL()).SetClientID(id).SetAutoReconnect(false).SetOrderMatters(order))
		if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("connect %s: %v", id, tok.Error())
		}
		return c
	}
	// A handler that blocks, with order kept: paho stops reading.
	stuck := make(chan struct{})
	defer close(stuck)
	sub := connect("slow", true)
	defer sub.Disconnect(0)
	if tok := sub.Subscribe("d/#", 0, func(paho.Client, paho.Message) { <-stuck }); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	pub := connect("pub", false)
	defer pub.Disconnect(0)
	payload := make([]byte, 64<<10)
	deadline := time.Now().Add(30 * time.Second)
	for b.Dropped() == 0 && time.Now().Before(deadline) {
		// 64 KiB at a time until the socket's buffers and the queue are full.
		if tok := pub.Publish("d/x", 0, false, payload); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("publish: %v", tok.Error())
		}
	}
	if b.Dropped() == 0 {
		t.Fatal("nothing dropped for a subscriber that reads nothing")
	}
	// The hook counts a drop, then logs it: the line can come just after
	// the count is seen.
	logged := func() (bool, string) {
		logMu.Lock()
		defer logMu.Unlock()
		s := logs.String()
		return strings.Contains(s, "client too slow: message dropped") && strings.Contains(s, "client=slow"), s
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		ok, s := logged()
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no drop in the broker's log:\n%s", s)
		}
	}
}

type lockedBuffer struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w *lockedBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}
