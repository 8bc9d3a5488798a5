package bridge

import (
	"runtime"
	"sync/atomic"
	"time"

	"github.com/exlive2mqtt/exlive2mqtt/events"
	"github.com/exlive2mqtt/exlive2mqtt/exlive"
	"github.com/exlive2mqtt/exlive2mqtt/mqtt"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are the bridge's Prometheus metrics. Label values come from fixed
// sets (commands the protocol knows, skip reasons, request outcomes), so no
// input from the platform or from MQTT can grow them without bound.
type metrics struct {
	reg *prometheus.Registry

	sessionState   *prometheus.GaugeVec
	conflict       prometheus.Gauge
	logins         prometheus.Counter
	loginFailures  prometheus.Counter
	disconnects    prometheus.Counter
	frames         *prometheus.CounterVec
	framesByCmd    map[exlive.Cmd]prometheus.Counter // the commands a platform sends; read only after newMetrics
	framesUnknown  prometheus.Counter
	skipped        *prometheus.CounterVec
	fieldsIgnored  *prometheus.CounterVec
	received       prometheus.Counter // positions received
	published      prometheus.Counter // positions handed to the MQTT client
	dropped        *prometheus.CounterVec
	fieldsCut      *prometheus.CounterVec
	repliesDropped *prometheus.CounterVec
	collisions     prometheus.Counter
	// inventoriesKept counts inventories not published, the one before
	// kept, by reason.
	inventoriesKept *prometheus.CounterVec
	requests        *prometheus.CounterVec
	latency         *prometheus.HistogramVec
	newest          atomic.Int64         // Unix ns of the newest position
	events          []prometheus.Counter // bridge_events_total, by events.Type
}

// The reasons a position is dropped for.
const (
	dropNoID    = "no_id"   // the platform sent it without a vehicle id
	dropBadID   = "bad_id"  // its id cannot be a topic level the bridge keeps (see idFault)
	dropRefused = "refused" // the MQTT client refused it (an invalid topic, or stopping)
)

// The reasons an inventory is kept back for.
const (
	keptEmpty  = "empty"  // it listed no vehicle, after one that did
	keptShrunk = "shrunk" // it listed at most half the vehicles of the one before, once
)

// The outcomes a request is counted under.
const (
	outcomeOK       = "ok"
	outcomeRejected = "rejected" // the platform answered, not success
	outcomeTimeout  = "timeout"
	outcomeLost     = "lost"     // the session dropped before the answer
	outcomeSent     = "sent"     // sent; the platform may or may not answer
	outcomeRefused  = "refused"  // not sent: offline, busy, unknown vehicle
	outcomeInvalid  = "invalid"  // not sent: the payload is unusable
	outcomeExpired  = "expired"  // not sent: it came after its expires
	outcomeRepeated = "repeated" // not sent again: a request_id seen before
)

func newMetrics(version string, mq *mqtt.Client, queueLimit int, pending, queued, online func() int) *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	f := m.reg
	counter := func(name, help string) prometheus.Counter {
		c := prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
		f.MustRegister(c)
		return c
	}
	counterVec := func(name, help string, labels ...string) *prometheus.CounterVec {
		c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
		f.MustRegister(c)
		return c
	}
	m.sessionState = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "exlive_session_state", Help: "1 for the state the EXLIVE session is in.",
	}, []string{"state"})
	f.MustRegister(m.sessionState)
	for _, s := range []exlive.StateKind{exlive.StateConnecting, exlive.StateLoggedIn, exlive.StateLoginFailed, exlive.StateDisconnected} {
		m.sessionState.WithLabelValues(string(s))
	}
	m.conflict = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "exlive_session_conflict", Help: "1 while the platform keeps closing sessions soon after login: another client may be logged in with the account.",
	})
	f.MustRegister(m.conflict)
	m.logins = counter("exlive_logins_total", "Logins the platform accepted.")
	m.loginFailures = counter("exlive_login_failures_total", "Logins the platform rejected.")
	m.disconnects = counter("exlive_disconnects_total", "Sessions or connection attempts that ended in an error (each is followed by a reconnect).")
	m.frames = counterVec("exlive_frames_received_total", "Frames from the platform handed to the bridge, by command: positions, messages, passthrough replies, answers no request awaits (login, inventory and request answers are the session's own).", "cmd")
	m.framesUnknown = m.frames.WithLabelValues("unknown")
	// Each command a platform sends has a series from the start.
	m.framesByCmd = map[exlive.Cmd]prometheus.Counter{}
	for _, c := range []exlive.Cmd{exlive.CmdText, exlive.CmdPosition, exlive.CmdGroup, exlive.CmdVehicle, exlive.CmdPassthroughReply, exlive.CmdAnswer} {
		m.framesByCmd[c] = m.frames.WithLabelValues(c.String())
	}
	m.skipped = counterVec("exlive_frames_skipped_total", "Frames or bytes from the platform that were skipped, by reason.", "reason")
	for _, r := range []exlive.Reason{exlive.ReasonJunk, exlive.ReasonInvalidJSON, exlive.ReasonMalformed, exlive.ReasonBadField, exlive.ReasonOutOfRange, exlive.ReasonTooLarge} {
		m.skipped.WithLabelValues(string(r))
	}
	m.fieldsIgnored = counterVec("exlive_fields_ignored_total", "Optional position fields that were present but unreadable, and left out.", "field")
	every := exlive.FieldSpeed | exlive.FieldDirection | exlive.FieldFuel | exlive.FieldMileage | exlive.FieldTime | exlive.FieldValid | exlive.FieldAlarm | exlive.FieldCode
	for _, name := range every.Names() {
		m.fieldsIgnored.WithLabelValues(name)
	}
	m.fieldsCut = counterVec("exlive_fields_truncated_total", "Position text fields longer than 1024 bytes (exlive.MaxTextLen), published cut to that length.", "field")
	for _, name := range (exlive.FieldWState | exlive.FieldCState | exlive.FieldPosInfo).Names() {
		m.fieldsCut.WithLabelValues(name)
	}
	m.received = counter("exlive_positions_received_total", "Positions received from the platform.")
	m.published = counter("bridge_positions_published_total", "Positions handed to the MQTT client for publishing.")
	m.dropped = counterVec("bridge_positions_dropped_total", "Positions not published, by reason.", "reason")
	// Every reason has a series from the start, so that an alert on its
	// increase sees the first drop too.
	for _, r := range []string{dropNoID, dropBadID, dropRefused} {
		m.dropped.WithLabelValues(r)
	}
	m.repliesDropped = counterVec("bridge_passthrough_dropped_total", "Passthrough replies (1013) not published, by reason: no_id (no terminal id), bad_id (longer than 128 bytes).", "reason")
	for _, r := range []string{dropNoID, dropBadID} {
		m.repliesDropped.WithLabelValues(r)
	}
	m.collisions = counter("bridge_topic_collisions_total", "Vehicle ids whose topic level another id already had.")
	// Every type has a series from the start, like the drop reasons.
	evs := counterVec("bridge_events_total", "Vehicle events published on P/vehicles/V/event, by type (docs/events.md).", "type")
	m.events = make([]prometheus.Counter, len(events.Types())+1)
	for _, t := range events.Types() {
		m.events[t] = evs.WithLabelValues(t.String())
	}
	f.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "bridge_vehicles_online", Help: "Vehicles whose availability is online: a position came within VEHICLE_OFFLINE_AFTER.",
	}, func() float64 { return float64(online()) }))
	m.inventoriesKept = counterVec("bridge_inventories_kept_total", "Inventories from the platform not published, the previous one kept, by reason: empty, or at most half the vehicles (until the next one says the same).", "reason")
	for _, r := range []string{keptEmpty, keptShrunk} {
		m.inventoriesKept.WithLabelValues(r)
	}
	m.requests = counterVec("bridge_requests_total", "Requests from MQTT, by command and outcome.", "cmd", "outcome")
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "bridge_request_duration_seconds",
		Help:    "Time from a request's arrival to the platform's answer, by command.",
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
	}, []string{"cmd"})
	f.MustRegister(m.latency)
	f.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "exlive_newest_position_age_seconds", Help: "Seconds since the newest position arrived (-1 before the first).",
	}, func() float64 {
		n := m.newest.Load()
		if n == 0 {
			return -1
		}
		return time.Since(time.Unix(0, n)).Seconds()
	}))
	f.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "exlive_pending_requests", Help: "Requests awaiting the platform's answer.",
	}, func() float64 { return float64(pending()) }))
	f.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "bridge_request_queue_depth", Help: "Requests from MQTT waiting to be sent.",
	}, func() float64 { return float64(queued()) }))
	info := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "exlive2mqtt_build_info", Help: "Always 1; the labels tell the version.",
	}, []string{"version", "goversion"})
	info.WithLabelValues(version, runtime.Version()).Set(1)
	f.MustRegister(info)
	f.MustRegister(mqttCollector{mq, queueLimit})
	f.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// frame counts a received frame under its command, or under "unknown" for a
// command the protocol does not have.
func (m *metrics) frame(cmd exlive.Cmd, known bool) {
	if !known {
		m.framesUnknown.Inc()
		return
	}
	if c, ok := m.framesByCmd[cmd]; ok {
		c.Inc()
		return
	}
	// A command of the protocol the platform is not expected to send.
	m.frames.WithLabelValues(cmd.String()).Inc()
}

// event counts a published event.
func (m *metrics) event(t events.Type) {
	if int(t) < len(m.events) && m.events[t] != nil {
		m.events[t].Inc()
	}
}

func (m *metrics) state(s exlive.State) {
	for _, k := range []exlive.StateKind{exlive.StateConnecting, exlive.StateLoggedIn, exlive.StateLoginFailed, exlive.StateDisconnected} {
		v := 0.0
		if k == s.State {
			v = 1
		}
		m.sessionState.WithLabelValues(string(k)).Set(v)
	}
	if s.Conflict {
		m.conflict.Set(1)
	} else {
		m.conflict.Set(0)
	}
}

// mqttCollector turns the MQTT client's counters into metrics at scrape
// time, so the client itself needs to know nothing of Prometheus.
type mqttCollector struct {
	c     *mqtt.Client
	limit int // MQTT_QUEUE_LIMIT
}

var (
	descMQTTAccepted   = prometheus.NewDesc("mqtt_messages_accepted_total", "Messages taken for publishing; each ends published, failed, dropped or stored at stop, or is still queued or in flight.", nil, nil)
	descMQTTPublished  = prometheus.NewDesc("mqtt_messages_published_total", "Messages the broker acknowledged (QoS 1) or that were written (QoS 0).", nil, nil)
	descMQTTFailed     = prometheus.NewDesc("mqtt_publish_errors_total", "Publishes the MQTT client refused or failed with no copy kept to send again.", nil, nil)
	descMQTTLate       = prometheus.NewDesc("mqtt_acks_late_total", "QoS 1 publishes not acknowledged within MQTT_WRITE_TIMEOUT (still in flight: kept and resent after a reconnect).", nil, nil)
	descMQTTDropped    = prometheus.NewDesc("mqtt_messages_dropped_total", "Messages dropped: the outage queue overflowed, QoS 0 handed over as the link went down, or neither delivered nor stored at shutdown.", nil, nil)
	descMQTTInvalid    = prometheus.NewDesc("mqtt_invalid_topics_total", "Messages refused before publishing because their topic is not valid, or the broker closed the connection over a recent message on it.", nil, nil)
	descMQTTPoison     = prometheus.NewDesc("mqtt_poison_messages_total", "Messages dropped because the broker closed the connection over each (found after two losses in a row), or over a recent message on their topic; counted in mqtt_messages_dropped_total too.", nil, nil)
	descMQTTSpilled    = prometheus.NewDesc("mqtt_messages_stored_at_stop_total", "Messages handed to the file store at shutdown, to be sent after a restart.", nil, nil)
	descMQTTReceived   = prometheus.NewDesc("mqtt_messages_received_total", "Messages received on the bridge's subscriptions.", nil, nil)
	descMQTTReconnects = prometheus.NewDesc("mqtt_reconnects_total", "Connections to the broker after the first.", nil, nil)
	descMQTTQueued     = prometheus.NewDesc("mqtt_queue_depth", "Messages waiting for the broker.", nil, nil)
	descMQTTLimit      = prometheus.NewDesc("mqtt_queue_limit", "Most messages the outage queue holds (MQTT_QUEUE_LIMIT); beyond it the oldest are dropped.", nil, nil)
	descMQTTInFlight   = prometheus.NewDesc("mqtt_inflight", "Messages handed to the MQTT client library and not yet acknowledged (QoS 1) or written (QoS 0).", nil, nil)
	descMQTTConnected  = prometheus.NewDesc("mqtt_connected", "1 while the broker connection is up.", nil, nil)
)

func (mqttCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descMQTTAccepted, descMQTTPublished, descMQTTFailed, descMQTTLate, descMQTTDropped, descMQTTInvalid, descMQTTPoison,
		descMQTTSpilled, descMQTTReceived, descMQTTReconnects, descMQTTQueued, descMQTTLimit, descMQTTInFlight, descMQTTConnected} {
		ch <- d
	}
}

func (c mqttCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.c.Stats()
	counter := func(d *prometheus.Desc, v uint64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v))
	}
	gauge := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v)
	}
	counter(descMQTTAccepted, s.Accepted)
	counter(descMQTTPublished, s.Published)
	counter(descMQTTFailed, s.Failed)
	counter(descMQTTLate, s.Late)
	counter(descMQTTDropped, s.Dropped)
	counter(descMQTTInvalid, s.Invalid)
	counter(descMQTTPoison, s.Poison)
	counter(descMQTTSpilled, s.Spilled)
	counter(descMQTTReceived, s.Received)
	counter(descMQTTReconnects, s.Reconnects)
	gauge(descMQTTQueued, float64(s.Queued))
	gauge(descMQTTLimit, float64(c.limit))
	gauge(descMQTTInFlight, float64(s.InFlight))
	connected := 0.0
	if c.c.Link().Connected {
		connected = 1
	}
	gauge(descMQTTConnected, connected)
}
