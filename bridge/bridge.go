// Package bridge joins an EXLIVE session (package exlive) to an MQTT broker
// (package mqtt), which know nothing of each other: it publishes what the
// platform says on per-vehicle topics, carries requests published on /set
// topics to the platform, and answers each one on its /result topic. It also
// serves the status the HTTP page shows and the Prometheus metrics.
package bridge

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/exlive2mqtt/exlive2mqtt/datum"
	"github.com/exlive2mqtt/exlive2mqtt/exlive"
	"github.com/exlive2mqtt/exlive2mqtt/internal/ratelimit"
	"github.com/exlive2mqtt/exlive2mqtt/mqtt"
	"github.com/exlive2mqtt/exlive2mqtt/topic"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"
)

// Options are what a Bridge is made of besides settings.
type Options struct {
	Bridge    Config
	Exlive    exlive.Config
	MQTT      mqtt.Config
	Hass      HassConfig
	OwnTracks OwnTracksConfig
	Version   string
	Log       zerolog.Logger
	// Dial replaces how the session connects to the platform (tests, the
	// demo); nil dials Exlive.Addr.
	Dial func(ctx context.Context) (net.Conn, error)
	// HassDelay returns how long to wait before sending every Home
	// Assistant discovery config again when the broker connects or Home
	// Assistant comes online; nil waits a random time of up to five
	// seconds. Tests make it 0.
	HassDelay func() time.Duration
}

// Bridge moves data between one EXLIVE session and one MQTT broker.
type Bridge struct {
	opts    Options
	log     zerolog.Logger
	audit   zerolog.Logger
	topics  topic.Layout
	datum   datum.Datum
	session *exlive.Session
	mq      *mqtt.Client
	reg     *registry
	metrics *metrics

	requests chan *request
	seen     *dedupe
	// settled is closed once the first inventory is in, or the first
	// session attempt has failed: requests wait for it (see serveRequests).
	settled    chan struct{}
	settleOnce sync.Once

	mu    sync.Mutex
	state exlive.State

	skipLog, fullLog ratelimit.Every

	// hassMu orders the sending and removal of discovery configs.
	hassMu sync.Mutex

	hassRefresh chan struct{}
	scratch     []byte // position payloads are built here; only the session's read loop uses it
	stopping    atomic.Bool
}

// New builds a Bridge from settings that have passed Validate. It connects
// nowhere until Run.
func New(o Options) (*Bridge, error) {
	b := &Bridge{
		opts:  o,
		log:   o.Log.With().Str("component", "bridge").Logger(),
		audit: o.Log.With().Str("component", "audit").Logger(),
		topics: topic.Layout{
			Prefix:          o.MQTT.TopicPrefix,
			DiscoveryPrefix: o.Hass.Prefix,
			OwnTracksUser:   o.OwnTracks.User,
		},
		datum:       o.Exlive.Datum,
		requests:    make(chan *request, o.Bridge.RequestQueue),
		seen:        newDedupe(4096, requestDedupeWindow),
		settled:     make(chan struct{}),
		hassRefresh: make(chan struct{}, 1),
		state:       exlive.State{State: exlive.StateDisconnected, Since: time.Now()},
	}
	b.reg = newRegistry(b.topics, o.Bridge.MaxVehicles)
	state := mqtt.State{Topic: b.topics.State(), Online: topic.Online, Offline: topic.Offline}
	mq, err := mqtt.New(o.MQTT, state, o.Log.With().Str("component", "mqtt").Logger(), b.onLink)
	if err != nil {
		return nil, err
	}
	b.mq = mq
	b.session = exlive.New(o.Exlive, b, o.Log.With().Str("component", "exlive").Logger())
	if o.Dial != nil {
		b.session.SetDialer(o.Dial)
	}
	b.metrics = newMetrics(o.Version, mq, b.session.Pending, func() int { return len(b.requests) })
	b.subscribe()
	return b, nil
}

// Metrics returns the handler of /metrics.
func (b *Bridge) Metrics() http.Handler {
	return promhttp.HandlerFor(b.metrics.reg, promhttp.HandlerOpts{})
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
		b.serveRequests(ctx)
	}()
	if b.opts.Hass.Discovery {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b.hassLoop(ctx)
		}()
	}
	<-ctx.Done()
	b.stopping.Store(true)
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
	b.publishSession(b.State())
	if b.opts.Hass.Discovery {
		b.requestHassRefresh()
	}
}

// State returns the session's latest state.
func (b *Bridge) State() exlive.State {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.state
}

// publish hands a message to the MQTT client, logging what it refuses.
func (b *Bridge) publish(topic string, payload []byte, retain bool) bool {
	if err := b.mq.Publish(topic, payload, retain); err != nil {
		if !errors.Is(err, mqtt.ErrClosed) {
			b.log.Warn().Err(err).Msg("not published")
		}
		return false
	}
	return true
}
