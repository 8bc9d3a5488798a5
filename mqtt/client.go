// Package mqtt is the broker side of exlive2mqtt: a paho.mqtt.golang client
// used the way its maintainers advise, with TLS, a last will, subscriptions
// made on every connect, a bounded outage queue, and topic validation that
// keeps a poison topic from ever reaching the broker.
//
// Publish never blocks for long: while the broker keeps up it waits for room
// in a short queue (backpressure, so nothing is dropped under load); while
// the broker is away, or has made no progress for WriteTimeout, messages
// queue up to QueueLimit and what overflows is dropped oldest first and
// counted. One goroutine hands the queue to paho, and one waits on paho's
// tokens, each with a timeout.
package mqtt

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/exlive2mqtt/exlive2mqtt/internal/ratelimit"
	"github.com/rs/zerolog"
)

// ErrClosed is returned by Publish after Stop.
var ErrClosed = errors.New("mqtt: client stopped")

// StatePayload* are the payloads of the bridge's state topic.
const (
	StateOnline  = "online"
	StateOffline = "offline"
)

// highWater is how long the queue may grow while the broker keeps up before
// Publish waits for room.
const highWater = 1024

// Incoming is a message received on a subscription.
type Incoming struct {
	Topic     string
	Payload   []byte
	Retained  bool // the broker kept it; it was not published just now
	Duplicate bool // the broker may have delivered it before
}

// Link is the state of the broker connection.
type Link struct {
	Connected bool
	Since     time.Time
	Err       error // why it was lost
}

// Stats counts what the client did. Counters only grow.
type Stats struct {
	Published  uint64 // acknowledged (QoS 1) or written (QoS 0)
	Failed     uint64 // publishes paho reported as failed
	Late       uint64 // not acknowledged within WriteTimeout (QoS 1 stays stored and is resent after a reconnect)
	Dropped    uint64 // dropped: queue overflow, or QoS 0 still queued when stopped
	Invalid    uint64 // refused before publishing: not a valid topic
	Spilled    uint64 // handed to the file store at stop, to be sent after a restart
	Received   uint64 // messages received on subscriptions
	Reconnects uint64 // connections made after the first
	Queued     int    // waiting in the queue now
	InFlight   int    // handed to paho and not yet acknowledged now
}

// Client is the bridge's broker connection.
type Client struct {
	cfg        Config
	log        zerolog.Logger
	pc         paho.Client
	store      *resumeStore
	attempt    atomic.Uint64 // store lists counted when the current connection attempt began
	stateTopic string
	onLink     func(Link)

	mu      sync.Mutex
	q       queue
	link    Link
	closed  bool          // Stop has begun
	room    chan struct{} // closed when the queue has room; then replaced
	subs    []subscription
	started bool

	wake     chan struct{} // the sender has work
	tokens   chan tracked
	inflight atomic.Int64
	stuck    atomic.Bool // the broker made no progress for WriteTimeout
	stop     chan struct{}
	wg       sync.WaitGroup

	published, failed, late, dropped, invalid, spilled, received, connects atomic.Uint64
	warned                                                                 ratelimit.Every
}

type subscription struct {
	filter string
	h      func(Incoming)
}

type tracked struct {
	tok      paho.Token
	deadline time.Time
	qos      byte
}

// New returns a Client for cfg, which must have passed Validate. onLink, if
// not nil, is called on every connect and connection loss; it must not
// block.
func New(cfg Config, log zerolog.Logger, onLink func(Link)) (*Client, error) {
	tc, err := cfg.TLS()
	if err != nil {
		return nil, err
	}
	c := &Client{
		cfg:        cfg,
		log:        log,
		stateTopic: cfg.TopicPrefix + "/bridge/state",
		onLink:     onLink,
		q:          queue{limit: cfg.QueueLimit},
		link:       Link{Since: time.Now()},
		room:       make(chan struct{}),
		wake:       make(chan struct{}, 1),
		tokens:     make(chan tracked, cfg.InFlight),
		stop:       make(chan struct{}),
	}
	var store paho.Store = paho.NewOrderedMemoryStore()
	if cfg.StoreDir != "" {
		store = paho.NewFileStore(cfg.StoreDir)
	}
	c.store = newResumeStore(store)
	opts := paho.NewClientOptions().
		AddBroker(cfg.URL).
		SetClientID(cfg.ClientID).
		SetUsername(cfg.Username).
		SetPassword(cfg.Password.Reveal()).
		SetCleanSession(false). // the broker keeps our QoS 1 subscriptions while we are away
		SetResumeSubs(false).   // subscriptions are made anew in OnConnect
		SetOrderMatters(false). // handlers run concurrently and must not block
		SetKeepAlive(cfg.Keepalive).
		SetPingTimeout(min(cfg.Keepalive, 10*time.Second)).
		SetWriteTimeout(cfg.WriteTimeout).
		SetConnectTimeout(10*time.Second).
		SetConnectRetry(true).
		SetConnectRetryInterval(min(time.Second, cfg.RetryMax)).
		SetAutoReconnect(true).
		SetMaxReconnectInterval(cfg.RetryMax).
		// No SetMaxResumePubInFlight: with it paho v1.5.1 races on its
		// own stop channel when a reconnect follows a resume.
		SetStore(c.store).
		SetConnectionAttemptHandler(func(_ *url.URL, tc *tls.Config) *tls.Config {
			c.attempt.Store(c.store.mark())
			return tc
		}).
		SetBinaryWill(c.stateTopic, []byte(StateOffline), cfg.QoS, true).
		SetOnConnectHandler(c.onConnect).
		SetConnectionLostHandler(c.onConnectionLost).
		SetReconnectingHandler(func(paho.Client, *paho.ClientOptions) {
			c.log.Debug().Str("url", cfg.SafeURL()).Msg("reconnecting to broker")
		})
	if tc != nil {
		opts.SetTLSConfig(tc)
	}
	c.pc = paho.NewClient(opts)
	return c, nil
}

// Subscribe registers h for messages on filter at the configured QoS. Call
// it before Start; subscriptions are made again on every connect. h runs on
// its own goroutine per message and must hand work on quickly.
func (c *Client) Subscribe(filter string, h func(Incoming)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.subs = append(c.subs, subscription{filter, h})
}

// Start connects in the background (retrying until it succeeds) and starts
// the sender. It returns at once.
func (c *Client) Start() {
	c.mu.Lock()
	c.started = true
	c.mu.Unlock()
	c.wg.Add(3)
	go func() {
		defer c.wg.Done()
		c.sendLoop()
	}()
	go func() {
		defer c.wg.Done()
		c.trackLoop()
	}()
	tok := c.pc.Connect()
	go func() {
		// With ConnectRetry the token completes only once connected, or
		// with an error if it never can (a bad URL, say).
		defer c.wg.Done()
		select {
		case <-tok.Done():
			if err := tok.Error(); err != nil {
				c.log.Error().Err(err).Str("url", c.cfg.SafeURL()).Msg("cannot connect to broker")
			}
		case <-c.stop:
		}
	}()
}

// Link returns the state of the broker connection.
func (c *Client) Link() Link {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.link
}

// Stats returns the client's counters.
func (c *Client) Stats() Stats {
	c.mu.Lock()
	queued := c.q.len()
	c.mu.Unlock()
	return Stats{
		Published:  c.published.Load(),
		Failed:     c.failed.Load(),
		Late:       c.late.Load(),
		Dropped:    c.dropped.Load(),
		Invalid:    c.invalid.Load(),
		Spilled:    c.spilled.Load(),
		Received:   c.received.Load(),
		Reconnects: max(c.connects.Load(), 1) - 1,
		Queued:     queued,
		InFlight:   int(c.inflight.Load()),
	}
}

// Prefix returns the topic prefix.
func (c *Client) Prefix() string { return c.cfg.TopicPrefix }

// Publish publishes payload on topic at the configured QoS. It refuses a
// topic that is not valid to publish to; otherwise the message is queued and
// Publish returns, waiting for room (at most WriteTimeout) only while the
// broker keeps up. The client keeps payload: the caller must not change it.
func (c *Client) Publish(topic string, payload []byte, retain bool) error {
	return c.PublishQoS(topic, payload, c.cfg.QoS, retain)
}

// PublishQoS is Publish at a given QoS.
func (c *Client) PublishQoS(topic string, payload []byte, qos byte, retain bool) error {
	if err := ValidTopic(topic); err != nil {
		c.invalid.Add(1)
		return fmt.Errorf("%w: %q", err, shorten(topic))
	}
	m := message{topic: topic, payload: payload, qos: qos, retain: retain}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return ErrClosed
	}
	if c.q.len() >= highWater && c.link.Connected && !c.stuck.Load() {
		c.waitRoom()
	}
	dropped := c.q.push(m)
	c.mu.Unlock()
	if dropped {
		c.dropped.Add(1)
		if n, ok := c.warned.Allow(); ok {
			c.log.Warn().Int("limit", c.cfg.QueueLimit).Uint64("dropped", n).Msg("outage queue full: dropping the oldest messages")
		}
	}
	c.signal()
	return nil
}

// waitRoom waits, with c.mu held, until the queue is below the high water
// mark, the link goes down, or WriteTimeout passes; then the broker is taken
// to be stuck and nobody waits for it any more until it makes progress.
func (c *Client) waitRoom() {
	timer := time.NewTimer(c.cfg.WriteTimeout)
	defer timer.Stop()
	for c.q.len() >= highWater && c.link.Connected && !c.stuck.Load() && !c.closed {
		room := c.room
		c.mu.Unlock()
		select {
		case <-room:
			c.mu.Lock()
		case <-timer.C:
			c.mu.Lock()
			if c.stuck.CompareAndSwap(false, true) {
				c.log.Warn().Dur("write_timeout", c.cfg.WriteTimeout).Msg("broker is not keeping up: queueing instead of waiting")
			}
		}
	}
}

func (c *Client) signal() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// broadcastRoom wakes publishers waiting for room. Call with c.mu held.
func (c *Client) broadcastRoom() {
	close(c.room)
	c.room = make(chan struct{})
}

// sendLoop hands queued messages to paho while the link is up.
func (c *Client) sendLoop() {
	batch := make([]message, 0, 256)
	for {
		c.mu.Lock()
		for !c.link.Connected || c.q.len() == 0 {
			c.mu.Unlock()
			select {
			case <-c.wake:
			case <-c.stop:
				return
			}
			c.mu.Lock()
		}
		batch = batch[:0]
		for len(batch) < cap(batch) {
			m, ok := c.q.pop()
			if !ok {
				break
			}
			batch = append(batch, m)
		}
		if c.q.len() < highWater {
			c.broadcastRoom()
		}
		c.mu.Unlock()

		for i, m := range batch {
			if !c.pc.IsConnectionOpen() {
				c.requeue(batch[i:])
				break
			}
			start := time.Now()
			tok := c.pc.Publish(m.topic, m.qos, m.retain, m.payload)
			if !c.track(tok, m.qos) {
				break
			}
			if time.Since(start) < c.cfg.WriteTimeout {
				c.progress()
			}
		}
		clear(batch)
	}
}

// requeue puts back, in order, messages that found the link down.
func (c *Client) requeue(ms []message) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := len(ms) - 1; i >= 0; i-- {
		if c.q.pushFront(ms[i]) {
			c.dropped.Add(1)
		}
	}
}

// progress records that the broker took a message in good time.
func (c *Client) progress() {
	if c.stuck.Load() && c.stuck.CompareAndSwap(true, false) {
		c.log.Info().Msg("broker keeping up again")
	}
}

// track hands a token to the tracker, waiting for a place in the in-flight
// window. It reports false when the client is stopping.
func (c *Client) track(tok paho.Token, qos byte) bool {
	t := tracked{tok: tok, deadline: time.Now().Add(c.cfg.WriteTimeout), qos: qos}
	c.inflight.Add(1)
	select {
	case c.tokens <- t:
		return true
	default:
	}
	// The window is full: the broker is slow to acknowledge.
	timer := time.NewTimer(c.cfg.WriteTimeout)
	defer timer.Stop()
	select {
	case c.tokens <- t:
		return true
	case <-timer.C:
		c.inflight.Add(-1)
		c.late.Add(1)
		c.stuck.Store(true)
		return true
	case <-c.stop:
		c.inflight.Add(-1)
		return false
	}
}

// trackLoop waits on each token in turn, never longer than its deadline.
func (c *Client) trackLoop() {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		var t tracked
		select {
		case t = <-c.tokens:
		case <-c.stop:
			return
		}
		c.await(t, timer)
		c.inflight.Add(-1)
	}
}

func (c *Client) await(t tracked, timer *time.Timer) {
	select {
	case <-t.tok.Done():
	default:
		timer.Reset(time.Until(t.deadline))
		select {
		case <-t.tok.Done():
			timer.Stop()
		case <-timer.C:
			c.late.Add(1)
			return
		case <-c.stop:
			timer.Stop()
			return
		}
	}
	if err := t.tok.Error(); err != nil {
		c.failed.Add(1)
		if n, ok := c.warned.Allow(); ok {
			c.log.Warn().Err(err).Uint64("since_last", n).Msg("publish failed")
		}
		return
	}
	c.published.Add(1)
}

func (c *Client) onConnect(pc paho.Client) {
	n := c.connects.Add(1)
	if !c.store.waitList(c.attempt.Load(), c.cfg.WriteTimeout) {
		c.log.Warn().Msg("paho did not list its store after connecting")
	}
	c.mu.Lock()
	subs := append([]subscription(nil), c.subs...)
	c.mu.Unlock()
	for _, s := range subs {
		h := s.h
		tok := pc.Subscribe(s.filter, c.cfg.QoS, func(_ paho.Client, m paho.Message) {
			c.received.Add(1)
			h(Incoming{Topic: m.Topic(), Payload: m.Payload(), Retained: m.Retained(), Duplicate: m.Duplicate()})
		})
		if !tok.WaitTimeout(c.cfg.WriteTimeout) {
			c.log.Error().Str("filter", s.filter).Msg("subscribe not acknowledged in time")
		} else if err := tok.Error(); err != nil {
			c.log.Error().Err(err).Str("filter", s.filter).Msg("subscribe failed")
		}
	}
	tok := pc.Publish(c.stateTopic, c.cfg.QoS, true, []byte(StateOnline))
	if !tok.WaitTimeout(c.cfg.WriteTimeout) {
		c.late.Add(1)
		c.log.Warn().Msg("online state not acknowledged in time")
	} else if err := tok.Error(); err != nil {
		c.failed.Add(1)
		c.log.Warn().Err(err).Msg("online state not published")
	} else {
		c.published.Add(1)
	}
	c.mu.Lock()
	c.link = Link{Connected: true, Since: time.Now()}
	c.stuck.Store(false)
	link := c.link
	queued := c.q.len()
	c.mu.Unlock()
	c.log.Info().Str("url", c.cfg.SafeURL()).Str("client_id", c.cfg.ClientID).Uint64("connection", n).Int("queued", queued).Msg("broker connected")
	c.signal()
	if c.onLink != nil {
		c.onLink(link)
	}
}

func (c *Client) onConnectionLost(_ paho.Client, err error) {
	c.mu.Lock()
	c.link = Link{Connected: false, Since: time.Now(), Err: err}
	link := c.link
	c.broadcastRoom() // publishers waiting for room now queue instead
	c.mu.Unlock()
	c.log.Warn().Err(err).Str("url", c.cfg.SafeURL()).Msg("broker connection lost")
	if c.onLink != nil {
		c.onLink(link)
	}
}

// Stop publishes offline, delivers what is queued and in flight until ctx
// is done, hands what is left to the file store when there is one, and
// disconnects. It returns how many messages were neither delivered nor
// stored.
func (c *Client) Stop(ctx context.Context) (lost int) {
	c.mu.Lock()
	if c.closed || !c.started {
		c.closed = true
		c.mu.Unlock()
		return 0
	}
	c.mu.Unlock()
	c.Publish(c.stateTopic, []byte(StateOffline), true)
	c.mu.Lock()
	c.closed = true
	c.broadcastRoom()
	c.mu.Unlock()

	tick := time.NewTicker(10 * time.Millisecond)
	for !c.drained() {
		select {
		case <-ctx.Done():
		case <-tick.C:
			continue
		}
		break
	}
	tick.Stop()
	close(c.stop)
	c.wg.Wait()

	c.mu.Lock()
	var left []message
	for {
		m, ok := c.q.pop()
		if !ok {
			break
		}
		left = append(left, m)
	}
	c.mu.Unlock()
	for _, m := range left {
		// The offline state is not stored: sent after a restart, it could
		// land after that run's online.
		if c.cfg.StoreDir != "" && m.qos > 0 && m.topic != c.stateTopic && !c.pc.IsConnectionOpen() {
			// paho stores a QoS 1 publish made while it is reconnecting
			// and sends it once connected, after a restart too.
			c.pc.Publish(m.topic, m.qos, m.retain, m.payload)
			c.spilled.Add(1)
			continue
		}
		c.dropped.Add(1)
		lost++
	}
	if lost > 0 {
		c.log.Warn().Int("lost", lost).Msg("messages not delivered before stop")
	}
	c.pc.Disconnect(250)
	return lost
}

// drained reports that nothing is queued or awaiting acknowledgement.
func (c *Client) drained() bool {
	c.mu.Lock()
	n := c.q.len()
	c.mu.Unlock()
	return n == 0 && c.inflight.Load() == 0
}

func shorten(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}
