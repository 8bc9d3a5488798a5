// Package broker runs an embedded MQTT broker (mochi-mqtt) for the demo and
// for tests on machines with no broker installed.
package broker

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
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
	srv *mochi.Server
	ln  net.Listener
}

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
	srv := mochi.New(&mochi.Options{Logger: log, InlineClient: false})
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
	return &Broker{srv: srv, ln: ln}, nil
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
