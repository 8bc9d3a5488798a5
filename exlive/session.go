package exlive

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rs/zerolog"
)

// StateKind is the state of a session.
type StateKind string

// The states of a session, as published on the bridge's session topic.
const (
	StateConnecting   StateKind = "connecting"
	StateLoggedIn     StateKind = "logged_in"
	StateLoginFailed  StateKind = "login_failed"
	StateDisconnected StateKind = "disconnected"
)

// State is one change of a session's state.
type State struct {
	State StateKind
	Since time.Time
	Err   error         // why, for login_failed and disconnected
	Retry time.Duration // when not logged in: how long until the next attempt
	Addr  string        // the platform address tried, or logged in to
	// Conflict is set while the platform has closed ConflictAfter sessions
	// or more in a row before they lasted HealthyAfter: another client may
	// be logged in with the account (ConflictHint). The waits are then
	// EXLIVE_RETRY_MAX. A session that lasts clears it.
	Conflict bool
}

// ConflictAfter is how many sessions in a row the platform must close
// before they have lasted HealthyAfter for the session to take another
// client for the cause: a platform that allows one session per account
// closes the older one when another logs in, and two clients of one
// account then close each other's sessions in turn.
const ConflictAfter = 3

// ConflictHint is what the log and the session's state say when another
// client may be using the account.
const ConflictHint = "the platform closed the last sessions soon after login: another client may be logged in with this account (two bridges, or another program); each login ends the other's session"

// Session keeps a client logged in forever: it dials, logs in, serves, and
// after any failure waits a capped, jittered, exponential backoff and starts
// again. With several addresses it tries each in turn, and waits only after
// a whole pass over them failed. Requests go to the client of the moment.
type Session struct {
	cfg  Config
	h    Handler
	log  zerolog.Logger
	dial func(ctx context.Context, addr string) (net.Conn, error)

	cur   atomic.Pointer[Client]
	mu    sync.Mutex
	state State
	// short counts the sessions in a row the platform closed before they
	// lasted HealthyAfter.
	short atomic.Int32
}

// New returns a Session that dials cfg.Addrs. cfg must have passed
// Validate.
func New(cfg Config, h Handler, log zerolog.Logger) *Session {
	if h == nil {
		h = Handlers{}
	}
	if cfg.HealthyAfter <= 0 {
		cfg.HealthyAfter = max(cfg.RetryMax, 30*time.Second)
	}
	s := &Session{cfg: cfg, h: h, log: log, dial: Dial}
	s.state = State{State: StateDisconnected, Since: time.Now()}
	return s
}

// SetDialer replaces how the session connects to each address (for
// proxies, TLS or tests). Call it before Run.
func (s *Session) SetDialer(dial func(ctx context.Context, addr string) (net.Conn, error)) {
	s.dial = dial
}

// State returns the session's current state.
func (s *Session) State() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state
}

func (s *Session) setState(st State) {
	st.Since = time.Now()
	st.Conflict = s.short.Load() >= ConflictAfter
	s.mu.Lock()
	s.state = st
	s.mu.Unlock()
	ev := s.log.Info()
	if st.State == StateLoginFailed || (st.State == StateDisconnected && st.Err != nil) {
		ev = s.log.Warn()
	}
	ev = ev.Str("state", string(st.State)).Str("addr", st.Addr)
	if st.Err != nil {
		ev = ev.Err(st.Err)
	}
	if st.Retry > 0 {
		ev = ev.Dur("retry_in", st.Retry)
	}
	if st.Conflict {
		ev = ev.Bool("conflict", true).Str("hint", ConflictHint)
	}
	ev.Msg("session state")
	s.h.HandleState(st)
}

// Run keeps the session up until ctx is done, then logs out and returns
// nil.
//
// Each pass tries the addresses in turn, from the one last logged in to,
// until one logs in; the next address is tried at once. The wait comes
// after a pass: after a session that ended, or after every address
// failed. It grows with each pass that did not end in a session that
// lasted HealthyAfter, and is EXLIVE_RETRY_MAX after a refused login (the
// platform refused the account; asking again soon would only hammer it)
// and while another client seems to be using the account.
func (s *Session) Run(ctx context.Context) error {
	var (
		attempt int // passes since the last session that lasted
		first   int // the address a pass starts with
	)
	addrs := s.cfg.Addrs()
	if len(addrs) == 0 {
		addrs = []string{""} // Validate refuses this; the dial says why
	}
	for ctx.Err() == nil {
		var end outcome
		for k := range addrs {
			i := (first + k) % len(addrs)
			end = s.once(ctx, addrs[i])
			if ctx.Err() != nil || end.loggedIn {
				first = i
				break
			}
			if k < len(addrs)-1 {
				s.setState(State{State: end.kind, Err: end.err, Addr: addrs[i]})
			}
		}
		if ctx.Err() != nil {
			break
		}
		switch {
		case end.healthy:
			attempt = 0
			s.short.Store(0)
		case end.loggedIn && end.closed:
			if n := s.short.Add(1); n == ConflictAfter {
				s.log.Warn().Int32("sessions", n).Str("addr", end.addr).Msg(ConflictHint)
			}
		case end.loggedIn:
			s.short.Store(0)
		}
		conflict := s.short.Load() >= ConflictAfter
		var wait time.Duration
		if end.kind == StateLoginFailed || conflict {
			wait = Backoff(0, s.cfg.RetryMax, s.cfg.RetryMax, rand.Float64)
		} else {
			wait = Backoff(attempt, s.cfg.RetryMin, s.cfg.RetryMax, rand.Float64)
			attempt++
		}
		s.setState(State{State: end.kind, Err: end.err, Retry: wait, Addr: end.addr})
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
	}
	s.setState(State{State: StateDisconnected, Addr: s.State().Addr})
	return nil
}

// outcome is how one connection ended.
type outcome struct {
	kind     StateKind
	err      error
	addr     string
	loggedIn bool // it logged in
	healthy  bool // and stayed logged in for HealthyAfter
	closed   bool // and the platform closed it (not a dead link, not us)
}

// once runs one connection to addr, from dial to its end.
func (s *Session) once(ctx context.Context, addr string) outcome {
	s.setState(State{State: StateConnecting, Addr: addr})
	nc, err := s.dial(ctx, addr)
	if err != nil {
		return outcome{kind: StateDisconnected, err: err, addr: addr}
	}
	c := NewClient(nc, s.cfg, s.h, s.log)
	if err := c.Login(ctx); err != nil {
		c.Close()
		if _, ok := errors.AsType[*LoginError](err); ok {
			return outcome{kind: StateLoginFailed, err: err, addr: addr}
		}
		return outcome{kind: StateDisconnected, err: err, addr: addr}
	}
	start := time.Now()
	s.cur.Store(c)
	s.setState(State{State: StateLoggedIn, Addr: addr})
	// A session that lasts clears a conflict at once, not when it ends.
	lasted := make(chan struct{})
	timer := time.AfterFunc(s.cfg.HealthyAfter, func() {
		defer close(lasted)
		if s.short.Swap(0) >= ConflictAfter {
			s.log.Info().Str("addr", addr).Msg("session has lasted: no other client seems to be using the account now")
			s.setState(State{State: StateLoggedIn, Addr: addr})
		}
	})
	err = c.Serve(ctx)
	if !timer.Stop() {
		<-lasted // its state comes before the one Run sets next
	}
	s.cur.CompareAndSwap(c, nil)
	return outcome{
		kind: StateDisconnected, err: err, addr: addr, loggedIn: true,
		healthy: time.Since(start) >= s.cfg.HealthyAfter,
		closed:  closedByPeer(err),
	}
}

// closedByPeer reports whether a session ended because the platform closed
// the connection: the end of the stream, or a reset.
func closedByPeer(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// Backoff returns the wait before reconnect attempt n (from 0): lo doubled n
// times, at most hi, less up to a fifth at random so that many bridges
// restarted together do not return together; never less than lo.
func Backoff(n int, lo, hi time.Duration, random func() float64) time.Duration {
	d := lo
	for i := 0; i < n && d < hi; i++ {
		d *= 2
	}
	d = min(d, hi)
	d -= time.Duration(random() * float64(d) / 5)
	return max(d, lo)
}

// Send writes m on the current connection without waiting for an answer. It
// fails at once with ErrNotLoggedIn when no session is logged in.
func (s *Session) Send(m Message) error {
	c := s.cur.Load()
	if c == nil {
		return ErrNotLoggedIn
	}
	return c.Send(m)
}

// RequestAsync writes m and calls done with the platform's answer, as
// Client.Request does, with Config.CommandTimeout. It fails at once with
// ErrNotLoggedIn when no session is logged in.
func (s *Session) RequestAsync(m Message, done func(*Answer, error)) error {
	c := s.cur.Load()
	if c == nil {
		return ErrNotLoggedIn
	}
	return c.Request(m, s.cfg.CommandTimeout, done)
}

// Request writes m and waits for the platform's answer, at most
// Config.CommandTimeout or until ctx is done.
func (s *Session) Request(ctx context.Context, m Message) (*Answer, error) {
	type result struct {
		a   *Answer
		err error
	}
	ch := make(chan result, 1)
	if err := s.RequestAsync(m, func(a *Answer, err error) { ch <- result{a, err} }); err != nil {
		return nil, err
	}
	select {
	case r := <-ch:
		return r.a, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Pending returns how many requests await an answer on the current
// connection.
func (s *Session) Pending() int {
	if c := s.cur.Load(); c != nil {
		return c.pend.len()
	}
	return 0
}
