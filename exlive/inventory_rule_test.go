package exlive

import (
	"testing"
	"time"
)

// TestListSilence follows the clock by which a list is taken to be over
// (gather): before its barrier is answered only the reader's idle time
// counts, and a reader working through a backlog for ten seconds has seen
// no silence; after the answer every second counts; a frame of the list
// starts the count again.
func TestListSilence(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	sec := func(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

	l := listWatch{quiet: 2 * time.Second, sent: t0, last: t0}
	check := func(now float64, idle float64, want float64) {
		t.Helper()
		if got := l.silence(at(now), sec(idle)); got != sec(want) {
			t.Errorf("at %gs with %gs idle: silence %s, want %s", now, idle, got, sec(want))
		}
	}
	check(10, 0, 0)           // ten seconds of backlog: no silence at all
	check(11, 0.5, 0.5)       // the reader caught up and waited half a second
	l.frame(at(11), sec(0.5)) // a frame of the list
	check(12, 1.2, 0.7)
	l.answer(at(12), sec(1.2)) // the barrier is answered
	check(12, 1.2, 0.7)
	check(13, 1.2, 1.7)         // every second counts now, read or idle
	l.frame(at(13.5), sec(1.2)) // a late frame, after the barrier
	check(14, 1.2, 0.5)
}
