// Package bridge joins an EXLIVE session (package exlive) to an MQTT broker
// (package mqtt), which know nothing of each other: it publishes what the
// platform says on per-vehicle topics, carries requests published on /set
// topics to the platform, and answers each one on its /result topic. It also
// tells its state and its Prometheus metrics, which the program serves.
package bridge

import (
	"cmp"
	"context"
	"errors"
	"net"
	"sync"
	"time"

	"github.com/exlive2mqtt/exlive2mqtt/events"
	"github.com/exlive2mqtt/exlive2mqtt/exlive"
	"github.com/exlive2mqtt/exlive2mqtt/geofence"
	"github.com/exlive2mqtt/exlive2mqtt/hass"
	"github.com/exlive2mqtt/exlive2mqtt/internal/ratelimit"
	"github.com/exlive2mqtt/exlive2mqtt/mqtt"
	"github.com/exlive2mqtt/exlive2mqtt/topic"
	"github.com/rs/zerolog"
	"golang.org/x/time/rate"
)

// Options are what a Bridge is made of besides settings.
type Options struct {
	Bridge    Config
	Exlive    exlive.Config
	MQTT      mqtt.Config
	Topics    TopicConfig
	Hass      HassConfig
	OwnTracks OwnTracksConfig
	// Events are the settings of events and availability
	// (docs/events.md); Fences the geofences in force at the start (nil:
	// none), which SetFences replaces.
	Events  events.Config
	Fences  *geofence.Set
	Version string
	Log     zerolog.Logger
	// Dial replaces how the session connects to each of the platform's
	// addresses (tests, the demo); nil dials them.
	Dial func(ctx context.Context, addr string) (net.Conn, error)
	// HassDelay returns how long to wait before sending every Home
	// Assistant discovery config again when the broker connects or Home
	// Assistant comes online; nil waits a random time of up to five
	// seconds. Tests make it 0.
	HassDelay func() time.Duration
	// HassSweepQuiet is how long the sweep of the configs an earlier
	// version left under the legacy node waits for another before it ends
	// (DefaultHassSweepQuiet when 0). Tests shorten it.
	HassSweepQuiet time.Duration
}

// DefaultHassSweepQuiet ends the sweep of old Home Assistant configs: the
// broker sends retained messages at once after a subscription, so two
// seconds without one means they have all come.
const DefaultHassSweepQuiet = 2 * time.Second

// Bridge moves data between one EXLIVE session and one MQTT broker. It owns
// the two links and wires the three parts a reader looks for, each in its
// own file:
//   - feed (platform.go): what the platform says, published on MQTT:
//     positions, the inventory, the session state, messages;
//   - requests (requests.go): what arrives on the /set topics, carried to
//     the platform and answered on /result;
//   - announcer (announce.go): Home Assistant discovery and OwnTracks
//     cards, which announce the vehicles to other programs.
//
// They share the vehicle registry (vehicles.go) and the metrics
// (metrics.go).
type Bridge struct {
	opts    Options
	log     zerolog.Logger
	topics  topic.Layout
	session *exlive.Session
	mq      *mqtt.Client
	reg     *registry
	metrics *metrics

	feed     *feed
	requests *requests
	announce *announcer
}

// New builds a Bridge from settings that have passed Validate. It connects
// nowhere until Run.
func New(o Options) (*Bridge, error) {
	b := &Bridge{
		opts: o,
		log:  o.Log.With().Str("component", "bridge").Logger(),
		topics: topic.Layout{
			Prefix:          o.MQTT.TopicPrefix,
			DiscoveryPrefix: o.Hass.Prefix,
			OwnTracksUser:   o.OwnTracks.User,
			Rules:           o.Topics.Rules,
		},
	}
	b.reg = newRegistry(b.topics, o.Bridge.MaxVehicles)
	state := mqtt.State{Topic: b.topics.State(), Online: topic.Online, Offline: topic.Offline}
	mq, err := mqtt.New(o.MQTT, state, o.Log.With().Str("component", "mqtt").Logger(), b.onLink)
	if err != nil {
		return nil, err
	}
	b.mq = mq
	// The gauges read the session and the request queue when scraped,
	// once both exist.
	b.metrics = newMetrics(o.Version, mq, o.MQTT.QueueLimit, func() int { return b.session.Pending() }, func() int { return b.requests.queued() },
		func() int { return b.feed.engine.Stats().Online })
	pub := publisher{mq: mq, log: b.log, errLog: &ratelimit.Every{}}
	b.announce = &announcer{
		log: b.log, pub: pub, topics: b.topics, reg: b.reg,
		hass: o.Hass.Discovery, version: o.Version, delay: o.HassDelay,
		ownTracks:    o.OwnTracks.Enable,
		availability: o.Events.OfflineAfter > 0,
		geofences:    o.Events.GeofencesFile != "" || o.Fences != nil,
		refresh:      make(chan struct{}, 1),
	}
	legacy := hass.LegacyFilter(b.announce.hassConfig())
	if o.Hass.Discovery && legacy != "" {
		b.announce.sweeping = true
		b.announce.pending = make(map[*vehicle]struct{})
		b.announce.sweepQuiet = cmp.Or(o.HassSweepQuiet, DefaultHassSweepQuiet)
	}
	b.feed = &feed{
		log: b.log, pub: pub, topics: b.topics, reg: b.reg, metrics: b.metrics, announce: b.announce,
		datum: o.Exlive.Datum, retain: o.MQTT.Retain, ownTracks: o.OwnTracks, maxVehicles: o.Bridge.MaxVehicles,
		state: exlive.State{State: exlive.StateDisconnected, Since: time.Now()},

		engine:       events.New(o.Events, events.Options{MaxVehicles: o.Bridge.MaxVehicles, Fences: o.Fences}),
		availability: o.Events.OfflineAfter > 0,
	}
	b.session = exlive.New(o.Exlive, b.feed.handler(), o.Log.With().Str("component", "exlive").Logger())
	if o.Dial != nil {
		b.session.SetDialer(o.Dial)
	}
	b.requests = &requests{
		log: b.log, audit: o.Log.With().Str("component", "audit").Logger(), pub: pub,
		topics: b.topics, reg: b.reg, metrics: b.metrics, session: b.session,
		datum: o.Exlive.Datum, zone: o.Exlive.Timezone.Location,
		maxRequest: o.Bridge.MaxRequest, readOnly: o.Bridge.ReadOnly, anyTerminal: o.Bridge.PassthroughAnyTerminal,
		rateWait: o.Exlive.CommandTimeout,
		queue:    make(chan *request, o.Bridge.RequestQueue),
		seen:     newDedupe(requestDedupeMax, requestDedupeWindow),
		settled:  make(chan struct{}),
	}
	if o.Exlive.MaxRate > 0 {
		b.requests.limit = rate.NewLimiter(rate.Limit(o.Exlive.MaxRate), o.Exlive.MaxBurst)
	}
	// Requests wait for the first inventory, or for the first session
	// attempt to fail (see requests.serve).
	b.feed.settle = b.requests.settle
	if o.Hass.Discovery {
		mq.Subscribe(b.topics.DiscoveryStatus(), b.announce.onHassStatus)
	}
	b.requests.subscribe(mq)
	if o.Hass.Discovery && legacy != "" {
		// Last: the old configs are cleared as they come, and no
		// subscription of ours should list retained messages meanwhile
		// (the embedded test broker, mochi v2.7.9, reads a retained
		// topic's node unlocked while a retained publish writes it).
		mq.Subscribe(legacy, b.announce.onOldConfig)
	}
	return b, nil
}

// Run runs the bridge until ctx is done, then shuts down in order: the
// session logs out, the state turns offline, and what is queued for the
// broker is delivered, all within stopTimeout. It returns nil after a clean
// shutdown.
func (b *Bridge) Run(ctx context.Context, stopTimeout time.Duration) error {
	b.mq.Start()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		b.session.Run(ctx)
	}()
	go func() {
		defer wg.Done()
		b.requests.serve(ctx)
	}()
	if b.opts.Hass.Discovery {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b.announce.loop(ctx)
		}()
	}
	if b.feed.availability {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b.feed.sweep(ctx)
		}()
	}
	<-ctx.Done()
	b.feed.stopping.Store(true)
	deadline := time.Now().Add(stopTimeout)
	stopped := make(chan struct{})
	go func() {
		wg.Wait() // the session has sent its logout
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-time.After(time.Until(deadline) / 2):
		b.log.Warn().Msg("session slow to stop; stopping the broker link anyway")
	}
	sctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	lost := b.mq.Stop(sctx)
	<-stopped
	b.log.Info().Int("undelivered", lost).Msg("stopped")
	return nil
}

// onLink is told of every broker connect and loss.
func (b *Bridge) onLink(l mqtt.Link) {
	if !l.Connected {
		return
	}
	// The broker may have restarted without its retained messages: state
	// them again.
	b.feed.publishSession(b.State())
	if b.opts.Hass.Discovery {
		b.announce.linkUp()
	}
}

// State returns the session's latest state.
func (b *Bridge) State() exlive.State { return b.feed.current() }

// publisher hands messages to the MQTT client, logging what it refuses
// (at most once every ten seconds: a platform can make it refuse every
// position). Every part of the bridge publishes through one.
type publisher struct {
	mq     *mqtt.Client
	log    zerolog.Logger
	errLog *ratelimit.Every
}

func (p publisher) publish(topic string, payload []byte, retain bool) bool {
	if err := p.mq.Publish(topic, payload, retain); err != nil {
		if !errors.Is(err, mqtt.ErrClosed) {
			if n, ok := p.errLog.Allow(); ok {
				p.log.Warn().Err(err).Uint64("refused_since_last_warning", n).Msg("not published")
			}
		}
		return false
	}
	return true
}
