package bridge

import (
	"context"
	"sync"
	"time"

	"github.com/exlive2mqtt/exlive2mqtt/events"
	"github.com/exlive2mqtt/exlive2mqtt/exlive"
	"github.com/exlive2mqtt/exlive2mqtt/geofence"
)

// The feed's events and availability (docs/events.md): each position goes
// through the engine on the read loop (feed.observe), and a sweep every
// second finds the vehicles that have gone silent (feed.sweep). What they
// find is published on P/vehicles/V/availability (retained),
// P/vehicles/V/geofences (retained) and P/vehicles/V/event.

// sweepEvery is how often the engine is asked for silent vehicles: its
// wheel has a tick of one second.
const sweepEvery = time.Second

// recentEvents is how many of the latest events the status page lists.
const recentEvents = 100

var (
	payloadOnline  = []byte(events.AvailabilityOnline)
	payloadOffline = []byte(events.AvailabilityOffline)
)

// observe runs one position through the events engine and publishes what
// it says. v is the vehicle, nil when the registry is full; lat, lng are
// WGS-84.
func (f *feed) observe(p *exlive.Position, v *vehicle, lat, lng float64, now time.Time) {
	ep := events.Position{
		ID: p.ID, Code: p.Code, Lat: lat, Lng: lng, CState: p.CState,
		Speed: p.Speed.V, HasSpeed: p.Speed.Valid,
		Alarm: p.Alarm.V, HasAlarm: p.Alarm.Valid,
		Valid: p.Valid.V, HasValid: p.Valid.Valid,
	}
	if p.Time.Valid {
		ep.Time = p.Time.V
	}
	if v != nil {
		// The registry's copy of the id: the engine keeps it too.
		ep.ID, ep.Slot = v.id, v.slot
	}
	var u events.Update
	f.evbuf, u = f.engine.Observe(f.evbuf[:0], &ep, now)
	if v != nil {
		v.slot = ep.Slot
	}
	if !u.Online && !u.FencesChanged && len(f.evbuf) == 0 {
		return // all but a few positions
	}
	level := f.topics.Level(ep.ID)
	if u.Online && f.availability {
		f.pub.publish(f.topics.Availability(level), payloadOnline, true)
		f.reg.version.Add(1)
	}
	if u.FencesChanged {
		f.pub.publish(f.topics.Geofences(level), events.AppendGeofences(nil, u.Fences), true)
		f.reg.version.Add(1)
	}
	for i := range f.evbuf {
		f.event(level, &f.evbuf[i])
	}
}

// event publishes one event, counts it and keeps it for the status page.
// The payload is never changed after: the MQTT client and the page share
// it.
func (f *feed) event(level string, ev *events.Event) {
	payload := events.AppendEvent(nil, ev)
	if f.pub.publish(f.topics.Event(level), payload, false) {
		f.metrics.event(ev.Type)
		f.recent.add(payload)
	}
}

// sweep asks the engine every second for the vehicles that have gone
// silent, until ctx is done.
func (f *feed) sweep(ctx context.Context) {
	t := time.NewTicker(sweepEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			f.engine.Sweep(now, f.offline)
		}
	}
}

// offline publishes a vehicle's offline availability and, unless it is
// only the first word on a vehicle never heard from since the start, its
// offline event. The engine calls it locked: it queues, it does not wait.
func (f *feed) offline(ev events.Event) {
	level := f.topics.Level(ev.ID)
	f.pub.publish(f.topics.Availability(level), payloadOffline, true)
	f.reg.version.Add(1)
	if !ev.Initial {
		f.event(level, &ev)
	}
}

// eventRing keeps the payloads of the latest events, for the status page.
type eventRing struct {
	mu   sync.Mutex
	buf  [recentEvents][]byte
	next int // where the next goes
	n    int // how many it holds
}

func (r *eventRing) add(payload []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.buf[r.next] = payload
	r.next = (r.next + 1) % len(r.buf)
	r.n = min(r.n+1, len(r.buf))
}

// list returns the payloads kept, newest first. They are never changed:
// the caller may keep them.
func (r *eventRing) list() [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([][]byte, r.n)
	for i := range out {
		out[i] = r.buf[(r.next-1-i+2*len(r.buf))%len(r.buf)]
	}
	return out
}

// RecentEvents returns the payloads of the latest events (at most 100), as
// published on P/vehicles/V/event, newest first.
func (b *Bridge) RecentEvents() [][]byte { return b.feed.recent.list() }

// SetFences replaces the geofences, at once for every vehicle: each
// vehicle's next position is checked against the new ones. nil is none.
func (b *Bridge) SetFences(s *geofence.Set) { b.feed.engine.SetFences(s) }

// Fences returns the geofences in force; nil when there are none.
func (b *Bridge) Fences() *geofence.Set { return b.feed.engine.Fences() }
