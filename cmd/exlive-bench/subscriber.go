//go:build linux

package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	neturl "net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/exlive2mqtt/exlive2mqtt/topic"
)

// subscriber counts what reaches the broker's other side. It is a bare
// MQTT 3.1.1 client on one goroutine over a large socket buffer, subscribed
// at QoS 0, so that it takes messages faster than any publisher sends them:
// Mosquitto drops messages for a subscriber more than max_queued_messages
// (1000 by default) behind, even at QoS 0, and a paho subscriber sharing
// two cores with the platform, the bridge and the broker does fall behind.
type subscriber struct {
	nc     net.Conn
	topics topic.Layout
	posPre []byte // P/vehicles/: what tells a position from the bridge's own topics, without an allocation
	wmu    sync.Mutex
	done   chan struct{}
	err    error

	pmu      sync.Mutex // held while a message is counted, so stop can take the phase away cleanly
	phase    *phase
	retained atomic.Uint64 // old retained positions, delivered on subscribe
	stray    atomic.Uint64 // positions outside any phase

	mu      sync.Mutex
	bridge  map[string]int // live messages on P/bridge/…, by topic
	changed chan struct{}
}

// phase is one measured stretch: what arrived, when, and how late.
type phase struct {
	want int  // done once this many have arrived; 0: never
	keep bool // keep every (topic, payload) for the bare publisher

	count       atomic.Int64
	first, last atomic.Int64 // Unix ns
	done        chan struct{}

	// Only the subscriber's goroutine writes these until the phase is
	// stopped.
	pairs     []pair
	arena     []byte
	latencies []int64           // ns, from the platform's write to here
	topics    map[string]string // every topic seen, interned
}

// topicList returns every topic the phase saw.
func (ph *phase) topicList() []string {
	ts := make([]string, 0, len(ph.topics))
	for t := range ph.topics {
		ts = append(ts, t)
	}
	return ts
}

type pair struct {
	topic   string
	payload []byte
}

func newPhase(want int, keep bool) *phase {
	return &phase{want: want, keep: keep, done: make(chan struct{}), topics: make(map[string]string),
		latencies: make([]int64, 0, max(want, 1024))}
}

func newSubscriber(url, prefix, clientID string) (*subscriber, error) {
	u, err := neturl.Parse(url)
	if err != nil || (u.Scheme != "tcp" && u.Scheme != "mqtt") {
		return nil, fmt.Errorf("subscriber: %q: want tcp://host:port", url)
	}
	nc, err := net.DialTimeout("tcp", u.Host, 10*time.Second)
	if err != nil {
		return nil, fmt.Errorf("subscriber: %w", err)
	}
	nc.(*net.TCPConn).SetReadBuffer(8 << 20)
	nc = quickAck{nc.(*net.TCPConn)}
	topics := topic.Layout{Prefix: prefix}
	s := &subscriber{nc: nc, topics: topics, posPre: []byte(strings.TrimSuffix(topics.PositionFilter(), "+/position")),
		bridge: map[string]int{}, changed: make(chan struct{}), done: make(chan struct{})}
	r := bufio.NewReaderSize(nc, 1<<20)
	// CONNECT, clean session, keepalive 60 s.
	var p []byte
	p = appendStr(p, "MQTT")
	p = append(p, 4, 0x02, 0, 60)
	p = appendStr(p, clientID)
	if err := s.write(0x10, p); err != nil {
		return nil, err
	}
	nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	if typ, body, err := readPacket(r, nil); err != nil || typ>>4 != 2 || len(body) != 2 || body[1] != 0 {
		nc.Close()
		return nil, fmt.Errorf("subscriber: connect refused (%v %x)", err, body)
	}
	p = append(p[:0], 0, 1)
	for _, f := range []string{topics.PositionFilter(), topics.BridgeFilter()} {
		p = append(appendStr(p, f), 0)
	}
	if err := s.write(0x82, p); err != nil {
		return nil, err
	}
	if typ, body, err := readPacket(r, nil); err != nil || typ>>4 != 9 || len(body) != 4 || body[2] > 2 || body[3] > 2 {
		nc.Close()
		return nil, fmt.Errorf("subscriber: subscribe refused (%v %x)", err, body)
	}
	nc.SetReadDeadline(time.Time{})
	go s.readLoop(r)
	go s.pingLoop()
	return s, nil
}

func appendStr(b []byte, s string) []byte {
	return append(append(b, byte(len(s)>>8), byte(len(s))), s...)
}

func (s *subscriber) write(typ byte, body []byte) error {
	pkt := []byte{typ}
	n := len(body)
	for {
		c := byte(n % 128)
		n /= 128
		if n > 0 {
			c |= 0x80
		}
		pkt = append(pkt, c)
		if n == 0 {
			break
		}
	}
	pkt = append(pkt, body...)
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_, err := s.nc.Write(pkt)
	return err
}

// readPacket reads one packet into buf (grown as needed).
func readPacket(r *bufio.Reader, buf []byte) (byte, []byte, error) {
	typ, err := r.ReadByte()
	if err != nil {
		return 0, nil, err
	}
	n, shift := 0, 0
	for {
		c, err := r.ReadByte()
		if err != nil {
			return 0, nil, err
		}
		n |= int(c&0x7f) << shift
		if c < 0x80 {
			break
		}
		if shift += 7; shift > 21 {
			return 0, nil, errors.New("subscriber: bad remaining length")
		}
	}
	if cap(buf) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	_, err = io.ReadFull(r, buf)
	return typ, buf, err
}

func (s *subscriber) readLoop(r *bufio.Reader) {
	defer close(s.done)
	var buf []byte
	for {
		typ, body, err := readPacket(r, buf)
		if err != nil {
			s.err = err
			return
		}
		buf = body
		if typ>>4 != 3 || len(body) < 2 { // PUBLISH; PINGRESP and the like are ignored
			continue
		}
		now := time.Now().UnixNano()
		tl := int(body[0])<<8 | int(body[1])
		if 2+tl > len(body) {
			continue
		}
		topic, payload := body[2:2+tl], body[2+tl:]
		if typ&0x06 != 0 { // QoS > 0: a packet id; not expected at QoS 0
			payload = payload[2:]
		}
		if bytes.HasPrefix(topic, s.posPre) {
			s.onPosition(topic, payload, typ&1 != 0, now)
		} else {
			s.onBridge(string(topic), typ&1 != 0)
		}
	}
}

func (s *subscriber) pingLoop() {
	t := time.NewTicker(20 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
			s.write(0xC0, nil)
		}
	}
}

var wstateKey = []byte(`"wstate":"`)

func (s *subscriber) onPosition(topic, payload []byte, retained bool, now int64) {
	if retained {
		s.retained.Add(1)
		return
	}
	s.pmu.Lock()
	defer s.pmu.Unlock()
	ph := s.phase
	if ph == nil {
		s.stray.Add(1)
		return
	}
	if i := bytes.Index(payload, wstateKey); i >= 0 {
		rest := payload[i+len(wstateKey):]
		if j := bytes.IndexByte(rest, '"'); j > 0 {
			if sent, err := strconv.ParseInt(string(rest[:j]), 10, 64); err == nil {
				ph.latencies = append(ph.latencies, now-sent)
			}
		}
	}
	t, ok := ph.topics[string(topic)]
	if !ok {
		t = string(topic)
		ph.topics[t] = t
	}
	if ph.keep {
		if len(ph.arena)+len(payload) > cap(ph.arena) {
			ph.arena = make([]byte, 0, max(1<<20, len(payload)))
		}
		ph.arena = append(ph.arena, payload...)
		ph.pairs = append(ph.pairs, pair{t, ph.arena[len(ph.arena)-len(payload):]})
	}
	n := ph.count.Add(1)
	if n == 1 {
		ph.first.Store(now)
	}
	ph.last.Store(now)
	if int(n) == ph.want {
		close(ph.done)
	}
}

func (s *subscriber) onBridge(topic string, retained bool) {
	if retained {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.bridge[topic]++
	close(s.changed)
	s.changed = make(chan struct{})
}

// waitBridge waits until a live message has arrived on the bridge's topic
// t (one of P/bridge/…), counting from the snapshot taken by mark.
func (s *subscriber) waitBridge(t string, since int, timeout time.Duration) error {
	deadline := time.After(timeout)
	for {
		s.mu.Lock()
		n := s.bridge[t]
		ch := s.changed
		s.mu.Unlock()
		if n > since {
			return nil
		}
		select {
		case <-ch:
		case <-deadline:
			return fmt.Errorf("no %s within %s", t, timeout)
		}
	}
}

func (s *subscriber) mark(t string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bridge[t]
}

// start begins a phase; stop ends it and returns it, safe to read.
func (s *subscriber) start(ph *phase) {
	s.pmu.Lock()
	s.phase = ph
	s.pmu.Unlock()
}

func (s *subscriber) stop() *phase {
	s.pmu.Lock()
	defer s.pmu.Unlock()
	ph := s.phase
	s.phase = nil
	return ph
}

// wait waits for a phase to complete, failing when nothing arrives for
// stall.
func (ph *phase) wait(stall time.Duration) error {
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	lastCount, lastChange := int64(-1), time.Now()
	for {
		select {
		case <-ph.done:
			return nil
		case <-t.C:
		}
		if n := ph.count.Load(); n != lastCount {
			lastCount, lastChange = n, time.Now()
		} else if time.Since(lastChange) > stall {
			return fmt.Errorf("stalled: %d of %d messages after %s without one", n, ph.want, stall)
		}
	}
}

func (s *subscriber) close() {
	s.write(0xE0, nil)
	s.nc.Close()
	<-s.done
}

// clearRetained removes the retained positions a run left on the broker,
// so repeated runs do not fill it.
func clearRetained(url, clientID string, topics []string) error {
	if len(topics) == 0 {
		return nil
	}
	opts := paho.NewClientOptions().AddBroker(url).SetClientID(clientID).SetCleanSession(true).
		SetAutoReconnect(false).SetOrderMatters(false)
	pc := paho.NewClient(opts)
	if tok := pc.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		return fmt.Errorf("clear retained: connect: %v", tok.Error())
	}
	defer pc.Disconnect(250)
	window := make(chan paho.Token, 1000)
	errc := make(chan error, 1)
	go func() {
		var err error
		for tok := range window {
			if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
				err = fmt.Errorf("clear retained: %v", tok.Error())
			}
		}
		errc <- err
	}()
	for _, t := range topics {
		window <- pc.Publish(t, 1, true, []byte{})
	}
	close(window)
	return <-errc
}

// quickAck acknowledges every read at once. Mosquitto sends with Nagle's
// algorithm on (set_tcp_nodelay is off by default): a message waits while
// the one before is unacknowledged, and Linux delays acknowledgements up to
// 40 ms. Latency measured through a subscriber that delays its ACKs is the
// subscriber's, not the bridge's.
type quickAck struct{ *net.TCPConn }

func (c quickAck) Read(p []byte) (int, error) {
	n, err := c.TCPConn.Read(p)
	if rc, e := c.TCPConn.SyscallConn(); e == nil {
		rc.Control(func(fd uintptr) {
			syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_QUICKACK, 1)
		})
	}
	return n, err
}
