package bridge

import (
	"fmt"
	"testing"
	"time"
)

// TestDedupe: a request carried out is known again, with its answer, until
// the window passes or newer ones push it out; one forgotten is not; a
// repeat that comes before the answer is counted for settle.
func TestDedupe(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	d := newDedupe(3, time.Minute)
	if _, found, _ := d.repeat("a", t0); found {
		t.Fatal("an unknown key found")
	}
	a := d.add("a", t0)
	if _, found, settled := d.repeat("a", t0); !found || settled {
		t.Fatalf("awaited: found %v, settled %v", found, settled)
	}
	d.repeat("a", t0)
	if n := d.settle(a, []byte("A")); n != 2 {
		t.Errorf("settle: %d repeats waiting, want 2", n)
	}
	if answer, found, settled := d.repeat("a", t0.Add(59*time.Second)); !found || !settled || string(answer) != "A" {
		t.Errorf("settled: %q, %v, %v", answer, found, settled)
	}
	if _, found, _ := d.repeat("a", t0.Add(time.Minute)); found {
		t.Error("found after the window")
	}

	// Forgotten: not sent after all, it is handled as new.
	b := d.add("b", t0)
	d.forget(b)
	if _, found, _ := d.repeat("b", t0); found {
		t.Error("a forgotten key found")
	}

	// Bounded: the oldest go first.
	for i := range 10_000 {
		d.settle(d.add(fmt.Sprint(i), t0), nil)
	}
	if n, order := d.len(), len(d.order); n != 3 || order != 3 {
		t.Errorf("%d keys, %d in order after 10 000, want 3", n, order)
	}
	if _, found, _ := d.repeat("9996", t0); found {
		t.Error("the oldest beyond max found")
	}
	if _, found, settled := d.repeat("9999", t0); !found || !settled {
		t.Error("the newest not found")
	}
}
