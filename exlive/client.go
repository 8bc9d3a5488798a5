package exlive

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sync/errgroup"
)

// Errors of requests and sessions.
var (
	// ErrNotLoggedIn: a request was made while no session was logged in.
	// Nothing was sent, and nothing will be sent later.
	ErrNotLoggedIn = errors.New("exlive: not logged in")
	// ErrTimeout: the platform did not answer in time.
	ErrTimeout = errors.New("exlive: no answer in time")
	// ErrTooManyPending: too many requests await an answer already.
	ErrTooManyPending = errors.New("exlive: too many requests awaiting an answer")
	// ErrClosed: the connection closed before the answer came.
	ErrClosed = errors.New("exlive: connection closed")
	// ErrIdleTimeout: nothing arrived for Config.IdleTimeout.
	ErrIdleTimeout = errors.New("exlive: platform silent for too long")
	// ErrHeartbeatLost: the platform, which had answered a heartbeat on
	// this connection, left HeartbeatMisses of them in a row unanswered,
	// and sent nothing else for an interval.
	ErrHeartbeatLost = errors.New("exlive: heartbeats unanswered, link taken for dead")
)

// LoginError is the platform's refusal of a login. The platform closes the
// connection after it.
type LoginError struct {
	Result string // the 8000 answer's result text
}

// Error quotes the platform's refusal.
func (e *LoginError) Error() string { return "exlive: login rejected: " + e.Result }

// Dial connects to a platform at addr (host:port), with TCP keepalives on.
// It is separate from NewClient so that tests, proxies and TLS wrappers can
// hand the session any net.Conn.
func Dial(ctx context.Context, addr string) (net.Conn, error) {
	d := net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("exlive: dial: %w", err)
	}
	return nc, nil
}

// Handler receives what the platform sends. The session calls it from its
// read loop, so it must return quickly: nothing else is read meanwhile.
// A *Position handed to HandleMessage is reused once the call returns.
type Handler interface {
	// HandleMessage gets every message except answers to requests and the
	// frames of an inventory being collected.
	HandleMessage(m Message)
	// HandleState gets every change of the session's state.
	HandleState(s State)
	// HandleInventory gets the account's groups and vehicles after each
	// collection.
	HandleInventory(inv Inventory)
	// HandleSkip gets every frame or run of bytes that was skipped.
	HandleSkip(err *FrameError)
}

// Tap sees every frame of one connection as it crosses the wire, both ways:
// what exlive2mqtt probe -capture records. Its methods run on the
// connection's goroutines and must return quickly.
type Tap interface {
	// Sent is told of each frame as it is written (just before, so that no
	// answer can be told of before its request). wire is every byte
	// written, a login's password included; it is valid only during the
	// call.
	Sent(at time.Time, m Message, wire []byte)
	// Received is told of each frame read, with the message it decoded to
	// or the *FrameError it was skipped for, and of each run of bytes
	// skipped between frames (f is then empty). f.Wire holds the bytes as
	// they came, those skipped before the frame included; m and f are
	// valid only during the call.
	Received(at time.Time, f Frame, m Message, err error)
}

// Handlers adapts functions to a Handler; nil functions ignore their events.
type Handlers struct {
	Message   func(Message)
	State     func(State)
	Inventory func(Inventory)
	Skip      func(*FrameError)
}

// HandleMessage calls h.Message.
func (h Handlers) HandleMessage(m Message) {
	if h.Message != nil {
		h.Message(m)
	}
}

// HandleState calls h.State.
func (h Handlers) HandleState(s State) {
	if h.State != nil {
		h.State(s)
	}
}

// HandleInventory calls h.Inventory.
func (h Handlers) HandleInventory(inv Inventory) {
	if h.Inventory != nil {
		h.Inventory(inv)
	}
}

// HandleSkip calls h.Skip.
func (h Handlers) HandleSkip(err *FrameError) {
	if h.Skip != nil {
		h.Skip(err)
	}
}

// Client is one session over one connection: log in, then Serve until the
// connection ends. Session reconnects; Client does not.
type Client struct {
	nc  net.Conn
	cfg Config
	h   Handler
	log zerolog.Logger

	r   *Reader
	dec *Decoder

	wmu sync.Mutex // orders writes, and each request's place in its queue
	w   *Writer

	pend     pending
	loggedIn atomic.Bool
	gbk      atomic.Bool // the platform has spoken GBK (auto mode)
	tap      Tap

	// Heartbeats: a platform that answers them tells that the link is
	// alive; one that never does is left to IdleTimeout.
	beatAnswered atomic.Bool  // the platform has answered a heartbeat
	unanswered   atomic.Int32 // heartbeats sent since the last answer
	waiting      atomic.Int64 // Unix ns since which the reader waits on the socket; 0 while it works
	// Heartbeats written and answers read, counted so that an answer can
	// be told for the answer to a given heartbeat (the barrier of a list,
	// inventory.go), when the platform answers each in order.
	beatsSent, beatsAnswered atomic.Int64
	beatSeen                 chan struct{} // a heartbeat answer came (capacity 1)
	beatSilent               atomic.Bool   // a barrier went unanswered: the platform does not answer heartbeats

	// The reader's idle clock: how long it has waited on an empty socket
	// with no frame in part, the time in which, with everything that
	// arrived read, the platform sent nothing (inventory.go).
	idleMu   sync.Mutex
	idleSum  time.Duration
	idleFrom time.Time // zero unless the reader waits now

	collecting atomic.Bool   // an inventory is being collected
	inv        chan Message  // its 1009 and 1011 frames
	closed     chan struct{} // closed when the connection is done
	closeOnce  sync.Once
}

// NewClient returns a Client over nc. cfg must have passed Validate (or come
// from Defaults with Addr, User and Pass set).
func NewClient(nc net.Conn, cfg Config, h Handler, log zerolog.Logger) *Client {
	if h == nil {
		h = Handlers{}
	}
	c := &Client{
		nc:       nc,
		cfg:      cfg,
		h:        h,
		log:      log,
		dec:      NewDecoder(cfg.Timezone.Location),
		w:        NewWriter(nc, cfg.Encoding),
		inv:      make(chan Message, 64),
		beatSeen: make(chan struct{}, 1),
		closed:   make(chan struct{}),
	}
	c.r = NewReader(waitWatch{nc, c}, cfg.MaxFrame, cfg.Encoding)
	c.pend.init(cfg.MaxPending)
	return c
}

// waitWatch notes when the reader waits on the socket: an unanswered
// heartbeat proves a dead link only if its answer is not sitting unread
// behind a reader held up elsewhere (by a slow broker, say); and the time it
// waited there with no frame in part is the idle clock by which a list is
// taken to be complete (inventory.go). A read that filled the whole buffer
// found data waiting and is no idle time: a reader working through a
// backlog is not idle, however its reads are timed.
type waitWatch struct {
	r io.Reader
	c *Client
}

func (w waitWatch) Read(p []byte) (int, error) {
	c := w.c
	start := time.Now()
	c.waiting.Store(start.UnixNano())
	between := !c.r.InFrame()
	if between {
		c.idleMu.Lock()
		c.idleFrom = start
		c.idleMu.Unlock()
	}
	n, err := w.r.Read(p)
	if between {
		c.idleMu.Lock()
		if n < len(p) {
			c.idleSum += time.Since(start)
		}
		c.idleFrom = time.Time{}
		c.idleMu.Unlock()
	}
	c.waiting.Store(0)
	return n, err
}

// idle returns the reader's idle clock: how long, in all, it has waited on
// the socket with every frame that arrived handed out.
func (c *Client) idle() time.Duration {
	c.idleMu.Lock()
	defer c.idleMu.Unlock()
	if c.idleFrom.IsZero() {
		return c.idleSum
	}
	return c.idleSum + time.Since(c.idleFrom)
}

// SetTap has every frame of the connection shown to t. Call it before Login.
func (c *Client) SetTap(t Tap) {
	c.tap = t
	c.r.KeepWire(t != nil)
}

// Login sends 1000 and waits for the platform's answer, at most
// Config.CommandTimeout. A refusal is a *LoginError.
func (c *Client) Login(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { c.nc.SetDeadline(time.Now()) })
	defer stop()
	if err := c.nc.SetReadDeadline(time.Now().Add(c.cfg.CommandTimeout)); err != nil {
		return fmt.Errorf("exlive: login: %w", err)
	}
	login := &Login{Name: c.cfg.User, Pass: c.cfg.Pass, Ver: c.cfg.LoginVer, Type: c.cfg.LoginType, Mode: c.cfg.LoginMode}
	if err := c.write(login); err != nil {
		return fmt.Errorf("exlive: login: %w", ctxErr(ctx, err))
	}
	for {
		m, err := c.read()
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) && ctx.Err() == nil {
				err = ErrTimeout
			}
			return fmt.Errorf("exlive: login: %w", ctxErr(ctx, err))
		}
		if m == nil {
			continue
		}
		if a, ok := m.(*Answer); ok && a.Command == CmdLogin {
			if !a.OK() {
				return &LoginError{Result: a.Result}
			}
			c.loggedIn.Store(true)
			return c.nc.SetReadDeadline(time.Time{})
		}
		c.dispatch(m)
	}
}

// Serve reads and dispatches frames, sends heartbeats and collects the
// inventory until the connection fails or ctx is done. On ctx it sends 1001
// logout and returns ctx's error. It always closes the connection, and every
// request still awaiting an answer fails.
func (c *Client) Serve(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return c.readLoop() })
	g.Go(func() error { return c.heartbeatLoop(gctx) })
	g.Go(func() error { return c.inventoryLoop(gctx) })
	g.Go(func() error {
		select {
		case <-gctx.Done():
		case <-c.closed:
		}
		if ctx.Err() != nil {
			c.logout()
		}
		c.Close()
		return nil
	})
	err := g.Wait()
	c.Close()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// Close closes the connection without logging out. Requests awaiting an
// answer fail with ErrClosed.
func (c *Client) Close() error {
	var err error
	c.closeOnce.Do(func() {
		c.loggedIn.Store(false)
		close(c.closed)
		err = c.nc.Close()
		c.pend.fail(ErrClosed)
	})
	return err
}

func (c *Client) logout() {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.nc.SetWriteDeadline(time.Now().Add(min(c.cfg.WriteTimeout, 2*time.Second)))
	if err := c.writeFrame(&Logout{}); err != nil {
		c.log.Debug().Err(err).Msg("logout not sent")
		return
	}
	c.log.Debug().Stringer("cmd", CmdLogout).Msg("frame sent")
}

// Send writes m without waiting for an answer.
func (c *Client) Send(m Message) error {
	if !c.loggedIn.Load() {
		return ErrNotLoggedIn
	}
	return c.write(m)
}

// Request writes m and calls done once: with the platform's 8000 answer for
// m's command, with ErrTimeout after timeout, or with ErrClosed when the
// connection ends first. Answers carry no request id, so they are matched to
// requests first in, first out, per command. done runs on the session's
// goroutines and must not block. When Request returns an error, done is
// never called.
func (c *Client) Request(m Message, timeout time.Duration, done func(*Answer, error)) error {
	if !c.loggedIn.Load() {
		return ErrNotLoggedIn
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	w, err := c.pend.add(m.Cmd(), timeout, done)
	if err != nil {
		return err
	}
	if err := c.writeLocked(m); err != nil {
		if c.pend.remove(w) {
			return err
		}
		// Its timeout fired first and done has had its answer.
	}
	return nil
}

func (c *Client) write(m Message) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.writeLocked(m)
}

func (c *Client) writeLocked(m Message) error {
	select {
	case <-c.closed:
		return ErrClosed
	default:
	}
	if c.cfg.Encoding == EncodingAuto && c.gbk.Load() {
		c.w.SetEncoding(EncodingGBK)
	}
	c.nc.SetWriteDeadline(time.Now().Add(c.cfg.WriteTimeout))
	if err := c.writeFrame(m); err != nil {
		// A failed write leaves the stream in an unknown state.
		c.Close()
		return fmt.Errorf("exlive: write %s: %w", m.Cmd(), err)
	}
	c.log.Debug().Stringer("cmd", m.Cmd()).Msg("frame sent")
	return nil
}

// writeFrame encodes m, shows it to the tap, and writes it. c.wmu is held.
func (c *Client) writeFrame(m Message) error {
	wire, err := c.w.Encode(m)
	if err != nil {
		return err
	}
	if c.tap != nil {
		c.tap.Sent(time.Now(), m, wire)
	}
	return c.w.WriteEncoded()
}

// read returns the next message, or nil after a skipped frame.
func (c *Client) read() (Message, error) {
	m, f, err := c.r.ReadMessage(c.dec)
	if f.GBK && !c.gbk.Load() {
		// Set even when the message is no good: the frame was GBK.
		c.gbk.Store(true)
	}
	if err != nil {
		var fe *FrameError // declared here: errors.As takes it to the heap
		if errors.As(err, &fe) {
			// A frame the reader skipped comes with an empty Frame, one
			// that did not decode with its own: the tap sees both.
			if c.tap != nil {
				c.tap.Received(time.Now(), f, nil, fe)
			}
			c.h.HandleSkip(fe)
			return nil, nil
		}
		if errors.Is(err, ErrFrameTooLarge) {
			// It ends the session, but it is a skipped frame all the same.
			c.h.HandleSkip(&FrameError{Reason: ReasonTooLarge, Size: c.cfg.MaxFrame, Detail: "frame larger than the cap; the session ends"})
		}
		return nil, err
	}
	if c.tap != nil {
		c.tap.Received(time.Now(), f, m, nil)
	}
	if e := c.log.Debug(); e.Enabled() {
		n := len(f.Data)
		if f.Data == nil {
			n = f.size // a GBK frame read in place
		}
		e.Stringer("cmd", m.Cmd()).Int("bytes", n).Bool("gbk", f.GBK).Bool("repaired", f.Repaired).Msg("frame received")
	}
	return m, nil
}

func (c *Client) readLoop() error {
	idle := c.cfg.IdleTimeout
	last := time.Now()
	if idle > 0 {
		c.nc.SetReadDeadline(last.Add(idle))
	}
	for {
		m, err := c.read()
		if err != nil {
			if idle > 0 && errors.Is(err, os.ErrDeadlineExceeded) {
				// The deadline is moved only when it fires, not on every
				// frame: a timer update per position would cost more than
				// the rare early wake-up.
				if since := time.Since(last); since < idle {
					c.nc.SetReadDeadline(last.Add(idle))
					continue
				}
				return fmt.Errorf("%w (%s)", ErrIdleTimeout, idle)
			}
			select {
			case <-c.closed:
				return ErrClosed
			default:
			}
			return fmt.Errorf("exlive: read: %w", err)
		}
		if idle > 0 {
			last = time.Now()
		}
		if m != nil {
			c.dispatch(m)
		}
	}
}

func (c *Client) dispatch(m Message) {
	switch m := m.(type) {
	case *Answer:
		if c.pend.answer(m) {
			return
		}
		if m.Command == CmdHeartbeat {
			// Never a request's (heartbeats are sent, not requested), so
			// it takes no one's place in the queues of pending.go.
			c.unanswered.Store(0)
			c.beatsAnswered.Add(1)
			select {
			case c.beatSeen <- struct{}{}:
			default:
			}
			if !c.beatAnswered.Swap(true) {
				c.log.Info().Str("result", m.Result).Msg("platform answers heartbeats; unanswered ones will end the session")
			}
		}
	case *Group, *Vehicle:
		if c.collecting.Load() {
			select {
			case c.inv <- m:
				return
			case <-c.closed:
				return
			}
		}
	}
	c.h.HandleMessage(m)
}

// heartbeatLoop sends a heartbeat every interval. Once the platform has
// answered one, HeartbeatMisses unanswered in a row end the session, when
// the reader has meanwhile waited a whole interval on a socket that brought
// nothing: public clients of live servers take a link whose heartbeats go
// unanswered for about two minutes for dead, and a half-open TCP connection
// (a NAT that forgot it, a platform that hung) would otherwise look alive
// forever. A reader busy with frames, or held up by the broker, may have the
// answers still unread: that link is not dead. A platform that never
// answers is left to IdleTimeout.
func (c *Client) heartbeatLoop(ctx context.Context) error {
	t := time.NewTicker(c.cfg.Heartbeat)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-t.C:
			n := c.unanswered.Load()
			waiting := c.waiting.Load()
			if n >= HeartbeatMisses && c.beatAnswered.Load() && waiting != 0 && now.Sub(time.Unix(0, waiting)) >= c.cfg.Heartbeat {
				return fmt.Errorf("%w (%d in a row, every %s)", ErrHeartbeatLost, n, c.cfg.Heartbeat)
			}
			if _, err := c.beat(); err != nil {
				return err
			}
		}
	}
}

// beat writes a heartbeat and returns its number on the connection,
// counting from 1: the number of answers to heartbeats that, on a platform
// that answers each in order, have come once its answer has.
func (c *Client) beat() (int64, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	// Counted before the write: the answer may beat its return.
	c.unanswered.Add(1)
	n := c.beatsSent.Add(1)
	return n, c.writeLocked(&Heartbeat{})
}

func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}
