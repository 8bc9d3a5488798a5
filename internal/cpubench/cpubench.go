//go:build unix

// Package cpubench reports the CPU time of a benchmark per iteration.
package cpubench

import (
	"syscall"
	"testing"
)

// PerOp reports the process's CPU time per iteration (user and system,
// every thread: GC included) as cpu-ns/op, measured from its call to the
// returned function's, which is to be deferred right before the loop. On a
// machine shared with other work, ns/op counts the time the benchmark
// waited for a core; cpu-ns/op does not.
func PerOp(b *testing.B) func() {
	start := now()
	return func() { b.ReportMetric(float64(now()-start)/float64(max(b.N, 1)), "cpu-ns/op") }
}

func now() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}
