package mqtt

import (
	"fmt"
	"testing"
)

func msg(i int) message { return message{topic: fmt.Sprint(i)} }

// drain pops everything and returns the topics in order.
func drain(q *queue) []string {
	var out []string
	for {
		m, ok := q.pop()
		if !ok {
			return out
		}
		out = append(out, m.topic)
	}
}

func want(from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprint(i))
	}
	return out
}

func equal(t *testing.T, got, want []string) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %v\nwant %v", got, want)
	}
}

// TestQueueWrapsAround: the ring's head moves on as messages are taken, and
// new ones go in at the start of the buffer again; growing a wrapped ring
// keeps the order.
func TestQueueWrapsAround(t *testing.T) {
	q := queue{limit: 1000}
	for i := range 60 {
		q.push(msg(i))
	}
	if n := len(q.buf); n != 64 {
		t.Fatalf("buffer of %d for 60 messages, want 64", n)
	}
	for i := range 50 {
		if m, _ := q.pop(); m.topic != fmt.Sprint(i) {
			t.Fatalf("pop %d = %s", i, m.topic)
		}
	}
	// 10 left at the end of the buffer; 50 more wrap to its start.
	for i := 60; i < 110; i++ {
		q.push(msg(i))
	}
	if q.head+q.len() <= len(q.buf) {
		t.Fatalf("head %d, len %d, buffer %d: not wrapped", q.head, q.len(), len(q.buf))
	}
	if n := len(q.buf); n != 64 {
		t.Fatalf("buffer grew to %d holding %d", n, q.len())
	}
	// Full and wrapped: the next push grows the buffer.
	for i := 110; i < 200; i++ {
		q.push(msg(i))
	}
	if q.len() != 150 {
		t.Fatalf("len = %d, want 150", q.len())
	}
	equal(t, drain(&q), want(50, 200))
	if q.head != 0 || q.len() != 0 {
		t.Errorf("empty queue: head %d, len %d", q.head, q.len())
	}
}

// TestQueueOverflowDropsOldest: at its limit the queue drops the oldest
// message for each new one, and says so.
func TestQueueOverflowDropsOldest(t *testing.T) {
	q := queue{limit: 5}
	drops := 0
	for i := range 12 {
		if q.push(msg(i)) {
			drops++
		}
	}
	if drops != 7 || q.len() != 5 {
		t.Fatalf("%d dropped, %d held; want 7 and 5", drops, q.len())
	}
	if len(q.buf) != 5 {
		t.Errorf("buffer of %d for a limit of 5", len(q.buf))
	}
	equal(t, drain(&q), want(7, 12))
}

// TestQueuePushFront: messages put back go ahead of the rest, in the order
// they are put back (requeue puts a batch back from its end); a full queue
// refuses them rather than dropping one it holds.
func TestQueuePushFront(t *testing.T) {
	q := queue{limit: 10}
	for i := range 6 {
		q.push(msg(i))
	}
	for range 3 {
		q.pop()
	}
	// Taken 0, 1, 2; put back in reverse, like requeue.
	for i := 2; i >= 0; i-- {
		if q.pushFront(msg(i)) {
			t.Fatalf("pushFront(%d) dropped with room", i)
		}
	}
	equal(t, drain(&q), want(0, 6))

	// At head 0, pushFront wraps to the end of the buffer.
	q.push(msg(1))
	q.pushFront(msg(0))
	if q.head == 0 {
		t.Error("pushFront at head 0 did not wrap")
	}
	equal(t, drain(&q), want(0, 2))

	// Into an empty queue with no buffer yet.
	var e queue
	e.limit = 3
	if e.pushFront(msg(0)) {
		t.Fatal("pushFront into an empty queue dropped")
	}
	equal(t, drain(&e), want(0, 1))

	// Full: refused, and what is held stays.
	for i := range 3 {
		e.push(msg(i))
	}
	if !e.pushFront(msg(99)) {
		t.Fatal("pushFront into a full queue did not report a drop")
	}
	equal(t, drain(&e), want(0, 3))
}

// TestQueueGivesMemoryBack: once an outage's backlog is sent, its buffer is
// freed.
func TestQueueGivesMemoryBack(t *testing.T) {
	q := queue{limit: 100_000}
	for i := range 5000 {
		q.push(msg(i))
	}
	if len(q.buf) < 5000 {
		t.Fatalf("buffer of %d for 5000", len(q.buf))
	}
	equal(t, drain(&q), want(0, 5000))
	if q.buf != nil {
		t.Errorf("buffer of %d kept after the backlog was sent", len(q.buf))
	}
	// A small buffer is kept, for the steady state.
	q.push(msg(0))
	q.pop()
	if q.buf == nil {
		t.Error("a small buffer was freed")
	}
}
