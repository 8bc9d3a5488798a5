package events

// wheel finds the vehicles whose offline deadline has come, without
// looking at the others. It is a ring of buckets, one per tick of
// time, each a list threaded through the states (state.next): no memory
// per vehicle beyond that int32, and nothing allocated after New.
//
// It is lazy. A position does not move its vehicle in the wheel: it only
// sets state.seen. When a bucket's time comes, each vehicle in it is
// either offline (silent since) or put back in the bucket of its real
// deadline. So a vehicle that reports every 30 s is looked at once per
// OfflineAfter, not once per position; a min-heap would cost a sift per
// position instead (BenchmarkSweep measures the wheel).
type wheel struct {
	tick  int32   // seconds per bucket
	heads []int32 // the first vehicle of each bucket; -1: empty
	swept int64   // the last tick swept
}

// maxBuckets bounds the ring. Up to that many seconds of OfflineAfter a
// tick is one second; beyond, a tick is OfflineAfter/maxBuckets.
const maxBuckets = 4096

func newWheel(after int32) wheel {
	tick := max(1, (after+maxBuckets-1)/maxBuckets)
	// A deadline is at most after+1 seconds ahead: the ring spans that
	// and two more ticks, so a bucket is never shared by two deadlines
	// while Sweep keeps up.
	n := (after+1+tick-1)/tick + 2
	w := wheel{tick: tick, heads: make([]int32, n), swept: -1}
	for i := range w.heads {
		w.heads[i] = -1
	}
	return w
}

func (w *wheel) slot(tick int64) int {
	n := int64(len(w.heads))
	return int(((tick % n) + n) % n)
}

// insert puts vehicle i in the bucket of deadline (seconds since the
// epoch): the first tick at or after it that is not yet swept.
func (w *wheel) insert(t *table, i int32, deadline int32) {
	tick := ceilDiv(int64(deadline), int64(w.tick))
	if tick <= w.swept {
		tick = w.swept + 1
	}
	b := w.slot(tick)
	t.at(i).next = w.heads[b]
	w.heads[b] = i
}

// due hands each bucket whose tick has come by now (seconds since the
// epoch) to f, emptied first: f puts back what is not due. A Sweep late
// by more than the ring goes round it once, which covers every bucket.
func (w *wheel) due(now int32, f func(head int32)) {
	last := floorDiv(int64(now), int64(w.tick))
	first := w.swept + 1
	if n := int64(len(w.heads)); last-first >= n {
		first = last - n + 1
	}
	for tick := first; tick <= last; tick++ {
		b := w.slot(tick)
		head := w.heads[b]
		w.heads[b] = -1
		// Swept before f runs: what is put back, or inserted while f
		// lets Observe in, goes to a later tick.
		w.swept = tick
		if head >= 0 {
			f(head)
		}
	}
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

func ceilDiv(a, b int64) int64 { return -floorDiv(-a, b) }
