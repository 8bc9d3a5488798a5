package bridge

import (
	"sync"
	"sync/atomic"

	"github.com/exlive2mqtt/exlive2mqtt/topic"
)

// vehicle is what the bridge knows of one vehicle. A big account has a
// hundred thousand of them, so it holds only what the hot path and the
// status page need: about 140 bytes with its map entry. Its topic level V
// is not kept, nor its position topic: registry.level derives the level
// from the id when needed, and topic.Layout.AppendPosition the topic, which
// costs no allocation for an id that is its own level (almost all).
type vehicle struct {
	id       string
	mu       sync.Mutex
	code     string // guarded by mu, like the fields below
	last     fix
	inInv    bool   // listed in the last inventory
	listed   uint32 // the number of the last collection that listed it (feed.listing)
	announce bool   // Home Assistant discovery sent for the current code
	// slot is the events engine's Slot for the vehicle (events.Position),
	// which spares it a look-up. Only the session's read loop uses it.
	slot int32
}

// fix is the latest position of a vehicle, for the status page.
type fix struct {
	lat, lng, speed, direction float64
	unix                       int64 // the fix time in Unix seconds; 0: none
	seen                       bool  // a position has come
	hasSpeed, hasDirection     bool
	fixValid, hasFixValid      bool
	alarm, hasAlarm            bool
}

// registry maps platform ids to topic levels and back.
type registry struct {
	topics topic.Layout
	max    int

	mu   sync.RWMutex
	byID map[string]*vehicle
	// byLevel holds only the vehicles whose level is not their id (ids
	// with / + # and the like): for every other one the id is the level.
	byLevel  map[string]*vehicle
	collided map[string]bool // levels that more than one id maps to

	// version counts changes to what the status page shows (a vehicle
	// added, a code, a position), so that it re-encodes the list only
	// when it changed.
	version atomic.Uint64
}

func newRegistry(topics topic.Layout, max int) *registry {
	return &registry{
		topics:   topics,
		max:      max,
		byID:     make(map[string]*vehicle),
		byLevel:  make(map[string]*vehicle),
		collided: make(map[string]bool),
	}
}

// get returns the vehicle of id, adding it when it is new. created reports
// an addition; collision reports that its level was already another id's.
// It returns nil when the registry is full.
func (r *registry) get(id string) (v *vehicle, created, collision bool) {
	r.mu.RLock()
	v = r.byID[id]
	r.mu.RUnlock()
	if v != nil {
		return v, false, false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if v = r.byID[id]; v != nil {
		return v, false, false
	}
	if len(r.byID) >= r.max {
		return nil, false, false
	}
	level := r.topics.Level(id)
	v = &vehicle{id: id}
	other := r.levelLocked(level)
	if other != nil && other.id != id {
		r.collided[level] = true
		collision = true
	}
	r.byID[id] = v
	r.version.Add(1)
	if level != id && other == nil {
		r.byLevel[level] = v
	}
	return v, true, collision
}

// levelLocked returns the vehicle that has level, if any.
func (r *registry) levelLocked(level string) *vehicle {
	if v := r.byLevel[level]; v != nil {
		return v
	}
	if v := r.byID[level]; v != nil && r.level(v) == level {
		return v
	}
	return nil
}

// level returns the topic level V of v.
func (r *registry) level(v *vehicle) string { return r.topics.Level(v.id) }

// lookup returns the vehicle published under level. ambiguous reports a
// level that several ids map to.
func (r *registry) lookup(level string) (v *vehicle, ambiguous bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.collided[level] {
		return nil, true
	}
	return r.levelLocked(level), false
}

// all returns every vehicle.
func (r *registry) all() []*vehicle {
	r.mu.RLock()
	defer r.mu.RUnlock()
	vs := make([]*vehicle, 0, len(r.byID))
	for _, v := range r.byID {
		vs = append(vs, v)
	}
	return vs
}

func (r *registry) len() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.byID)
}
