package bridge

import (
	"sync"
	"time"

	"github.com/exlive2mqtt/exlive2mqtt/mqtt"
)

// vehicle is what the bridge knows of one vehicle.
type vehicle struct {
	id, level string
	posTopic  string // P/vehicles/V/position, built once
	otTopic   string // owntracks/USER/V, when OwnTracks is on

	mu       sync.Mutex // guards the fields below
	code     string
	sim      string
	inInv    bool // listed in the last inventory
	announce bool // Home Assistant discovery sent for the current code
	last     fix
	seen     time.Time
}

// fix is the latest position of a vehicle, for the status page.
type fix struct {
	valid                  bool // a position has been seen
	lat, lng               float64
	speed, direction       float64
	hasSpeed, hasDirection bool
	time                   time.Time
	fixValid, alarm        bool
	hasFixValid, hasAlarm  bool
}

// registry maps platform ids to topic levels and back.
type registry struct {
	prefix, otPrefix string
	max              int

	mu       sync.RWMutex
	byID     map[string]*vehicle
	byLevel  map[string]*vehicle
	collided map[string]bool // levels that more than one id maps to
}

func newRegistry(prefix, otPrefix string, max int) *registry {
	return &registry{
		prefix:   prefix,
		otPrefix: otPrefix,
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
	level := mqtt.Level(id)
	v = &vehicle{id: id, level: level, posTopic: r.prefix + "/vehicles/" + level + "/position"}
	if r.otPrefix != "" {
		v.otTopic = r.otPrefix + "/" + level
	}
	r.byID[id] = v
	if other, ok := r.byLevel[level]; ok && other.id != id {
		r.collided[level] = true
		collision = true
	} else {
		r.byLevel[level] = v
	}
	return v, true, collision
}

// lookup returns the vehicle published under level. ambiguous reports a
// level that several ids map to.
func (r *registry) lookup(level string) (v *vehicle, ambiguous bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.collided[level] {
		return nil, true
	}
	return r.byLevel[level], false
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
