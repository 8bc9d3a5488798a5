package bridge

import (
	"slices"
	"time"

	"github.com/exlive2mqtt/exlive2mqtt/exlive"
	"github.com/exlive2mqtt/exlive2mqtt/web"
)

// Ready reports whether both links are up.
func (b *Bridge) Ready() (bool, string) {
	link := b.mq.Link()
	st := b.State()
	switch {
	case !link.Connected && st.State != exlive.StateLoggedIn:
		return false, "MQTT broker not connected; EXLIVE session " + string(st.State)
	case !link.Connected:
		return false, "MQTT broker not connected"
	case st.State != exlive.StateLoggedIn:
		return false, "EXLIVE session " + string(st.State)
	}
	return true, ""
}

// statusCounters are the totals the status page shows.
var statusCounters = []struct{ name, help string }{
	{"exlive_positions_received_total", "Positions received from the platform"},
	{"bridge_positions_published_total", "Positions handed to the broker"},
	{"mqtt_messages_published_total", "Messages the broker acknowledged"},
	{"mqtt_queue_depth", "Messages waiting for the broker"},
	{"mqtt_messages_dropped_total", "Messages dropped (outage queue full)"},
	{"mqtt_publish_errors_total", "Publish errors"},
	{"exlive_frames_skipped_total", "Frames from the platform skipped"},
	{"bridge_requests_total", "Requests from MQTT"},
	{"exlive_disconnects_total", "Platform disconnections"},
	{"mqtt_reconnects_total", "Broker reconnections"},
}

// Status returns both links' states and the counters, for the status page.
func (b *Bridge) Status() web.Status {
	st := b.State()
	session := web.LinkState{State: string(st.State), Since: st.Since, Addr: b.opts.Exlive.Addr}
	if st.Err != nil {
		session.Error = st.Err.Error()
	}
	link := b.mq.Link()
	broker := web.LinkState{State: "disconnected", Since: link.Since, Addr: b.opts.MQTT.SafeURL()}
	if link.Connected {
		broker.State = "connected"
	}
	if link.Err != nil {
		broker.Error = link.Err.Error()
	}
	names := make([]string, len(statusCounters))
	for i, c := range statusCounters {
		names[i] = c.name
	}
	sums := b.metrics.sum(names...)
	counters := make([]web.Counter, len(statusCounters))
	for i, c := range statusCounters {
		counters[i] = web.Counter{Name: c.name, Help: c.help, Value: sums[c.name]}
	}
	return web.Status{Version: b.opts.Version, Session: session, Broker: broker, Counters: counters, Vehicles: b.reg.len()}
}

// Vehicles returns every vehicle's latest state, for the status page.
func (b *Bridge) Vehicles() []web.Vehicle {
	vs := b.reg.all()
	out := make([]web.Vehicle, 0, len(vs))
	for _, v := range vs {
		v.mu.Lock()
		wv := web.Vehicle{ID: v.id, Code: v.code, Topic: v.posTopic}
		if f := v.last; f.seen {
			wv.Lat, wv.Lng = ptr(f.lat), ptr(f.lng)
			if f.hasSpeed {
				wv.Speed = ptr(f.speed)
			}
			if f.hasDirection {
				wv.Direction = ptr(f.direction)
			}
			if f.unix != 0 {
				wv.Time = ptr(time.Unix(f.unix, 0).UTC())
			}
			if f.hasFixValid {
				wv.Valid = ptr(f.fixValid)
			}
			if f.hasAlarm {
				wv.Alarm = ptr(f.alarm)
			}
		}
		v.mu.Unlock()
		out = append(out, wv)
	}
	slices.SortFunc(out, func(a, b web.Vehicle) int {
		switch {
		case a.ID < b.ID:
			return -1
		case a.ID > b.ID:
			return 1
		}
		return 0
	})
	return out
}

// VehiclesVersion changes whenever what Vehicles returns may have changed.
func (b *Bridge) VehiclesVersion() uint64 { return b.reg.version.Load() }

func ptr[T any](v T) *T { return &v }
