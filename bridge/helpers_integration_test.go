package bridge_test

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/exlive2mqtt/exlive2mqtt/exlive/exlivesim"
	"github.com/exlive2mqtt/exlive2mqtt/internal/brokertest"
	"golang.org/x/text/encoding/simplifiedchinese"
)

// Helpers of integrations_test.go; their names start with ig so they do not
// meet the helpers of the other test files of this package.

// igSnapshot returns the retained messages under filter, by topic, as a
// client that subscribes now (Home Assistant starting, say) gets them. A
// broker sends the retained messages of a subscription before anything
// published after it, so once a marker published after subscribing comes
// back, all of them are in.
func igSnapshot(t *testing.T, url, filter string) map[string]brokertest.Msg {
	t.Helper()
	sub := brokertest.Subscribe(t, url, filter)
	marker := strings.TrimSuffix(filter, "#") + "zz-snapshot-marker"
	sub.Publish(marker, []byte("marker"), false)
	sub.WaitTopic(10*time.Second, marker)
	got := map[string]brokertest.Msg{}
	for _, m := range sub.Messages() {
		if m.Retained && m.Topic != marker {
			got[m.Topic] = m
		}
	}
	return got
}

// igClearRetainedAtEnd deletes, when the test ends and after stop, every
// retained message under filter, so that a shared broker does not keep
// discovery configs and OwnTracks locations of finished tests (an OwnTracks
// Recorder on that broker would show them).
func igClearRetainedAtEnd(t *testing.T, url, filter string, stop func()) {
	t.Cleanup(func() {
		stop()
		sub := brokertest.Subscribe(t, url, filter)
		marker := strings.TrimSuffix(filter, "#") + "zz-clear-marker"
		sub.Publish(marker, []byte("marker"), false)
		sub.WaitTopic(10*time.Second, marker)
		for _, m := range sub.Messages() {
			if m.Retained && m.Payload != "" {
				sub.Publish(m.Topic, nil, true)
			}
		}
	})
}

// igWaitPayloads waits until every topic of want has received its payload
// since message number from.
func igWaitPayloads(t *testing.T, sub *brokertest.Subscriber, from int, want map[string]string, what string) []brokertest.Msg {
	t.Helper()
	return sub.Wait(15*time.Second, what, func(ms []brokertest.Msg) bool {
		if from > len(ms) {
			return false
		}
		seen := make(map[string]bool, len(want))
		for _, m := range ms[from:] {
			if p, ok := want[m.Topic]; ok && m.Payload == p {
				seen[m.Topic] = true
			}
		}
		return len(seen) == len(want)
	})
}

// igWaitSim waits until cond holds for what the simulated platform received.
func igWaitSim(t *testing.T, sim *exlivesim.Server, what string, cond func([]exlivesim.Received) bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := sim.WaitFor(ctx, cond); err != nil {
		t.Fatalf("platform: waiting for %s: %v", what, err)
	}
}

// igLast returns the latest frame of type T the platform received.
func igLast[T any](sim *exlivesim.Server) (T, exlivesim.Received, bool) {
	rs := sim.Received()
	for i := len(rs) - 1; i >= 0; i-- {
		if m, ok := rs[i].Msg.(T); ok {
			return m, rs[i], true
		}
	}
	var zero T
	return zero, exlivesim.Received{}, false
}

// igGBKChars finds n CJK characters whose GBK encoding ends in trail, by
// encoding the CJK block rather than trusting a table (as exlive's
// frame_test.go does).
func igGBKChars(t *testing.T, trail byte, n int) []string {
	t.Helper()
	enc := simplifiedchinese.GBK.NewEncoder()
	var found []string
	for r := rune(0x4E00); r <= 0x9FA5 && len(found) < n; r++ {
		b, err := enc.Bytes([]byte(string(r)))
		if err != nil {
			t.Fatal(err)
		}
		if len(b) == 2 && b[1] == trail {
			found = append(found, string(r))
		}
	}
	if len(found) < n {
		t.Fatalf("found %d characters with GBK trail byte %#x, want %d", len(found), trail, n)
	}
	return found
}

// igMetres returns the distance between two points in metres (haversine on
// the mean Earth radius: plenty for a one-metre tolerance).
func igMetres(lat1, lng1, lat2, lng2 float64) float64 {
	const r = 6371008.8
	φ1, φ2 := lat1*math.Pi/180, lat2*math.Pi/180
	dφ, dλ := φ2-φ1, (lng2-lng1)*math.Pi/180
	h := math.Sin(dφ/2)*math.Sin(dφ/2) + math.Cos(φ1)*math.Cos(φ2)*math.Sin(dλ/2)*math.Sin(dλ/2)
	return 2 * r * math.Asin(math.Sqrt(h))
}

// igNum reads a JSON number of a decoded payload.
func igNum(t *testing.T, p map[string]any, key string) float64 {
	t.Helper()
	f, ok := p[key].(float64)
	if !ok {
		t.Fatalf("%q is %v (%T), want a number; payload %v", key, p[key], p[key], p)
	}
	return f
}

// igWaitLog waits until the bridge has logged a line containing s. The log
// has no notification, so it is polled.
func igWaitLog(t *testing.T, f *fixture, s string) {
	t.Helper()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(10 * time.Second)
	for !strings.Contains(f.logs.String(), s) {
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("the bridge did not log %q", s)
		}
	}
}
