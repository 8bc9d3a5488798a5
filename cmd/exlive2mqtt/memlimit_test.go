package main

import (
	"context"
	"runtime"
	"runtime/debug"
	"testing"
)

func TestMemoryLimit(t *testing.T) {
	const mib = 1 << 20
	for _, tc := range []struct {
		live, least uint64
		want        int64
	}{
		{0, 0, memoryFloor},
		{5 * mib, 5 * mib, memoryFloor},       // a small fleet: Go's default pace
		{20 * mib, 20 * mib, memoryFloor},     // 1.75 times it is below the floor
		{24 * mib, 24 * mib, 42 * mib},        // 100 000 vehicles: three quarters above the live heap
		{40 * mib, 24 * mib, 45 * mib},        // an inventory's spike: never less than an eighth above it
		{30 * mib, 24 * mib, 42 * mib},        // a smaller spike: the steady state's headroom
		{300 * mib, 2 * mib, 337.5 * mib},     // a fleet listed for the first time
		{300 * mib, 300 * mib, 525 * mib},     // a fleet past any fixed limit
		{1 << 63, 1 << 63, 1<<61 + 1<<61/4*3}, // no overflow
	} {
		if got := memoryLimit(tc.live, tc.least); got != tc.want {
			t.Errorf("memoryLimit(%d, %d) = %d, want %d", tc.live, tc.least, got, tc.want)
		}
	}
}

// TestHoldMemory: the limit is set while the bridge runs and Go's own is
// back after; GOGC or GOMEMLIMIT leave it alone.
func TestHoldMemory(t *testing.T) {
	before := debug.SetMemoryLimit(-1)
	for _, environ := range []map[string]string{{"GOGC": "200"}, {"GOMEMLIMIT": "1GiB"}} {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		holdMemory(ctx, environ)
		if got := debug.SetMemoryLimit(-1); got != before {
			t.Errorf("%v: limit %d, want %d", environ, got, before)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	var during int64
	go func() {
		defer close(done)
		holdMemory(ctx, map[string]string{})
	}()
	// The first limit is set before the first wait: poll for it.
	for during = debug.SetMemoryLimit(-1); during == before; during = debug.SetMemoryLimit(-1) {
		select {
		case <-done:
			t.Fatal("holdMemory returned before ctx was done")
		default:
			runtime.Gosched()
		}
	}
	cancel()
	<-done
	if during < memoryFloor || during == before {
		t.Errorf("limit while held %d, want at least %d", during, memoryFloor)
	}
	if got := debug.SetMemoryLimit(-1); got != before {
		t.Errorf("limit after %d, want Go's %d back", got, before)
	}
}
