package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

const fixture = "../../exlive/exlivesim/testdata/sim-dialect.capture.jsonl"

// TestReplay: exlive-sim -replay FILE serves the capture: it says what it
// holds, and a client gets the captured login answer, byte for byte.
func TestReplay(t *testing.T) {
	line := runSim(t, "-replay", fixture, "-speed", "0", "-listen", "127.0.0.1:0", "-log-format", "json")
	m := regexp.MustCompile(`^exlive-sim listening on (127\.0\.0\.1:\d+), replaying .*sim-dialect.capture.jsonl \((\d+) frames from the platform, (\d+) positions of 6 vehicles, over [0-9.]+s, played as fast as possible\)\n$`).FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("exlive-sim printed %q", line)
	}
	f, a := loginAnswer(t, m[1])
	raw, err := os.ReadFile(fixture)
	if err != nil {
		t.Fatal(err)
	}
	// The capture keeps the answer's wire as a JSON string.
	wire := strings.NewReplacer("\n", `\n`, `"`, `\"`).Replace(string(f.Wire))
	if a.Result != "succeed" || !strings.Contains(string(raw), `"wire":"`+wire+`"`) {
		t.Errorf("login answered %q, wire %q: not the capture's", a.Result, f.Wire)
	}
}

// TestReplayFlagErrors: what does not go with -replay, and a capture that
// cannot be read, are errors that say so.
func TestReplayFlagErrors(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.jsonl")
	if err := os.WriteFile(bad, []byte(`{"capture":"x","format":7}`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-replay", fixture, "-vehicles", "3", "-rate", "1"}, "-rate, -vehicles: not with -replay"},
		{[]string{"-speed", "3"}, "-speed applies to -replay FILE only"},
		{[]string{"-replay", fixture, "-speed", "-2"}, "-speed -2: want 0"},
		{[]string{"-replay", bad}, bad + ":1: format 7: this version reads format 1"},
		{[]string{"-replay", fixture, "extra"}, "takes no arguments"},
	} {
		err := run(context.Background(), append([]string{"-listen", "127.0.0.1:0"}, tc.args...), io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("exlive-sim %v = %v, want %q", tc.args, err, tc.want)
		}
	}
}
