package mqtt

import (
	"strings"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
)

// resumeStore wraps paho's store to tell when paho has taken its list of
// stored messages to resend after a connect, and to tell when the broker
// has acknowledged a QoS 1 message.
//
// paho calls OnConnect on a goroutine of its own before it resumes: a
// message published from OnConnect can land in the store before paho lists
// it, and is then sent twice, the second time while the first is still being
// written (see Get). paho lists the store once per connect, after each
// connection attempt; waiting for that list before publishing closes the
// window (see also Client.ready).
//
// A QoS 1 publish is put in the store under "o.<message id>" before it is
// sent, and deleted when its PUBACK arrives, and at no other time: the store,
// not the token, says when a message was acknowledged. paho also completes a
// token, with no error, when it sends the message again after a reconnect
// (it gives the message a new token), and fails one whose hand-over timed
// out while the message stays stored and is sent after the next reconnect.
// So the store settles the QoS 1 messages this run put in it: published on
// the delete, or spilled or dropped at stop (see release).
//
// It also keeps paho's file store from crashing the program: that store
// panics on any I/O error (a store directory that is read-only, not a
// directory, or on a full disk). Each method recovers, reports the error to
// failed, and goes on as if the message were not stored.
type resumeStore struct {
	paho.Store
	failed     func(op string, err any)
	settle     func(outcome) // a message of this run in the store, or the client's own, was acknowledged (published) or lost (dropped)
	stateTopic string
	errs       atomic.Uint64 // errors so far
	broken     atomic.Bool   // Open failed: paho's file store then stores nothing
	// listMu is held by All, and by the client writing its own messages
	// (see own.go): each is either in a connection's list or written on
	// the connection after it.
	listMu   sync.Mutex
	mu       sync.Mutex
	lists    uint64             // calls to All so far
	changed  chan struct{}      // closed on each call to All
	held     map[string]heldMsg // QoS 1 publishes this run put in the store, by key, not yet settled
	order    sendOrder          // for finding a poison message (see poisonStrikes)
	released bool               // release was called: the held messages are settled

	// The client's own QoS 1 messages (see own.go), not in paho's store.
	ids     msgIDs                  // outbound ids in use, paho's counter (see ids.go)
	own     map[uint16]ownMsg       // unacknowledged, by id
	ownSeq  uint64                  // messages kept so far
	window  int                     // most unacknowledged at once
	noIDs   bool                    // no id was free at the last try
	ownRoom chan struct{}           // signalled when one is settled
	resendQ []uint16                // to write again on the current connection, oldest first
	onOwn   func(renumbered uint16) // see renumber
}

// heldMsg is a QoS 1 publish of this run in paho's store.
type heldMsg struct {
	stored bool // the underlying store took it (a file store may have failed)
	state  bool // it is the bridge's state, never kept past a stop
}

// outboundPrefix is paho's key prefix of packets it sends.
const outboundPrefix = "o."

func newResumeStore(s paho.Store, stateTopic string, window int, failed func(op string, err any), settle func(outcome)) *resumeStore {
	return &resumeStore{Store: s, failed: failed, settle: settle, stateTopic: stateTopic,
		changed: make(chan struct{}), held: make(map[string]heldMsg),
		order: sendOrder{pending: make(map[string]uint64)},
		own:   make(map[uint16]ownMsg), window: window, ownRoom: make(chan struct{}, 1)}
}

// guard recovers a panic of the store, deferred by each method.
func (s *resumeStore) guard(op string) {
	if r := recover(); r != nil {
		s.errs.Add(1)
		if op == "open" {
			s.broken.Store(true)
		}
		s.failed(op, r)
	}
}

// all lists the stored keys.
func (s *resumeStore) all() []string {
	defer s.guard("list")
	return s.Store.All()
}

// All lists the stored keys and notes that it did. paho resends each
// outbound one, claiming its id (see msgIDs.listing); the client's own
// messages are queued to be written again by the client (see own.go).
func (s *resumeStore) All() []string {
	s.listMu.Lock()
	defer s.listMu.Unlock()
	keys := s.all()
	ids := make([]uint16, 0, len(keys))
	for _, k := range keys {
		if id, ok := outboundID(k); ok {
			ids = append(ids, id)
		}
	}
	s.mu.Lock()
	s.ids.listing(ids)
	s.lists++
	s.order.listed()
	s.queueResend()
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
	return keys
}

// mark returns the number of lists so far.
func (s *resumeStore) mark() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lists
}

// listedSince reports whether the store has been listed after mark.
func (s *resumeStore) listedSince(mark uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lists > mark
}

// listChanged returns a channel closed at the next list.
func (s *resumeStore) listChanged() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

// waitList waits until the store has been listed after mark, at most
// timeout.
func (s *resumeStore) waitList(mark uint64, timeout time.Duration) bool {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		s.mu.Lock()
		n, ch := s.lists, s.changed
		s.mu.Unlock()
		if n > mark {
			return true
		}
		select {
		case <-ch:
		case <-timer.C:
			return false
		}
	}
}

// Open, Put, Get, Del, Close and Reset pass through, recovering; declared so
// the wrapper is a complete paho.Store even if paho's interface grows.
func (s *resumeStore) Open() {
	defer s.guard("open")
	s.Store.Open()
}

// Put stores m, and holds an outbound publish until it is settled.
//
// A publish is stored as a copy: paho's writer writes the very packet it
// stores (PublishPacket.Write sets its length), and after a reconnect
// resume reads the stored one, maybe while the writer of the new
// connection still writes it (a data race in paho v1.5.1, seen when a
// broker closed the connection over a poison message). paho stores a
// publish before it hands it to the writer, so the copy is made before
// anyone else touches the packet; its payload is never written.
func (s *resumeStore) Put(key string, m packets.ControlPacket) {
	pub, ok := m.(*packets.PublishPacket)
	if ok {
		cp := *pub
		m = &cp
	}
	stored := s.put(key, m)
	id, out := outboundID(key)
	if !out {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, mine := s.own[id]; mine {
		s.renumber(id)
	}
	s.ids.pahoStored(id)
	if !ok {
		return // a subscription: its id is paho's too
	}
	s.order.stored(key)
	if !s.released {
		s.held[key] = heldMsg{stored: stored, state: s.stateTopic != "" && pub.TopicName == s.stateTopic}
	}
}

func (s *resumeStore) put(key string, m packets.ControlPacket) (ok bool) {
	defer s.guard("write")
	s.Store.Put(key, m)
	return true
}

// Get returns a stored packet; a publish as a copy. paho's resume sets Dup
// on the publish it gets before it sends it again, and with the memory
// store that is the very packet paho's writer may still be sending: one
// published on the connection before, whose hand-over to paho's writer was
// still waiting when the connection dropped, and which the next
// connection's writer takes (a data race in paho v1.5.1, seen in
// TestBrokerRestartLosesNothing and the bridge's shutdown test under
// -race). The message then goes out twice, which QoS 1 allows.
func (s *resumeStore) Get(key string) packets.ControlPacket {
	m := s.get(key)
	if pub, ok := m.(*packets.PublishPacket); ok {
		if strings.HasPrefix(key, outboundPrefix) {
			s.mu.Lock()
			s.order.resent(key)
			s.mu.Unlock()
		}
		cp := *pub
		return &cp
	}
	return m
}

func (s *resumeStore) get(key string) packets.ControlPacket {
	defer s.guard("read")
	return s.Store.Get(key)
}

// Del deletes a stored packet. paho deletes an outbound publish when its
// PUBACK arrives: a held message, or the client's own under that id, is
// then settled as published.
func (s *resumeStore) Del(key string) {
	id, out := outboundID(key)
	if out {
		s.mu.Lock()
		if _, mine := s.dropOwn(id); mine {
			s.settle(published)
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
	}
	s.del(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if out {
		s.ids.clear(id)
		if s.noIDs {
			s.noIDs = false
			s.roomForOwn()
		}
	}
	s.order.acked(key)
	if _, ok := s.held[key]; ok {
		delete(s.held, key)
		s.settle(published)
	}
}

func (s *resumeStore) del(key string) {
	defer s.guard("delete")
	s.Store.Del(key)
}

// inFlight returns how many messages of this run paho holds unacknowledged.
func (s *resumeStore) inFlight() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.held) + len(s.own)
}

// release settles, at stop, the messages of this run paho still holds
// unacknowledged: kept stores them for the next start (a file store that
// took them), and the rest die with the process. The bridge's state is
// removed from a kept store: sent after a restart, it could land after that
// run's online. settle gets the counts before the store lets go of the
// messages (see Client.Stats), and release returns how many died.
// Acknowledgements that arrive after release settle nothing.
func (s *resumeStore) release(kept bool, settle func(spilled, dropped int)) (dropped int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	spilled := 0
	for key, m := range s.held {
		switch {
		case kept && m.state:
			s.del(key)
			dropped++
		case kept && m.stored && !s.broken.Load():
			spilled++
		default:
			dropped++
		}
	}
	dropped += len(s.own) // never with a file store (see own.go)
	settle(spilled, dropped)
	s.held, s.released, s.own, s.resendQ = nil, true, nil, nil
	return dropped
}

func (s *resumeStore) Close() {
	defer s.guard("close")
	s.Store.Close()
}

// Reset empties paho's store; the client's own messages are not in it.
func (s *resumeStore) Reset() {
	s.reset()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ids.stored = [len(s.ids.stored)]uint64{}
	for id := range s.own {
		s.ids.set(id)
	}
}

func (s *resumeStore) reset() {
	defer s.guard("reset")
	s.Store.Reset()
}
