package mqtt

import (
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

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
//   - for QoS 1 written straight onto the connection (see own.go), the
//     store too, beside paho's: published when the PUBACK deletes its id,
//     dropped by Stop (or, should paho take its id, by renumber when no
//     other id is free);
//   - for QoS 0 written straight onto the connection (see direct), nobody:
//     it is settled as it is written;
//   - for QoS 0 handed to paho (a packet larger than wireConn's buffer, a
//     websocket), its token, waited on by trackLoop, or by Stop.
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
	c.poke()
}

// letGo records that the sender, the tracker or Stop no longer holds n
// messages it took: each is settled, queued again, or held by the store.
// It decrements after the holder has passed the message on, then wakes Stop,
// so Stop, waking, sees the message where it went.
func (c *Client) letGo(n int) {
	c.inflight.Add(-int64(n))
	c.poke()
}

// poke wakes Stop waiting for the client to drain (see drained). With
// nobody waiting the channel stays full, and a poke costs one check.
func (c *Client) poke() {
	select {
	case c.moved <- struct{}{}:
	default:
	}
}

type tracked struct {
	tok      paho.Token
	deadline time.Time
	qos      byte
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
		c.stall()
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
	sweep := time.NewTicker(time.Second)
	defer sweep.Stop()
	for {
		var t tracked
		select {
		case t = <-c.tokens:
		case <-sweep.C:
			// The client's own QoS 1 messages have no token (see own.go).
			c.late.Add(c.store.sweepLate(c.cfg.WriteTimeout))
			continue
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
	c.letGo(1)
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
