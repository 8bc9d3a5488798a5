package brokertest

import (
	"bufio"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/eclipse/paho.mqtt.golang/packets"
)

// Proxy is a TCP proxy in front of a broker. Cutting it looks to a client
// exactly like a broker that went away, without stopping a broker other
// tests share.
type Proxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	down  bool
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup

	tap      func(conn int, pk packets.ControlPacket) // see Tap
	made     int                                      // connections so far
	holdAcks atomic.Bool
}

// Tap makes the proxy read the packets it forwards, and call f with each
// packet a client sends and the number of its connection through the proxy
// (1, 2, ...), from one goroutine a connection. Call it before the first
// connection.
func (p *Proxy) Tap(f func(conn int, pk packets.ControlPacket)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.tap = f
}

// HoldAcks makes a tapped proxy drop the PUBACKs the broker sends while
// hold is true: the broker has the client's QoS 1 messages, the client has
// no acknowledgement for them.
func (p *Proxy) HoldAcks(hold bool) {
	p.holdAcks.Store(hold)
}

// NewProxy listens on 127.0.0.1:0 and forwards to target (host:port) until
// the test ends.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{ln: ln, target: target, conns: make(map[net.Conn]struct{})}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.Close)
	return p
}

// Addr returns the proxy's address.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// URL returns the proxy as an MQTT URL.
func (p *Proxy) URL() string { return "tcp://" + p.Addr() }

// SetDown cuts every connection and refuses new ones (true), or lets them
// through again (false).
func (p *Proxy) SetDown(down bool) {
	p.mu.Lock()
	p.down = down
	p.mu.Unlock()
	if down {
		p.Cut()
	}
}

// Cut closes every connection through the proxy; new ones are accepted
// unless the proxy is down.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
	}
}

// Close stops the proxy.
func (p *Proxy) Close() {
	p.ln.Close()
	p.Cut()
	p.wg.Wait()
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		down := p.down
		p.mu.Unlock()
		if down {
			c.Close()
			continue
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns[c] = struct{}{}
		p.conns[up] = struct{}{}
		p.made++
		conn, tap := p.made, p.tap
		p.mu.Unlock()
		p.wg.Add(2)
		pipe := func(dst, src net.Conn) {
			defer p.wg.Done()
			switch {
			case tap == nil:
				io.Copy(dst, src)
			case src == c:
				p.forward(dst, src, func(pk packets.ControlPacket) bool { tap(conn, pk); return true })
			default:
				p.forward(dst, src, func(pk packets.ControlPacket) bool {
					_, ack := pk.(*packets.PubackPacket)
					return !ack || !p.holdAcks.Load()
				})
			}
			dst.Close()
			src.Close()
			p.mu.Lock()
			delete(p.conns, dst)
			delete(p.conns, src)
			p.mu.Unlock()
		}
		go pipe(up, c)
		go pipe(c, up)
	}
}

// forward copies packets from src to dst, those keep reports true for.
func (p *Proxy) forward(dst, src net.Conn, keep func(packets.ControlPacket) bool) {
	r := bufio.NewReader(src)
	for {
		pk, err := packets.ReadPacket(r)
		if err != nil {
			return
		}
		if keep(pk) {
			if err := pk.Write(dst); err != nil {
				return
			}
		}
	}
}
