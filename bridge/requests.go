package bridge

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/exlive2mqtt/exlive2mqtt/datum"
	"github.com/exlive2mqtt/exlive2mqtt/exlive"
	"github.com/exlive2mqtt/exlive2mqtt/mqtt"
	"github.com/exlive2mqtt/exlive2mqtt/opt"
	"github.com/exlive2mqtt/exlive2mqtt/topic"
	"github.com/rs/zerolog"
	"golang.org/x/time/rate"
)

// commands are the platform commands the kinds of request become.
var commands = [topic.NumKinds]exlive.Cmd{
	topic.KindCommand:     exlive.CmdVehicleCommand, // 1004
	topic.KindPassthrough: exlive.CmdPassthrough,    // 1012
	topic.KindPosition:    exlive.CmdPosition,       // 1007
	topic.KindMessage:     exlive.CmdText,           // 1003
	topic.KindGroups:      exlive.CmdGroupData,      // 1005
	topic.KindVehicles:    exlive.CmdVehicleData,    // 1006
}

// requests is the MQTT → platform side of the bridge: it subscribes to the
// /set topics, reads what arrives, queues it, carries each request out in
// the order it came (deduplicated by request_id, at most EXLIVE_MAX_RATE a
// second), and publishes its answer on the /result topic, with an audit
// line and a count.
type requests struct {
	log     zerolog.Logger
	audit   zerolog.Logger
	pub     publisher
	topics  topic.Layout
	reg     *registry
	metrics *metrics
	session *exlive.Session

	datum       datum.Datum    // of uploaded positions
	zone        *time.Location // EXLIVE_TIMEZONE, of uploaded positions
	maxRequest  int
	readOnly    bool
	anyTerminal bool // BRIDGE_PASSTHROUGH_ANY_TERMINAL
	// limit is EXLIVE_MAX_RATE, nil when off; a request waits for it at
	// most until rateWait after it arrived.
	limit    *rate.Limiter
	rateWait time.Duration

	queue chan *request
	seen  *dedupe
	// settled is closed once the first inventory is in, or the first
	// session attempt has failed: requests wait for it (see serve).
	settled    chan struct{}
	settleOnce sync.Once
}

// errNotLoggedIn is the answer to a request while the session is not up.
var errNotLoggedIn = errors.New("not logged in to the platform")

// request is one message received on a /set topic.
type request struct {
	kind     topic.Kind
	level    string // V, for vehicle requests
	payload  []byte
	retained bool
	arrived  time.Time
	carried  *carried // once it is sent: its entry in requests.seen
}

// subscribe registers the /set topics, unless the bridge is read-only.
func (q *requests) subscribe(mq *mqtt.Client) {
	for k := range topic.NumKinds {
		filter := q.topics.SetFilter(k)
		if q.readOnly {
			// A read-write run under the same client id left these
			// subscriptions in the persistent session: drop them, and
			// refuse what the broker had queued, so that nothing is
			// carried out later by surprise.
			mq.Unsubscribe(filter, func(in mqtt.Incoming) { q.refuseReadOnly(k, in) })
			continue
		}
		mq.Subscribe(filter, func(in mqtt.Incoming) { q.onRequest(k, in) })
	}
}

// refuseReadOnly answers a request that reached a read-only bridge.
func (q *requests) refuseReadOnly(k topic.Kind, in mqtt.Incoming) {
	r := q.newRequest(k, in)
	var id string
	if len(in.Payload) <= q.maxRequest {
		p, _ := parseRequest(k, in.Payload)
		id = p.requestID
	}
	q.finish(r, "", id, outcomeRefused, result{Error: "read-only: requests are not carried out"})
}

// newRequest reads a message received on the subscription of kind k: for
// a vehicle's request, V is the level the topic names.
func (q *requests) newRequest(k topic.Kind, in mqtt.Incoming) *request {
	r := &request{kind: k, payload: in.Payload, retained: in.Retained, arrived: time.Now()}
	if k.Vehicle() {
		r.level, _, _ = q.topics.ParseSet(in.Topic)
	}
	return r
}

// onRequest runs on paho's goroutine for the message: it only checks the
// size and queues, so it never blocks paho. When the queue is full it
// reads the payload for its request_id alone, so that the busy answer
// carries it: work bounded by BRIDGE_MAX_REQUEST, no more than serve would
// have done with the request.
func (q *requests) onRequest(k topic.Kind, in mqtt.Incoming) {
	r := q.newRequest(k, in)
	if len(in.Payload) > q.maxRequest {
		q.finish(r, "", "", outcomeInvalid, result{Error: fmt.Sprintf("payload too large: %d bytes, at most %d", len(in.Payload), q.maxRequest)})
		return
	}
	select {
	case q.queue <- r:
	default:
		q.finish(r, "", requestIDOf(k, in.Payload), outcomeRefused, result{Error: errBusyQueue})
	}
}

// The busy answers: a request refused because the bridge or the platform
// cannot take it now. Sent again later, it is handled as new.
const (
	errBusyQueue   = "busy: too many requests waiting"
	errBusyPending = "busy: too many requests awaiting the platform's answer"
	errBusyRate    = "busy: over EXLIVE_MAX_RATE"
)

// serve carries the queued requests out one at a time, in the order
// they came. Sending is quick; answers come back asynchronously.
func (q *requests) serve(ctx context.Context) {
	// The broker keeps the requests published while the bridge was away
	// (the session is persistent) and delivers them as soon as it
	// connects, before the platform session is up and its vehicles are
	// known. They wait for the first inventory, or for the first session
	// attempt to fail, at most startupHold; expires is checked when each
	// is carried out.
	hold := time.NewTimer(startupHold)
	select {
	case <-q.settled:
	case <-hold.C:
	case <-ctx.Done():
	}
	hold.Stop()
	for {
		select {
		case <-ctx.Done():
			// What is still queued is refused, not sent later by surprise.
			for {
				select {
				case r := <-q.queue:
					q.finish(r, "", "", outcomeRefused, result{Error: "shutting down"})
				default:
					return
				}
			}
		case r := <-q.queue:
			q.carryOut(ctx, r)
		}
	}
}

func (q *requests) carryOut(ctx context.Context, r *request) {
	p, err := parseRequest(r.kind, r.payload)
	if err != nil {
		q.finish(r, "", p.requestID, outcomeInvalid, result{Error: err.Error()})
		return
	}
	key := r.kind.String() + "\x00" + r.level + "\x00" + p.requestID
	if p.requestID != "" {
		if answer, found, settled := q.seen.repeat(key, r.arrived); found {
			// Carried out before: the broker delivered it again (QoS 1
			// is at least once), or its sender sent it again. It gets
			// the first one's answer, now or when that comes.
			q.repeated(r, p.requestID, answer, settled)
			return
		}
	}
	if r.retained {
		// A retained request would be carried out again at every restart.
		q.finish(r, "", p.requestID, outcomeRefused, result{Error: "retained requests are not carried out"})
		return
	}
	if !p.expires.IsZero() && time.Now().After(p.expires) {
		q.finish(r, "", p.requestID, outcomeExpired, result{Error: "expired"})
		return
	}
	var (
		v  *vehicle
		id string // the vehicle's platform id
	)
	if r.kind.Vehicle() {
		var ambiguous bool
		v, ambiguous = q.reg.lookup(r.level)
		switch {
		case ambiguous:
			q.finish(r, "", p.requestID, outcomeRefused, result{Error: "ambiguous vehicle: several ids share this topic level"})
			return
		case v != nil:
			id = v.id
		case r.kind == topic.KindPosition && len(r.level) > exlive.MaxIDLen:
			q.finish(r, "", p.requestID, outcomeInvalid, result{Error: fmt.Sprintf("vehicle id longer than %d bytes", exlive.MaxIDLen)})
			return
		case r.kind == topic.KindPosition && r.level != "":
			// The specification's third party uploads the positions of
			// its own vehicles, which the platform may list to no
			// account: an upload goes for any vehicle, its id the topic
			// level. A command is an action on a device, and a level the
			// bridge has never seen is likelier a typo than a device
			// (nor can the bridge tell the real id behind a sanitised
			// level it has not seen): those stay refused.
			id = r.level
		default:
			q.finish(r, "", p.requestID, outcomeRefused, result{Error: "unknown vehicle"})
			return
		}
	}
	if r.kind == topic.KindPassthrough && p.terminalID != "" && p.terminalID != id && !q.anyTerminal {
		// Broker permissions are given per topic: P/vehicles/V1/# must
		// not reach another device.
		q.finish(r, id, p.requestID, outcomeRefused, result{Error: fmt.Sprintf(
			"terminalid %q is not the vehicle of this topic (BRIDGE_PASSTHROUGH_ANY_TERMINAL=true allows it)", p.terminalID)})
		return
	}
	msg, err := q.message(r.kind, p, v, id)
	if err != nil {
		q.finish(r, id, p.requestID, outcomeInvalid, result{Error: err.Error()})
		return
	}
	if !q.wait(ctx, r) {
		q.finish(r, id, p.requestID, outcomeRefused, result{Error: errBusyRate})
		return
	}
	if !p.expires.IsZero() && time.Now().After(p.expires) {
		q.finish(r, id, p.requestID, outcomeExpired, result{Error: "expired"})
		return
	}
	if p.requestID != "" {
		// Before it is sent: the answer may come before RequestAsync
		// returns.
		r.carried = q.seen.add(key, r.arrived)
	}
	err = q.session.RequestAsync(msg, func(a *exlive.Answer, err error) {
		q.answered(r, id, p.requestID, a, err)
	})
	if err != nil {
		if r.carried != nil {
			q.seen.forget(r.carried)
			r.carried = nil
		}
		text := err.Error()
		if errors.Is(err, exlive.ErrNotLoggedIn) {
			text = errNotLoggedIn.Error()
		} else if errors.Is(err, exlive.ErrTooManyPending) {
			text = errBusyPending
		}
		q.finish(r, id, p.requestID, outcomeRefused, result{Error: text})
	}
}

// wait waits for EXLIVE_MAX_RATE to let r go, and reports whether it did
// before rateWait had passed since r arrived (or the bridge stopped).
// Requests wait one at a time, so while one waits the others queue, and
// those beyond BRIDGE_REQUEST_QUEUE are refused as busy at once.
func (q *requests) wait(ctx context.Context, r *request) bool {
	if q.limit == nil {
		return true
	}
	now := time.Now()
	res := q.limit.ReserveN(now, 1)
	delay := res.DelayFrom(now)
	if !res.OK() || now.Add(delay).After(r.arrived.Add(q.rateWait)) {
		res.CancelAt(now)
		return false
	}
	if delay <= 0 {
		return true
	}
	t := time.NewTimer(delay)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		res.Cancel()
		return false
	}
}

// repeated answers a request that was carried out before with the answer
// it got: now when it has it, else when it comes (dedupe.settle).
func (q *requests) repeated(r *request, requestID string, answer []byte, settled bool) {
	cmd := commands[r.kind]
	q.auditLine(r, "", requestID, outcomeRepeated).Bool("answered", settled && answer != nil).Msg("request")
	q.metrics.requests.WithLabelValues(cmd.String(), outcomeRepeated).Inc()
	if settled && answer != nil {
		q.pub.publish(q.topics.Result(r.kind, r.level), answer, false)
	}
}

// startupHold bounds how long requests wait at startup for the platform
// session and its inventory.
const startupHold = time.Minute

// settle lets requests go (see serve).
func (q *requests) settle() { q.settleOnce.Do(func() { close(q.settled) }) }

// queued returns how many requests wait to be carried out.
func (q *requests) queued() int { return len(q.queue) }

// answered reports the platform's answer, or the lack of one.
func (q *requests) answered(r *request, id, requestID string, a *exlive.Answer, err error) {
	cmd := commands[r.kind]
	if a != nil {
		q.metrics.latency.WithLabelValues(cmd.String()).Observe(time.Since(r.arrived).Seconds())
		outcome := outcomeOK
		if !a.OK() {
			outcome = outcomeRejected
		}
		q.finish(r, id, requestID, outcome, result{OK: a.OK(), Result: a.Result})
		return
	}
	outcome, text := outcomeLost, "connection to the platform lost before it answered"
	if errors.Is(err, exlive.ErrTimeout) {
		outcome, text = outcomeTimeout, "timeout"
	}
	if cmd != exlive.CmdVehicleCommand && cmd != exlive.CmdPassthrough {
		// Whether the platform answers these at all is unknown: no answer
		// is not a failure, and nothing is published.
		q.audit.Info().Str("cmd", cmd.String()).Str("vehicle", id).Str("request_id", requestID).
			Str("outcome", outcomeSent).Msg("request")
		q.metrics.requests.WithLabelValues(cmd.String(), outcomeSent).Inc()
		if r.carried != nil {
			q.seen.settle(r.carried, nil)
		}
		return
	}
	q.finish(r, id, requestID, outcome, result{Error: text})
}

// finish publishes a request's one answer, counts it and writes the audit
// line.
func (q *requests) finish(r *request, id, requestID, outcome string, res result) {
	cmd := commands[r.kind]
	res.RequestID, res.Cmd = requestID, cmd
	ev := q.auditLine(r, id, requestID, outcome)
	if res.Result != "" {
		ev = ev.Str("result", res.Result)
	}
	if res.Error != "" {
		ev = ev.Str("error", res.Error)
	}
	ev.Msg("request")
	q.metrics.requests.WithLabelValues(cmd.String(), outcome).Inc()

	// An empty level (P/vehicles//command/set) makes a valid topic, and
	// is answered on it; a topic that is not valid cannot have come from
	// a subscription.
	to := q.topics.Result(r.kind, r.level)
	var answer []byte
	if mqtt.ValidTopic(to) == nil {
		answer = appendResult(nil, res)
	}
	repeats := 0
	if r.carried != nil {
		// Repeats that came while it was awaited get the same answer.
		repeats = q.seen.settle(r.carried, answer)
	}
	if answer != nil {
		for range 1 + repeats {
			q.pub.publish(to, answer, false)
		}
	}
}

// auditLine starts the audit line of request r: id is the vehicle's
// platform id, "" when it was not looked up.
func (q *requests) auditLine(r *request, id, requestID, outcome string) *zerolog.Event {
	ev := q.audit.Info().Str("cmd", commands[r.kind].String())
	if r.kind.Vehicle() {
		if id == "" {
			// Refused before the vehicle was looked up (invalid,
			// expired, busy), or repeated: the audit line still names
			// it.
			if v, _ := q.reg.lookup(r.level); v != nil {
				id = v.id
			}
		}
		ev = ev.Str("vehicle", id).Str("topic_level", r.level)
	}
	return ev.Str("request_id", requestID).Str("outcome", outcome)
}

// message builds the frame a request becomes. v is the vehicle, nil for an
// upload for one the bridge does not know; id is its platform id.
func (q *requests) message(k topic.Kind, p parsed, v *vehicle, id string) (exlive.Message, error) {
	switch k {
	case topic.KindCommand:
		return &exlive.VehicleCommand{ID: v.id, Data: p.data}, nil
	case topic.KindPassthrough:
		m := &exlive.Passthrough{TerminalID: p.terminalID, Code: p.code, Data: p.data}
		if m.TerminalID == "" {
			m.TerminalID = v.id
		}
		if m.Code == "" {
			v.mu.Lock()
			m.Code = v.code
			v.mu.Unlock()
		}
		return m, nil
	case topic.KindPosition:
		pos := p.pos
		switch {
		case pos.ID == "" || pos.ID == id:
			pos.ID = id
		case v == nil && q.topics.Level(pos.ID) == id:
			// A vehicle the bridge does not know, whose id needs
			// sanitising to be a topic level: the payload names it.
		default:
			return nil, fmt.Errorf("id %q is not the vehicle of this topic", pos.ID)
		}
		if pos.Code == "" && v != nil {
			v.mu.Lock()
			pos.Code = v.code
			v.mu.Unlock()
		}
		pos.Lat, pos.Lng = q.datum.FromWGS84(pos.Lat, pos.Lng)
		if q.datum != 0 {
			pos.Lat, pos.Lng = round7(pos.Lat), round7(pos.Lng)
		}
		if !pos.Time.Valid {
			pos.Time = opt.Some(time.Now())
		}
		pos.Time.V = pos.Time.V.In(q.zone).Truncate(time.Second)
		return &pos, nil
	case topic.KindMessage:
		return &exlive.TextMessage{Msg: p.data}, nil
	case topic.KindGroups:
		return &exlive.GroupData{Data: p.data}, nil
	case topic.KindVehicles:
		return &exlive.VehicleData{Data: p.data}, nil
	}
	return nil, fmt.Errorf("unknown request kind %d", k)
}
