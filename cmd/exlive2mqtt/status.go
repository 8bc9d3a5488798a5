package main

import (
	"github.com/exlive2mqtt/exlive2mqtt/bridge"
	"github.com/exlive2mqtt/exlive2mqtt/opt"
	"github.com/exlive2mqtt/exlive2mqtt/web"
)

// statusPage shows the bridge on the status page: package web knows nothing
// of the bridge, and the bridge nothing of web, so this turns the bridge's
// state into the page's.
type statusPage struct{ b *bridge.Bridge }

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
		out = append(out, web.Vehicle{
			ID: v.ID, Code: v.Code, Topic: v.Topic,
			Lat: ptr(v.Lat), Lng: ptr(v.Lng), Speed: ptr(v.Speed), Direction: ptr(v.Direction),
			Time: ptr(v.Time), Valid: ptr(v.Valid), Alarm: ptr(v.Alarm),
		})
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
