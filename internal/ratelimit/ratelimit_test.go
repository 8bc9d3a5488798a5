package ratelimit

import (
	"testing"
	"time"
)

func TestEvery(t *testing.T) {
	e := Every{Interval: 50 * time.Millisecond}
	if held, ok := e.Allow(); !ok || held != 0 {
		t.Fatalf("first = %d, %v; want let through", held, ok)
	}
	for range 5 {
		if _, ok := e.Allow(); ok {
			t.Fatal("let through within the interval")
		}
	}
	time.Sleep(60 * time.Millisecond)
	if held, ok := e.Allow(); !ok || held != 5 {
		t.Fatalf("after the interval = %d, %v; want 5 held, let through", held, ok)
	}
	e.Allow()
	if held := e.Force(); held != 1 {
		t.Fatalf("Force = %d held, want 1", held)
	}
	if _, ok := e.Allow(); ok {
		t.Fatal("let through within the interval that Force started")
	}
}
