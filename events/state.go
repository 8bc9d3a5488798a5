package events

import (
	"hash/maphash"
	"slices"

	"github.com/exlive2mqtt/exlive2mqtt/geofence"
)

// state is what the engine keeps of one vehicle: 72 bytes, with the
// strings shared with the caller's (the bridge keeps the same id and
// code). Times are in whole seconds: gpstime has no more, and a
// deadline needs no more.
type state struct {
	id, code  string
	in        *membership // the geofences it is in; nil: none
	lat, lng  int32       // the last fix, in 1e-7 degrees, when location
	seen      int32       // when the last position came, in seconds since the engine's epoch
	posTime   uint32      // the newest gpstime, Unix seconds, when hasPosTime
	slowSince uint32      // Unix seconds (position time) of the first slow position while moving; 0: none
	next      int32       // the next vehicle in its wheel bucket; -1: none
	flags     flags
}

type flags uint16

const (
	heard      flags = 1 << iota // a position came since the start
	online                       // availability online
	inWheel                      // waiting in the wheel for its deadline
	hasPosTime                   // posTime is set
	location                     // lat, lng are set
	alarmKnown
	alarm
	ignitionKnown
	ignition
	fencesKnown // in is known: the geofences have been checked once
	overspeedKnown
	overspeed
	motionKnown
	moving
)

func (f flags) set(bit flags, on bool) flags {
	if on {
		return f | bit
	}
	return f &^ bit
}

// table holds the states in chunks, so that growing it copies nothing and
// leaves no half-used array behind, and finds them by id.
//
// The index is a hash table of its own: open addressing with linear
// probing over state numbers (int32, +1 so that 0 is empty), grown to
// twice its size when 3/4 full. Vehicles are never removed, so it needs
// no tombstones. It costs 5 to 11 bytes a vehicle, where a
// map[string]int32 costs about 35 at 100 000 (24-byte slots at most 7/8
// full, in tables split at 1 024): a third of the whole state.
type table struct {
	seed   maphash.Seed
	slots  []int32 // len is a power of two
	chunks [][]state
	n      int32
}

const (
	chunkSize = 1024
	minSlots  = 1024
)

func newTable() table { return table{seed: maphash.MakeSeed(), slots: make([]int32, minSlots)} }

func (t *table) len() int { return int(t.n) }

func (t *table) find(id string) (int32, bool) {
	mask := uint64(len(t.slots) - 1)
	for h := maphash.String(t.seed, id) & mask; ; h = (h + 1) & mask {
		v := t.slots[h]
		if v == 0 {
			return 0, false
		}
		if t.at(v-1).id == id {
			return v - 1, true
		}
	}
}

func (t *table) at(i int32) *state { return &t.chunks[i/chunkSize][i%chunkSize] }

// add adds a state for id, which find did not find, and returns its number.
func (t *table) add(id string) int32 {
	i := t.n
	if int(i/chunkSize) == len(t.chunks) {
		t.chunks = append(t.chunks, make([]state, chunkSize))
	}
	t.n++
	s := t.at(i)
	s.id, s.next = id, -1
	if int(t.n) > len(t.slots)/4*3 {
		t.slots = make([]int32, len(t.slots)*2)
		for j := range t.n {
			t.place(j)
		}
	} else {
		t.place(i)
	}
	return i
}

func (t *table) place(i int32) {
	mask := uint64(len(t.slots) - 1)
	h := maphash.String(t.seed, t.at(i).id) & mask
	for t.slots[h] != 0 {
		h = (h + 1) & mask
	}
	t.slots[h] = i + 1
}

// membership is the geofences a vehicle is in, by name, sorted. It is
// never changed once made, so Update and Status hand it out as is, and
// vehicles keep theirs across a reload of the fences.
type membership struct{ names []string }

func newMembership(fs []*geofence.Fence) *membership {
	if len(fs) == 0 {
		return nil
	}
	m := &membership{names: make([]string, len(fs))}
	for i, f := range fs {
		m.names[i] = f.Name
	}
	return m
}

func (m *membership) list() []string {
	if m == nil {
		return nil
	}
	return m.names
}

// same reports whether m is the fences fs, which are in name order.
func (m *membership) same(fs []*geofence.Fence) bool {
	names := m.list()
	if len(names) != len(fs) {
		return false
	}
	for i, f := range fs {
		if names[i] != f.Name {
			return false
		}
	}
	return true
}

// diff appends to dst a GeofenceExit for each fence of m not in fs, then a
// GeofenceEnter for each of fs not in m, each in name order.
func (m *membership) diff(dst []Event, fs []*geofence.Fence, ev *Event) []Event {
	old := m.list()
	for _, name := range old {
		if !slices.ContainsFunc(fs, func(f *geofence.Fence) bool { return f.Name == name }) {
			ev.Type, ev.Geofence = GeofenceExit, name
			dst = append(dst, *ev)
		}
	}
	for _, f := range fs {
		if !slices.Contains(old, f.Name) {
			ev.Type, ev.Geofence = GeofenceEnter, f.Name
			dst = append(dst, *ev)
		}
	}
	ev.Geofence = ""
	return dst
}
