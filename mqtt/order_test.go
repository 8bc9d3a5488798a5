package mqtt

import (
	"testing"
	"time"
)

func newOrder() *sendOrder { return &sendOrder{pending: make(map[string]uint64)} }

// TestSendOrderFindsPoison: the suspect is the oldest unacknowledged message
// sent on the lost connection; the same suspect at two losses in a row is
// poison.
func TestSendOrderFindsPoison(t *testing.T) {
	o := newOrder()
	o.listed()
	for _, k := range []string{"o.1", "o.2", "o.3", "o.4"} {
		o.stored(k)
	}
	o.acked("o.1") // the broker took o.1, refused o.2; o.3 and o.4 never read
	if _, ok := o.lost(); ok {
		t.Fatal("poison at the first loss")
	}
	// Next connection: paho resends the store oldest first, then new ones;
	// a new message's Put can come before a resent one's Get.
	o.listed()
	o.stored("o.5")
	o.resent("o.2")
	o.resent("o.3")
	o.resent("o.4")
	key, ok := o.lost()
	if !ok || key != "o.2" {
		t.Fatalf("lost = %q, %v; want o.2 poison at the second loss", key, ok)
	}
	// Found: the count starts again.
	o.acked("o.2")
	o.listed()
	o.resent("o.3")
	if _, ok := o.lost(); ok {
		t.Error("poison at the first loss after one was found")
	}
}

// TestSendOrderOutage: a message unacknowledged at one loss and acknowledged
// on the next connection is no suspect; a loss with nothing in flight ends
// a run of strikes.
func TestSendOrderOutage(t *testing.T) {
	o := newOrder()
	o.listed()
	o.stored("o.1")
	o.lost()
	o.listed()
	o.resent("o.1")
	o.acked("o.1")
	o.stored("o.2")
	if key, ok := o.lost(); ok {
		t.Fatalf("%s poison: each suspect was suspected once", key)
	}
	o.listed()
	o.lost() // nothing sent on this connection
	o.listed()
	o.resent("o.2")
	if key, ok := o.lost(); ok {
		t.Fatalf("%s poison after a loss with nothing sent", key)
	}
}

// TestSendOrderReusedKey: paho reuses a message id once its message is
// acknowledged; the new message under that key is another message.
func TestSendOrderReusedKey(t *testing.T) {
	o := newOrder()
	o.listed()
	o.stored("o.1")
	o.lost()
	o.listed()
	o.resent("o.1")
	o.acked("o.1")
	o.stored("o.1") // a new message, the same id
	if key, ok := o.lost(); ok {
		t.Fatalf("%s poison: a new message under an old key", key)
	}
}

// TestSendOrderBounded: on a long connection, acknowledged messages behind
// one that never is do not pile up.
func TestSendOrderBounded(t *testing.T) {
	o := newOrder()
	o.listed()
	o.stored("o.stuck")
	for range 100_000 {
		o.stored("o.x")
		o.acked("o.x")
	}
	if len(o.sent) > 2*len(o.pending)+256 {
		t.Errorf("%d sent entries for %d pending", len(o.sent), len(o.pending))
	}
}

// TestRefusedTopicExpires: a topic found poison is refused for
// poisonRefusal, then tried again; one found poison twice is refused for
// good.
func TestRefusedTopicExpires(t *testing.T) {
	c := &Client{refused: map[string]refusal{
		"a": {until: time.Now().Add(time.Minute), strikes: 1},
		"b": {until: time.Now().Add(-time.Second), strikes: 1},
		"d": {strikes: 2},
	}}
	if !c.refusedTopic("a") {
		t.Error("a topic within its refusal not refused")
	}
	if c.refusedTopic("b") {
		t.Error("a topic past its refusal refused")
	}
	if r, ok := c.refused["b"]; !ok || r.strikes != 1 {
		t.Errorf("an ended refusal forgotten: %+v", r)
	}
	if !c.refusedTopic("d") {
		t.Error("a topic found poison twice not refused")
	}
	if c.refusedTopic("c") {
		t.Error("a topic never refused refused")
	}
}

// TestRefusalStrikes: the first finding refuses a topic for poisonRefusal,
// the second for good (each finding keeps one of paho's message ids).
func TestRefusalStrikes(t *testing.T) {
	now := time.Now()
	r := refusal{}.strike(now)
	if r.strikes != 1 || !r.refuses(now.Add(poisonRefusal-time.Second)) || r.refuses(now.Add(poisonRefusal)) {
		t.Errorf("first strike %+v, want refused for %s", r, poisonRefusal)
	}
	r = r.strike(now.Add(poisonRefusal + time.Minute))
	if r.strikes != 2 || !r.refuses(now.Add(1000*time.Hour)) {
		t.Errorf("second strike %+v, want refused for good", r)
	}
}
