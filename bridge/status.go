package bridge

import (
	"cmp"
	"iter"
	"time"

	"github.com/exlive2mqtt/exlive2mqtt/exlive"
	"github.com/exlive2mqtt/exlive2mqtt/opt"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
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

// Status is the state of the bridge for its status page, in the bridge's
// own terms: the program turns it into the page's.
type Status struct {
	Version  string
	Session  Link // the EXLIVE platform session
	Broker   Link // the MQTT broker
	Counters []Counter
	Vehicles int // how many vehicles the bridge tracks
}

// Link is the state of one of the bridge's two links.
type Link struct {
	// State is, for the session, connecting, logged_in, login_failed or
	// disconnected; for the broker, connected or disconnected.
	State string
	Since time.Time // when State was entered
	Error string    // the link's last error, if any
	Addr  string    // the platform address or the broker URL, without credentials
	Hint  string    // what may be wrong, when the bridge can tell (another client on the account)
}

// Counter is one total the status page shows. Name is the metric it is
// read from, so that the page tells where to find it in Prometheus.
type Counter struct {
	Name, Help string
	Value      float64
}

// Status returns both links' states and the counters.
func (b *Bridge) Status() Status {
	st := b.State()
	// The address in use, or being tried; the list before the first try.
	session := Link{State: string(st.State), Since: st.Since, Addr: cmp.Or(st.Addr, b.opts.Exlive.Addr)}
	if st.Err != nil {
		session.Error = st.Err.Error()
	}
	if st.Conflict {
		session.Hint = exlive.ConflictHint
	}
	link := b.mq.Link()
	broker := Link{State: "disconnected", Since: link.Since, Addr: b.opts.MQTT.SafeURL()}
	if link.Connected {
		broker.State = "connected"
	}
	if link.Err != nil {
		broker.Error = link.Err.Error()
	}
	return Status{Version: b.opts.Version, Session: session, Broker: broker, Counters: b.counters(), Vehicles: b.reg.len()}
}

// counters are the totals the status page shows. Each is read from the
// collector or the MQTT client's counter it stands for, never looked up by
// its name, so that a renamed metric cannot show 0; a test checks that each
// name is a metric of the registry with the same value.
func (b *Bridge) counters() []Counter {
	m, s := b.metrics, b.mq.Stats()
	return []Counter{
		{"exlive_positions_received_total", "Positions received from the platform", total(m.received)},
		{"bridge_positions_published_total", "Positions handed to the broker", total(m.published)},
		{"mqtt_messages_published_total", "Messages the broker acknowledged", float64(s.Published)},
		{"mqtt_queue_depth", "Messages waiting for the broker", float64(s.Queued)},
		{"mqtt_messages_dropped_total", "Messages dropped (outage queue full)", float64(s.Dropped)},
		{"mqtt_publish_errors_total", "Publish errors", float64(s.Failed)},
		{"exlive_frames_skipped_total", "Frames from the platform skipped", total(m.skipped)},
		{"bridge_requests_total", "Requests from MQTT", total(m.requests)},
		{"exlive_disconnects_total", "Platform disconnections", total(m.disconnects)},
		{"mqtt_reconnects_total", "Broker reconnections", float64(s.Reconnects)},
	}
}

// total returns the sum of every series a counter (or counter vector) of
// the bridge's own holds now.
func total(c prometheus.Collector) float64 {
	ch := make(chan prometheus.Metric)
	go func() {
		c.Collect(ch)
		close(ch)
	}()
	sum := 0.0
	for m := range ch {
		var d dto.Metric
		if m.Write(&d) == nil {
			sum += d.GetCounter().GetValue()
		}
	}
	return sum
}

// Vehicle is the latest known state of one vehicle, for the status page.
// What the platform has not told yet is not Valid.
type Vehicle struct {
	ID, Code string
	Topic    string // its position topic

	Lat, Lng         opt.Opt[float64] // WGS-84 degrees
	Speed, Direction opt.Opt[float64] // km/h, degrees clockwise from north
	Time             opt.Opt[time.Time]
	Valid, Alarm     opt.Opt[bool] // a valid GPS fix; an alarm active

	// Online is its availability (docs/events.md); not Valid when
	// VEHICLE_OFFLINE_AFTER is 0, or before its first position.
	Online opt.Opt[bool]
	// LastSeen is when its last position arrived (to the second).
	LastSeen opt.Opt[time.Time]
	// Geofences are the names of the geofences it is in, sorted; shared,
	// read-only.
	Geofences []string
}

// Vehicles yields every vehicle's latest state, in no particular order (the
// status page sorts them the way people count).
func (b *Bridge) Vehicles() iter.Seq[Vehicle] {
	return func(yield func(Vehicle) bool) {
		for _, v := range b.reg.all() {
			v.mu.Lock()
			out := Vehicle{ID: v.id, Code: v.code, Topic: b.topics.Position(b.reg.level(v))}
			if f := v.last; f.seen {
				out.Lat, out.Lng = opt.Some(f.lat), opt.Some(f.lng)
				out.Speed = opt.Opt[float64]{V: f.speed, Valid: f.hasSpeed}
				out.Direction = opt.Opt[float64]{V: f.direction, Valid: f.hasDirection}
				if f.unix != 0 {
					out.Time = opt.Some(time.Unix(f.unix, 0).UTC())
				}
				out.Valid = opt.Opt[bool]{V: f.fixValid, Valid: f.hasFixValid}
				out.Alarm = opt.Opt[bool]{V: f.alarm, Valid: f.hasAlarm}
			}
			v.mu.Unlock()
			// The engine's lock is taken once per vehicle, not for the
			// whole fleet: the read loop waits for one look-up at most.
			if st, ok := b.feed.engine.Status(out.ID); ok {
				if st.Heard {
					out.LastSeen = opt.Some(st.LastSeen.UTC())
					if b.feed.availability {
						out.Online = opt.Some(st.Online)
					}
				}
				out.Geofences = st.Geofences
			}
			if !yield(out) {
				return
			}
		}
	}
}

// Gatherer returns the bridge's Prometheus metrics, for /metrics.
func (b *Bridge) Gatherer() prometheus.Gatherer { return b.metrics.reg }

// VehiclesVersion changes whenever what Vehicles yields may have changed.
func (b *Bridge) VehiclesVersion() uint64 { return b.reg.version.Load() }
