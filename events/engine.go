// Package events turns the positions of vehicles into events (alarm,
// ignition, overspeed, geofence, moving and stopped) and into their
// availability (online, offline), as docs/events.md describes.
//
// An Engine keeps about 80 bytes of state per vehicle. Observe takes
// each position, on one goroutine (the session's read loop); Sweep
// finds the vehicles that have gone silent, from another. Neither scans
// every vehicle: a position costs a map look-up and a few comparisons, and
// a silent vehicle is found by a timer wheel keyed by its deadline.
package events

import (
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/exlive2mqtt/exlive2mqtt/geofence"
)

// DefaultMaxVehicles is Options.MaxVehicles when it is 0: the bridge's
// own default (BRIDGE_MAX_VEHICLES).
const DefaultMaxVehicles = 200_000

// Position is what the engine reads of a position: the caller copies it
// from its decoder's, so the engine depends on no decoder's reuse rules.
type Position struct {
	ID, Code string
	// Slot is where the engine keeps the vehicle: Observe sets it, and a
	// caller that keeps it with the vehicle and gives it back with the
	// next position spares the engine a look-up by ID (with 100 000
	// vehicles, two cache misses of the three a position costs). 0 is
	// none; one that is not the vehicle's is found out and ignored.
	Slot     int32
	Time     time.Time // gpstime; zero when the platform gave none
	Lat, Lng float64   // WGS-84 degrees (geofences are WGS-84)
	Speed    float64   // km/h, when HasSpeed
	HasSpeed bool
	Alarm    bool // when HasAlarm
	HasAlarm bool
	Valid    bool // av: the fix is valid, when HasValid
	HasValid bool
	CState   string // the state text, where ParseACC finds the ignition
}

// fix reports whether the position's location can be trusted: not a fix
// the tracker calls invalid, nor 0,0, which trackers without a fix send.
func (p *Position) fix() bool {
	return !(p.HasValid && !p.Valid) && !(p.Lat == 0 && p.Lng == 0)
}

// Update is what Observe changed besides the events.
type Update struct {
	// Online: the vehicle became online (its first position since the
	// start, or its first after offline). Publish its availability.
	Online bool
	// FencesChanged: the geofences the vehicle is in are known for the
	// first time, or changed. Publish Fences, its names, sorted; nil is
	// none. Fences is shared: read it, do not change it.
	FencesChanged bool
	Fences        []string
}

// Options are what an Engine needs besides its Config.
type Options struct {
	// MaxVehicles bounds the vehicles tracked (0: DefaultMaxVehicles);
	// positions of more raise no events, and Stats counts them.
	MaxVehicles int
	// Fences are the geofences; nil: none. SetFences replaces them.
	Fences *geofence.Set
	// Start is when the bridge started (zero: now). Silence is counted
	// on this clock.
	Start time.Time
}

// Engine computes events and availability from positions. Its methods
// are safe to call from several goroutines.
type Engine struct {
	after      int32   // OfflineAfter in seconds; 0: off
	overspeed  float64 // km/h; 0: off
	movingKmh  float64 // 0: off
	stoppedFor int64   // seconds
	max        int
	epoch      time.Time
	fences     atomic.Pointer[geofence.Set]

	mu      sync.Mutex
	table   table
	wheel   wheel
	online  int
	stale   uint64
	full    uint64
	scratch []*geofence.Fence
	// interned shares one membership between the vehicles in the same
	// fences (a depot's fleet): a vehicle then costs a pointer, not its
	// own list. It is emptied when the fences change, so it holds at most
	// the combinations of one Set that vehicles have been in.
	interned    map[string]*membership
	internedFor *geofence.Set
}

// New returns an Engine for c, which must have passed Validate.
func New(c Config, o Options) *Engine {
	e := &Engine{
		overspeed:  c.OverspeedKmh,
		movingKmh:  c.MovingKmh,
		stoppedFor: int64(math.Ceil(c.StoppedAfter.Seconds())),
		max:        o.MaxVehicles,
		epoch:      o.Start,
		scratch:    make([]*geofence.Fence, 0, 8),
	}
	if e.max <= 0 {
		e.max = DefaultMaxVehicles
	}
	if e.epoch.IsZero() {
		e.epoch = time.Now()
	}
	// Whole seconds of the clock, not of the start: a last_seen is then
	// the position's arrival rounded down, as its "received" is, instead
	// of up to a second more before it (and the RFC 3339 form drops the
	// fraction that would have said so).
	e.epoch = e.epoch.Truncate(time.Second)
	if c.OfflineAfter > 0 {
		e.after = int32(min(math.Ceil(c.OfflineAfter.Seconds()), math.MaxInt32/4))
		e.wheel = newWheel(e.after)
	}
	e.table = newTable()
	e.fences.Store(o.Fences)
	return e
}

// SetFences replaces the geofences, at once for every vehicle. Each
// vehicle's next position is checked against the new ones: it leaves a
// fence that is gone, and enters a new one it is in.
func (e *Engine) SetFences(s *geofence.Set) { e.fences.Store(s) }

// Fences returns the geofences in force.
func (e *Engine) Fences() *geofence.Set { return e.fences.Load() }

// secs returns t in whole seconds since the epoch, rounded down.
func (e *Engine) secs(t time.Time) int32 {
	d := t.Sub(e.epoch)
	s := int64(d / time.Second)
	if d < 0 && d%time.Second != 0 {
		s--
	}
	return int32(max(min(s, math.MaxInt32/2), math.MinInt32/2))
}

func (e *Engine) timeOf(secs int32) time.Time {
	return e.epoch.Add(time.Duration(secs) * time.Second)
}

// Observe reads one position received at now and appends the events it
// raises to dst, in the order of the Type constants. It sets p.Slot. The first position
// of a vehicle since the start only tells what is known: it raises no
// event. It allocates nothing but when the vehicle is new, or when the
// geofences it is in change.
//
// A position older (by gpstime) than one already seen of the vehicle is
// stale, replayed from a tracker's memory or late: it keeps the vehicle
// online, and changes nothing else, since it tells of the past.
func (e *Engine) Observe(dst []Event, p *Position, now time.Time) ([]Event, Update) {
	var u Update
	if p.ID == "" {
		return dst, u
	}
	fences := e.fences.Load()
	e.mu.Lock()
	defer e.mu.Unlock()
	i, ok := p.Slot-1, false
	if i >= 0 && i < e.table.n {
		// The same string as the table's, most often: == compares the
		// pointers first and reads neither.
		ok = e.table.at(i).id == p.ID
	}
	if !ok {
		if i, ok = e.table.find(p.ID); !ok {
			if e.table.len() >= e.max {
				e.full++
				return dst, u
			}
			i = e.table.add(p.ID)
		}
	}
	p.Slot = i + 1
	s := e.table.at(i)
	if p.Code != "" && p.Code != s.code {
		s.code = p.Code
	}
	s.seen = e.secs(now)
	first := s.flags&heard == 0
	s.flags |= heard

	ev := Event{ID: p.ID, Code: s.code, Time: now, Lat: p.Lat, Lng: p.Lng, HasLocation: p.fix()}
	unix, hasTime := unixSeconds(p.Time)
	if hasTime {
		ev.Time = p.Time
	} else {
		unix, _ = unixSeconds(now)
	}

	if s.flags&online == 0 {
		s.flags |= online
		e.online++
		u.Online = true
		if !first {
			ev.Type = Online
			dst = append(dst, ev)
		}
		if e.after > 0 && s.flags&inWheel == 0 {
			s.flags |= inWheel
			e.wheel.insert(&e.table, i, s.seen+e.after+1)
		}
	}
	if hasTime {
		if s.flags&hasPosTime != 0 && unix < s.posTime {
			e.stale++
			return dst, u
		}
		s.posTime = unix
		s.flags |= hasPosTime
	}

	if p.HasAlarm {
		if was := s.flags&alarm != 0; s.flags&alarmKnown != 0 && was != p.Alarm {
			ev.Type = AlarmOff
			if p.Alarm {
				ev.Type = AlarmOn
			}
			dst = append(dst, ev)
		}
		s.flags = s.flags.set(alarm, p.Alarm) | alarmKnown
	}

	if acc := ParseACC(p.CState); acc != ACCUnknown {
		on := acc == ACCOn
		if was := s.flags&ignition != 0; s.flags&ignitionKnown != 0 && was != on {
			ev.Type = IgnitionOff
			if on {
				ev.Type = IgnitionOn
			}
			dst = append(dst, ev)
		}
		s.flags = s.flags.set(ignition, on) | ignitionKnown
	}

	if !p.fix() {
		return dst, u
	}
	s.lat, s.lng = fixed7(p.Lat), fixed7(p.Lng)
	s.flags |= location

	limit := e.overspeed
	if fences != nil || s.in != nil {
		e.scratch = fences.Containing(e.scratch[:0], p.ID, p.Lat, p.Lng)
		// Inside fences with a speed limit, the lowest of theirs is the
		// limit, higher or lower than EVENT_OVERSPEED_KMH: a fence is a
		// place with its own rule (a yard at 15, a motorway at 120).
		fenceLimit := 0.0
		for _, f := range e.scratch {
			if f.SpeedLimit > 0 && (fenceLimit == 0 || f.SpeedLimit < fenceLimit) {
				fenceLimit = f.SpeedLimit
			}
		}
		if fenceLimit > 0 {
			limit = fenceLimit
		}
		known := s.flags&fencesKnown != 0
		if !known || !s.in.same(e.scratch) {
			if known {
				dst = s.in.diff(dst, e.scratch, &ev)
			}
			s.in = e.intern(fences, e.scratch)
			s.flags |= fencesKnown
			u.FencesChanged, u.Fences = true, s.in.list()
		}
	}

	if !p.HasSpeed {
		return dst, u
	}
	over := limit > 0 && p.Speed > limit
	if over && s.flags&overspeedKnown != 0 && s.flags&overspeed == 0 {
		ev.Type, ev.Speed, ev.Limit = Overspeed, p.Speed, limit
		dst = append(dst, ev)
	}
	s.flags = s.flags.set(overspeed, over) | overspeedKnown

	if e.movingKmh > 0 {
		dst = e.motion(dst, s, p.Speed, unix, &ev)
	}
	return dst, u
}

// intern returns the membership of fs, the fences of set a vehicle is in.
func (e *Engine) intern(set *geofence.Set, fs []*geofence.Fence) *membership {
	if len(fs) == 0 {
		return nil
	}
	if e.internedFor != set || e.interned == nil {
		e.interned, e.internedFor = make(map[string]*membership), set
	}
	// Each name with its length before it: a name may hold any
	// character, a separator included.
	var key []byte
	for _, f := range fs {
		key = append(strconv.AppendInt(key, int64(len(f.Name)), 10), ':')
		key = append(key, f.Name...)
	}
	if m := e.interned[string(key)]; m != nil {
		return m
	}
	m := newMembership(fs)
	e.interned[string(key)] = m
	return m
}

// motion decides moving and stopped. A vehicle is moving from its first
// position above the threshold: a single GPS jump of a parked vehicle
// above 5 km/h is rare, and a trip's start should not wait. It is stopped
// only after staying at or below it for StoppedAfter of position time,
// so that a red light or a queue does not end a trip.
func (e *Engine) motion(dst []Event, s *state, speed float64, unix uint32, ev *Event) []Event {
	switch {
	case speed > e.movingKmh:
		s.slowSince = 0
		if s.flags&motionKnown != 0 && s.flags&moving == 0 {
			ev.Type, ev.Speed = Moving, speed
			dst = append(dst, *ev)
		}
		s.flags |= motionKnown | moving
	case s.flags&motionKnown == 0:
		s.flags |= motionKnown // stopped, as far as anyone knows
	case s.flags&moving != 0:
		if s.slowSince == 0 {
			s.slowSince = unix
		}
		if int64(unix)-int64(s.slowSince) >= e.stoppedFor {
			ev.Type, ev.Since = Stopped, time.Unix(int64(s.slowSince), 0)
			dst = append(dst, *ev)
			s.flags &^= moving
			s.slowSince = 0
		}
	}
	return dst
}

// Known tells the engine of a listed vehicle (from the platform's vehicle
// list) at now. One never heard from goes offline OfflineAfter later,
// with an Initial Offline; a known one only takes code, when not empty.
func (e *Engine) Known(id, code string, now time.Time) {
	if id == "" {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	i, ok := e.table.find(id)
	if !ok {
		if e.table.len() >= e.max {
			e.full++
			return
		}
		i = e.table.add(id)
	}
	s := e.table.at(i)
	if code != "" {
		s.code = code
	}
	if !ok && e.after > 0 {
		s.seen = e.secs(now)
		s.flags |= inWheel
		e.wheel.insert(&e.table, i, s.seen+e.after+1)
	}
}

// sweepBatch is how many vehicles Sweep looks at before it lets Observe
// in: when a whole fleet goes silent at once, the read loop waits for a
// batch, not for the fleet.
const sweepBatch = 256

// Sweep finds the vehicles that have sent nothing for OfflineAfter by now
// and calls offline for each, with the engine locked: offline must not
// call the engine, nor block (publish, do not wait). Called under the
// lock, the offline of a vehicle is always handed over before the online
// of its next position, so retained availability ends in the right
// state. A vehicle's offline comes between OfflineAfter and OfflineAfter
// + 2 s after its last position (for an OfflineAfter over 68 minutes,
// within 1/4096 of it), plus however late Sweep is called: call it every
// second.
func (e *Engine) Sweep(now time.Time, offline func(Event)) {
	if e.after == 0 {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	nowSecs := e.secs(now)
	n := 0
	e.wheel.due(nowSecs, func(head int32) {
		for i := head; i >= 0; {
			s := e.table.at(i)
			next := s.next
			s.next = -1
			if nowSecs-s.seen > e.after {
				e.offline(s, now, offline)
			} else {
				// Heard from since this deadline was set: wait for the
				// new one.
				e.wheel.insert(&e.table, i, s.seen+e.after+1)
			}
			i = next
			if n++; n%sweepBatch == 0 {
				e.mu.Unlock()
				e.mu.Lock()
			}
		}
	})
}

func (e *Engine) offline(s *state, now time.Time, emit func(Event)) {
	ev := Event{Type: Offline, ID: s.id, Code: s.code, Time: now}
	if s.flags&heard == 0 {
		ev.Initial = true
	} else {
		ev.Since = e.timeOf(s.seen)
	}
	if s.flags&location != 0 {
		ev.Lat, ev.Lng, ev.HasLocation = float64(s.lat)/1e7, float64(s.lng)/1e7, true
	}
	if s.flags&online != 0 {
		e.online--
	}
	s.flags &^= online | inWheel
	emit(ev)
}

// Status is what the engine knows of one vehicle, for a status page.
type Status struct {
	Online    bool      // a position came within OfflineAfter
	Heard     bool      // a position came since the start
	LastSeen  time.Time // when the last position came (to the second); zero if never
	Geofences []string  // the fences it is in, sorted; shared, read-only
}

// Status returns what the engine knows of vehicle id.
func (e *Engine) Status(id string) (Status, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	i, ok := e.table.find(id)
	if !ok {
		return Status{}, false
	}
	s := e.table.at(i)
	st := Status{Online: s.flags&online != 0, Heard: s.flags&heard != 0, Geofences: s.in.list()}
	if st.Heard {
		st.LastSeen = e.timeOf(s.seen)
	}
	return st, true
}

// Stats are the engine's counters.
type Stats struct {
	Vehicles int    // tracked
	Online   int    // online now
	Stale    uint64 // positions older than one already seen of their vehicle
	Full     uint64 // positions and listings of vehicles past MaxVehicles
}

// Stats returns the engine's counters.
func (e *Engine) Stats() Stats {
	e.mu.Lock()
	defer e.mu.Unlock()
	return Stats{Vehicles: e.table.len(), Online: e.online, Stale: e.stale, Full: e.full}
}

// unixSeconds returns t in Unix seconds, when it fits a uint32 (1970 to
// 2106) and is not the zero time.
func unixSeconds(t time.Time) (uint32, bool) {
	if t.IsZero() {
		return 0, false
	}
	u := t.Unix()
	if u <= 0 || u > math.MaxUint32 {
		return 0, false
	}
	return uint32(u), true
}

// fixed7 stores degrees in units of 1e-7, the precision the bridge rounds
// converted coordinates to; ±180° fits an int32.
func fixed7(deg float64) int32 { return int32(math.Round(deg * 1e7)) }
