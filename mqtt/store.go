package mqtt

import (
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
)

// resumeStore wraps paho's store to tell when paho has taken its list of
// stored messages to resend after a connect.
//
// paho calls OnConnect on a goroutine of its own before it resumes: a
// message published from OnConnect can land in the store before paho lists
// it, and is then sent twice, the second time while the first is still being
// written (a data race in paho). paho lists the store once per connect, after
// each connection attempt; waiting for that list before publishing closes
// the window.
//
// It also keeps paho's file store from crashing the program: that store
// panics on any I/O error (a store directory that is read-only, not a
// directory, or on a full disk). Each method recovers, reports the error to
// failed, and goes on as if the message were not stored.
type resumeStore struct {
	paho.Store
	failed  func(op string, err any)
	errs    atomic.Uint64 // errors so far
	broken  atomic.Bool   // Open failed: paho's file store then stores nothing
	mu      sync.Mutex
	lists   uint64        // calls to All so far
	changed chan struct{} // closed on each call to All
}

func newResumeStore(s paho.Store, failed func(op string, err any)) *resumeStore {
	return &resumeStore{Store: s, failed: failed, changed: make(chan struct{})}
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

// All lists the stored keys and notes that it did.
func (s *resumeStore) All() []string {
	keys := s.all()
	s.mu.Lock()
	s.lists++
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

func (s *resumeStore) Put(key string, m packets.ControlPacket) {
	defer s.guard("write")
	s.Store.Put(key, m)
}

func (s *resumeStore) Get(key string) packets.ControlPacket {
	defer s.guard("read")
	return s.Store.Get(key)
}

func (s *resumeStore) Del(key string) {
	defer s.guard("delete")
	s.Store.Del(key)
}

func (s *resumeStore) Close() {
	defer s.guard("close")
	s.Store.Close()
}

func (s *resumeStore) Reset() {
	defer s.guard("reset")
	s.Store.Reset()
}
