package bridge

import (
	"sync"
	"time"
)

// The bounds of what the bridge remembers of the requests it carried out:
// a request_id is known again for requestDedupeWindow, and at most
// requestDedupeMax of them are kept (the oldest go first). An entry holds
// its answer, at most about 1.4 kB (a request_id of up to 256 bytes, an 8000
// result of up to exlive.MaxTextLen), so the whole is a few megabytes at
// most.
const (
	requestDedupeWindow = 10 * time.Minute
	requestDedupeMax    = 4096
)

// dedupe remembers the requests that were carried out (sent to the
// platform), by kind, topic level and request_id, with the answer each got,
// so that a request the broker delivers twice (QoS 1 is at least once), or
// a client sends again, is carried out once and answered the same each
// time. Requests that were refused (invalid, busy, not logged in, unknown
// vehicle) are not remembered: sent again, they are handled as new.
type dedupe struct {
	max    int
	window time.Duration

	mu    sync.Mutex
	seen  map[string]*carried
	order []*carried // oldest first; an entry forgotten or replaced stays until it is the oldest
}

// carried is a request that was carried out.
type carried struct {
	key string
	at  time.Time
	// settled is set once the request has its outcome; answer is then
	// what was published on its /result topic, nil when nothing was (a
	// 1003 the platform did not answer).
	settled bool
	answer  []byte
	// waiting counts the repeats that came before the outcome: each is
	// answered when it comes.
	waiting int
}

func newDedupe(max int, window time.Duration) *dedupe {
	return &dedupe{max: max, window: window, seen: make(map[string]*carried)}
}

// repeat looks key up among the requests carried out. When it is one, it
// returns found true and, when that request has its outcome, the answer it
// got (settled true). Otherwise the repeat is counted, to be answered by
// settle.
func (d *dedupe) repeat(key string, now time.Time) (answer []byte, found, settled bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.expire(now)
	c := d.seen[key]
	if c == nil {
		return nil, false, false
	}
	if !c.settled {
		c.waiting++
		return nil, true, false
	}
	return c.answer, true, true
}

// add notes that the request of key is being carried out, and returns its
// entry for settle (or forget, when it could not be sent after all).
func (d *dedupe) add(key string, now time.Time) *carried {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.expire(now)
	c := &carried{key: key, at: now}
	d.seen[key] = c
	d.order = append(d.order, c)
	return c
}

// forget drops c: it was not carried out after all.
func (d *dedupe) forget(c *carried) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.seen[c.key] == c {
		delete(d.seen, c.key)
	}
	// It is the newest (forget follows its add at once), so that a flood
	// of requests the platform cannot take now does not push out those
	// it took.
	if n := len(d.order); n > 0 && d.order[n-1] == c {
		d.order[n-1] = nil
		d.order = d.order[:n-1]
	}
}

// settle records c's answer (nil: none was published) and returns how many
// repeats came while it was awaited, each of which is to get that answer.
func (d *dedupe) settle(c *carried, answer []byte) (waiting int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	c.settled, c.answer = true, answer
	waiting, c.waiting = c.waiting, 0
	return waiting
}

// expire drops the entries older than the window, and the oldest beyond
// max. d.mu is held.
func (d *dedupe) expire(now time.Time) {
	n := 0
	for n < len(d.order) && (len(d.order)-n >= d.max || now.Sub(d.order[n].at) >= d.window) {
		if c := d.order[n]; d.seen[c.key] == c {
			delete(d.seen, c.key)
		}
		d.order[n] = nil
		n++
	}
	if n > 0 {
		d.order = d.order[n:]
	}
}

// len returns how many requests are remembered.
func (d *dedupe) len() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.seen)
}
