// Package exlivesim is a simulated EXLIVE platform: a real TCP server that
// speaks the protocol of package exlive. It logs accounts in (and refuses a
// wrong password as the platform does: an 8000 that is not a success, then
// the connection closed), answers the inventory requests from a configurable
// fleet, moves the fleet along plausible routes and sends 1007 positions at
// a configurable rate, up to flat out, answers commands, records everything
// it receives, and can be told to misbehave. The tests, the demo and the load
// tool all use it.
//
// By default it speaks the dialect that public clients of live servers show
// (docs/protocol.md): answers say "succeed", every heartbeat is answered,
// text is GBK, frames are pretty-printed over several lines and sent back to
// back with nothing between them. Config.Literal makes it speak the
// specification's literal form instead.
//
// A Replay plays back instead what a real platform sent, from a capture
// of exlive2mqtt probe -capture.
package exlivesim

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/exlive2mqtt/exlive2mqtt/exlive"
	"github.com/rs/zerolog"
	"golang.org/x/text/encoding/simplifiedchinese"
	"golang.org/x/text/transform"
)

// Defaults of Config.
const (
	DefaultVehicles = 20
	DefaultRate     = 10
	DefaultUser     = "exlive"
	DefaultPass     = "000000"
	// LoginRefused is the result a wrong password gets.
	LoginRefused = "用户名或密码错误"
	// maxRecorded bounds the frames a server keeps for Received.
	maxRecorded = 100_000
)

// Config sets up a Server. The zero value is usable: one account
// exlive/000000, 20 vehicles round Shanghai, 10 positions a second.
type Config struct {
	Accounts map[string]string // user → password
	Vehicles int               // fleet size
	Groups   int               // the fleet is spread over this many groups
	IDPrefix string            // vehicle ids are IDPrefix1, IDPrefix2, …; default "V"
	// Rate is positions a second over the whole fleet, per connection. 0
	// sends none; a negative rate sends as fast as the connection takes.
	Rate float64
	// Count stops the positions of a connection after this many (0: never).
	Count int
	// Literal speaks the specification's literal form: answers say
	// "success", heartbeats go unanswered, frames are compact UTF-8, one a
	// line. By default the server speaks the live dialect: "succeed", an
	// answer to every heartbeat, GBK, pretty-printed frames with nothing
	// between them.
	Literal bool
	// Encoding of the frames sent: the form's (GBK, or UTF-8 when Literal)
	// when left zero (EncodingAuto). Set to GBK, it also reads every frame
	// received as GBK; otherwise they are read in auto mode.
	Encoding exlive.Encoding
	// Timezone of gpstime; Asia/Shanghai by default.
	Timezone *time.Location
	// Lat and Lng are the centre of the fleet; Shanghai by default.
	Lat, Lng float64
	// StampSent puts the moment each position is written, as Unix
	// nanoseconds, in its wstate, so a load test can measure latency.
	StampSent bool
	// Sequence puts in each position's wstate a number that counts the
	// positions of its vehicle from 1, across connections (followed by a
	// space and the send time when StampSent is set too), so a load test
	// can tell which positions were lost. SequenceSent tells the last one.
	Sequence bool
	// Prerender makes the positions once, this many of them rounded up to
	// whole laps of the fleet, encoded as they go on the wire, and sends
	// copies of them, with only the send time of StampSent patched in
	// (nineteen digits, zero-padded; one time for the frames of a batch,
	// which go in one write): a load test's platform then costs
	// next to nothing a position (0: off; each position is moved and
	// encoded as it is sent). Listen prepares them, before any client
	// connects. Positions go round the prepared set: on the set's second
	// round a vehicle is back where it was on the first, gpstime and all,
	// which is fine for a load test and wrong for anything that follows
	// vehicles. Count, Rate, Paused and the batches are as without it.
	// Listen refuses it with Sequence (ErrPrerenderSequence).
	Prerender int
	// Paused holds positions back until SetPaused(false), so a load test
	// can let the bridge log in and reach its broker before the clock
	// starts. Logins, inventory and answers are not held.
	Paused bool
	// AnswerUploads answers 1003, 1005, 1006 and 1007 from the client with
	// 8000 success too (whether the real platform does is unknown).
	AnswerUploads bool
	// Backlog writes this many positions ahead of the answer to every 1008
	// and 1010, as fast as the connection takes them, as a platform whose
	// stream is busy queues its answers behind positions. They repeat one
	// batch of the fleet's positions (without Sequence numbers), written
	// whole, so that the client, not the server, is what holds them up.
	Backlog int
	// Exclusive allows one session per account: a login closes the
	// connections logged in to the same account before it, as a platform
	// that allows one session per account does.
	Exclusive bool
	// Seed makes the fleet's routes repeatable.
	Seed uint64
	// Log gets connection events; zerolog.Nop() by default.
	Log *zerolog.Logger
}

// Received is one frame the server received.
type Received struct {
	Msg  exlive.Message
	At   time.Time
	Conn int // which connection, counting from 1
	// GBK is set when the frame held text that was read as GB18030, so a
	// test can tell which encoding a client wrote.
	GBK bool
}

// Server is a simulated platform.
type Server struct {
	cfg   Config
	fleet *fleet
	log   zerolog.Logger
	ln    net.Listener

	mu       sync.Mutex
	conns    map[*conn]struct{}
	received []Received
	counts   map[exlive.Cmd]int
	changed  chan struct{} // closed and replaced whenever something is received
	nconn    int
	logins   int
	refused  int

	enc           exlive.Encoding // of the frames sent
	ok            string          // the word of a success
	silent        atomic.Bool
	split         atomic.Bool
	beats         atomic.Bool // answer heartbeats
	paused        atomic.Bool
	seqs          []atomic.Uint64 // per vehicle, for Config.Sequence
	pre           *prerendered    // Config.Prerender's positions, made by Listen
	answerResult  atomic.Pointer[string]
	answerDelay   atomic.Int64
	answerDropped atomic.Bool
	backlogSent   atomic.Int64
	wg            sync.WaitGroup
	done          chan struct{}
	closeOnce     sync.Once
}

// New returns a Server; call Listen and then Serve, or Start.
func New(cfg Config) *Server {
	if cfg.Accounts == nil {
		cfg.Accounts = map[string]string{DefaultUser: DefaultPass}
	}
	if cfg.Vehicles == 0 {
		cfg.Vehicles = DefaultVehicles
	}
	if cfg.Groups == 0 {
		cfg.Groups = max(1, min(cfg.Vehicles/50, 20))
	}
	if cfg.IDPrefix == "" {
		cfg.IDPrefix = "V"
	}
	if cfg.Timezone == nil {
		cfg.Timezone, _ = time.LoadLocation("Asia/Shanghai")
		if cfg.Timezone == nil {
			cfg.Timezone = time.FixedZone("CST", 8*3600)
		}
	}
	if cfg.Lat == 0 && cfg.Lng == 0 {
		cfg.Lat, cfg.Lng = 31.2304, 121.4737
	}
	log := zerolog.Nop()
	if cfg.Log != nil {
		log = *cfg.Log
	}
	s := &Server{
		cfg:     cfg,
		fleet:   newFleet(cfg),
		log:     log,
		conns:   make(map[*conn]struct{}),
		counts:  make(map[exlive.Cmd]int),
		changed: make(chan struct{}),
		done:    make(chan struct{}),
	}
	s.enc, s.ok = exlive.EncodingGBK, exlive.ResultSucceed
	if cfg.Literal {
		s.enc, s.ok = exlive.EncodingUTF8, exlive.ResultSuccess
	}
	if cfg.Encoding != exlive.EncodingAuto {
		s.enc = cfg.Encoding
	}
	ok := s.ok
	s.answerResult.Store(&ok)
	s.beats.Store(!cfg.Literal)
	s.paused.Store(cfg.Paused)
	s.seqs = make([]atomic.Uint64, len(s.fleet.vehicles))
	return s
}

// Start listens on addr ("127.0.0.1:0" picks a free port) and serves in the
// background until Close.
func (s *Server) Start(addr string) error {
	if err := s.Listen(addr); err != nil {
		return err
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.Serve()
	}()
	return nil
}

// Listen opens the listener, once the positions of Config.Prerender are
// ready.
func (s *Server) Listen(addr string) error {
	if s.cfg.Prerender < 0 {
		return fmt.Errorf("exlivesim: Prerender %d: want 0 (off) or a number of positions", s.cfg.Prerender)
	}
	if s.cfg.Prerender > 0 && s.pre == nil {
		pre, err := s.prerender()
		if err != nil {
			return err
		}
		s.pre = pre
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("exlivesim: listen: %w", err)
	}
	s.ln = ln
	return nil
}

// Addr returns the address the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Serve accepts connections until Close.
func (s *Server) Serve() error {
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			select {
			case <-s.done:
				return nil
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("exlivesim: accept: %w", err)
		}
		s.mu.Lock()
		s.nconn++
		c := newConn(s, nc, s.nconn)
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			c.serve()
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
		}()
	}
}

// Close stops listening, drops every connection and waits for them.
func (s *Server) Close() error {
	var err error
	s.closeOnce.Do(func() {
		close(s.done)
		if s.ln != nil {
			err = s.ln.Close()
		}
		s.DropAll()
		s.wg.Wait()
	})
	return err
}

// DropAll closes every connection abruptly, as a platform that restarts or
// a network that fails would.
func (s *Server) DropAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.nc.Close()
	}
}

// SetSilent stops (or restarts) everything the server sends: positions,
// answers and inventory. It keeps reading.
func (s *Server) SetSilent(v bool) { s.silent.Store(v) }

// SetHeartbeatAnswers starts or stops the answers to heartbeats (on by
// default, off in the literal form).
func (s *Server) SetHeartbeatAnswers(v bool) { s.beats.Store(v) }

// Stall makes every connection open now a dead link: nothing more is sent
// on it, not even the last bytes of a frame, but it stays open and keeps
// reading, as a connection does when a NAT on the way forgets it or the
// platform hangs. Connections made afterwards are served as usual.
func (s *Server) Stall() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.stalled.Store(true)
	}
}

// Succeed returns the word the server answers a success with: "succeed",
// or "success" in the literal form.
func (s *Server) Succeed() string { return s.ok }

// SetPaused holds positions back (true) or lets them flow (false). A paced
// rate counts from when positions flow, so resuming sends no burst.
func (s *Server) SetPaused(v bool) { s.paused.Store(v) }

// SetSplit makes the server write each frame in pieces of one to seven
// bytes, with a pause between, so a reader sees frames split at any byte.
func (s *Server) SetSplit(v bool) { s.split.Store(v) }

// SetAnswer sets what 1004 and 1012 are answered with: the 8000 result
// (Succeed by default), after delay. drop stops answering them at all.
func (s *Server) SetAnswer(result string, delay time.Duration, drop bool) {
	s.answerResult.Store(&result)
	s.answerDelay.Store(int64(delay))
	s.answerDropped.Store(drop)
}

// SendRaw writes b, as it is, to every logged-in connection: junk, broken or
// oversized frames, invalid text.
func (s *Server) SendRaw(b []byte) {
	for _, c := range s.loggedIn() {
		c.writeRaw(b)
	}
}

// Send writes m as a frame, in the server's form, to every logged-in
// connection.
func (s *Server) Send(m exlive.Message) {
	frame := s.format(nil, m)
	for _, c := range s.loggedIn() {
		c.writeFrame(frame)
	}
}

// format appends m as a frame in the server's form, in UTF-8, without the
// line end.
func (s *Server) format(dst []byte, m exlive.Message) []byte {
	if s.cfg.Literal {
		return exlive.AppendFrame(dst, m)
	}
	return Pretty(dst, exlive.AppendFrame(nil, m))
}

// lineEnd is what the server writes after each frame.
func (s *Server) lineEnd() string {
	if s.cfg.Literal {
		return "\r\n"
	}
	return ""
}

func (s *Server) loggedIn() []*conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	var cs []*conn
	for c := range s.conns {
		if c.loggedIn.Load() {
			cs = append(cs, c)
		}
	}
	return cs
}

// SequenceSent returns, for each vehicle id, the last sequence number its
// positions were given (see Config.Sequence): how many were sent, counting
// those written into a connection as it was dropped.
func (s *Server) SequenceSent() map[string]uint64 {
	out := make(map[string]uint64, len(s.seqs))
	for i, v := range s.fleet.vehicles {
		out[v.id] = s.seqs[i].Load()
	}
	return out
}

// BacklogSent returns how many positions Config.Backlog has written.
func (s *Server) BacklogSent() int { return int(s.backlogSent.Load()) }

// Connections returns how many connections are logged in now.
func (s *Server) Connections() int { return len(s.loggedIn()) }

// Logins returns how many logins were accepted and refused so far.
func (s *Server) Logins() (accepted, refused int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.logins, s.refused
}

// Fleet returns the groups and vehicles the server lists.
func (s *Server) Fleet() ([]exlive.Group, []exlive.Vehicle) {
	var vs []exlive.Vehicle
	for _, v := range s.fleet.vehicles {
		vs = append(vs, exlive.Vehicle{ID: v.id, Code: v.code, SIM: v.sim, GroupID: v.group})
	}
	return append([]exlive.Group(nil), s.fleet.groups...), vs
}

// Received returns what the server has received (the last 100 000 frames),
// oldest first.
func (s *Server) Received() []Received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Received(nil), s.received...)
}

// Count returns how many frames of cmd the server has received.
func (s *Server) Count(cmd exlive.Cmd) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[cmd]
}

// WaitFor waits until cond, called with what has been received so far and
// again after each frame, returns true, or ctx is done.
func (s *Server) WaitFor(ctx context.Context, cond func([]Received) bool) error {
	for {
		s.mu.Lock()
		ok := cond(s.received)
		ch := s.changed
		s.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("exlivesim: wait: %w", ctx.Err())
		case <-ch:
		}
	}
}

// WaitCount waits until n frames of cmd have been received in all.
func (s *Server) WaitCount(ctx context.Context, cmd exlive.Cmd, n int) error {
	return s.WaitFor(ctx, func([]Received) bool { return s.counts[cmd] >= n })
}

// record keeps a received message. Positions are copied, since the decoder
// reuses them.
func (s *Server) record(m exlive.Message, conn int, gbk bool) {
	if p, ok := m.(*exlive.Position); ok {
		cp := *p
		m = &cp
	}
	s.mu.Lock()
	if len(s.received) >= maxRecorded {
		s.received = append(s.received[:0], s.received[maxRecorded/2:]...)
	}
	s.received = append(s.received, Received{Msg: m, At: time.Now(), Conn: conn, GBK: gbk})
	s.counts[m.Cmd()]++
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
}

// conn is one client connection.
type conn struct {
	s        *Server
	nc       net.Conn
	n        int
	user     string // the account logged in; guarded by Server.mu
	loggedIn atomic.Bool
	stalled  atomic.Bool
	wmu      sync.Mutex
	w        *exlive.Writer
	gbk      transform.Transformer // for batches of positions
	out      []byte
	rng      *rand.Rand
	stop     chan struct{}
}

func newConn(s *Server, nc net.Conn, n int) *conn {
	c := &conn{s: s, nc: nc, n: n, stop: make(chan struct{}), rng: rand.New(rand.NewPCG(uint64(n), s.cfg.Seed))}
	c.w = exlive.NewWriter(splitter{c}, s.enc)
	c.w.SetLineEnd(s.lineEnd())
	return c
}

// splitter writes a frame in small pieces when the server is told to.
type splitter struct{ c *conn }

func (w splitter) Write(b []byte) (int, error) {
	if w.c.stalled.Load() {
		return len(b), nil // a dead link: the bytes go nowhere
	}
	if !w.c.s.split.Load() {
		return w.c.nc.Write(b)
	}
	n := 0
	for n < len(b) {
		k := min(len(b)-n, 1+w.c.rng.IntN(7))
		m, err := w.c.nc.Write(b[n : n+k])
		n += m
		if err != nil {
			return n, err
		}
		time.Sleep(50 * time.Microsecond)
	}
	return n, nil
}

func (c *conn) serve() {
	defer close(c.stop)
	defer c.nc.Close()
	log := c.s.log.With().Int("conn", c.n).Str("remote", c.nc.RemoteAddr().String()).Logger()
	log.Info().Msg("connection accepted")
	// Told to speak GBK, the server reads GBK too: a client that wrote
	// UTF-8 to it would be misread here as it would be on such a
	// platform. Left to the dialect, it reads both: the public clients
	// of live servers write UTF-8 to a server that writes GBK, and what
	// the server makes of non-ASCII text from them is not known.
	enc := exlive.EncodingAuto
	if c.s.cfg.Encoding == exlive.EncodingGBK {
		enc = exlive.EncodingGBK
	}
	r := exlive.NewReader(c.nc, exlive.DefaultMaxFrame, enc)
	dec := exlive.NewDecoder(c.s.cfg.Timezone)
	for {
		f, err := r.ReadFrame()
		if err != nil {
			var fe *exlive.FrameError
			if errors.As(err, &fe) {
				log.Warn().Err(err).Msg("frame skipped")
				continue
			}
			log.Info().Err(err).Msg("connection closed")
			return
		}
		m, err := dec.Decode(f.Data)
		if err != nil {
			log.Warn().Err(err).Msg("frame skipped")
			continue
		}
		c.s.record(m, c.n, f.GBK)
		if !c.handle(m, log) {
			return
		}
	}
}

// handle answers one message; false ends the connection.
func (c *conn) handle(m exlive.Message, log zerolog.Logger) bool {
	switch m := m.(type) {
	case *exlive.Login:
		pass, ok := c.s.cfg.Accounts[m.Name]
		if !ok || pass != m.Pass.Reveal() {
			c.s.mu.Lock()
			c.s.refused++
			c.s.mu.Unlock()
			log.Info().Str("user", m.Name).Msg("login refused")
			c.send(&exlive.Answer{Command: exlive.CmdLogin, Result: LoginRefused})
			return false
		}
		c.s.mu.Lock()
		c.s.logins++
		c.user = m.Name
		if c.s.cfg.Exclusive {
			for other := range c.s.conns {
				if other != c && other.user == m.Name && other.loggedIn.Load() {
					log.Info().Str("user", m.Name).Int("dropped", other.n).Msg("account logged in again: older session dropped")
					other.nc.Close()
				}
			}
		}
		c.s.mu.Unlock()
		// Logged in before the answer goes: a client that has the answer
		// must find the connection logged in (Send, SendRaw).
		first := c.loggedIn.CompareAndSwap(false, true)
		c.send(&exlive.Answer{Command: exlive.CmdLogin, Result: c.s.ok})
		if first {
			log.Info().Str("user", m.Name).Msg("logged in")
			c.s.wg.Add(1)
			go func() {
				defer c.s.wg.Done()
				c.positions()
			}()
		}
	case *exlive.Logout:
		log.Info().Msg("logged out")
		return false
	case *exlive.Heartbeat:
		if c.loggedIn.Load() && c.s.beats.Load() && !c.s.silent.Load() {
			c.send(&exlive.Answer{Command: exlive.CmdHeartbeat, Result: c.s.ok})
		}
	case *exlive.GroupsRequest:
		if c.loggedIn.Load() && !c.s.silent.Load() {
			c.backlog()
			for i := range c.s.fleet.groups {
				c.send(&c.s.fleet.groups[i])
			}
		}
	case *exlive.VehiclesRequest:
		if c.loggedIn.Load() && !c.s.silent.Load() {
			c.backlog()
			for _, v := range c.s.fleet.vehicles {
				if v.group == m.GroupID {
					c.send(&exlive.Vehicle{ID: v.id, Code: v.code, SIM: v.sim})
				}
			}
		}
	case *exlive.VehicleCommand:
		c.answer(m.Cmd(), nil)
	case *exlive.Passthrough:
		reply := &exlive.PassthroughReply{TerminalID: m.TerminalID, Code: m.Code, Data: "ACK " + m.Data}
		c.answer(m.Cmd(), reply)
	case *exlive.TextMessage, *exlive.GroupData, *exlive.VehicleData, *exlive.Position:
		if c.s.cfg.AnswerUploads && !c.s.silent.Load() {
			c.send(&exlive.Answer{Command: m.Cmd(), Result: c.s.ok})
		}
	}
	return true
}

// answer sends the 8000 for a command, and then the follow-up if any, as
// the server is set to.
func (c *conn) answer(cmd exlive.Cmd, then exlive.Message) {
	if !c.loggedIn.Load() || c.s.answerDropped.Load() || c.s.silent.Load() {
		return
	}
	a := &exlive.Answer{Command: cmd, Result: *c.s.answerResult.Load()}
	delay := time.Duration(c.s.answerDelay.Load())
	if delay <= 0 {
		c.send(a)
		if then != nil {
			c.send(then)
		}
		return
	}
	time.AfterFunc(delay, func() {
		c.send(a)
		if then != nil {
			c.send(then)
		}
	})
}

func (c *conn) send(m exlive.Message) {
	frame := c.s.format(nil, m)
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
	c.w.WriteFrame(frame)
}

func (c *conn) writeFrame(frame []byte) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
	c.w.WriteFrame(frame)
}

func (c *conn) writeRaw(b []byte) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
	splitter{c}.Write(b)
}

// positions sends the fleet's positions at the configured rate until the
// connection ends or Count is reached.
func (c *conn) positions() {
	cfg := c.s.cfg
	if cfg.Rate == 0 || len(c.s.fleet.vehicles) == 0 {
		return
	}
	// Each connection drives its own copy of the fleet, so two bridges
	// logged in at once do not take turns moving the same vehicles. The
	// prerendered positions need none.
	var vs []*vehicle
	if c.s.pre == nil {
		vs = newFleet(cfg).vehicles
	}
	rng := rand.New(rand.NewPCG(uint64(c.n), cfg.Seed+1))
	var (
		p     exlive.Position
		buf   []byte
		sent  int
		next  int
		start = time.Now()
	)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for cfg.Count == 0 || sent < cfg.Count {
		if c.s.paused.Load() {
			held := time.Now()
			for c.s.paused.Load() {
				select {
				case <-c.stop:
					return
				case <-tick.C:
				}
			}
			start = start.Add(time.Since(held))
		}
		if cfg.Rate > 0 || c.s.silent.Load() {
			select {
			case <-c.stop:
				return
			case <-tick.C:
			}
		}
		due := 256 // flat out: batches of frames, as a busy server writes them
		if cfg.Rate > 0 {
			due = int(time.Since(start).Seconds()*cfg.Rate) - sent
		}
		if cfg.Count > 0 {
			due = min(due, cfg.Count-sent)
		}
		if c.s.silent.Load() {
			sent += max(due, 0) // a silent platform loses them
			continue
		}
		if due <= 0 {
			continue
		}
		if pre := c.s.pre; pre != nil {
			var stamp int64
			if cfg.StampSent {
				stamp = time.Now().UnixNano() // the batch goes in one write
			}
			buf, next = pre.appendFrames(buf[:0], next, due, stamp)
			sent += due
			if err := c.writeWire(buf); err != nil {
				return
			}
			continue
		}
		now := time.Now()
		buf = buf[:0]
		for range due {
			i := next % len(vs)
			v := vs[i]
			next++
			v.step(now, cfg.Timezone, &p, rng)
			if cfg.Sequence {
				p.WState = strconv.FormatUint(c.s.seqs[i].Add(1), 10)
			}
			if cfg.StampSent {
				stamp := strconv.FormatInt(time.Now().UnixNano(), 10)
				if cfg.Sequence {
					p.WState += " " + stamp
				} else {
					p.WState = stamp
				}
			}
			buf = c.s.format(buf, &p)
			buf = append(buf, c.s.lineEnd()...)
		}
		sent += due
		if err := c.writeBatch(buf); err != nil {
			return
		}
	}
}

// backlog writes Config.Backlog positions: one batch of up to a thousand
// of the fleet's positions, encoded once and written again and again, so
// that the server writes faster than any client reads.
func (c *conn) backlog() {
	n := c.s.cfg.Backlog
	if n <= 0 || len(c.s.fleet.vehicles) == 0 {
		return
	}
	vs := newFleet(c.s.cfg).vehicles
	rng := rand.New(rand.NewPCG(uint64(c.n), c.s.cfg.Seed+2))
	encode := func(k int) ([]byte, error) {
		var (
			p   exlive.Position
			b   []byte
			now = time.Now()
		)
		for i := range k {
			vs[i%len(vs)].step(now, c.s.cfg.Timezone, &p, rng)
			b = c.s.format(b, &p)
			b = append(b, c.s.lineEnd()...)
		}
		if c.s.enc == exlive.EncodingGBK {
			return simplifiedchinese.GB18030.NewEncoder().Bytes(b)
		}
		return b, nil
	}
	size := min(n, 1000)
	batch, err := encode(size)
	for sent := 0; sent < n && err == nil; sent += size {
		k := min(size, n-sent)
		b := batch
		if k < size {
			if b, err = encode(k); err != nil {
				break
			}
		}
		c.wmu.Lock()
		c.nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
		_, err = splitter{c}.Write(b)
		c.wmu.Unlock()
		if err == nil {
			c.s.backlogSent.Add(int64(k))
		}
	}
}

// writeWire writes bytes already in the server's encoding at once.
func (c *conn) writeWire(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_, err := splitter{c}.Write(b)
	return err
}

// writeBatch writes several frames at once (each already followed by its
// line end), in the server's encoding.
func (c *conn) writeBatch(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.s.enc == exlive.EncodingGBK {
		if c.gbk == nil {
			c.gbk = simplifiedchinese.GB18030.NewEncoder()
		}
		c.gbk.Reset()
		var err error
		if c.out, _, err = transform.Append(c.gbk, c.out[:0], b); err != nil {
			return err
		}
		b = c.out
	}
	c.nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_, err := splitter{c}.Write(b)
	return err
}

// Pretty appends frame, compact JSON as exlive.AppendFrame writes it, laid
// out over several lines as live servers and their clients write frames: a
// line break after every '{' and ',' and before every '}', and after a key
// whose value is an object. The last two braces come on lines of their own,
// so a client that joins lines finds the "}}" it looks for.
func Pretty(dst, frame []byte) []byte {
	inString, escape := false, false
	for i, c := range frame {
		if inString {
			dst = append(dst, c)
			switch {
			case escape:
				escape = false
			case c == '\\':
				escape = true
			case c == '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
			dst = append(dst, c)
		case '{':
			if i+1 < len(frame) && frame[i+1] == '}' {
				dst = append(dst, c) // {} stays on its line
			} else {
				dst = append(dst, c, '\n')
			}
		case '}':
			if i > 0 && frame[i-1] == '{' {
				dst = append(dst, c)
			} else {
				dst = append(dst, '\n', c)
			}
		case ',':
			dst = append(dst, c, '\n')
		case ':':
			dst = append(dst, c)
			if i+1 < len(frame) && frame[i+1] == '{' {
				dst = append(dst, '\n')
			}
		default:
			dst = append(dst, c)
		}
	}
	return dst
}
