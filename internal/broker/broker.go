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
	if err := srv.AddListener(listeners.NewNet("tcp", ln)); err != nil {
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

// Close stops the broker and disconnects its clients.
func (b *Broker) Close() error { return b.srv.Close() }
