package mqtt

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

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
	link, up := c.ls.up()
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
		c.letGo(1)
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

// linkState is the one owner of the broker link's state: up or down, as
// paho reports connects and losses, and stuck, when the broker made no
// progress for WriteTimeout. paho's callbacks, the sender and publishers
// each report what they saw (up, down, stall, progress); the state moves
// only here, under one lock, and every report wakes those waiting for the
// next one (next).
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
type linkState struct {
	mu         sync.Mutex
	link       Link
	ups, downs uint64        // connections up and lost, as paho reported them
	changed    chan struct{} // closed at every report; then replaced
	// stuck is written under mu; read without it on the sender's path,
	// where every message reports progress.
	stuck atomic.Bool
}

func newLinkState() *linkState {
	return &linkState{link: Link{Since: time.Now()}, changed: make(chan struct{})}
}

// get returns the link.
func (s *linkState) get() Link {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.link
}

// connected reports whether the link is up.
func (s *linkState) connected() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.link.Connected
}

// keepingUp reports whether the link is up and not stuck, with the channel
// closed at the next report, read together so that no report falls between.
func (s *linkState) keepingUp() (bool, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.link.Connected && !s.stuck.Load(), s.changed
}

// keepingUpNow reports whether the link is up and not stuck.
func (s *linkState) keepingUpNow() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.link.Connected && !s.stuck.Load()
}

// next returns a channel closed at the next report.
func (s *linkState) next() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

// up records that paho reported a connection up, and returns the link and
// whether it is up. A new connection is not stuck.
func (s *linkState) up() (Link, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ups++
	up := s.ups > s.downs
	if up {
		s.link = Link{Connected: true, Since: time.Now()}
		s.stuck.Store(false)
	}
	s.reported()
	return s.link, up
}

// down records that paho reported a connection lost, and returns the link
// and whether it is down: it is not when the report came after the next
// connection was reported up.
func (s *linkState) down(err error) (Link, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.downs++
	down := s.ups <= s.downs
	if down {
		s.link = Link{Connected: false, Since: time.Now(), Err: err}
	}
	s.reported()
	return s.link, down
}

// stall records that the broker made no progress for WriteTimeout, and
// reports whether that is news.
func (s *linkState) stall() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stuck.Load() {
		return false
	}
	s.stuck.Store(true)
	s.reported()
	return true
}

// progress records that the broker took a message in good time, and
// reports whether it was stuck until then.
func (s *linkState) progress() bool {
	if !s.stuck.Load() {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.stuck.Load() {
		return false
	}
	s.stuck.Store(false)
	s.reported()
	return true
}

// reported wakes those waiting for the next report. Call with s.mu held.
func (s *linkState) reported() {
	close(s.changed)
	s.changed = make(chan struct{})
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
	link, down := c.ls.down(err)
	c.log.Warn().Err(err).Str("url", c.cfg.SafeURL()).Bool("reconnected", !down).Msg("broker connection lost")
	if down && c.onLink != nil {
		c.onLink(link)
	}
}
