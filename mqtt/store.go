package mqtt

import (
	"sync"
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
type resumeStore struct {
	paho.Store
	mu      sync.Mutex
	lists   uint64        // calls to All so far
	changed chan struct{} // closed on each call to All
}

func newResumeStore(s paho.Store) *resumeStore {
	return &resumeStore{Store: s, changed: make(chan struct{})}
}

// All lists the stored keys and notes that it did.
func (s *resumeStore) All() []string {
	keys := s.Store.All()
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

// Put, Get and Del pass through; declared so the wrapper is a complete
// paho.Store even if paho's interface grows.
func (s *resumeStore) Put(key string, m packets.ControlPacket) { s.Store.Put(key, m) }
