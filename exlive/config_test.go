package exlive

import (
	"slices"
	"strings"
	"testing"
)

// TestConfigAddr reads EXLIVE_ADDR: one address or several, each with its
// port, and an exact error for each kind of mistake.
func TestConfigAddr(t *testing.T) {
	for _, tc := range []struct {
		addr  string
		want  []string // Addrs
		error string   // the error, in full, when not nil
	}{
		{addr: "platform.example:1502", want: []string{"platform.example:1502"}},
		{addr: "platform.example", want: []string{"platform.example:1502"}},
		{addr: "10.0.0.1:1502,10.0.0.2", want: []string{"10.0.0.1:1502", "10.0.0.2:1502"}},
		{addr: " a.example , b.example:1602 ", want: []string{"a.example:1502", "b.example:1602"}},
		{addr: "[2001:db8::1]:1502,[2001:db8::2]", want: []string{"[2001:db8::1]:1502", "[2001:db8::2]:1502"}},
		{addr: "", error: "ADDR: required (host:port of the platform)"},
		{addr: " , ", error: `ADDR=" , ": address 1 is empty; address 2 is empty`},
		{addr: "tcp://platform.example:1502", error: `ADDR="tcp://platform.example:1502": want host:port`},
		{addr: "a.example,tcp://b.example:1502", error: `ADDR="a.example,tcp://b.example:1502": "tcp://b.example:1502": want host:port`},
		{addr: "a.example,,b.example", error: `ADDR="a.example,,b.example": address 2 is empty`},
		{addr: "a.example,a.example:1502", error: `ADDR="a.example,a.example:1502": "a.example:1502" is listed twice`},
		{addr: "a.example:15:02", error: `ADDR="a.example:15:02": want host:port`},
	} {
		cfg := Defaults()
		cfg.Addr, cfg.User, cfg.Pass = tc.addr, "u", "p"
		err := cfg.Validate()
		if tc.error != "" {
			if err == nil || err.Error() != tc.error {
				t.Errorf("ADDR=%q: error %v, want %q", tc.addr, err, tc.error)
			}
			continue
		}
		if err != nil {
			t.Errorf("ADDR=%q: %v", tc.addr, err)
			continue
		}
		if !slices.Equal(cfg.Addrs(), tc.want) || cfg.Addr != strings.Join(tc.want, ",") {
			t.Errorf("ADDR=%q: Addrs %q, Addr %q; want %q", tc.addr, cfg.Addrs(), cfg.Addr, tc.want)
		}
	}
}
