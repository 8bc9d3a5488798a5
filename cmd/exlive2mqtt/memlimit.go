package main

import (
	"context"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// The soft memory limit the bridge keeps when neither GOGC nor GOMEMLIMIT
// is set (holdMemory).
const (
	// memoryFloor is the least limit. The live heap of a small fleet is a
	// few MB, and Go's default goal (twice that) stays far below it.
	memoryFloor = 40 << 20
	// memoryPeriod is how often the limit follows the live heap, and
	// memoryWindow how many of those samples a passing spike is told from
	// a heap that grew to stay.
	memoryPeriod = time.Second
	memoryWindow = 30
	liveHeap     = "/gc/heap/live:bytes"
)

// holdMemory keeps Go's soft memory limit (debug.SetMemoryLimit) at
// memoryLimit of the live heap until ctx is done. It does nothing when
// GOGC or GOMEMLIMIT is set: the runtime does as they say.
//
// Why: Go's collector lets the heap grow to twice what its last cycle
// found live (GOGC=100), and the process keeps the pages it grew to. While
// an inventory is collected and published, the live heap holds for some
// seconds what it will not hold after: the vehicle list's payload, paho's
// copy of it as a packet, tables that doubled (14 MB and more for 100 000
// vehicles, over 25 MB of registry and events state). A cycle that ends
// then sets the next goal at twice that, and the bridge of 100 000
// vehicles peaked at 89–109 MiB with 25 MB live (BENCHMARKS.md). The
// limit is the least live heap of the last memoryWindow samples and three
// quarters more: a passing spike gets the steady state's headroom, not its
// own. Three quarters, not GOGC=100's whole: the binary's code and data
// are 14 MiB of the process's resident memory before the heap has a byte,
// and 100 000 vehicles in 64 MiB leave the heap 50; in the steady state
// the collector then runs a third more often than at GOGC=100 once the
// live heap is above memoryFloor/1.75 (about 90 000 vehicles), and as
// GOGC=100 below that. The limit is never below an eighth above the live
// heap now, so that a heap that grew to stay (a fleet listed for the
// first time) is not collected without pause until the window has seen
// it (for those seconds the collector runs up to eight times as often as
// at GOGC=100; the runtime keeps it under half the CPU); and a fixed limit would not do, for a fleet whose live heap grew
// past it.
func holdMemory(ctx context.Context, environ map[string]string) {
	if environ["GOGC"] != "" || environ["GOMEMLIMIT"] != "" {
		return
	}
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1)) // Go's own again after
	sample := []metrics.Sample{{Name: liveHeap}}
	var window [memoryWindow]uint64
	t := time.NewTicker(memoryPeriod)
	defer t.Stop()
	for i := 0; ; i++ {
		metrics.Read(sample)
		if sample[0].Value.Kind() == metrics.KindUint64 {
			live := sample[0].Value.Uint64()
			window[i%memoryWindow] = live
			least := live
			for _, l := range window[:min(i+1, memoryWindow)] {
				least = min(least, l)
			}
			debug.SetMemoryLimit(memoryLimit(live, least))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// memoryLimit is the soft memory limit for a live heap, the least of the
// last memoryWindow samples being least: three quarters above least, at
// least an eighth above live, and at least memoryFloor.
func memoryLimit(live, least uint64) int64 {
	live, least = min(live, 1<<61), min(least, 1<<61)
	return max(memoryFloor, int64(least+least/4*3), int64(live+live/8))
}
