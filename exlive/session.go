package exlive

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
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
}

// Session keeps a client logged in forever: it dials, logs in, serves, and
// after any failure waits a capped, jittered, exponential backoff and starts
// again. Requests go to the client of the moment.
type Session struct {
	cfg  Config
	h    Handler
	log  zerolog.Logger
	dial func(ctx context.Context) (net.Conn, error)

	cur   atomic.Pointer[Client]
	mu    sync.Mutex
	state State
}

// New returns a Session that dials cfg.Addr. cfg must have passed Validate.
func New(cfg Config, h Handler, log zerolog.Logger) *Session {
	if h == nil {
		h = Handlers{}
	}
	if cfg.HealthyAfter <= 0 {
		cfg.HealthyAfter = max(cfg.RetryMax, 30*time.Second)
	}
	s := &Session{cfg: cfg, h: h, log: log}
	s.dial = func(ctx context.Context) (net.Conn, error) { return Dial(ctx, cfg.Addr) }
	s.state = State{State: StateDisconnected, Since: time.Now()}
	return s
}

// SetDialer replaces how the session connects (for proxies, TLS or tests).
// Call it before Run.
func (s *Session) SetDialer(dial func(ctx context.Context) (net.Conn, error)) { s.dial = dial }

// State returns the session's current state.
func (s *Session) State() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state
}

func (s *Session) setState(kind StateKind, err error, retry time.Duration) {
	st := State{State: kind, Since: time.Now(), Err: err, Retry: retry}
	s.mu.Lock()
	s.state = st
	s.mu.Unlock()
	ev := s.log.Info()
	if kind == StateLoginFailed || (kind == StateDisconnected && err != nil) {
		ev = s.log.Warn()
	}
	ev = ev.Str("state", string(kind)).Str("addr", s.cfg.Addr)
	if err != nil {
		ev = ev.Err(err)
	}
	if retry > 0 {
		ev = ev.Dur("retry_in", retry)
	}
	ev.Msg("session state")
	s.h.HandleState(st)
}

// Run keeps the session up until ctx is done, then logs out and returns
// nil.
func (s *Session) Run(ctx context.Context) error {
	attempt := 0
	for {
		kind, err, healthy := s.once(ctx)
		if ctx.Err() != nil {
			break
		}
		if healthy {
			attempt = 0
		}
		var wait time.Duration
		if kind == StateLoginFailed {
			// The platform has refused the account; asking again soon
			// would only hammer it.
			wait = Backoff(0, s.cfg.RetryMax, s.cfg.RetryMax, rand.Float64)
		} else {
			wait = Backoff(attempt, s.cfg.RetryMin, s.cfg.RetryMax, rand.Float64)
			attempt++
		}
		s.setState(kind, err, wait)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
		if ctx.Err() != nil {
			break
		}
	}
	s.setState(StateDisconnected, nil, 0)
	return nil
}

// once runs one connection, from dial to its end. It returns the state it
// ended in, why, and whether the session stayed logged in long enough to
// start the backoff over.
func (s *Session) once(ctx context.Context) (StateKind, error, bool) {
	s.setState(StateConnecting, nil, 0)
	nc, err := s.dial(ctx)
	if err != nil {
		return StateDisconnected, err, false
	}
	c := NewClient(nc, s.cfg, s.h, s.log)
	if err := c.Login(ctx); err != nil {
		c.Close()
		if _, ok := errors.AsType[*LoginError](err); ok {
			return StateLoginFailed, err, false
		}
		return StateDisconnected, err, false
	}
	start := time.Now()
	s.cur.Store(c)
	s.setState(StateLoggedIn, nil, 0)
	err = c.Serve(ctx)
	s.cur.CompareAndSwap(c, nil)
	return StateDisconnected, err, time.Since(start) >= s.cfg.HealthyAfter
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
