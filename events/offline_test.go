package events

import (
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestOfflineAgainstAModel runs a fleet with random reports, listings and
// sweeps (some late by far more than the wheel's span) and holds each
// sweep to a plain model: a vehicle is offline once it has been silent
// for more than OfflineAfter, counted in whole seconds. With an
// OfflineAfter of up to maxBuckets seconds the wheel must agree exactly;
// beyond, its ticks are longer than a second, and a vehicle may go
// offline up to a tick late, never early.
func TestOfflineAgainstAModel(t *testing.T) {
	for _, after := range []time.Duration{time.Second, 7 * time.Second, time.Minute, 5 * time.Hour} {
		t.Run(after.String(), func(t *testing.T) {
			c := Defaults()
			c.OfflineAfter = after
			e := New(c, Options{Start: t0})
			afterS := int64(after / time.Second)
			tick := int64(e.wheel.tick)
			rng := rand.New(rand.NewPCG(7, uint64(after)))
			const n = 300
			type model struct {
				seen          int64
				online, wheel bool // wheel: heard or listed, and not yet offline
				listed        bool
			}
			m := make([]model, n)
			id := func(i int) string { return "V" + strconv.Itoa(i) }
			now := int64(0)
			offlines := 0
			end := max(40*afterS, 1500)
			for now < end {
				// A step of time: mostly short, sometimes longer than
				// the whole wheel.
				step := 1 + rng.Int64N(max(afterS/10, 2))
				if rng.IntN(50) == 0 {
					step = afterS*3 + rng.Int64N(afterS+1)
				}
				now += step
				nowT := t0.Add(time.Duration(now)*time.Second + time.Duration(rng.Int64N(1e9)))
				for range rng.IntN(n / 3) {
					i := rng.IntN(n)
					if rng.IntN(10) == 0 {
						e.Known(id(i), "", nowT)
						if !m[i].listed && !m[i].online && !m[i].wheel && m[i].seen == 0 {
							m[i].seen, m[i].wheel = now, true
						}
						m[i].listed = true
						continue
					}
					p := at(int(now)).id(id(i))
					e.Observe(nil, p.pos(), nowT)
					m[i].seen, m[i].online, m[i].wheel = now, true, true
				}
				// Sweep at a later instant of the same second.
				var got []string
				sweepT := t0.Add(time.Duration(now)*time.Second + time.Duration(rng.Int64N(1e9)))
				e.Sweep(sweepT, func(ev Event) { got = append(got, ev.ID) })
				var must, may []string
				for i := range m {
					if !m[i].wheel {
						continue
					}
					silent := now - m[i].seen
					if silent > afterS+tick-1 {
						must = append(must, id(i))
					} else if silent > afterS {
						may = append(may, id(i))
					}
				}
				slices.Sort(got)
				for _, g := range got {
					if !slices.Contains(must, g) && !slices.Contains(may, g) {
						i, _ := strconv.Atoi(g[1:])
						t.Fatalf("t=%d: %s offline early: model %+v", now, g, m[i])
					}
				}
				for _, w := range must {
					if !slices.Contains(got, w) {
						t.Fatalf("t=%d: %s silent too long, not offline", now, w)
					}
				}
				if tick == 1 && len(may) > 0 {
					t.Fatalf("t=%d: with 1-second ticks, nothing may be late: %v", now, may)
				}
				for _, g := range got {
					i, _ := strconv.Atoi(g[1:])
					m[i].online, m[i].wheel = false, false
				}
				offlines += len(got)
				online := 0
				for i := range m {
					if m[i].online {
						online++
					}
				}
				if s := e.Stats(); s.Online != online {
					t.Fatalf("t=%d: Stats().Online = %d, the model %d", now, s.Online, online)
				}
			}
			if offlines < n {
				t.Errorf("only %d vehicles went offline: the test tests little", offlines)
			}
		})
	}
}

// TestConcurrentObserveAndSweep runs Observe on one goroutine, as the
// session's read loop does, and Sweep, SetFences and Status on others.
// Run with -race. At the end each vehicle's availability, as the
// changes handed out tell it, is what Status says.
func TestConcurrentObserveAndSweep(t *testing.T) {
	c := Defaults()
	c.OfflineAfter = time.Second
	fences := parseFences(t, box(`{"name":"depot"}`, 113.99, 22.59, 114.01, 22.61))
	e := New(c, Options{Start: t0, Fences: fences})
	const n = 200
	var clock atomic.Int64 // milliseconds since t0
	now := func() time.Time { return t0.Add(time.Duration(clock.Load()) * time.Millisecond) }
	var ups, downs [n]atomic.Int32
	done := make(chan struct{})
	// The read loop hands the sweeper a turn every 100 positions, so
	// that both run however fast the read loop is; each sweep then runs
	// beside the next positions.
	turn := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { // the read loop
		defer wg.Done()
		defer close(done)
		rng := rand.New(rand.NewPCG(1, 1))
		var dst []Event
		for k := range 20_000 {
			if k%100 == 0 {
				turn <- struct{}{}
			}
			clock.Add(1)
			i := rng.IntN(n)
			if i%4 == 0 && k%5000 < 3000 {
				continue // a quarter of the fleet is silent for 3 s in every 5
			}
			p := at(0).id(strconv.Itoa(i)).speed(float64(rng.IntN(100))).alarm(rng.IntN(2) == 0).loc(22.6+rng.Float64()*0.02-0.01, 114)
			p.p.Time = now()
			var u Update
			dst, u = e.Observe(dst[:0], p.pos(), now())
			if u.Online {
				ups[i].Add(1)
			}
		}
	}()
	go func() { // the sweeper, and a reload now and then
		defer wg.Done()
		for k := 0; ; k++ {
			select {
			case <-done:
				return
			case <-turn:
			}
			e.Sweep(now(), func(ev Event) {
				i, _ := strconv.Atoi(ev.ID)
				downs[i].Add(1)
			})
			if k%100 == 0 {
				e.SetFences(fences)
				e.Status("1")
				e.Stats()
			}
		}
	}()
	wg.Wait()
	cycles := 0
	for i := range n {
		up, down := ups[i].Load(), downs[i].Load()
		st, ok := e.Status(strconv.Itoa(i))
		if !ok {
			continue
		}
		if up-down != 1 && up-down != 0 || st.Online != (up-down == 1) {
			t.Errorf("vehicle %d: online %d times, offline %d times, Status online %v", i, up, down, st.Online)
		}
		cycles += int(down)
	}
	if cycles < n/4 {
		t.Errorf("%d offline cycles: the test tests little", cycles)
	}
	t.Logf("%d offline cycles", cycles)
}
