package bridge

import (
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/exlive2mqtt/exlive2mqtt/datum"
	"github.com/exlive2mqtt/exlive2mqtt/events"
	"github.com/exlive2mqtt/exlive2mqtt/exlive"
	"github.com/exlive2mqtt/exlive2mqtt/internal/ratelimit"
	"github.com/exlive2mqtt/exlive2mqtt/opt"
	"github.com/exlive2mqtt/exlive2mqtt/owntracks"
	"github.com/exlive2mqtt/exlive2mqtt/topic"
	"github.com/rs/zerolog"
)

// feed is the platform → MQTT side of the bridge: it publishes what the
// session hands on (positions, passthrough replies, messages, the
// inventory, the session's state) and counts what it skipped. Its methods
// run on the session's read loop, so none of them blocks: the MQTT client
// queues.
type feed struct {
	log      zerolog.Logger
	pub      publisher
	topics   topic.Layout
	reg      *registry
	metrics  *metrics
	announce *announcer

	datum       datum.Datum
	retain      bool // MQTT_RETAIN, for positions
	ownTracks   OwnTracksConfig
	maxVehicles int
	// settle lets requests go: called once the first inventory is in, or
	// the first session attempt has failed (see requests.serve).
	settle func()

	mu    sync.Mutex
	state exlive.State

	// Warnings that a platform can repeat for every frame, or for each of
	// a hundred thousand ids, come at most once every ten seconds each,
	// with a count of those held back.
	skipLog, fullLog, idLog, replyLog, collisionLog ratelimit.Every

	scratch  []byte // position payloads are built here; only the session's read loop uses it
	topicBuf []byte // and their topics
	stopping atomic.Bool
	// shrinkSeen: the last inventory listed at most half the fleet, and
	// was kept back.
	shrinkSeen atomic.Bool

	// The events and availability (events.go).
	engine       *events.Engine
	availability bool           // VEHICLE_OFFLINE_AFTER > 0: publish P/vehicles/V/availability
	evbuf        []events.Event // the events of one position; only the read loop uses it
	recent       eventRing
	// listing is the inventory being collected (listingStarted); only
	// the session's inventory goroutine uses it.
	listing struct {
		gen     uint32    // the collection's number, marked on each vehicle listed
		count   int       // vehicles listed: those in the registry once each
		now     time.Time // when the collection began
		payload []byte    // the vehicle list's payload so far
		lastLen int       // the length of the last payload published
	}
	// received is the time the last position arrived, in whole seconds,
	// and receivedText its RFC 3339 form for the payload: formatted once
	// a second, not once a position. Only the read loop uses them.
	received     int64
	receivedText []byte
}

// handler is what the session calls.
func (f *feed) handler() exlive.Handler {
	return feedHandler{exlive.Handlers{Message: f.message, State: f.setState, Inventory: f.inventory, Skip: f.skip}, f}
}

// feedHandler is the feed as an exlive.VehicleLister.
type feedHandler struct {
	exlive.Handlers
	f *feed
}

func (h feedHandler) ListingStarted()              { h.f.listingStarted() }
func (h feedHandler) ListVehicle(v exlive.Vehicle) { h.f.listVehicle(v) }

// current returns the session's latest state.
func (f *feed) current() exlive.State {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.state
}

// message publishes what the platform sends.
func (f *feed) message(m exlive.Message) {
	switch m := m.(type) {
	case *exlive.Position:
		f.metrics.frame(exlive.CmdPosition, true)
		f.position(m)
	case *exlive.PassthroughReply:
		f.metrics.frame(m.Cmd(), true)
		if fault := idFault(m.TerminalID); fault != "" {
			f.metrics.repliesDropped.WithLabelValues(fault).Inc()
			if n, ok := f.replyLog.Allow(); ok {
				f.log.Warn().Str("reason", fault).Int("bytes", len(m.TerminalID)).Str("terminalid_start", head(m.TerminalID)).
					Uint64("dropped_since_last_warning", n).Msg("passthrough reply without a usable terminal id (empty, or longer than 128 bytes): not published")
			}
			return
		}
		f.pub.publish(f.topics.Passthrough(f.levelOf(m.TerminalID)), appendPassthrough(nil, m, time.Now()), false)
	case *exlive.TextMessage:
		f.metrics.frame(m.Cmd(), true)
		f.pub.publish(f.topics.Message(), appendText(nil, m.Msg, time.Now()), false)
	case *exlive.Answer:
		// An answer no request awaits: to a heartbeat (live servers
		// answer every one; the session keeps the link by them), or one
		// that came after its request's timeout.
		f.metrics.frame(m.Cmd(), true)
		if m.Command != exlive.CmdHeartbeat {
			f.log.Debug().Stringer("answers", m.Command).Str("result", m.Result).Msg("unmatched answer")
		}
	case *exlive.Unknown:
		f.metrics.frame(m.Command, false)
		f.log.Debug().Stringer("cmd", m.Command).Bytes("body", truncate(m.Body, 512)).Msg("unknown command")
	default:
		// Commands a server does not normally send (1009/1011 outside an
		// inventory, client commands echoed back): counted, logged.
		f.metrics.frame(m.Cmd(), true)
		f.log.Debug().Stringer("cmd", m.Cmd()).Msg("frame not published")
	}
}

// position publishes one position. It is the hot path: the payload is
// built in a reused buffer and copied once into the message the MQTT client
// keeps.
func (f *feed) position(p *exlive.Position) {
	now := time.Now()
	f.metrics.received.Inc()
	f.metrics.newest.Store(now.UnixNano())
	if p.Invalid != 0 {
		for _, name := range p.Invalid.Names() {
			f.metrics.fieldsIgnored.WithLabelValues(name).Inc()
		}
	}
	if p.Truncated != 0 {
		for _, name := range p.Truncated.Names() {
			f.metrics.fieldsCut.WithLabelValues(name).Inc()
		}
	}
	if fault := idFault(p.ID); fault != "" {
		// Never in the registry: a 900 kB id would stay in it, and in the
		// status page's list, for as long as the bridge runs.
		f.metrics.dropped.WithLabelValues(fault).Inc()
		if n, ok := f.idLog.Allow(); ok {
			f.log.Warn().Str("reason", fault).Int("bytes", len(p.ID)).Str("id_start", head(p.ID)).
				Uint64("dropped_since_last_warning", n).Msg("position without a usable vehicle id (empty, or longer than 128 bytes): not published")
		}
		return
	}
	v := f.vehicle(p.ID, p.Code)
	lat, lng := p.Lat, p.Lng
	if f.datum != 0 {
		lat, lng = f.datum.ToWGS84(lat, lng)
		lat, lng = round7(lat), round7(lng)
	}
	if v != nil {
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
		f.reg.version.Add(1)
	}
	f.scratch = appendPosition(f.scratch[:0], p, lat, lng, f.receivedAt(now))
	to, payload := f.positionMessage(p.ID, f.scratch)
	if f.pub.publish(to, payload, f.retain) {
		f.metrics.published.Inc()
	} else {
		f.metrics.dropped.WithLabelValues(dropRefused).Inc()
	}
	if e := f.log.Debug(); e.Enabled() {
		e.Str("vehicle", p.ID).Str("topic", to).Msg("position published")
	}
	if f.ownTracks.Enable {
		f.ownTracksLocation(p, lat, lng)
	}
	f.observe(p, v, lat, lng, now)
}

// positionMessage returns the topic of id's positions and a copy of payload, in
// one allocation: the MQTT client keeps both until the message is written
// (at QoS 1, acknowledged), so each position needs a copy of its payload
// anyway, and its topic is built here rather than kept per vehicle (the
// registry would hold 6 MB of topics for 100 000 vehicles). The topic is a
// string over the first bytes of the allocation; nothing writes to them
// after it is made.
func (f *feed) positionMessage(id string, payload []byte) (string, []byte) {
	f.topicBuf = f.topics.AppendPosition(f.topicBuf[:0], id)
	buf := make([]byte, len(f.topicBuf)+len(payload))
	n := copy(buf, f.topicBuf)
	copy(buf[n:], payload)
	return unsafe.String(unsafe.SliceData(buf), n), buf[n:]
}

// receivedAt returns now as the position payload's "received": RFC 3339
// in UTC, to the second.
func (f *feed) receivedAt(now time.Time) []byte {
	if s := now.Unix(); s != f.received || f.receivedText == nil {
		f.received = s
		f.receivedText = time.Unix(s, 0).UTC().AppendFormat(f.receivedText[:0], time.RFC3339)
	}
	return f.receivedText
}

// ownTracksLocation publishes the position as an OwnTracks location too.
func (f *feed) ownTracksLocation(p *exlive.Position, lat, lng float64) {
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
	if f.ownTracks.Acc > 0 {
		l.Acc = opt.Some(f.ownTracks.Acc)
	}
	if p.Mileage.Valid {
		l.Odometer = opt.Some(p.Mileage.V)
	}
	l.Addr = p.PosInfo
	f.pub.publish(f.topics.OwnTracks(f.topics.Level(p.ID)), owntracks.Encode(nil, l), true)
}

// vehicle returns the registry's entry for id, noting its code, and has a
// new vehicle, or one whose code changed, announced.
func (f *feed) vehicle(id, code string) *vehicle {
	v, created, collision := f.reg.get(id)
	if v == nil {
		if n, ok := f.fullLog.Allow(); ok {
			f.log.Warn().Int("max", f.maxVehicles).Uint64("since_last_warning", n).
				Msg("too many vehicles to track: positions of new ones are published, but requests to them are refused")
		}
		return nil
	}
	if collision {
		f.metrics.collisions.Inc()
		if n, ok := f.collisionLog.Allow(); ok {
			f.log.Warn().Str("vehicle", id).Str("level", f.reg.level(v)).Uint64("collisions_since_last_warning", n).
				Msg("two vehicle ids share one topic level; requests to it are refused as ambiguous")
		}
	}
	changed := created
	if code != "" {
		v.mu.Lock()
		if v.code != code {
			v.code = code
			v.announce = false
			changed = true
			f.reg.version.Add(1)
		}
		v.mu.Unlock()
	}
	if changed {
		f.announce.changed(v, created, code)
	}
	return v
}

// levelOf returns the topic level of a vehicle id that idFault accepts,
// which the registry knows from now on (unless it is full).
func (f *feed) levelOf(id string) string {
	f.reg.get(id)
	return f.topics.Level(id)
}

// idFault returns why a vehicle id from the platform cannot be used, as the
// reason it is counted under, or "" when it can. An id becomes a topic
// level by topic.Layout.Level, which replaces characters but never removes
// one: only an empty id has an empty level. An id longer than
// exlive.MaxIDLen (real ones are a few dozen bytes) is refused: kept, it
// would stay in the registry and in every list of vehicles for as long as
// the bridge runs, and beyond 65 535 bytes it could not be a topic at all.
func idFault(id string) string {
	switch {
	case id == "":
		return dropNoID
	case len(id) > exlive.MaxIDLen:
		return dropBadID
	}
	return ""
}

// head returns the start of an id for a log line.
func head(id string) string {
	if len(id) <= 64 {
		return id
	}
	i := 64
	for i > 0 && !utf8.RuneStart(id[i]) {
		i--
	}
	return id[:i]
}

// setState publishes the session's state.
func (f *feed) setState(s exlive.State) {
	f.mu.Lock()
	prev := f.state
	f.state = s
	f.mu.Unlock()
	f.metrics.state(s)
	switch s.State {
	case exlive.StateLoggedIn:
		f.metrics.logins.Inc()
	case exlive.StateLoginFailed:
		f.metrics.loginFailures.Inc()
		f.settle()
	case exlive.StateDisconnected:
		if s.Err != nil {
			f.metrics.disconnects.Inc()
			f.settle()
		}
	}
	if f.stopping.Load() && s.State == exlive.StateDisconnected && prev.State == exlive.StateDisconnected {
		return
	}
	f.publishSession(s)
}

func (f *feed) publishSession(s exlive.State) {
	f.pub.publish(f.topics.Session(), appendSession(nil, s), true)
}

// listingStarted begins a collection of the inventory. Its vehicles come
// to listVehicle one at a time as their frames are read, and each becomes at
// once what the bridge keeps of it: an entry in the registry, marked with
// the collection's number, a few dozen bytes of the vehicle list's payload,
// and the events engine's state. The platform's list is never held whole:
// for 100 000 vehicles it was 10 MB more at the moment of the inventory
// (BENCHMARKS.md). These methods and inventory run on the session's
// inventory goroutine, one after the other.
func (f *feed) listingStarted() {
	f.listing.gen++
	f.listing.count = 0
	f.listing.now = time.Now()
	// The payload is sized as the last one was, so that a fleet that did
	// not grow is built in one allocation instead of doubling its way
	// there; the MQTT client keeps it, so it is never reused.
	f.listing.payload = append(make([]byte, 0, f.listing.lastLen+f.listing.lastLen/16+2), '[')
}

// listVehicle takes one vehicle of the collection under way.
func (f *feed) listVehicle(iv exlive.Vehicle) {
	if len(f.listing.payload) > 1 {
		f.listing.payload = append(f.listing.payload, ',')
	}
	f.listing.payload = appendVehicle(f.listing.payload, iv)
	if idFault(iv.ID) != "" {
		return // exlive refuses ids that are too long; this is for empty ones
	}
	id := iv.ID
	if v := f.vehicle(iv.ID, iv.Code); v != nil {
		v.mu.Lock()
		if v.listed != f.listing.gen {
			v.listed = f.listing.gen
			f.listing.count++
		}
		v.mu.Unlock()
		id = v.id
	} else {
		// The registry is full: counted each time listed (a vehicle in
		// several groups, several times), which only makes a shrunk list
		// look less shrunk.
		f.listing.count++
	}
	// One that sends nothing goes offline VEHICLE_OFFLINE_AFTER after
	// it was listed.
	f.engine.Known(id, iv.Code, f.listing.now)
}

// inventory ends a collection: it publishes the account's groups and
// vehicles, and marks the vehicles listed and those gone. A list that is
// not to be believed is not published over the one before (docs/topics.md,
// P/bridge/vehicles). Vehicles in inv.Vehicles (a handler that does not
// list them one at a time) are taken as listVehicle takes them.
func (f *feed) inventory(inv exlive.Inventory) {
	defer f.settle() // the vehicles are known: requests may go
	if inv.Vehicles != nil || f.listing.payload == nil {
		f.listingStarted()
		for _, iv := range inv.Vehicles {
			f.listVehicle(iv)
		}
	}
	payload := append(f.listing.payload, ']')
	f.listing.payload = nil
	listed := f.listing.count
	had := f.listed()
	switch {
	case had > 0 && listed == 0:
		// A platform that lists nothing after listing vehicles more
		// likely failed to answer than lost the whole fleet: keep what
		// is known rather than wipe every consumer's list and every
		// Home Assistant entity.
		f.metrics.inventoriesKept.WithLabelValues(keptEmpty).Inc()
		f.log.Warn().Int("previous", had).Msg("platform listed no vehicles; keeping the previous inventory")
		return
	case had > 0 && 2*listed <= had && !inv.Truncated:
		// At most half the fleet: more likely lists cut short than half
		// the vehicles gone. Such a list is believed when the next one
		// says the same; a fleet that did shrink shows so one
		// EXLIVE_INVENTORY_INTERVAL late.
		if !f.shrinkSeen.Swap(true) {
			f.metrics.inventoriesKept.WithLabelValues(keptShrunk).Inc()
			f.log.Warn().Int("listed", listed).Int("previous", had).
				Msg("platform listed at most half the vehicles it did before; keeping the previous inventory until the next one says the same")
			return
		}
		f.log.Info().Int("listed", listed).Int("previous", had).Msg("platform listed at most half the vehicles again: the fleet shrank")
	}
	f.shrinkSeen.Store(false)
	// A truncated list cannot tell which vehicles left.
	var back, gone []*vehicle
	for _, v := range f.reg.all() {
		v.mu.Lock()
		switch {
		case v.listed == f.listing.gen:
			v.inInv = true
			back = append(back, v)
		case !inv.Truncated && v.inInv:
			v.inInv = false
			gone = append(gone, v)
		}
		v.mu.Unlock()
	}
	for _, v := range back {
		f.announce.listed(v) // back in the inventory after it left
	}
	// Published once the vehicles are known, so that a request made on
	// seeing the list finds its vehicle.
	f.pub.publish(f.topics.Groups(), appendGroups(nil, inv.Groups), true)
	f.pub.publish(f.topics.Vehicles(), payload, true)
	f.listing.lastLen = len(payload)
	for _, v := range gone {
		f.announce.gone(v)
	}
}

// listed returns how many vehicles the last inventory listed. It counts
// them in the registry rather than keeping the list: a big account's list
// is megabytes, and nothing else needs it once its payload is published.
func (f *feed) listed() int {
	n := 0
	for _, v := range f.reg.all() {
		v.mu.Lock()
		if v.inInv {
			n++
		}
		v.mu.Unlock()
	}
	return n
}

// skip counts and logs what the session skipped.
func (f *feed) skip(err *exlive.FrameError) {
	f.metrics.skipped.WithLabelValues(string(err.Reason)).Inc()
	if n, ok := f.skipLog.Allow(); ok {
		f.log.Warn().Err(err).Str("reason", string(err.Reason)).Uint64("skipped_since_last_warning", n).Msg("frame skipped")
	}
}

func truncate(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}
