// Package ratelimit keeps a warning that can repeat thousands of times a
// second (a full queue, a platform sending junk) to one log line every few
// seconds, counting what it held back.
package ratelimit

import (
	"sync"
	"time"
)

// Every lets an event through at most once per Interval.
type Every struct {
	Interval time.Duration // 10 s when zero

	mu   sync.Mutex
	last time.Time
	held uint64
}

// Allow reports whether to log this event, and if so how many events were
// held back since the last one logged.
func (e *Every) Allow() (held uint64, ok bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	interval := e.Interval
	if interval == 0 {
		interval = 10 * time.Second
	}
	if !e.last.IsZero() && time.Since(e.last) < interval {
		e.held++
		return 0, false
	}
	e.last = time.Now()
	held, e.held = e.held, 0
	return held, true
}

// Force lets an event through now, whatever the interval (a warning that
// says something new), and returns how many were held back before it. The
// interval starts again from it.
func (e *Every) Force() (held uint64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.last = time.Now()
	held, e.held = e.held, 0
	return held
}
