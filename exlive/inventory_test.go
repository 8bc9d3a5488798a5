package exlive_test

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/exlive2mqtt/exlive2mqtt/exlive"
	"github.com/exlive2mqtt/exlive2mqtt/exlive/exlivesim"
)

// invCounter counts positions without keeping them, and keeps each
// inventory with the number of positions that had come before it.
type invCounter struct {
	positions atomic.Int64
	mu        sync.Mutex
	invs      []exlive.Inventory
	before    []int64
	got       chan struct{}
	// passed is closed when the positions reach mark, if set.
	mark   int64
	passed chan struct{}
}

func (h *invCounter) HandleMessage(m exlive.Message) {
	if _, ok := m.(*exlive.Position); ok {
		if h.positions.Add(1) == h.mark && h.passed != nil {
			close(h.passed)
		}
	}
}
func (h *invCounter) HandleState(exlive.State)      {}
func (h *invCounter) HandleSkip(*exlive.FrameError) {}
func (h *invCounter) HandleInventory(inv exlive.Inventory) {
	h.mu.Lock()
	h.invs = append(h.invs, inv)
	h.before = append(h.before, h.positions.Load())
	h.mu.Unlock()
	select {
	case h.got <- struct{}{}:
	default:
	}
}

// TestInventoryBehindBacklog queues 100 000 positions (10 000 under -race)
// ahead of the answer to every list request, in both forms of the
// platform: the one that answers heartbeats (the lists end at their
// barrier) and the literal one that does not (they end on the reader's
// idle time). The session reads 300 000 positions before the last vehicle;
// a quiet period of wall-clock time (50 ms here) ends every list long
// before its frames come (the inventory had no group at all when gather
// measured that). The inventory must be whole.
func TestInventoryBehindBacklog(t *testing.T) {
	for _, literal := range []bool{false, true} {
		name := "dialect"
		if literal {
			name = "literal"
		}
		t.Run(name, func(t *testing.T) {
			backlog := 100_000
			if raceEnabled {
				backlog = 10_000
			}
			srv := startSim(t, exlivesim.Config{Vehicles: 100, Groups: 2, Rate: 0, Backlog: backlog, Literal: literal})
			cfg := testConfig(srv.Addr())
			cfg.CommandTimeout = 500 * time.Millisecond
			if literal {
				// Without a barrier the idle clock decides alone, and the
				// simulator, in this process, pauses now and then as a
				// platform over a network would: each pause is idle time.
				cfg.InventoryQuiet = 300 * time.Millisecond
			}
			h := &invCounter{got: make(chan struct{}, 1)}
			start := time.Now()
			runSession(t, cfg, h)
			select {
			case <-h.got:
			case <-time.After(120 * time.Second):
				t.Fatalf("no inventory after 120 s; %d positions read", h.positions.Load())
			}
			took := time.Since(start)
			h.mu.Lock()
			inv, before := h.invs[0], h.before[0]
			h.mu.Unlock()
			if len(inv.Groups) != 2 || len(inv.Vehicles) != 100 {
				t.Errorf("inventory of %d groups and %d vehicles, want 2 and 100", len(inv.Groups), len(inv.Vehicles))
			}
			// Every list came after its backlog: the positions of all
			// three were read before the inventory was handed on.
			if before < int64(3*backlog) {
				t.Errorf("%d positions read before the inventory, want at least %d: the backlog was not ahead of the lists", before, 3*backlog)
			}
			t.Logf("%s: %d positions read before the inventory of %d vehicles, in %s", name, before, len(inv.Vehicles), took.Round(time.Millisecond))
		})
	}
}

// TestInventoryFlatOut collects the inventory while the platform sends
// positions as fast as the connection takes them, the list frames among
// them, so that the reader never rests. On the platform that answers
// heartbeats the lists end at their barriers. On the literal one nothing
// tells that a list is over while the reader never rests: the inventory
// waits, and is whole, once the stream pauses.
func TestInventoryFlatOut(t *testing.T) {
	for _, literal := range []bool{false, true} {
		t.Run(map[bool]string{false: "dialect", true: "literal"}[literal], func(t *testing.T) {
			srv := startSim(t, exlivesim.Config{Vehicles: 100, Groups: 3, Rate: -1, Literal: literal})
			cfg := testConfig(srv.Addr())
			cfg.CommandTimeout = 500 * time.Millisecond
			h := &invCounter{got: make(chan struct{}, 1), mark: 100_000, passed: make(chan struct{})}
			runSession(t, cfg, h)
			if literal {
				// The stream rests only when told to, once a good many
				// positions have gone by.
				select {
				case <-h.got:
					t.Fatalf("inventory handed on after %d positions, while the stream never rested", h.positions.Load())
				case <-h.passed:
				case <-time.After(60 * time.Second):
					t.Fatalf("%d positions in 60 s", h.positions.Load())
				}
				srv.SetPaused(true)
			}
			select {
			case <-h.got:
			case <-time.After(60 * time.Second):
				t.Fatalf("no inventory after 60 s; %d positions read", h.positions.Load())
			}
			h.mu.Lock()
			inv, before := h.invs[0], h.before[0]
			h.mu.Unlock()
			if len(inv.Groups) != 3 || len(inv.Vehicles) != 100 {
				t.Errorf("inventory of %d groups and %d vehicles, want 3 and 100", len(inv.Groups), len(inv.Vehicles))
			}
			if before == 0 {
				t.Error("no position came before the inventory: the stream was not busy")
			}
			t.Logf("%d positions read while the inventory was collected, in %s", before, inv.Collected.Sub(inv.Started).Round(time.Millisecond))
		})
	}
}

// lister is an invCounter that takes the vehicles one at a time.
type lister struct {
	invCounter
	started  int
	vehicles []exlive.Vehicle // since the last ListingStarted
	listed   []exlive.Vehicle // as they were at each HandleInventory
}

func (h *lister) ListingStarted() {
	h.mu.Lock()
	h.started++
	h.vehicles = nil
	h.mu.Unlock()
}

func (h *lister) ListVehicle(v exlive.Vehicle) {
	h.mu.Lock()
	h.vehicles = append(h.vehicles, v)
	h.mu.Unlock()
}

func (h *lister) HandleInventory(inv exlive.Inventory) {
	h.mu.Lock()
	h.listed = h.vehicles
	h.mu.Unlock()
	h.invCounter.HandleInventory(inv)
}

// TestVehicleLister: a handler that lists vehicles gets every one of them,
// with its group, between ListingStarted and HandleInventory, and an
// Inventory that counts them without holding them.
func TestVehicleLister(t *testing.T) {
	srv := startSim(t, exlivesim.Config{Vehicles: 50, Groups: 3, Rate: 0})
	h := &lister{invCounter: invCounter{got: make(chan struct{}, 1)}}
	runSession(t, testConfig(srv.Addr()), h)
	select {
	case <-h.got:
	case <-time.After(60 * time.Second):
		t.Fatal("no inventory after 60 s")
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	inv := h.invs[0]
	if inv.Vehicles != nil || inv.Listed != 50 || len(inv.Groups) != 3 || inv.Truncated {
		t.Errorf("inventory: %d vehicles held, %d listed, %d groups, truncated %v; want none held, 50 listed, 3 groups",
			len(inv.Vehicles), inv.Listed, len(inv.Groups), inv.Truncated)
	}
	if h.started != 1 || len(h.listed) != 50 {
		t.Fatalf("%d listings started, %d vehicles listed; want 1 and 50", h.started, len(h.listed))
	}
	groups := map[string]bool{}
	for _, g := range inv.Groups {
		groups[g.ID] = true
	}
	ids := map[string]bool{}
	for _, v := range h.listed {
		if !groups[v.GroupID] || v.ID == "" || ids[v.ID] {
			t.Errorf("vehicle %+v: unknown group, no id or listed twice", v)
		}
		ids[v.ID] = true
	}
}
