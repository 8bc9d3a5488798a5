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
// tokens: a QoS 0 message's until paho wrote it or failed, a QoS 1
// message's until its deadline, to count late acknowledgements.
//
// Every message the client accepts ends in exactly one of published,
// failed, dropped or spilled, or is still queued or in flight: see settle.
package mqtt

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/exlive2mqtt/exlive2mqtt/internal/ratelimit"
	"github.com/rs/zerolog"
	"golang.org/x/net/proxy"
)

// ErrClosed is returned by Publish after Stop.
var ErrClosed = errors.New("mqtt: client stopped")

// State is a retained topic that tells whether the client is connected:
// Online is published on every connect, Offline at Stop and, by the broker,
// as the client's last will. The client knows no topic of its own: the
// caller names this one. A zero State publishes nothing and sets no will.
type State struct {
	Topic           string
	Online, Offline string
}

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
//
// Every accepted message ends in exactly one outcome, so
//
//	Accepted == Published + Failed + Dropped + Spilled + Queued + InFlight
//
// whenever nothing moves: after Stop, or once Queued and InFlight are 0.
// Stats reads Accepted first and the outcomes last, so a message that moves
// while it reads is counted once or twice, never missed: Accepted is at
// most the sum while messages move. A message lost or counted twice breaks
// the equality for good.
type Stats struct {
	Accepted   uint64 // taken for publishing: by Publish, and the online state at each connect
	Published  uint64 // acknowledged (QoS 1) or written (QoS 0)
	Failed     uint64 // paho refused or failed the publish, and holds no copy to send again
	Dropped    uint64 // the outage queue overflowed; QoS 0 handed to paho as the link went down; not delivered by the end of Stop and not stored
	Spilled    uint64 // handed to the file store at stop, to be sent after a restart
	Queued     int    // waiting in the queue now
	InFlight   int    // handed to paho and not yet settled now: QoS 1 awaiting its acknowledgement, QoS 0 its write
	Late       uint64 // QoS 1 not acknowledged within WriteTimeout; still in flight (paho resends it after a reconnect), not an outcome
	Invalid    uint64 // refused before publishing: not a valid topic; never accepted
	Received   uint64 // messages received on subscriptions
	Reconnects uint64 // connections made after the first
}

// Client is the bridge's broker connection.
type Client struct {
	cfg     Config
	log     zerolog.Logger
	pc      paho.Client
	store   *resumeStore
	attempt atomic.Uint64 // store lists counted when the current connection attempt began
	state   State
	onLink  func(Link)

	attempts atomic.Uint64 // connection attempts so far

	mu         sync.Mutex
	q          queue
	link       Link
	ups, downs uint64        // connections up and lost, as paho reported them (see linkEvent)
	linkEvent  chan struct{} // closed when paho reports a connect or a loss; then replaced
	closed     bool          // Stop has begun
	room       chan struct{} // closed when the queue has room; then replaced
	subs       []subscription
	started    bool
	refusedWhy string // the reason of the last failed connection attempt

	wake     chan struct{} // the sender has work
	tokens   chan tracked
	inflight atomic.Int64 // taken from the queue and not yet settled or held by the store
	stuck    atomic.Bool  // the broker made no progress for WriteTimeout
	stop     chan struct{}
	wg       sync.WaitGroup
	onlineWG sync.WaitGroup // publishOnline under way; Stop waits for it

	accepted, published, failed, dropped, spilled atomic.Uint64 // see settle
	late, invalid, received, connects             atomic.Uint64
	warned                                        ratelimit.Every
	refusedLog                                    ratelimit.Every
	storeLog                                      ratelimit.Every
}

type subscription struct {
	filter string
	h      func(Incoming)
	drop   bool // unsubscribe instead (see Unsubscribe)
}

type tracked struct {
	tok      paho.Token
	deadline time.Time
	qos      byte
}

// New returns a Client for cfg, which must have passed Validate, that keeps
// state up to date. onLink, if not nil, is called on every connect and
// connection loss; it must not block.
func New(cfg Config, state State, log zerolog.Logger, onLink func(Link)) (*Client, error) {
	tc, err := cfg.TLS()
	if err != nil {
		return nil, err
	}
	c := &Client{
		cfg:       cfg,
		log:       log,
		state:     state,
		onLink:    onLink,
		q:         queue{limit: cfg.QueueLimit},
		link:      Link{Since: time.Now()},
		linkEvent: make(chan struct{}),
		room:      make(chan struct{}),
		wake:      make(chan struct{}, 1),
		tokens:    make(chan tracked, cfg.InFlight),
		stop:      make(chan struct{}),
	}
	var store paho.Store = paho.NewOrderedMemoryStore()
	if cfg.StoreDir != "" {
		store = paho.NewFileStore(cfg.StoreDir)
	}
	c.store = newResumeStore(store, state.Topic, c.storeFailed, func() { c.settle(published, 1) })
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
		SetConnectTimeout(10 * time.Second).
		SetConnectRetry(true).
		SetConnectRetryInterval(min(time.Second, cfg.RetryMax)).
		SetAutoReconnect(true).
		SetMaxReconnectInterval(cfg.RetryMax).
		// No SetMaxResumePubInFlight: with it paho v1.5.1 races on its
		// own stop channel when a reconnect follows a resume.
		SetStore(c.store).
		SetConnectionAttemptHandler(func(_ *url.URL, tc *tls.Config) *tls.Config {
			c.attempts.Add(1)
			c.attempt.Store(c.store.mark())
			return tc
		}).
		SetOnConnectHandler(c.onConnect).
		SetConnectionLostHandler(c.onConnectionLost).
		SetReconnectingHandler(func(paho.Client, *paho.ClientOptions) {
			c.log.Debug().Str("url", cfg.SafeURL()).Msg("reconnecting to broker")
		}).
		SetConnectionNotificationHandler(c.onNotification).
		SetDefaultPublishHandler(c.onUnrouted)
	if state.Topic != "" {
		opts.SetBinaryWill(state.Topic, []byte(state.Offline), cfg.QoS, true)
	}
	if tc != nil {
		opts.SetTLSConfig(tc)
	}
	if u, err := url.Parse(cfg.URL); err == nil && u.Scheme != "ws" && u.Scheme != "wss" {
		// Websockets keep paho's own connection; TCP and TLS get one that
		// batches system calls (see wireConn).
		opts.SetCustomOpenConnectionFn(func(u *url.URL, o paho.ClientOptions) (net.Conn, error) {
			nc, err := dialBroker(u, tc, o.Dialer)
			if err != nil {
				return nil, err
			}
			return newWireConn(nc, cfg.WriteTimeout), nil
		})
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
	c.subs = append(c.subs, subscription{filter: filter, h: h})
}

// Unsubscribe asks the broker on every connect to drop the subscription to
// filter that an earlier run under the same client id may have left in the
// persistent session. What the broker had queued for it before still
// arrives, once: h gets it, so that it is acknowledged, not delivered again
// at every connect. Call it before Start.
func (c *Client) Unsubscribe(filter string, h func(Incoming)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.subs = append(c.subs, subscription{filter: filter, h: h, drop: true})
}

// Start connects in the background (retrying until it succeeds) and starts
// the sender. It returns at once.
func (c *Client) Start() {
	c.mu.Lock()
	c.started = true
	subs := append([]subscription(nil), c.subs...)
	c.mu.Unlock()
	// The session is persistent: at connect the broker sends at once what
	// it kept for our subscriptions, before OnConnect has subscribed anew.
	// Without a route paho neither handles nor acknowledges such a
	// message, and once the broker's in-flight window is full of them it
	// sends nothing more.
	for _, s := range subs {
		if !s.drop {
			c.pc.AddRoute(s.filter, c.handler(s.h))
		}
	}
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
//
// The order of reading matters (see the Stats type): a message is held in turn by
// the queue and sendLoop (c.mu), paho's store (its own lock; put there
// before sendLoop lets go of it) and its outcome (counted before the store
// or the tracker lets go of it). Read in that order, a message that moves
// meanwhile is seen where it was or where it went, or both.
func (c *Client) Stats() Stats {
	st := Stats{Accepted: c.accepted.Load()}
	c.mu.Lock()
	st.Queued = c.q.len()
	st.InFlight = int(c.inflight.Load())
	c.mu.Unlock()
	st.InFlight += c.store.inFlight()
	st.Published = c.published.Load()
	st.Failed = c.failed.Load()
	st.Dropped = c.dropped.Load()
	st.Spilled = c.spilled.Load()
	st.Late = c.late.Load()
	st.Invalid = c.invalid.Load()
	st.Received = c.received.Load()
	st.Reconnects = max(c.connects.Load(), 1) - 1
	return st
}

// outcome is how a message accepted by the client ended.
type outcome int

const (
	published outcome = iota
	failed
	dropped
	spilled
)

// settle records the outcome of n messages. It is the only place that
// counts an outcome, and each accepted message reaches it exactly once, from
// whoever holds the message at the time; holding passes along one way:
//
//   - the queue (Publish; sendLoop takes a batch, and puts back what finds
//     the link down), which drops the oldest on overflow;
//   - sendLoop, which hands each message to paho (see hand);
//   - for QoS 1 with a message id, paho's store (resumeStore): published
//     when the PUBACK deletes it, spilled or dropped by Stop;
//   - for QoS 0, its token, waited on by trackLoop, or by Stop.
//
// The online state goes straight to paho from onConnect and is held the
// same way; the offline state goes through Publish.
func (c *Client) settle(o outcome, n uint64) {
	switch o {
	case published:
		c.published.Add(n)
	case failed:
		c.failed.Add(n)
	case dropped:
		c.dropped.Add(n)
	case spilled:
		c.spilled.Add(n)
	}
}

// Publish publishes payload on topic at the configured QoS. It refuses a
// topic that is not valid to publish to; otherwise the message is queued and
// Publish returns, waiting for room (at most WriteTimeout) only while the
// broker keeps up. The client keeps payload: the caller must not change it.
func (c *Client) Publish(topic string, payload []byte, retain bool) error {
	return c.PublishQoS(topic, payload, c.cfg.QoS, retain)
}

// PublishQoS is Publish at a given QoS.
func (c *Client) PublishQoS(topic string, payload []byte, qos byte, retain bool) error {
	if err := validTopic(topic); err != nil {
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
		if c.closed {
			c.mu.Unlock()
			return ErrClosed
		}
	}
	c.accepted.Add(1)
	evicted := c.q.push(m)
	if evicted {
		c.settle(dropped, 1) // before the queue lets go of it (see Stats)
	}
	c.mu.Unlock()
	if evicted {
		if n, ok := c.warned.Allow(); ok {
			c.log.Warn().Int("limit", c.cfg.QueueLimit).Uint64("dropped", n).Msg("outage queue full: dropping the oldest messages")
		}
	}
	c.signal()
	return nil
}

// validTopic is ValidTopic, with a fast path for a topic of printable ASCII
// without wildcards (a position topic whose vehicle id is ASCII): one pass
// and no allocation, where ValidTopic splits the topic into its levels.
func validTopic(topic string) error {
	if len(topic) == 0 || len(topic) > MaxTopicLen {
		return ValidTopic(topic)
	}
	for i := 0; i < len(topic); i++ {
		if c := topic[i]; c < 0x20 || c > 0x7e || c == '+' || c == '#' {
			return ValidTopic(topic)
		}
	}
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
		c.inflight.Add(int64(len(batch)))
		if c.q.len() < highWater {
			c.broadcastRoom()
		}
		event := c.linkEvent
		c.mu.Unlock()

		for i, m := range batch {
			attempts := c.attempts.Load()
			listed := c.store.listChanged()
			if !c.ready() {
				// paho lost the connection, or connected again, and has
				// not said so yet: wait for its next word (see linkUp),
				// or its list, rather than spin.
				c.requeue(batch[i:])
				select {
				case <-event:
				case <-listed:
				case <-c.stop:
				}
				break
			}
			start := time.Now()
			tok, ok := c.hand(m, attempts)
			if !ok {
				continue
			}
			if !c.track(tok, m.qos) {
				// Stopping: Stop stores or counts what is queued.
				c.requeue(batch[i+1:])
				break
			}
			if time.Since(start) < c.cfg.WriteTimeout {
				c.progress()
			}
		}
		clear(batch)
	}
}

// ready reports whether sendLoop may hand paho a message: paho is connected
// and has listed its store since it began its last connection attempt.
//
// paho resends what its store holds once per connection, from a list it
// takes after connecting (resume); a QoS 1 message stored before that list
// goes out twice, the second time while paho's writer still reads the first
// (a data race in paho: it made the bridge exit 66 under -race in a test
// that cut the broker link). OnConnect waits for the list before it reports
// the link up, but the link can still say up from the previous connection:
// paho can connect again before the loss of the previous one is reported.
func (c *Client) ready() bool {
	return c.store.listedSince(c.attempt.Load()) && c.pc.IsConnectionOpen()
}

// hand publishes m, taken from the queue, with paho, and passes it on to
// whoever settles it (see settle). It returns the token for track, and
// false when the message is settled already.
//
// paho v1.5.1 publishes a QoS 0 message only while connected. Made while it
// is reconnecting, it completes the token, with no error, and sends
// nothing; made while it connects or is taking a lost connection down, it
// sends nothing and never completes the token. paho's status can change
// under Publish, so a QoS 0 token is waited on only when paho was surely
// connected throughout: open before (the caller checked, after it read
// attempts) and after, with no connection attempt in between (paho is never
// connected again without one). Otherwise the message was handed over as
// the link went down, and is counted dropped.
func (c *Client) hand(m message, attempts uint64) (paho.Token, bool) {
	tok := c.pc.Publish(m.topic, m.qos, m.retain, m.payload)
	switch {
	case m.qos > 0 && messageID(tok) != 0:
		// paho stored it before it returned: the store holds it now.
		c.inflight.Add(-1)
		return tok, true
	case m.qos > 0:
		// No message id, not stored: not connected, or all 65535 ids
		// are in flight.
		c.settle(failed, 1)
		c.inflight.Add(-1)
		c.warnFailed(tok.Error())
		return nil, false
	case !c.pc.IsConnectionOpen() || c.attempts.Load() != attempts:
		c.settle(dropped, 1)
		c.inflight.Add(-1)
		return nil, false
	}
	return tok, true
}

// messageID returns the message id paho gave a publish, 0 for none.
func messageID(tok paho.Token) uint16 {
	if pt, ok := tok.(*paho.PublishToken); ok {
		return pt.MessageID()
	}
	return 0
}

// requeue puts back, in order, messages that found the link down.
func (c *Client) requeue(ms []message) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.inflight.Add(-int64(len(ms)))
	for i := len(ms) - 1; i >= 0; i-- {
		if c.q.pushFront(ms[i]) {
			c.settle(dropped, 1)
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
// window. It reports false when the client is stopping; a QoS 0 message is
// then settled as its token stands.
func (c *Client) track(tok paho.Token, qos byte) bool {
	t := tracked{tok: tok, deadline: time.Now().Add(c.cfg.WriteTimeout), qos: qos}
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
		c.stuck.Store(true)
	case <-c.stop:
		c.settleNow(t)
		return false
	}
	if qos > 0 {
		// Let it go untracked: the store settles it.
		c.late.Add(1)
		return true
	}
	// A QoS 0 message is settled by its token, which completes within
	// paho's write timeout: wait on for room.
	select {
	case c.tokens <- t:
		return true
	case <-c.stop:
		c.settleNow(t)
		return false
	}
}

// trackLoop waits on each token in turn: a QoS 0 message until it is
// written or fails, a QoS 1 message until it is acknowledged or its deadline
// passes.
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
		if t.qos == 0 {
			if !c.settleToken(t) {
				c.settleNow(t)
				return
			}
			continue
		}
		c.await(t, timer)
	}
}

// settleToken waits for a QoS 0 message's token and settles the message by
// it. paho completes the token of a message it took while connected within
// its write timeout, written or failed. It reports false, with the message
// not settled, when the client stops first.
func (c *Client) settleToken(t tracked) bool {
	select {
	case <-t.tok.Done():
	case <-c.stop:
		return false
	}
	c.settleNow(t)
	return true
}

// settleNow settles a QoS 0 message by its token as it stands: published
// or failed if it completed, dropped if not; it reports whether it dropped
// it. A QoS 1 message is the store's.
func (c *Client) settleNow(t tracked) (lost bool) {
	if t.qos > 0 {
		return false
	}
	select {
	case <-t.tok.Done():
		if err := t.tok.Error(); err != nil {
			c.settle(failed, 1)
			c.warnFailed(err)
		} else {
			c.settle(published, 1)
		}
	default:
		c.settle(dropped, 1)
		lost = true
	}
	c.inflight.Add(-1)
	return lost
}

// await waits for a QoS 1 token until its deadline, and counts it late
// then. It settles nothing: the store does (see resumeStore).
func (c *Client) await(t tracked, timer *time.Timer) {
	select {
	case <-t.tok.Done():
		return
	default:
	}
	timer.Reset(time.Until(t.deadline))
	select {
	case <-t.tok.Done():
		timer.Stop()
	case <-timer.C:
		c.late.Add(1)
	case <-c.stop:
		timer.Stop()
	}
}

func (c *Client) warnFailed(err error) {
	if n, ok := c.warned.Allow(); ok {
		c.log.Warn().Err(err).Uint64("since_last", n).Msg("publish failed")
	}
}

// onUnrouted gets what the broker sends on no subscription of this run: what
// it had queued for a subscription an earlier run left in the session. It
// goes to the handler given to Unsubscribe, if any, and is acknowledged
// either way, so that it is not delivered again at every connect. (Such
// filters get no route: paho deletes a route on unsubscribing, and a message
// arriving without one is never acknowledged.)
func (c *Client) onUnrouted(pc paho.Client, m paho.Message) {
	c.mu.Lock()
	subs := c.subs
	c.mu.Unlock()
	for _, s := range subs {
		if s.drop && matchFilter(s.filter, m.Topic()) {
			c.handler(s.h)(pc, m)
			return
		}
	}
	c.log.Debug().Str("topic", shorten(m.Topic())).Msg("message on no subscription dropped")
}

// handler adapts a subscription's handler to paho.
func (c *Client) handler(h func(Incoming)) paho.MessageHandler {
	return func(_ paho.Client, m paho.Message) {
		c.received.Add(1)
		h(Incoming{Topic: m.Topic(), Payload: m.Payload(), Retained: m.Retained(), Duplicate: m.Duplicate()})
	}
}

func (c *Client) onConnect(pc paho.Client) {
	n := c.connects.Add(1)
	if !c.store.waitList(c.attempt.Load(), c.cfg.WriteTimeout) {
		c.log.Warn().Msg("paho did not list its store after connecting")
	}
	c.mu.Lock()
	subs := append([]subscription(nil), c.subs...)
	c.mu.Unlock()
	var drop []string
	for _, s := range subs {
		if s.drop {
			drop = append(drop, s.filter)
			continue
		}
		tok := pc.Subscribe(s.filter, c.cfg.QoS, c.handler(s.h))
		if !tok.WaitTimeout(c.cfg.WriteTimeout) {
			c.log.Error().Str("filter", s.filter).Msg("subscribe not acknowledged in time")
		} else if err := tok.Error(); err != nil {
			c.log.Error().Err(err).Str("filter", s.filter).Msg("subscribe failed")
		}
	}
	if len(drop) > 0 {
		tok := pc.Unsubscribe(drop...)
		if !tok.WaitTimeout(c.cfg.WriteTimeout) {
			c.log.Error().Strs("filters", drop).Msg("unsubscribe not acknowledged in time")
		} else if err := tok.Error(); err != nil {
			c.log.Error().Err(err).Strs("filters", drop).Msg("unsubscribe failed")
		}
	}
	c.publishOnline()
	link, up := c.linkUp()
	if !up {
		c.log.Debug().Uint64("connection", n).Msg("broker connection lost before it was set up")
		return
	}
	c.log.Info().Str("url", c.cfg.SafeURL()).Str("client_id", c.cfg.ClientID).Uint64("connection", n).Int("queued", c.Stats().Queued).Msg("broker connected")
	c.signal()
	if c.onLink != nil {
		c.onLink(link)
	}
}

// publishOnline publishes the online state, before anything queued, and
// settles it as sendLoop would.
func (c *Client) publishOnline() {
	if c.state.Topic == "" {
		return
	}
	m := message{topic: c.state.Topic, payload: []byte(c.state.Online), qos: c.cfg.QoS, retain: true}
	c.mu.Lock()
	if c.closed {
		// Stopping: offline is published already, and Stop settles only
		// what it waits for.
		c.mu.Unlock()
		return
	}
	c.onlineWG.Add(1)
	defer c.onlineWG.Done()
	c.accepted.Add(1)
	c.inflight.Add(1)
	c.mu.Unlock()
	attempts := c.attempts.Load()
	if !c.pc.IsConnectionOpen() {
		// Lost already; the next connection states it again.
		c.settle(dropped, 1)
		c.inflight.Add(-1)
		return
	}
	tok, ok := c.hand(m, attempts)
	switch {
	case !ok:
	case m.qos == 0:
		if !c.settleToken(tracked{tok: tok}) {
			c.settleNow(tracked{tok: tok})
		}
	default:
		timer := time.NewTimer(c.cfg.WriteTimeout)
		defer timer.Stop()
		select {
		case <-tok.Done():
		case <-timer.C:
			c.late.Add(1)
			c.log.Warn().Msg("online state not acknowledged in time")
		case <-c.stop:
		}
	}
}

// linkUp records that paho reported a connection up, and returns the link
// and whether it is up.
//
// paho calls OnConnect and OnConnectionLost each on a goroutine of its own,
// so they can run in either order: the loss of one connection can be
// reported after the next connection's OnConnect has run (paho reconnects at
// once after a first loss), or a connection's loss before its OnConnect is
// done. Taking the last report as the state would then leave the link down
// while paho is connected, and the queue waiting for a connect that came
// already. paho reports every connection up once and lost at most once, so
// the link is up while more connections came up than were lost, in any
// order of reports.
func (c *Client) linkUp() (Link, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ups++
	c.reported()
	up := c.ups > c.downs
	if up {
		c.link = Link{Connected: true, Since: time.Now()}
		c.stuck.Store(false)
	}
	return c.link, up
}

// linkDown records that paho reported a connection lost, and returns the
// link and whether it is down: it is not when the report came after the
// next connection was reported up (see linkUp).
func (c *Client) linkDown(err error) (Link, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.downs++
	c.reported()
	down := c.ups <= c.downs
	if down {
		c.link = Link{Connected: false, Since: time.Now(), Err: err}
		c.broadcastRoom() // publishers waiting for room now queue instead
	}
	return c.link, down
}

// reported wakes sendLoop waiting for paho's next report. Call with c.mu
// held.
func (c *Client) reported() {
	close(c.linkEvent)
	c.linkEvent = make(chan struct{})
}

// storeFailed logs an error of the message store.
func (c *Client) storeFailed(op string, err any) {
	if held, ok := c.storeLog.Allow(); ok {
		c.log.Error().Str("dir", c.cfg.StoreDir).Str("op", op).Str("error", fmt.Sprint(err)).Uint64("failed_since_last_error", held).
			Msg("message store failed: messages it should hold will not survive a restart")
	}
}

// onNotification logs failed connection attempts. paho retries them
// forever and says nothing: a broker that refuses the credentials or the
// certificate would otherwise go unmentioned.
//
// The same reason is logged at most every 10 s, a new one at once: a broker
// that refuses a client certificate sends its TLS alert and closes, and the
// close can overtake the alert, so an attempt can fail with EOF and the next
// with the reason, which must not wait for the limit.
func (c *Client) onNotification(_ paho.Client, n paho.ConnectionNotification) {
	f, ok := n.(paho.ConnectionNotificationFailed)
	if !ok {
		return
	}
	why := fmt.Sprint(f.Reason)
	c.mu.Lock()
	again := why == c.refusedWhy
	c.refusedWhy = why
	c.mu.Unlock()
	var held uint64
	if !again {
		held = c.refusedLog.Force()
	} else if held, ok = c.refusedLog.Allow(); !ok {
		return
	}
	c.log.Warn().Err(f.Reason).Str("url", c.cfg.SafeURL()).Uint64("failed_since_last_warning", held).Msg("cannot connect to broker")
}

func (c *Client) onConnectionLost(_ paho.Client, err error) {
	link, down := c.linkDown(err)
	c.log.Warn().Err(err).Str("url", c.cfg.SafeURL()).Bool("reconnected", !down).Msg("broker connection lost")
	if down && c.onLink != nil {
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
	if c.state.Topic != "" {
		c.Publish(c.state.Topic, []byte(c.state.Offline), true)
	}
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
	c.onlineWG.Wait()

	// The tracker is gone: settle the QoS 0 messages it had not taken.
	for len(c.tokens) > 0 {
		if c.settleNow(<-c.tokens) {
			lost++
		}
	}
	c.mu.Lock()
	var left []message
	for {
		m, ok := c.q.pop()
		if !ok {
			break
		}
		left = append(left, m)
	}
	c.inflight.Add(int64(len(left)))
	c.mu.Unlock()
	for _, m := range left {
		// The offline state is not stored: sent after a restart, it could
		// land after that run's online.
		if c.cfg.StoreDir != "" && m.qos > 0 && (c.state.Topic == "" || m.topic != c.state.Topic) && !c.pc.IsConnectionOpen() && !c.store.broken.Load() {
			// paho stores a QoS 1 publish made while it is reconnecting
			// and sends it once connected, after a restart too; it fails
			// at once when it has no message id left (65535 in flight).
			if tok := c.pc.Publish(m.topic, m.qos, m.retain, m.payload); messageID(tok) != 0 {
				c.inflight.Add(-1) // the store holds it: release settles it
				continue
			}
		}
		c.settle(dropped, 1)
		c.inflight.Add(-1)
		lost++
	}
	// What paho holds unacknowledged (in flight when the broker went away
	// or stopped answering) dies with a memory store; a file store sends
	// it after the next start.
	lost += c.store.release(c.cfg.StoreDir != "", func(kept, gone int) {
		c.settle(spilled, uint64(kept))
		c.settle(dropped, uint64(gone))
	})
	if lost > 0 {
		c.log.Warn().Int("lost", lost).Msg("messages not delivered before stop")
	}
	c.pc.Disconnect(250)
	return lost
}

// drained reports that nothing is queued or in flight.
func (c *Client) drained() bool {
	c.mu.Lock()
	n := c.q.len()
	c.mu.Unlock()
	return n == 0 && c.inflight.Load() == 0 && c.store.inFlight() == 0
}

func shorten(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// dialBroker connects to the broker as paho itself would: through the proxy
// the environment names (ALL_PROXY), with TLS for ssl://, tls:// and
// mqtts://, within the dialer's timeout.
func dialBroker(u *url.URL, tc *tls.Config, d *net.Dialer) (net.Conn, error) {
	nc, err := proxy.FromEnvironmentUsing(d).Dial("tcp", u.Host)
	if err != nil {
		return nil, err
	}
	switch u.Scheme {
	case "ssl", "tls", "mqtts":
	default:
		return nc, nil
	}
	if tc == nil {
		tc = &tls.Config{}
	}
	if tc.ServerName == "" {
		tc = tc.Clone()
		tc.ServerName = u.Hostname()
	}
	tlsConn := tls.Client(nc, tc)
	if d.Timeout > 0 {
		nc.SetDeadline(time.Now().Add(d.Timeout))
	}
	if err := tlsConn.Handshake(); err != nil {
		nc.Close()
		return nil, err
	}
	nc.SetDeadline(time.Time{})
	return tlsConn, nil
}

// wireBuffer is the size of wireConn's read buffer, and how many bytes it
// holds for writing before a Write waits.
const wireBuffer = 64 << 10

// wireCloseGrace bounds how long Close waits for what is held to be written.
const wireCloseGrace = time.Second

// wireConn is the broker connection as paho uses it. paho reads a packet
// with three reads or more (its type, its length a byte at a time, the rest)
// and writes each packet with a write of its own: a system call each, and on
// a busy link most of what the client costs. wireConn reads through a
// buffer, and a goroutine of its own writes out, in one system call, every
// packet paho handed over since its last write. A packet goes out at once
// when the link is idle; when it is busy, packets share system calls.
// Nothing waits for company.
//
// A Write returns once the packet is held, as one returns once the kernel
// holds it: a QoS 1 message stays in paho's store until the broker
// acknowledges it, whatever happens to the connection. A write that fails or
// takes longer than the write timeout closes the connection, and paho
// reconnects.
type wireConn struct {
	net.Conn
	r       *bufio.Reader
	timeout time.Duration // bounds each write to the socket

	mu       sync.Mutex
	out      []byte // handed over by paho, not yet written
	spare    []byte // the buffer of the last write, for reuse
	err      error  // why writing ended; every later Write returns it
	closing  bool
	busy     bool          // a write to the socket is under way
	deadline time.Time     // paho's write deadline, for a Write that waits for room
	waiting  int           // Writes waiting for room
	room     chan struct{} // closed when out is written, or writing ends; then replaced

	wake      chan struct{} // out has bytes, or Close was called
	done      chan struct{} // the writer has ended
	closeOnce sync.Once
	closeErr  error
}

func newWireConn(nc net.Conn, timeout time.Duration) *wireConn {
	c := &wireConn{
		Conn:    nc,
		r:       bufio.NewReaderSize(nc, wireBuffer),
		timeout: timeout,
		room:    make(chan struct{}),
		wake:    make(chan struct{}, 1),
		done:    make(chan struct{}),
	}
	go c.writeLoop()
	return c
}

// Read reads through the buffer. paho reads on one goroutine only.
func (c *wireConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// Write holds p for the writer, waiting while too much is held already, at
// most until the write deadline. A packet larger than the buffer (the
// vehicle list of a big account) is not copied: once what is held has been
// written, Write writes it itself.
func (c *wireConn) Write(p []byte) (int, error) {
	var timer *time.Timer
	large := len(p) > wireBuffer
	c.mu.Lock()
	for (len(c.out) >= wireBuffer || large && (len(c.out) > 0 || c.busy)) && c.err == nil && !c.closing {
		room, deadline := c.room, c.deadline
		c.waiting++
		c.mu.Unlock()
		var timeout <-chan time.Time
		if !deadline.IsZero() {
			if timer == nil {
				timer = time.NewTimer(time.Until(deadline))
				defer timer.Stop()
			}
			timeout = timer.C
		}
		select {
		case <-room:
			c.mu.Lock()
			c.waiting--
		case <-timeout:
			c.mu.Lock()
			c.waiting--
			c.mu.Unlock()
			return 0, os.ErrDeadlineExceeded
		}
	}
	switch {
	case c.err != nil:
		err := c.err
		c.mu.Unlock()
		return 0, err
	case c.closing:
		c.mu.Unlock()
		return 0, net.ErrClosed
	case large:
		c.busy = true
		c.mu.Unlock()
		n, err := c.write(p, c.timeout)
		c.written(err)
		c.signal()
		return n, err
	}
	c.out = append(c.out, p...)
	c.mu.Unlock()
	c.signal()
	return len(p), nil
}

// write writes b to the socket within timeout.
func (c *wireConn) write(b []byte, timeout time.Duration) (int, error) {
	c.Conn.SetWriteDeadline(time.Now().Add(timeout))
	return c.Conn.Write(b)
}

// written ends a write to the socket: it wakes Writes waiting for room, and
// after a failed write closes the connection (paho's reader fails next, and
// paho reconnects).
func (c *wireConn) written(err error) {
	c.mu.Lock()
	c.busy = false
	if err != nil && c.err == nil {
		c.err = err
	}
	if c.waiting > 0 || err != nil {
		close(c.room)
		c.room = make(chan struct{})
	}
	c.mu.Unlock()
	if err != nil {
		c.Conn.Close()
	}
}

func (c *wireConn) signal() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// writeLoop writes what is held until Close or a failed write.
func (c *wireConn) writeLoop() {
	defer close(c.done)
	for {
		c.mu.Lock()
		for len(c.out) == 0 || c.busy {
			if (c.closing || c.err != nil) && !c.busy {
				c.mu.Unlock()
				return
			}
			c.mu.Unlock()
			<-c.wake
			c.mu.Lock()
		}
		buf := c.out
		c.out = c.spare[:0]
		c.busy = true
		timeout := c.timeout
		if c.closing {
			timeout = min(timeout, wireCloseGrace)
		}
		c.mu.Unlock()

		_, err := c.write(buf, timeout)
		c.spare = buf[:0] // only this goroutine reads or writes spare
		c.written(err)
		if err != nil {
			return
		}
	}
}

// SetWriteDeadline sets the deadline of a Write that waits for room; the
// writer bounds each of its writes by the write timeout.
func (c *wireConn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	c.deadline = t
	c.mu.Unlock()
	return nil
}

// SetDeadline sets the read deadline and the write deadline.
func (c *wireConn) SetDeadline(t time.Time) error {
	c.SetWriteDeadline(t)
	return c.Conn.SetReadDeadline(t)
}

// Close writes out what is held, for at most wireCloseGrace, and closes the
// connection.
func (c *wireConn) Close() error {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.closing = true
		c.mu.Unlock()
		c.signal()
		t := time.NewTimer(wireCloseGrace)
		select {
		case <-c.done:
		case <-t.C:
		}
		t.Stop()
		c.closeErr = c.Conn.Close()
		<-c.done
		c.mu.Lock()
		if c.err == nil {
			c.err = net.ErrClosed
		}
		close(c.room)
		c.room = make(chan struct{})
		c.mu.Unlock()
	})
	return c.closeErr
}
