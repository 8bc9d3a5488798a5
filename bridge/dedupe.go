package bridge

import "time"

// requestDedupeWindow is how long a request_id is remembered, so a request
// the broker delivers twice (QoS 1 is at least once) is carried out once.
const requestDedupeWindow = 10 * time.Minute

// dedupe remembers request ids for a while, in bounded space.
type dedupe struct {
	max    int
	window time.Duration
	seen   map[string]time.Time
	order  []string
}

func newDedupe(max int, window time.Duration) *dedupe {
	return &dedupe{max: max, window: window, seen: make(map[string]time.Time)}
}

// add notes key at now and reports whether it was seen within the window.
// Only requests.serve calls it.
func (d *dedupe) add(key string, now time.Time) bool {
	for len(d.order) > 0 {
		oldest := d.order[0]
		if len(d.order) < d.max && now.Sub(d.seen[oldest]) < d.window {
			break
		}
		delete(d.seen, oldest)
		d.order = d.order[1:]
	}
	if t, ok := d.seen[key]; ok && now.Sub(t) < d.window {
		return true
	}
	d.seen[key] = now
	d.order = append(d.order, key)
	return false
}
