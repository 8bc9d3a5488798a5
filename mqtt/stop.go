package mqtt

import "context"

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

	// Every change that can drain the client (a message settled, or let go
	// of by whoever held it) pokes c.moved after it is made: a poke between
	// the check and the wait stays in the channel.
	for !c.drained() {
		select {
		case <-c.moved:
			continue
		case <-ctx.Done():
		}
		break
	}
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
				c.letGo(1) // the store holds it: release settles it
				continue
			}
		}
		c.settle(dropped, 1)
		c.letGo(1)
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
