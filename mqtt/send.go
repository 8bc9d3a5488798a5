package mqtt

import (
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// waitRoom waits, with c.mu held, until the queue is below the high water
// mark, the link goes down, or WriteTimeout passes; then the broker is taken
// to be stuck and nobody waits for it any more until it makes progress.
func (c *Client) waitRoom() {
	var timer *time.Timer
	for c.q.len() >= highWater && !c.closed {
		ok, changed := c.ls.keepingUp()
		if !ok {
			return
		}
		if timer == nil {
			timer = time.NewTimer(c.cfg.WriteTimeout)
			defer timer.Stop()
		}
		room := c.room
		c.mu.Unlock()
		select {
		case <-room:
		case <-changed:
		case <-timer.C:
			c.stall()
		}
		c.mu.Lock()
	}
}

// stall reports to the link state that the broker made no progress for
// WriteTimeout: publishers queue instead of waiting until it does.
func (c *Client) stall() {
	if c.ls.stall() {
		c.log.Warn().Dur("write_timeout", c.cfg.WriteTimeout).Msg("broker is not keeping up: queueing instead of waiting")
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
		for c.q.len() == 0 && !c.store.resending() || !c.ls.connected() {
			c.mu.Unlock()
			select {
			case <-c.wake:
			case <-c.stop:
				return
			}
			c.mu.Lock()
		}
		if c.store.resending() {
			// A new connection: the client's own messages it has not
			// acknowledged go first (see own.go).
			c.handing = true
			event, listed := c.ls.next(), c.store.listChanged()
			c.mu.Unlock()
			done := c.resendOwn()
			c.mu.Lock()
			c.handing = false
			c.mu.Unlock()
			if !done {
				// Lost, or a new connection not listed yet: wait for
				// paho's next word, or its list, rather than spin.
				select {
				case <-event:
				case <-listed:
				case <-c.stop:
					return
				}
			}
			continue
		}
		batch = batch[:0]
		for len(batch) < cap(batch) {
			m, ok := c.q.pop()
			if !ok {
				break
			}
			if c.refusedTopic(m.topic) {
				// Queued before the broker refused its topic.
				c.poison.Add(1)
				c.settle(dropped, 1)
				continue
			}
			batch = append(batch, m)
		}
		c.inflight.Add(int64(len(batch)))
		c.handing = true
		if c.q.len() < highWater {
			c.broadcastRoom()
		}
		event := c.ls.next()
		c.mu.Unlock()

	send:
		for i, m := range batch {
			attempts := c.attempts.Load()
			listed := c.store.listChanged()
			if !c.ready() {
				// paho lost the connection, or connected again, and has
				// not said so yet: wait for its next word (see linkState),
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
			sent := m.qos == 0 && c.direct(m, attempts, true)
			if !sent && m.qos > 0 {
				switch c.sendOwn(m) {
				case ownSent:
					sent = true
				case ownLater:
					// A new connection listed with messages to write again
					// first (the loop's top does), or the connection failed
					// or is not listed yet: wait as for ready.
					c.requeue(batch[i:])
					if !c.store.resending() {
						select {
						case <-event:
						case <-listed:
						case <-c.stop:
						}
					}
					break send
				case ownStop:
					// Stop stores or counts what is queued.
					c.requeue(batch[i:])
					c.mu.Lock()
					c.handing = false
					c.mu.Unlock()
					return
				}
			}
			if sent {
				if time.Since(start) < c.cfg.WriteTimeout {
					c.progress()
				}
				continue
			}
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
		c.mu.Lock()
		c.handing = false
		c.mu.Unlock()
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
		c.letGo(1)
		return tok, true
	case m.qos > 0:
		// No message id, not stored: not connected, or all 65535 ids
		// are in flight.
		c.settle(failed, 1)
		c.letGo(1)
		c.warnFailed(tok.Error())
		return nil, false
	case !c.pc.IsConnectionOpen() || c.attempts.Load() != attempts:
		c.settle(dropped, 1)
		c.letGo(1)
		return nil, false
	}
	return tok, true
}

// direct writes m, a QoS 0 message taken from the queue or about to be
// queued, onto the connection (see direct.go) and settles it, unless it must
// go another way: it reports false for a connection that is not a wireConn,
// a packet larger than its buffer, or, unless wait is set, a full buffer.
// The caller has read attempts before it found paho ready, as for hand: the
// message is published only if paho was connected throughout.
func (c *Client) direct(m message, attempts uint64, wait bool) bool {
	w := c.wire.Load()
	if w == nil || publishSize(m) > wireBuffer {
		return false
	}
	err := w.publish0(m, wait)
	if err == errNoRoom {
		return false
	}
	if err != nil || !c.pc.IsConnectionOpen() || c.attempts.Load() != attempts {
		c.settle(dropped, 1)
	} else {
		c.settle(published, 1)
	}
	c.letGo(1)
	return true
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
	c.letGo(len(ms))
	for i := len(ms) - 1; i >= 0; i-- {
		if c.q.pushFront(ms[i]) {
			c.settle(dropped, 1)
		}
	}
}

// progress records that the broker took a message in good time.
func (c *Client) progress() {
	if c.ls.progress() {
		c.log.Info().Msg("broker keeping up again")
	}
}
