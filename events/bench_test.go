//go:build unix

package events

import (
	"container/heap"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/exlive2mqtt/exlive2mqtt/geofence"
	"github.com/exlive2mqtt/exlive2mqtt/internal/cpubench"
)

// What events cost per position: see BENCHMARKS.md, "Events and
// geofences".

const fleetSize = 100_000

// benchFleet is n vehicles spread over Shenzhen (50 by 33 km), driving,
// as the simulated platform sends them.
func benchFleet(n int) []Position {
	rng := rand.New(rand.NewPCG(1, 2))
	ps := make([]Position, n)
	for i := range ps {
		ps[i] = Position{
			ID: "V" + strconv.Itoa(i+1), Code: "粤B" + strconv.Itoa(10000+i),
			Lat: 22.45 + rng.Float64()*0.3, Lng: 113.8 + rng.Float64()*0.5,
			Speed: 42.5, HasSpeed: true, Alarm: false, HasAlarm: true, Valid: true, HasValid: true,
			CState: "ACC开,定位",
		}
	}
	return ps
}

// benchFences is n fences of 50-vertex polygons, 100 m to 3 km across,
// over the area of benchFleet.
func benchFences(tb testing.TB, n int) *geofence.Set {
	rng := rand.New(rand.NewPCG(3, 4))
	features := make([]string, n)
	for i := range features {
		lng, lat := 113.8+rng.Float64()*0.5, 22.45+rng.Float64()*0.3
		r := (50 + rng.Float64()*1450) / 111_320 // degrees of latitude
		var ring strings.Builder
		for k := 0; k <= 50; k++ {
			a := float64(k%50) * 2 * math.Pi / 50
			if k > 0 {
				ring.WriteByte(',')
			}
			fmt.Fprintf(&ring, "[%.7f,%.7f]", lng+r*math.Cos(a)/math.Cos(lat*math.Pi/180), lat+r*math.Sin(a))
		}
		features[i] = fmt.Sprintf(`{"type":"Feature","properties":{"name":"fence %d","speed_limit":%d},"geometry":{"type":"Polygon","coordinates":[[%s]]}}`, i, 30+i%5*10, ring.String())
	}
	return parseFences(tb, features...)
}

// fenceCases are the geofences the benchmarks run with.
func fenceCases(b *testing.B) []struct {
	name   string
	fences *geofence.Set
} {
	return []struct {
		name   string
		fences *geofence.Set
	}{{"fences=0", nil}, {"fences=1000", benchFences(b, 1000)}}
}

// observed returns an engine that has had one position of each vehicle of
// fleet, at t0, and how many of them are in a fence.
func observed(fleet []Position, fences *geofence.Set) (e *Engine, inFence int) {
	e = New(testConfig(), Options{Start: t0, Fences: fences})
	for i := range fleet {
		fleet[i].Time = t0
		if _, u := e.Observe(nil, &fleet[i], t0); len(u.Fences) > 0 {
			inFence++
		}
	}
	return e, inFence
}

// BenchmarkObserve is the cost of events per position: 100 000 vehicles
// each reporting every 30 s, in turn, with a Sweep every second of that
// time (as the bridge will run it), with no geofences and with 1 000. The
// event state of every vehicle is built before the clock starts. The
// speed goes above the limit and back now and then. sweep-ns/op is the
// part of ns/op spent in Sweep.
func BenchmarkObserve(b *testing.B) {
	fleet := benchFleet(fleetSize)
	for _, tc := range fenceCases(b) {
		b.Run(tc.name, func(b *testing.B) {
			e, _ := observed(fleet, tc.fences)
			dst := make([]Event, 0, 16)
			events, offline := 0, 0
			var swept time.Duration
			last := t0
			b.ReportAllocs()
			defer cpubench.PerOp(b)()
			for i := 0; b.Loop(); i++ {
				p := &fleet[i%fleetSize]
				now := t0.Add(30*time.Second + time.Duration(i)*(30*time.Second/fleetSize))
				p.Time = now.Truncate(time.Second)
				p.Speed = float64(40 + (i+i/fleetSize)%7*10)
				dst, _ = e.Observe(dst[:0], p, now)
				events += len(dst)
				if now.Sub(last) >= time.Second {
					last = now
					t := time.Now()
					e.Sweep(now, func(Event) { offline++ })
					swept += time.Since(t)
				}
			}
			if offline > 0 {
				b.Fatalf("%d vehicles offline in a fleet that reports every 30 s", offline)
			}
			b.ReportMetric(float64(events)/float64(b.N), "events/op")
			b.ReportMetric(float64(swept.Nanoseconds())/float64(b.N), "sweep-ns/op")
		})
	}
}

// BenchmarkSweepFleet is the cost of a fleet of 100 000 going silent at
// once: each op is one vehicle, all decided by one Sweep.
func BenchmarkSweepFleet(b *testing.B) {
	fleet := benchFleet(fleetSize)
	var e *Engine
	off := 0
	b.ReportAllocs()
	for b.Loop() {
		if off == 0 {
			b.StopTimer()
			e, _ = observed(fleet, nil)
			b.StartTimer()
			e.Sweep(t0.Add(time.Hour), func(Event) { off++ })
			if off != fleetSize {
				b.Fatalf("%d offline, want %d", off, fleetSize)
			}
		}
		off--
	}
}

// BenchmarkDeadlines compares the wheel with a min-heap of deadlines, for
// keeping the deadlines of 100 000 vehicles: each op is one position (a
// new deadline for its vehicle), and every 3 333 positions (one second of
// a fleet reporting every 30 s) a sweep of what is due.
func BenchmarkDeadlines(b *testing.B) {
	const perSecond = fleetSize / 30
	b.Run("wheel", func(b *testing.B) {
		w := newWheel(600)
		tb := newTable()
		seen := make([]int32, fleetSize)
		for i := range fleetSize {
			tb.add(strconv.Itoa(i))
			tb.at(int32(i)).seen = 0
			w.insert(&tb, int32(i), 601)
		}
		b.ReportAllocs()
		defer cpubench.PerOp(b)()
		for i := 0; b.Loop(); i++ {
			now := int32(i / perSecond)
			v := int32(i % fleetSize)
			tb.at(v).seen = now // all a position does
			seen[v] = now
			if i%perSecond == perSecond-1 {
				w.due(now, func(head int32) {
					for j := head; j >= 0; {
						s := tb.at(j)
						next := s.next
						if now-s.seen <= 600 {
							w.insert(&tb, j, s.seen+601)
						}
						j = next
					}
				})
			}
		}
	})
	b.Run("heap", func(b *testing.B) {
		h := &deadlineHeap{at: make([]int, fleetSize)}
		for i := range fleetSize {
			heap.Push(h, deadlineItem{vehicle: i, deadline: 601})
		}
		b.ReportAllocs()
		defer cpubench.PerOp(b)()
		for i := 0; b.Loop(); i++ {
			now := int32(i / perSecond)
			v := i % fleetSize
			k := h.at[v]
			h.items[k].deadline = now + 601
			heap.Fix(h, k)
			if i%perSecond == perSecond-1 {
				for len(h.items) > 0 && h.items[0].deadline <= now {
					heap.Pop(h) // offline; none are in this run
				}
			}
		}
	})
}

type deadlineItem struct {
	vehicle  int
	deadline int32
}

// deadlineHeap is the min-heap the wheel was measured against.
type deadlineHeap struct {
	items []deadlineItem
	at    []int // vehicle → index in items
}

func (h *deadlineHeap) Len() int           { return len(h.items) }
func (h *deadlineHeap) Less(i, j int) bool { return h.items[i].deadline < h.items[j].deadline }
func (h *deadlineHeap) Swap(i, j int) {
	h.items[i], h.items[j] = h.items[j], h.items[i]
	h.at[h.items[i].vehicle], h.at[h.items[j].vehicle] = i, j
}
func (h *deadlineHeap) Push(x any) {
	it := x.(deadlineItem)
	h.at[it.vehicle] = len(h.items)
	h.items = append(h.items, it)
}
func (h *deadlineHeap) Pop() any {
	it := h.items[len(h.items)-1]
	h.items = h.items[:len(h.items)-1]
	return it
}

// BenchmarkMemoryPerVehicle reports the heap the event state of 100 000
// vehicles takes, their ids and codes aside (the caller holds those):
// B/vehicle. fences=1000 puts each vehicle in the fences its position is
// in, which costs each vehicle in a fence its list of names.
func BenchmarkMemoryPerVehicle(b *testing.B) {
	fleet := benchFleet(fleetSize)
	for _, tc := range fenceCases(b) {
		b.Run(tc.name, func(b *testing.B) {
			var perVehicle float64
			inFence := 0
			for b.Loop() {
				perVehicle, inFence = memoryPerVehicle(fleet, tc.fences)
			}
			b.ReportMetric(perVehicle, "B/vehicle")
			b.ReportMetric(float64(inFence)/fleetSize*100, "%in-fence")
		})
	}
}

// memoryPerVehicle measures the heap an Engine holds after one position
// of each vehicle of fleet.
func memoryPerVehicle(fleet []Position, fences *geofence.Set) (perVehicle float64, inFence int) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	e, inFence := observed(fleet, fences)
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(e)
	return float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / float64(len(fleet)), inFence
}

// TestMemoryPerVehicle holds the event state to its budget: under 100
// bytes a vehicle without geofences.
func TestMemoryPerVehicle(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("builds 100 000 vehicles: not with -short or -race")
	}
	if size := unsafe.Sizeof(state{}); size != 72 {
		t.Errorf("a state is %d bytes; the comments and docs say 72", size)
	}
	perVehicle, _ := memoryPerVehicle(benchFleet(fleetSize), nil)
	t.Logf("%.1f B/vehicle", perVehicle)
	if perVehicle > 100 || perVehicle < 72 {
		t.Errorf("%.1f B/vehicle, want the 72 of a state and its index, and under 100 in all", perVehicle)
	}
}
