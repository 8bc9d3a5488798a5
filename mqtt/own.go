package mqtt

import (
	"cmp"
	"slices"
	"time"
)

// QoS 1 messages written straight onto the connection: the client's own.
//
// paho turns each QoS 1 publish into a token, a packet stored and handed to
// its writer goroutine, and the client's tracker waited on the token: three
// goroutines woken for every message, which the acknowledgement wakes again.
// With the memory store (no MQTT_STORE_DIR), the client writes a QoS 1
// PUBLISH itself, as it does QoS 0 (see direct.go), under a message id of
// its own (see ids.go), and keeps the message until its PUBACK: paho's
// reader and router still read the acknowledgement and hand it to the
// store's Del, which settles the message published.
//
// The client's messages are not in paho's store: paho would resend them
// after a reconnect claiming their ids, and its id counter would jump to
// them while the client still used the ids after them. The client resends
// them itself instead: each list paho takes of its store (once per
// connection, see resumeStore.All) queues the client's unacknowledged
// messages, oldest first, and the sender writes them, flagged as sent
// before, on that connection, ahead of anything new. A message is either in
// a connection's list or written on it after the list, never both (listMu):
// written twice on one connection, it would be acknowledged twice, and the
// second acknowledgement could settle a later message under the same id.
//
// Poison (see poisonStrikes), late acknowledgements, Stop and the counters
// treat them as paho's stored messages; a file store (MQTT_STORE_DIR) keeps
// everything on paho's way, so that what is unacknowledged at stop is
// stored for the next start.

// ownMsg is a QoS 1 message the client wrote itself, unacknowledged.
type ownMsg struct {
	m    message
	key  string // paho's store key for its id, as sendOrder and Del know it
	seq  uint64 // order of storing
	at   int64  // when stored: nanoseconds since storeEpoch
	late bool   // counted late (see sweepLate)
}

// ownResend is one of the client's messages to write again.
type ownResend struct {
	m  message
	id uint16
}

// storeEpoch is the origin of ownMsg.at.
var storeEpoch = time.Now()

func sinceStoreEpoch() int64 { return int64(time.Since(storeEpoch)) }

// putOwn keeps m under a free message id, which it returns, or reports
// why not: ownFull while window messages of the client's own are
// unacknowledged or no id is free, ownLater while older ones wait to be
// written again (they go first). The caller holds listMu.
func (s *resumeStore) putOwn(m message) (uint16, ownResult) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.released:
		return 0, ownPaho
	case len(s.resendQ) > 0:
		return 0, ownLater
	case len(s.own) >= s.window:
		return 0, ownFull
	}
	id, ok := s.ids.take()
	if !ok {
		s.noIDs = true // until one of the client's is let go
		return 0, ownFull
	}
	s.ownSeq++
	key := outboundKey(id)
	s.own[id] = ownMsg{m: m, key: key, seq: s.ownSeq, at: sinceStoreEpoch()}
	s.order.stored(key)
	return id, ownSent
}

// dropOwn forgets the client's message under id, acknowledged or found
// poison, and reports whether there was one. Call with s.mu held.
func (s *resumeStore) dropOwn(id uint16) (ownMsg, bool) {
	o, ok := s.own[id]
	if !ok {
		return o, false
	}
	delete(s.own, id)
	s.ids.clear(id)
	s.order.acked(o.key)
	s.noIDs = false
	s.roomForOwn()
	return o, true
}

// roomForOwn wakes a sender waiting for room in the window. Call with s.mu
// held.
func (s *resumeStore) roomForOwn() {
	select {
	case s.ownRoom <- struct{}{}:
	default:
	}
}

// renumber moves the client's message under id, which paho has just
// numbered a packet of its own with, to a free id, to be written again
// under it: the broker may deliver it twice, as QoS 1 allows. msgIDs keeps
// this from happening (see TestMsgIDsKeepClearOfPaho); should it happen,
// no message is lost and onOwn reports it. With no id free the message is
// dropped. Call with s.mu held.
func (s *resumeStore) renumber(id uint16) {
	o := s.own[id]
	delete(s.own, id) // the id is paho's now: not cleared
	s.order.acked(o.key)
	if nid, ok := s.ids.take(); ok {
		o.key = outboundKey(nid)
		s.own[nid] = o
		s.order.stored(o.key)
		s.resendQ = append(s.resendQ, nid)
	} else {
		s.settle(dropped)
		s.roomForOwn()
	}
	if s.onOwn != nil {
		s.onOwn(id)
	}
}

// queueResend queues every message of the client's own to be written again,
// oldest first: paho is listing its store for a new connection. Call with
// s.mu held.
func (s *resumeStore) queueResend() {
	s.resendQ = s.resendQ[:0]
	for id := range s.own {
		s.resendQ = append(s.resendQ, id)
	}
	slices.SortFunc(s.resendQ, func(a, b uint16) int {
		return cmp.Compare(s.own[a].seq, s.own[b].seq)
	})
}

// resending reports whether messages of the client's own wait to be
// written again.
func (s *resumeStore) resending() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.resendQ) > 0
}

// takeResend appends to b up to n of the messages queued to be written
// again, and takes them off the queue. The caller holds listMu.
func (s *resumeStore) takeResend(b []ownResend, n int) []ownResend {
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.resendQ) > 0 && len(b) < n {
		id := s.resendQ[0]
		s.resendQ = s.resendQ[1:]
		if o, ok := s.own[id]; ok {
			b = append(b, ownResend{m: o.m, id: id})
			s.order.resent(o.key)
		}
	}
	if len(s.resendQ) == 0 {
		s.resendQ = nil
	}
	return b
}

// ownRoomNow reports whether the window has room for a message of the
// client's own, and a free id, and returns a channel signalled when one of
// them is settled.
func (s *resumeStore) ownRoomNow() (bool, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.own) < s.window && !s.noIDs, s.ownRoom
}

// sweepLate counts the client's messages unacknowledged timeout after they
// were stored, each once (paho's are counted by the client's tracker).
func (s *resumeStore) sweepLate(timeout time.Duration) (n uint64) {
	now := sinceStoreEpoch()
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, o := range s.own {
		if !o.late && now-o.at > int64(timeout) {
			o.late = true
			s.own[id] = o
			n++
		}
	}
	return n
}

// ownResult is what became of a message offered to direct1.
type ownResult int

const (
	ownSent  ownResult = iota // written (or kept to be written again)
	ownPaho                   // to go through paho
	ownFull                   // to wait for an acknowledgement: the window is full
	ownLater                  // to wait: the client's older messages are written again first
	ownStop                   // the client is stopping
)

// direct1 writes m, a QoS 1 message taken from the queue or about to be
// queued, onto the connection under an id of the client's own, and keeps it
// until its acknowledgement (see own.go). The message goes through paho
// with a file store, a packet larger than the connection's buffer, or no
// wireConn; it waits, or the caller queues it, while the connection is not
// listed yet, while the window is full, while older messages are written
// again, and, unless wait is set, while the buffer is full.
func (c *Client) direct1(m message, wait bool) ownResult {
	if c.cfg.StoreDir != "" || publishSize(m) > wireBuffer || c.wire.Load() == nil {
		return ownPaho
	}
	s := c.store
	for {
		s.listMu.Lock()
		w, err := c.listedWire()
		if err == nil {
			id, res := s.putOwn(m)
			if res != ownSent {
				s.listMu.Unlock()
				return res
			}
			c.letGo(1) // the store holds it
			// An error leaves it kept: the next connection's list has it
			// written again.
			w.add(m, id, false)
			s.listMu.Unlock()
			return ownSent
		}
		s.listMu.Unlock()
		if err != errNoRoom || !wait {
			return ownLater
		}
		w.awaitRoom(true)
	}
}

// listedWire returns the connection, when paho has listed its store since it
// began the connection attempt, and whether a packet can be held for its
// writer now (see wireConn.awaitRoom). The caller holds the store's listMu.
func (c *Client) listedWire() (*wireConn, error) {
	// The wire before the mark: a connection attempt sets the mark, then
	// the wire, and lists the store once connected.
	w := c.wire.Load()
	if w == nil || !c.store.listedSince(c.attempt.Load()) {
		return nil, errNotOpened
	}
	return w, w.awaitRoom(false)
}

// resendOwn writes again, flagged as sent before, the client's messages
// queued by the last list of paho's store (see own.go). It reports false
// when it could not write them all: the connection failed, or a new one is
// not listed yet.
func (c *Client) resendOwn() bool {
	s := c.store
	batch := make([]ownResend, 0, 64)
	for {
		s.listMu.Lock()
		w, err := c.listedWire()
		if err == nil {
			batch = s.takeResend(batch[:0], cap(batch))
			for _, r := range batch {
				if w.add(r.m, r.id, true) != nil {
					break // the next connection's list has them written again
				}
			}
			s.listMu.Unlock()
			clear(batch)
			if len(batch) == 0 {
				return true
			}
			continue
		}
		s.listMu.Unlock()
		if err != errNoRoom {
			return false
		}
		w.awaitRoom(true)
	}
}

// sendOwn writes m, a QoS 1 message taken from the queue, by direct1,
// waiting while the window is full: a message of the client's own is never
// handed to paho while others wait for their acknowledgement, as paho would
// number it from the ids the client keeps clear (see msgIDs). A broker that
// acknowledges nothing for WriteTimeout stalls the link: publishers then
// queue (and the queue drops its oldest beyond QueueLimit).
func (c *Client) sendOwn(m message) ownResult {
	var timer *time.Timer
	for {
		listed := c.store.listChanged()
		res := c.direct1(m, true)
		if res != ownFull {
			return res
		}
		room, roomCh := c.store.ownRoomNow()
		if room {
			continue // an acknowledgement came in between
		}
		if timer == nil {
			timer = time.NewTimer(c.cfg.WriteTimeout)
			defer timer.Stop()
		}
		select {
		case <-roomCh:
		case <-listed:
			// A new connection: its list queued the window's messages to
			// be written again, which direct1 now reports.
		case <-timer.C:
			c.stall()
		case <-c.stop:
			return ownStop
		}
	}
}
