package main

import (
	"sync"

	"github.com/exlive2mqtt/exlive2mqtt/bridge"
	"github.com/exlive2mqtt/exlive2mqtt/geofence"
	"github.com/exlive2mqtt/exlive2mqtt/opt"
	"github.com/exlive2mqtt/exlive2mqtt/web"
)

// statusPage shows the bridge on the status page: package web knows nothing
// of the bridge, and the bridge nothing of web, so this turns the bridge's
// state into the page's.
type statusPage struct {
	b      *bridge.Bridge
	fences *fencesJSON
}

func newStatusPage(b *bridge.Bridge) statusPage { return statusPage{b: b, fences: &fencesJSON{}} }

// fencesJSON holds the geofences in force as GeoJSON, written once per set
// (at start and on each reload), not once per request: 1 000 fences are
// megabytes.
type fencesJSON struct {
	mu   sync.Mutex
	set  *geofence.Set
	body []byte
}

// Geofences returns the geofences in force as GeoJSON, nil when none.
func (p statusPage) Geofences() []byte {
	set := p.b.Fences()
	p.fences.mu.Lock()
	defer p.fences.mu.Unlock()
	if set != p.fences.set {
		p.fences.set, p.fences.body = set, nil
		if set != nil {
			p.fences.body = set.AppendGeoJSON(nil)
		}
	}
	return p.fences.body
}

// Events returns the latest events, newest first.
func (p statusPage) Events() [][]byte { return p.b.RecentEvents() }

func (p statusPage) Ready() (bool, string) { return p.b.Ready() }

func (p statusPage) Status() web.Status {
	s := p.b.Status()
	counters := make([]web.Counter, len(s.Counters))
	for i, c := range s.Counters {
		counters[i] = web.Counter{Name: c.Name, Help: c.Help, Value: c.Value}
	}
	return web.Status{
		Version:  s.Version,
		Session:  web.LinkState(s.Session),
		Broker:   web.LinkState(s.Broker),
		Counters: counters,
		Vehicles: s.Vehicles,
	}
}

// VehiclesVersion tells web when to build its vehicle list again.
func (p statusPage) VehiclesVersion() uint64 { return p.b.VehiclesVersion() }

func (p statusPage) Vehicles() []web.Vehicle {
	var out []web.Vehicle
	for v := range p.b.Vehicles() {
		w := web.Vehicle{
			ID: v.ID, Code: v.Code, Topic: v.Topic,
			Lat: ptr(v.Lat), Lng: ptr(v.Lng), Speed: ptr(v.Speed), Direction: ptr(v.Direction),
			Time: ptr(v.Time), Valid: ptr(v.Valid), Alarm: ptr(v.Alarm),
			Online: ptr(v.Online), Geofences: v.Geofences,
		}
		// When an online vehicle was last seen is about when its fix
		// was: the page shows it for offline ones only, and 100 000
		// vehicles' lists are 4 MB the smaller for it.
		if v.Online.Valid && !v.Online.V {
			w.LastSeen = ptr(v.LastSeen)
		}
		out = append(out, w)
	}
	return out
}

// ptr returns the value of o, or nil when it has none: the page shows a
// dash for what the platform has not told, never a misleading zero.
func ptr[T any](o opt.Opt[T]) *T {
	if !o.Valid {
		return nil
	}
	return &o.V
}
