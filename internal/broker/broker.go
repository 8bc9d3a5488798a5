// Package broker runs an embedded MQTT broker (mochi-mqtt) for the demo and
// for tests on machines with no broker installed.
package broker

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync/atomic"
	"syscall"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
)

// ErrAddrInUse is returned by Start when the address is taken.
var ErrAddrInUse = errors.New("broker: address already in use")

// Broker is a running embedded broker.
type Broker struct {
	srv   *mochi.Server
	ln    net.Listener
	drops *dropCounter
}

// Per client, how many messages mochi holds for it: QoS 1 and 2 messages
// awaiting its acknowledgement, and messages waiting to be written to its
// connection. Past either, mochi drops what comes for the client. Its
// defaults (8 192 each) were overrun by a subscriber slowed by -race on a
// busy machine while 20 000 requests were published as fast as the broker
// took them (TestRequestFlood: 910 requests never reached the bridge, which
// saw nothing wrong). The write queue is a channel allocated at connect,
// 8 bytes a slot: 256 KiB a client at this size, for a broker of a demo or
// a test with a few clients.
const (
	maxInflight      = 65535 // mochi's largest
	maxWritesPending = 32 << 10
)

// Start listens on addr ("127.0.0.1:0" picks a free port) and serves MQTT
// to anyone, with no authentication, until Close. log gets the broker's own
// messages (nil: none).
func Start(addr string, log *slog.Logger) (*Broker, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return nil, fmt.Errorf("%w: %s", ErrAddrInUse, addr)
		}
		return nil, fmt.Errorf("broker: listen: %w", err)
	}
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return start(ln, log, maxInflight, maxWritesPending)
}

func start(ln net.Listener, log *slog.Logger, inflight uint16, pending int32) (*Broker, error) {
	caps := mochi.NewDefaultServerCapabilities()
	caps.MaximumInflight = inflight
	caps.MaximumClientWritesPending = pending
	srv := mochi.New(&mochi.Options{Logger: log, InlineClient: false, Capabilities: caps})
	drops := &dropCounter{log: log}
	if err := srv.AddHook(drops, nil); err != nil {
		ln.Close()
		return nil, fmt.Errorf("broker: %w", err)
	}
	if err := srv.AddHook(new(auth.AllowHook), nil); err != nil {
		ln.Close()
		return nil, fmt.Errorf("broker: %w", err)
	}
	if err := srv.AddHook(newRetainGuard(srv), nil); err != nil {
		ln.Close()
		return nil, fmt.Errorf("broker: %w", err)
	}
	if err := srv.AddListener(listeners.NewNet(listenerID, ln)); err != nil {
		ln.Close()
		return nil, fmt.Errorf("broker: %w", err)
	}
	if err := srv.Serve(); err != nil {
		ln.Close()
		return nil, fmt.Errorf("broker: %w", err)
	}
	return &Broker{srv: srv, ln: ln, drops: drops}, nil
}

// Dropped returns how many messages the broker dropped because the client
// they were for had too many waiting (see maxWritesPending and
// maxInflight).
func (b *Broker) Dropped() uint64 {
	return b.drops.n.Load() + uint64(max(0, atomic.LoadInt64(&b.srv.Info.InflightDropped)))
}

// Addr returns the address the broker listens on.
func (b *Broker) Addr() string { return b.ln.Addr().String() }

// URL returns the broker's URL for an MQTT client.
func (b *Broker) URL() string { return "tcp://" + b.Addr() }

// listenerID names the broker's one listener.
const listenerID = "tcp"

// Close stops the broker and disconnects its clients.
//
// It closes the listener, and its clients, itself before mochi's Close: the
// closer mochi v2.7.9 uses (Clients.GetByListener) takes the clients' read
// lock twice, and deadlocks for good when a client connects or goes between
// the two (mochi-mqtt/server#488; it hung a bridge test for 52 minutes in
// its cleanup). A listener is closed once: mochi's Close then skips it.
func (b *Broker) Close() error {
	b.srv.Listeners.Close(listenerID, func(id string) {
		for _, cl := range b.srv.Clients.GetAll() {
			if cl.Net.Listener == id && !cl.Closed() {
				_ = b.srv.DisconnectClient(cl, packets.ErrServerShuttingDown)
			}
		}
	})
	return b.srv.Close()
}

// dropCounter counts the messages mochi drops for a client whose write
// queue is full, and says so in the broker's log (at the 1st, 2nd, 4th,
// 8th… drop, so that a flood writes a few lines), since mochi itself says
// nothing of them.
type dropCounter struct {
	mochi.HookBase
	log *slog.Logger
	n   atomic.Uint64
}

func (*dropCounter) ID() string { return "drop-counter" }

func (*dropCounter) Provides(b byte) bool { return b == mochi.OnPublishDropped }

func (d *dropCounter) OnPublishDropped(cl *mochi.Client, pk packets.Packet) {
	if n := d.n.Add(1); n&(n-1) == 0 {
		d.log.Warn("client too slow: message dropped", "client", cl.ID, "topic", pk.TopicName, "dropped", n)
	}
}
