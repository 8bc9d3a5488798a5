package broker

import (
	"bytes"
	"sync"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// retainGuard keeps mochi's retained messages from being read while they
// are written. mochi v2.7.9 writes a topic's retained path under its topic
// tree's locks (TopicsIndex.RetainMessage) but reads it with none while it
// hands a new subscription the retained messages its filter matches
// (TopicsIndex.Messages): a retained publish and a subscription at the same
// moment are a data race, which the race detector reported in the bridge's
// tests (mochi-mqtt/server#200). No newer mochi can be had here, and no hook
// wraps the read alone, so the guard takes one lock around the processing
// of every packet that writes or reads retained messages: a PUBLISH with
// the retain flag and a SUBSCRIBE, from the moment mochi has read it
// (OnPacketRead) to the moment it has processed it (OnPacketProcessed), and
// a retained will from OnWill to OnWillSent. mochi calls the second hook of
// each pair on the same client's goroutine whenever it has called the
// first, for packets that pass the validation processPacket does first
// (which the guard repeats, so that it never takes the lock for a packet
// that would not reach the second hook). What the lock covers never waits
// for a client: mochi queues outgoing packets, dropping them when a
// client's queue is full.
//
// It costs the embedded broker (the demo's and the tests') the parallelism
// of retained publishes and subscriptions, which neither needs.
type retainGuard struct {
	mochi.HookBase
	srv *mochi.Server

	mu sync.Mutex // held while a retained message is written or read

	heldMu sync.Mutex
	held   map[*mochi.Client]bool // clients whose packet or will holds mu
}

func newRetainGuard(srv *mochi.Server) *retainGuard {
	return &retainGuard{srv: srv, held: make(map[*mochi.Client]bool)}
}

func (g *retainGuard) ID() string { return "retain-guard" }

func (g *retainGuard) Provides(b byte) bool {
	return bytes.Contains([]byte{mochi.OnPacketRead, mochi.OnPacketProcessed, mochi.OnWill, mochi.OnWillSent}, []byte{b})
}

// touchesRetained reports whether mochi will write or read retained
// messages when it processes pk: the checks processPacket makes before it
// processes a PUBLISH or a SUBSCRIBE (a packet that fails them is not
// processed, and OnPacketProcessed is not called for it).
func (g *retainGuard) touchesRetained(pk packets.Packet) bool {
	switch pk.FixedHeader.Type {
	case packets.Publish:
		return pk.FixedHeader.Retain && pk.PublishValidate(g.srv.Options.Capabilities.TopicAliasMaximum) == packets.CodeSuccess
	case packets.Subscribe:
		return pk.SubscribeValidate() == packets.CodeSuccess
	}
	return false
}

func (g *retainGuard) hold(cl *mochi.Client) {
	g.mu.Lock()
	g.heldMu.Lock()
	g.held[cl] = true
	g.heldMu.Unlock()
}

func (g *retainGuard) release(cl *mochi.Client) {
	g.heldMu.Lock()
	held := g.held[cl]
	delete(g.held, cl)
	g.heldMu.Unlock()
	if held {
		g.mu.Unlock()
	}
}

func (g *retainGuard) OnPacketRead(cl *mochi.Client, pk packets.Packet) (packets.Packet, error) {
	if g.touchesRetained(pk) {
		g.hold(cl)
	}
	return pk, nil
}

func (g *retainGuard) OnPacketProcessed(cl *mochi.Client, _ packets.Packet, _ error) { g.release(cl) }

// OnWill holds the lock for a will that will be retained now: mochi's
// sendLWT retains it and then calls OnWillSent. A delayed will (MQTT 5)
// is sent later, with no OnWill before it; the bridge sets none.
func (g *retainGuard) OnWill(cl *mochi.Client, will mochi.Will) (mochi.Will, error) {
	if will.Retain && will.WillDelayInterval == 0 {
		g.hold(cl)
	}
	return will, nil
}

func (g *retainGuard) OnWillSent(cl *mochi.Client, _ packets.Packet) { g.release(cl) }
