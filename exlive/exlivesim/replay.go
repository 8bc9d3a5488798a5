package exlivesim

import (
	"container/heap"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/exlive2mqtt/exlive2mqtt/exlive"
	"github.com/rs/zerolog"
)

// maxQueued bounds the answers a replay connection holds for later: a
// client that asks far faster than the capture answers is dropped rather
// than let the queue grow.
const maxQueued = 100_000

// ReplayConfig sets up a Replay.
type ReplayConfig struct {
	// Speed divides the capture's times: 1 plays it as it happened, 10 ten
	// times faster, 0 as fast as the connection takes (in the capture's
	// order). Negative is taken as 0.
	Speed float64
	// Log gets connection events; zerolog.Nop() by default.
	Log *zerolog.Logger
}

// Replay is a platform that plays back a Capture on a real TCP port: every
// connection gets the platform's side of the capture, byte for byte, with
// its timing (the rules are on script). It accepts any account and any
// password: a capture holds no password to compare with (the probe masks
// it), and the login is answered as the capture's was, accepted or
// refused.
type Replay struct {
	cap *Capture
	cfg ReplayConfig
	log zerolog.Logger
	ln  net.Listener

	mu     sync.Mutex
	conns  map[*replayConn]struct{}
	nconn  int
	logins int

	wg        sync.WaitGroup
	done      chan struct{}
	closeOnce sync.Once
}

// NewReplay returns a Replay of c; call Listen and then Serve, or Start.
func NewReplay(c *Capture, cfg ReplayConfig) *Replay {
	log := zerolog.Nop()
	if cfg.Log != nil {
		log = *cfg.Log
	}
	cfg.Speed = max(cfg.Speed, 0)
	return &Replay{cap: c, cfg: cfg, log: log, conns: make(map[*replayConn]struct{}), done: make(chan struct{})}
}

// Start listens on addr ("127.0.0.1:0" picks a free port) and serves in the
// background until Close.
func (rp *Replay) Start(addr string) error {
	if err := rp.Listen(addr); err != nil {
		return err
	}
	rp.wg.Add(1)
	go func() {
		defer rp.wg.Done()
		rp.Serve()
	}()
	return nil
}

// Listen opens the listener.
func (rp *Replay) Listen(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("exlivesim: listen: %w", err)
	}
	rp.ln = ln
	return nil
}

// Addr returns the address the replay listens on.
func (rp *Replay) Addr() string { return rp.ln.Addr().String() }

// Logins returns how many logins clients have sent.
func (rp *Replay) Logins() int {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	return rp.logins
}

// Serve accepts connections until Close; each replays the capture from its
// start.
func (rp *Replay) Serve() error {
	for {
		nc, err := rp.ln.Accept()
		if err != nil {
			select {
			case <-rp.done:
				return nil
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("exlivesim: accept: %w", err)
		}
		rp.mu.Lock()
		rp.nconn++
		c := &replayConn{rp: rp, nc: nc, n: rp.nconn, ranks: make(map[trigger]int),
			wake: make(chan struct{}, 1), stop: make(chan struct{})}
		rp.conns[c] = struct{}{}
		rp.mu.Unlock()
		rp.wg.Add(1)
		go func() {
			defer rp.wg.Done()
			c.serve()
			rp.mu.Lock()
			delete(rp.conns, c)
			rp.mu.Unlock()
		}()
	}
}

// Close stops listening, drops every connection and waits for them.
func (rp *Replay) Close() error {
	var err error
	rp.closeOnce.Do(func() {
		close(rp.done)
		if rp.ln != nil {
			err = rp.ln.Close()
		}
		rp.mu.Lock()
		for c := range rp.conns {
			c.nc.Close()
		}
		rp.mu.Unlock()
		rp.wg.Wait()
	})
	return err
}

// replayConn plays the capture to one client: a reader schedules the
// answers to what the client sends, a writer sends them, and the capture's
// own frames, when they are due.
type replayConn struct {
	rp  *Replay
	nc  net.Conn
	n   int
	log zerolog.Logger

	mu       sync.Mutex
	accepted time.Time
	login    time.Time // of the client's first login; zero before
	queue    dueHeap   // answers
	seq      uint64
	ranks    map[trigger]int
	wake     chan struct{} // something was queued, or the client logged in
	stop     chan struct{} // the reader is done
}

func (c *replayConn) serve() {
	c.log = c.rp.log.With().Int("conn", c.n).Str("remote", c.nc.RemoteAddr().String()).Logger()
	c.log.Info().Msg("connection accepted")
	c.accepted = time.Now()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c.write()
		c.nc.Close() // ends the reader
	}()
	err := c.read()
	close(c.stop)
	c.nc.Close()
	wg.Wait()
	c.log.Info().AnErr("reason", err).Msg("connection closed")
}

// read schedules the answer to every frame the client sends, until the
// connection ends or the client logs out.
func (c *replayConn) read() error {
	r := exlive.NewReader(c.nc, exlive.DefaultMaxFrame, exlive.EncodingAuto)
	dec := exlive.NewDecoder(nil)
	for {
		f, err := r.ReadFrame()
		if err != nil {
			var fe *exlive.FrameError
			if errors.As(err, &fe) {
				c.log.Warn().Err(err).Msg("frame skipped")
				continue
			}
			return err
		}
		m, err := dec.Decode(f.Data)
		if err != nil {
			c.log.Warn().Err(err).Msg("frame skipped")
			continue
		}
		switch m := m.(type) {
		case *exlive.Logout:
			return errors.New("logged out")
		case *exlive.Login:
			c.rp.mu.Lock()
			c.rp.logins++
			c.rp.mu.Unlock()
			// The user alone: the password is neither checked nor shown.
			c.log.Info().Str("user", m.Name).Msg("login, answered as captured")
		}
		if err := c.schedule(m, time.Now()); err != nil {
			return err
		}
	}
}

// schedule queues the capture's answer to m, received at now.
func (c *replayConn) schedule(m exlive.Message, now time.Time) error {
	t := triggerOf(m)
	c.mu.Lock()
	defer c.mu.Unlock()
	rank := c.ranks[t]
	c.ranks[t]++
	replies := c.rp.cap.script.answer(t, rank)
	if len(replies) == 0 {
		c.log.Debug().Stringer("cmd", t.cmd).Int("rank", rank).Msg("the capture has no answer to this frame")
	}
	if c.queue.Len()+len(replies) > maxQueued {
		return fmt.Errorf("more than %d answers waiting to be sent: the client asks faster than the capture answers", maxQueued)
	}
	for _, r := range replies {
		c.seq++
		heap.Push(&c.queue, due{at: now.Add(c.scale(r.at)), seq: c.seq, reply: r})
	}
	if t.cmd == exlive.CmdLogin && c.login.IsZero() {
		c.login = now
	}
	select {
	case c.wake <- struct{}{}:
	default:
	}
	return nil
}

func (c *replayConn) scale(d time.Duration) time.Duration {
	if c.rp.cfg.Speed == 0 {
		return 0
	}
	return time.Duration(float64(d) / c.rp.cfg.Speed)
}

// write sends what is due, in time order (the capture's order on ties),
// until the connection ends.
func (c *replayConn) write() {
	s := &c.rp.cap.script
	next := 0 // of the capture's own frames: early, then timeline
	own := func(i int) (reply, time.Time, bool) {
		if i < len(s.early) {
			return s.early[i], c.accepted.Add(c.scale(s.early[i].at)), true
		}
		i -= len(s.early)
		if i >= len(s.timeline) || c.login.IsZero() {
			return reply{}, time.Time{}, false
		}
		return s.timeline[i], c.login.Add(c.scale(s.timeline[i].at)), true
	}
	total := len(s.early) + len(s.timeline)
	var buf []byte
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		c.mu.Lock()
		now := time.Now()
		buf = buf[:0]
		closing := false
		var wait time.Time // of the next frame not yet due; zero: none
		for len(buf) < 64<<10 && !closing {
			r, at, ok := own(next)
			fromQueue := false
			if c.queue.Len() > 0 {
				q := c.queue[0]
				if !ok || q.at.Before(at) || q.at.Equal(at) && q.reply.line < r.line {
					r, at, ok, fromQueue = q.reply, q.at, true, true
				}
			}
			if !ok {
				break
			}
			if at.After(now) {
				wait = at
				break
			}
			if fromQueue {
				heap.Pop(&c.queue)
			} else {
				next++
				if next == total {
					c.log.Info().Int("frames", len(c.rp.cap.frames)).Msg("capture replayed to its end")
				}
			}
			buf = append(buf, r.wire...)
			closing = r.close
		}
		c.mu.Unlock()
		if len(buf) > 0 {
			c.nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
			if _, err := c.nc.Write(buf); err != nil {
				return
			}
		}
		if closing {
			c.log.Info().Msg("connection closed, as in the capture")
			return
		}
		if len(buf) > 0 {
			continue
		}
		var tick <-chan time.Time
		if !wait.IsZero() {
			timer.Reset(time.Until(wait))
			tick = timer.C
		}
		select {
		case <-c.stop:
			return
		case <-c.wake:
		case <-tick:
		}
		timer.Stop() // since Go 1.23, no stale tick is left to drain
	}
}

// due is an answer queued to be sent at a time.
type due struct {
	at    time.Time
	seq   uint64
	reply reply
}

// dueHeap orders answers by time, then by the capture's order, then by
// when they were queued.
type dueHeap []due

func (h dueHeap) Len() int { return len(h) }
func (h dueHeap) Less(i, j int) bool {
	if !h[i].at.Equal(h[j].at) {
		return h[i].at.Before(h[j].at)
	}
	if h[i].reply.line != h[j].reply.line {
		return h[i].reply.line < h[j].reply.line
	}
	return h[i].seq < h[j].seq
}
func (h dueHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *dueHeap) Push(x any)   { *h = append(*h, x.(due)) }
func (h *dueHeap) Pop() any {
	old := *h
	d := old[len(old)-1]
	*h = old[:len(old)-1]
	return d
}
