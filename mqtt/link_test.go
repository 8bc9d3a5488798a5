package mqtt

import (
	"errors"
	"testing"

	"github.com/rs/zerolog"
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
			cfg := Defaults()
			cfg.URL = "tcp://127.0.0.1:1"
			cfg.ClientID = "link-test"
			c, err := New(cfg, State{}, zerolog.Nop(), nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range tc.reports {
				c.mu.Lock()
				event := c.linkEvent
				c.mu.Unlock()
				if r == 'u' {
					c.linkUp()
				} else {
					c.linkDown(lost)
				}
				select {
				case <-event:
				default:
					t.Fatalf("report %c woke no one waiting for it", r)
				}
			}
			if l := c.Link(); l.Connected != tc.up {
				t.Errorf("after %q: link %+v, want connected=%v", tc.reports, l, tc.up)
			}
		})
	}
}
