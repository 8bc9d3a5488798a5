package mqtt

import (
	"errors"
	"testing"
)

// TestLinkReportsInAnyOrder: paho reports a connect and a loss each on a
// goroutine of its own, so the reports can come in any order. The link
// must end as paho is, whatever the order; a late report of a loss must not
// leave the link down (and the queue waiting) while paho is connected.
func TestLinkReportsInAnyOrder(t *testing.T) {
	lost := errors.New("connection lost")
	for _, tc := range []struct {
		name    string
		reports string // u: a connection reported up, d: one reported lost
		up      bool   // as paho is after these connections
	}{
		{"connected", "u", true},
		{"lost", "ud", false},
		{"reconnected", "udu", true},
		// The first loss is reported after the reconnect's OnConnect ran.
		{"loss reported after the reconnect", "uud", true},
		{"both losses late", "uudd", false},
		// A connection lost before its OnConnect was done.
		{"lost before its connect was reported", "du", false},
		{"lost before reported, then reconnected", "duu", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newLinkState()
			for _, r := range tc.reports {
				event := s.next()
				if r == 'u' {
					s.up()
				} else {
					s.down(lost)
				}
				select {
				case <-event:
				default:
					t.Fatalf("report %c woke no one waiting for it", r)
				}
			}
			if l := s.get(); l.Connected != tc.up {
				t.Errorf("after %q: link %+v, want connected=%v", tc.reports, l, tc.up)
			}
			if tc.up != s.connected() {
				t.Errorf("connected() = %v, get() = %+v", s.connected(), s.get())
			}
			if !tc.up && s.get().Err != lost {
				t.Errorf("link down with error %v, want %v", s.get().Err, lost)
			}
		})
	}
}

// TestLinkStuck: a stall is news once, and wakes those waiting (a
// publisher waiting for room then queues instead); progress ends it once;
// a new connection is never stuck.
func TestLinkStuck(t *testing.T) {
	s := newLinkState()
	if ok, _ := s.keepingUp(); ok {
		t.Fatal("keeping up before any connection")
	}
	s.up()
	ok, changed := s.keepingUp()
	if !ok {
		t.Fatal("not keeping up once connected")
	}
	if !s.stall() {
		t.Fatal("first stall is no news")
	}
	select {
	case <-changed:
	default:
		t.Fatal("a stall woke no one waiting")
	}
	if s.stall() {
		t.Error("second stall is news again")
	}
	if ok, _ := s.keepingUp(); ok {
		t.Error("keeping up while stuck")
	}
	if !s.get().Connected {
		t.Error("a stall took the link down")
	}
	_, changed = s.keepingUp()
	if !s.progress() {
		t.Fatal("progress after a stall is no news")
	}
	select {
	case <-changed:
	default:
		t.Fatal("progress woke no one waiting")
	}
	if s.progress() {
		t.Error("progress while keeping up is news")
	}
	if ok, _ := s.keepingUp(); !ok {
		t.Error("not keeping up after progress")
	}

	s.stall()
	s.down(errors.New("lost"))
	s.up()
	if ok, _ := s.keepingUp(); !ok {
		t.Error("a new connection is stuck as the last one was")
	}
}
