// Package mqtt is the broker side of exlive2mqtt: a paho.mqtt.golang client
// used the way its maintainers advise, with TLS, a last will, subscriptions
// made on every connect, a bounded outage queue, topic validation that
// keeps an invalid topic from ever reaching the broker, and a message the
// broker closes the connection over found and dropped rather than sent
// again forever (see poisonStrikes).
//
// Files: client.go (New, Publish, Stats), send.go (the queue to paho),
// track.go (outcomes, paho's tokens), link.go (paho's callbacks, linkState),
// poison.go, stop.go, store.go (paho's store, wrapped), wire.go (the
// batching connection), direct.go (PUBLISH packets written straight onto
// it), own.go (QoS 1 messages so written, kept until acknowledged), ids.go
// (their message ids), dial.go, queue.go, topic.go, config.go.
//
// Publish never blocks for long: while the broker keeps up it waits for room
// in a short queue (backpressure, so nothing is dropped under load); while
// the broker is away, or has made no progress for WriteTimeout, messages
// queue up to QueueLimit and what overflows is dropped oldest first and
// counted. Messages are written straight onto the connection, by Publish
// itself when nothing is queued, else by one goroutine that takes the
// queue: a QoS 0 message as it is (see direct.go), a QoS 1 message, with
// the memory store, under a message id of the client's own, kept until its
// acknowledgement and sent again after a reconnect (see own.go). What
// cannot go that way (a packet larger than the connection's buffer,
// websockets, a file store) goes through paho, whose tokens another
// goroutine waits on, a QoS 1 message's until its deadline, to count late
// acknowledgements.
//
// Every message the client accepts ends in exactly one of published,
// failed, dropped or spilled, or is still queued or in flight: see settle.
package mqtt

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/exlive2mqtt/exlive2mqtt/internal/ratelimit"
	"github.com/rs/zerolog"
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
	Late       uint64 // QoS 1 not acknowledged within WriteTimeout; still in flight (sent again after a reconnect), not an outcome
	Invalid    uint64 // refused before publishing: not a valid topic, or one the broker refused (see Poison); never accepted
	Poison     uint64 // dropped because the broker closed the connection over each, or over a recent message on its topic (see poisonStrikes); in Dropped when accepted by this run
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

	ls *linkState // up, down, stuck: see linkState

	// wire is the connection of the last connection attempt, when it is a
	// wireConn: QoS 0 messages are written onto it (see direct.go).
	wire atomic.Pointer[wireConn]

	mu         sync.Mutex
	q          queue
	closed     bool          // Stop has begun
	handing    bool          // sendLoop is handing a batch on: Publish must not overtake it
	room       chan struct{} // closed when the queue has room; then replaced
	subs       []subscription
	started    bool
	refusedWhy string // the reason of the last failed connection attempt

	wake     chan struct{} // the sender has work
	tokens   chan tracked
	inflight atomic.Int64  // taken from the queue and not yet settled or held by the store
	moved    chan struct{} // a message was settled or let go of (see letGo); Stop waits on it
	stop     chan struct{}
	wg       sync.WaitGroup
	onlineWG sync.WaitGroup // publishOnline under way; Stop waits for it

	accepted, published, failed, dropped, spilled atomic.Uint64 // see settle
	late, invalid, received, connects, poison     atomic.Uint64
	refused                                       map[string]refusal // topics the broker dropped the connection over, under mu
	poisonLog                                     ratelimit.Every
	warned                                        ratelimit.Every
	refusedLog                                    ratelimit.Every
	storeLog                                      ratelimit.Every
	idLog                                         ratelimit.Every
}

type subscription struct {
	filter string
	h      func(Incoming)
	drop   bool // unsubscribe instead (see Unsubscribe)
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
		cfg:     cfg,
		log:     log,
		state:   state,
		onLink:  onLink,
		q:       queue{limit: cfg.QueueLimit},
		ls:      newLinkState(),
		room:    make(chan struct{}),
		wake:    make(chan struct{}, 1),
		moved:   make(chan struct{}, 1),
		refused: make(map[string]refusal),
		tokens:  make(chan tracked, cfg.InFlight),
		stop:    make(chan struct{}),
	}
	var store paho.Store = paho.NewOrderedMemoryStore()
	if cfg.StoreDir != "" {
		store = paho.NewFileStore(cfg.StoreDir)
	}
	c.store = newResumeStore(store, state.Topic, cfg.InFlight, c.storeFailed, func(o outcome) { c.settle(o, 1) })
	c.store.onOwn = func(id uint16) {
		if n, ok := c.idLog.Allow(); ok {
			c.log.Warn().Uint16("message_id", id).Uint64("since_last", n).
				Msg("paho numbered a packet with the id of a message the client wrote itself: that message is sent again under a new id")
		}
		c.signal()
	}
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
			c.onPoison()
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
			w := newWireConn(nc, cfg.WriteTimeout)
			c.wire.Store(w)
			return w, nil
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
	return c.ls.get()
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
	st.Poison = c.poison.Load()
	st.Received = c.received.Load()
	st.Reconnects = max(c.connects.Load(), 1) - 1
	return st
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
	var attempts uint64
	direct := (qos == 0 || c.cfg.StoreDir == "") && c.ls.keepingUpNow()
	if direct {
		// Read before ready, as sendLoop does (see hand).
		attempts = c.attempts.Load()
		direct = c.ready()
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return ErrClosed
	}
	if c.refusedTopic(topic) {
		c.mu.Unlock()
		c.invalid.Add(1)
		return fmt.Errorf("%w: %q", ErrTopicRefused, shorten(topic))
	}
	if c.q.len() >= highWater {
		c.waitRoom()
		if c.closed {
			c.mu.Unlock()
			return ErrClosed
		}
	}
	c.accepted.Add(1)
	if direct && c.q.len() == 0 && !c.handing {
		// Nothing queued or being handed on to overtake: write it now,
		// without waking the sender (see direct.go).
		c.inflight.Add(1)
		if qos == 0 && c.direct(m, attempts, false) || qos > 0 && c.direct1(m, false) == ownSent {
			c.mu.Unlock()
			return nil
		}
		c.inflight.Add(-1)
	}
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
