package bridge

import (
	"bytes"
	"errors"
	"time"

	"github.com/exlive2mqtt/exlive2mqtt/exlive"
	"github.com/exlive2mqtt/exlive2mqtt/mqtt"
	"github.com/exlive2mqtt/exlive2mqtt/owntracks"
)

// HandleMessage publishes what the platform sends. It runs on the session's
// read loop: it must not block, and it does not, since the MQTT client
// queues.
func (b *Bridge) HandleMessage(m exlive.Message) {
	switch m := m.(type) {
	case *exlive.Position:
		b.metrics.frame(exlive.CmdPosition, true)
		b.position(m)
	case *exlive.PassthroughReply:
		b.metrics.frame(m.Cmd(), true)
		level := b.levelOf(m.TerminalID)
		if level == "" {
			b.log.Warn().Str("terminalid", m.TerminalID).Msg("passthrough reply without a terminal id: not published")
			return
		}
		b.publish(b.prefix+"/vehicles/"+level+"/passthrough", appendPassthrough(nil, m, time.Now()), false)
	case *exlive.TextMessage:
		b.metrics.frame(m.Cmd(), true)
		b.publish(b.prefix+"/bridge/message", appendText(nil, m.Msg, time.Now()), false)
	case *exlive.Answer:
		// An answer no request awaits: to a heartbeat, say, or one that
		// came after its request's timeout.
		b.metrics.frame(m.Cmd(), true)
		b.log.Debug().Stringer("answers", m.Command).Str("result", m.Result).Msg("unmatched answer")
	case *exlive.Unknown:
		b.metrics.frame(m.Command, false)
		b.log.Debug().Stringer("cmd", m.Command).Bytes("body", truncate(m.Body, 512)).Msg("unknown command")
	default:
		// Commands a server does not normally send (1009/1011 outside an
		// inventory, client commands echoed back): counted, logged.
		b.metrics.frame(m.Cmd(), true)
		b.log.Debug().Stringer("cmd", m.Cmd()).Msg("frame not published")
	}
}

// position publishes one position. It is the hot path: the payload is
// built in a reused buffer and copied once into the message the MQTT client
// keeps.
func (b *Bridge) position(p *exlive.Position) {
	now := time.Now()
	b.metrics.received.Inc()
	b.metrics.newest.Store(now.UnixNano())
	if p.Invalid != 0 {
		for _, f := range p.Invalid.Names() {
			b.metrics.fieldsIgnored.WithLabelValues(f).Inc()
		}
	}
	if p.ID == "" {
		b.metrics.dropped.WithLabelValues("no_id").Inc()
		b.log.Warn().Msg("position without a vehicle id: not published")
		return
	}
	v := b.vehicle(p.ID, p.Code)
	lat, lng := p.Lat, p.Lng
	if b.datum != 0 {
		lat, lng = b.datum.ToWGS84(lat, lng)
		lat, lng = round7(lat), round7(lng)
	}
	topic := ""
	if v != nil {
		topic = v.posTopic
		v.mu.Lock()
		v.last = fix{
			seen: true, lat: lat, lng: lng,
			speed: p.Speed.V, hasSpeed: p.Speed.Valid,
			direction: p.Direction.V, hasDirection: p.Direction.Valid,
			fixValid: p.Valid.V, hasFixValid: p.Valid.Valid,
			alarm: p.Alarm.V, hasAlarm: p.Alarm.Valid,
		}
		if p.Time.Valid {
			v.last.unix = p.Time.V.Unix()
		}
		v.mu.Unlock()
		b.reg.version.Add(1)
	} else {
		topic = b.prefix + "/vehicles/" + mqtt.Level(p.ID) + "/position"
	}
	b.scratch = appendPosition(b.scratch[:0], p, lat, lng)
	if b.publish(topic, bytes.Clone(b.scratch), b.opts.MQTT.Retain) {
		b.metrics.published.Inc()
	} else {
		b.metrics.dropped.WithLabelValues("refused").Inc()
	}
	if e := b.log.Debug(); e.Enabled() {
		e.Str("vehicle", p.ID).Str("topic", topic).Msg("position published")
	}
	if b.opts.OwnTracks.Enable {
		b.ownTracks(v, p, lat, lng)
	}
}

func (b *Bridge) ownTracks(v *vehicle, p *exlive.Position, lat, lng float64) {
	l := owntracks.Location{Lat: lat, Lon: lng, Tid: owntracks.TrackerID(p.Code, p.ID)}
	if p.Time.Valid {
		l.Tst = p.Time.V.Unix()
	}
	if p.Speed.Valid {
		l.Vel = owntracks.RoundSpeed(p.Speed.V)
	}
	if p.Direction.Valid {
		l.Cog = owntracks.RoundCourse(p.Direction.V)
	}
	if b.opts.OwnTracks.Acc > 0 {
		l.Acc = owntracks.Some(b.opts.OwnTracks.Acc)
	}
	if p.Mileage.Valid {
		l.Odometer = owntracks.Some(p.Mileage.V)
	}
	l.Addr = p.PosInfo
	b.publish(b.ownTracksTopic(v, p.ID), owntracks.Encode(nil, l), true)
}

// ownTracksTopic returns owntracks/USER/V.
func (b *Bridge) ownTracksTopic(v *vehicle, id string) string {
	level := ""
	if v != nil {
		level = v.level()
	} else {
		level = mqtt.Level(id)
	}
	return "owntracks/" + b.opts.OwnTracks.User + "/" + level
}

// vehicle returns the registry's entry for id, noting its code, and
// announces a new vehicle to Home Assistant.
func (b *Bridge) vehicle(id, code string) *vehicle {
	v, created, collision := b.reg.get(id)
	if v == nil {
		if n, ok := b.fullLog.Allow(); ok {
			b.log.Warn().Int("max", b.opts.Bridge.MaxVehicles).Uint64("since_last_warning", n).
				Msg("too many vehicles to track: positions of new ones are published, but requests to them are refused")
		}
		return nil
	}
	if collision {
		b.metrics.collisions.Inc()
		b.log.Warn().Str("vehicle", id).Str("level", v.level()).Msg("two vehicle ids share one topic level; requests to it are refused as ambiguous")
	}
	changed := created
	if code != "" {
		v.mu.Lock()
		if v.code != code {
			v.code = code
			v.announce = false
			changed = true
			b.reg.version.Add(1)
		}
		v.mu.Unlock()
	}
	if changed && b.opts.Hass.Discovery {
		b.announce(v)
	}
	if created && b.opts.OwnTracks.Enable && code != "" {
		b.publish(b.ownTracksTopic(v, id)+"/info", owntracks.EncodeCard(nil, code, ""), true)
	}
	return v
}

// levelOf returns the topic level of a vehicle id.
func (b *Bridge) levelOf(id string) string {
	if id == "" {
		return ""
	}
	if v, _, _ := b.reg.get(id); v != nil {
		return v.level()
	}
	return mqtt.Level(id)
}

// HandleState publishes the session's state.
func (b *Bridge) HandleState(s exlive.State) {
	b.mu.Lock()
	prev := b.state
	b.state = s
	b.mu.Unlock()
	b.metrics.state(s.State)
	switch s.State {
	case exlive.StateLoggedIn:
		b.metrics.logins.Inc()
	case exlive.StateLoginFailed:
		b.metrics.loginFailures.Inc()
		b.settle()
	case exlive.StateDisconnected:
		if s.Err != nil {
			b.metrics.disconnects.Inc()
			b.settle()
		}
	}
	if b.stopping.Load() && s.State == exlive.StateDisconnected && prev.State == exlive.StateDisconnected {
		return
	}
	b.publishSession(s)
}

func (b *Bridge) publishSession(s exlive.State) {
	b.publish(b.prefix+"/bridge/session", appendSession(nil, s), true)
}

// HandleInventory publishes the account's groups and vehicles, and updates
// the vehicles the bridge knows.
func (b *Bridge) HandleInventory(inv exlive.Inventory) {
	defer b.settle() // the vehicles are known: requests may go
	if len(inv.Vehicles) == 0 {
		if had := b.listed(); had > 0 {
			// A platform that lists nothing after listing vehicles more
			// likely failed to answer than lost the whole fleet: keep what
			// is known rather than wipe every consumer's list and every
			// Home Assistant entity.
			b.log.Warn().Int("previous", had).Msg("platform listed no vehicles; keeping the previous inventory")
			return
		}
	}
	listed := make(map[string]bool, len(inv.Vehicles))
	for _, iv := range inv.Vehicles {
		listed[iv.ID] = true
		if iv.ID == "" {
			continue
		}
		if v := b.vehicle(iv.ID, iv.Code); v != nil {
			v.mu.Lock()
			v.inInv = true
			v.mu.Unlock()
			if b.opts.Hass.Discovery {
				b.announce(v) // back in the inventory after it left
			}
		}
	}
	// Published once the vehicles are known, so that a request made on
	// seeing the list finds its vehicle.
	b.publish(b.prefix+"/bridge/groups", appendGroups(nil, inv.Groups), true)
	b.publish(b.prefix+"/bridge/vehicles", appendVehicles(nil, inv.Vehicles), true)
	// A truncated list cannot tell which vehicles left.
	var gone []*vehicle
	for _, v := range b.reg.all() {
		v.mu.Lock()
		if !inv.Truncated && v.inInv && !listed[v.id] {
			v.inInv = false
			gone = append(gone, v)
		}
		v.mu.Unlock()
	}
	if b.opts.Hass.Discovery {
		for _, v := range gone {
			b.unannounce(v)
		}
	}
}

// listed returns how many vehicles the last inventory listed. It counts
// them in the registry rather than keeping the list: a big account's list
// is megabytes, and nothing else needs it once its payload is published.
func (b *Bridge) listed() int {
	n := 0
	for _, v := range b.reg.all() {
		v.mu.Lock()
		if v.inInv {
			n++
		}
		v.mu.Unlock()
	}
	return n
}

// HandleSkip counts and logs what the session skipped.
func (b *Bridge) HandleSkip(err *exlive.FrameError) {
	b.metrics.skipped.WithLabelValues(string(err.Reason)).Inc()
	if n, ok := b.skipLog.Allow(); ok {
		b.log.Warn().Err(err).Str("reason", string(err.Reason)).Uint64("skipped_since_last_warning", n).Msg("frame skipped")
	}
}

func truncate(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}

var errNotLoggedIn = errors.New("not logged in to the platform")
