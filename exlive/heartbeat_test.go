package exlive_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/exlive2mqtt/exlive2mqtt/exlive"
	"github.com/exlive2mqtt/exlive2mqtt/exlive/exlivesim"
	"github.com/rs/zerolog"
)

// TestDialectLogin: a platform that answers "succeed" logs the session in,
// and the login carries what working clients send.
func TestDialectLogin(t *testing.T) {
	for _, literal := range []bool{false, true} {
		srv := startSim(t, exlivesim.Config{Rate: 0, Literal: literal})
		rec := newRecorder()
		runSession(t, testConfig(srv.Addr()), rec)
		rec.wait(t, "logged_in", func() bool { return rec.countState(exlive.StateLoggedIn) == 1 })
		var login *exlive.Login
		for _, r := range srv.Received() {
			if l, ok := r.Msg.(*exlive.Login); ok {
				login = l
			}
		}
		if login == nil || login.Ver != "4.6936" || login.Type != "json_common" || login.Mode != "" {
			t.Errorf("literal %v: login %v, want ver 4.6936, type json_common", literal, login)
		}
		if rec.countState(exlive.StateLoginFailed) != 0 {
			t.Errorf("literal %v: a login failed", literal)
		}
	}
}

// firstDrop returns the first disconnected state with an error; call with
// r.mu held.
func firstDrop(r *recorder) (exlive.State, bool) {
	for _, s := range r.states {
		if s.State == exlive.StateDisconnected && s.Err != nil {
			return s, true
		}
	}
	return exlive.State{}, false
}

// heartbeatAnswers counts the heartbeat answers r has seen; call with r.mu
// held (rec.wait holds it for its condition).
func heartbeatAnswers(r *recorder) int {
	n := 0
	for _, m := range r.messages {
		if a, ok := m.(*exlive.Answer); ok && a.Command == exlive.CmdHeartbeat {
			n++
		}
	}
	return n
}

// TestDeadLinkEndsSessionOnceHeartbeatsWereAnswered: the platform answers
// heartbeats, then the link dies without a word (the connection stays open
// and silent). After HeartbeatMisses unanswered heartbeats the session ends,
// reconnects and logs in again.
func TestDeadLinkEndsSessionOnceHeartbeatsWereAnswered(t *testing.T) {
	srv := startSim(t, exlivesim.Config{Rate: 0})
	rec := newRecorder()
	cfg := testConfig(srv.Addr())
	cfg.Heartbeat = 40 * time.Millisecond
	runSession(t, cfg, rec)

	// Answered heartbeats keep the session: five of them, no drop.
	rec.wait(t, "5 heartbeat answers", func() bool { return heartbeatAnswers(rec) >= 5 })
	rec.mu.Lock()
	_, dropped := firstDrop(rec)
	rec.mu.Unlock()
	if dropped {
		t.Fatal("the session dropped while heartbeats were answered")
	}

	stalled := time.Now()
	srv.Stall()
	rec.wait(t, "the dead link noticed", func() bool { _, ok := firstDrop(rec); return ok })
	rec.mu.Lock()
	drop, _ := firstDrop(rec)
	rec.mu.Unlock()
	if !errors.Is(drop.Err, exlive.ErrHeartbeatLost) {
		t.Fatalf("disconnected with %v, want ErrHeartbeatLost", drop.Err)
	}
	// HeartbeatMisses heartbeats go unanswered, one of them perhaps sent
	// just before the stall: the drop is at least two intervals after it.
	if since := drop.Since.Sub(stalled); since < time.Duration(exlive.HeartbeatMisses-1)*cfg.Heartbeat {
		t.Errorf("dropped %s after the link died, before %d heartbeats could go unanswered", since, exlive.HeartbeatMisses)
	}
	rec.wait(t, "logged in again", func() bool { return rec.countState(exlive.StateLoggedIn) == 2 })
	if accepted, _ := srv.Logins(); accepted != 2 {
		t.Errorf("platform accepted %d logins, want 2", accepted)
	}
	// The new connection is answered again, and stays.
	rec.mu.Lock()
	n := heartbeatAnswers(rec)
	rec.mu.Unlock()
	rec.wait(t, "heartbeats answered on the new connection", func() bool { return heartbeatAnswers(rec) >= n+3 })
}

// TestPlatformThatNeverAnswersHeartbeatsKeepsTheSession: the specification
// documents no heartbeat answer, and a platform that never gives one must
// not be dropped for it, however long it stays quiet (EXLIVE_IDLE_TIMEOUT is
// for that, and off by default).
func TestPlatformThatNeverAnswersHeartbeatsKeepsTheSession(t *testing.T) {
	srv := startSim(t, exlivesim.Config{Rate: 0, Literal: true})
	rec := newRecorder()
	cfg := testConfig(srv.Addr())
	cfg.Heartbeat = 20 * time.Millisecond
	runSession(t, cfg, rec)
	rec.wait(t, "logged_in", func() bool { return rec.countState(exlive.StateLoggedIn) == 1 })
	srv.Stall()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Ten times HeartbeatMisses heartbeats, none answered.
	if err := srv.WaitCount(ctx, exlive.CmdHeartbeat, 10*exlive.HeartbeatMisses); err != nil {
		t.Fatal(err)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if drop, ok := firstDrop(rec); ok {
		t.Errorf("session dropped (%v) by a platform that never answers heartbeats", drop.Err)
	}
	if n := heartbeatAnswers(rec); n != 0 {
		t.Errorf("%d heartbeat answers from the literal platform", n)
	}
}

// TestHeartbeatAnswersThatStopWhileDataFlows: a platform that stops
// answering heartbeats but keeps sending positions is not a dead link: the
// session stays. When the link then dies, the unanswered heartbeats end it.
func TestHeartbeatAnswersThatStopWhileDataFlows(t *testing.T) {
	srv := startSim(t, exlivesim.Config{Rate: 200, Vehicles: 3})
	rec := newRecorder()
	cfg := testConfig(srv.Addr())
	// The link counts as silent when the reader waited a whole interval
	// for a frame: a position comes every 5 ms, but on a busy machine the
	// simulator's goroutine can be held up for tens of milliseconds (at
	// 30 ms, 2 runs of 20 under load were dropped for a silence that was
	// the machine's, 6 and 17 heartbeats after the answers stopped). At
	// 150 ms the simulator would have to stall that long.
	cfg.Heartbeat = 150 * time.Millisecond
	runSession(t, cfg, rec)
	rec.wait(t, "a heartbeat answer", func() bool { return heartbeatAnswers(rec) >= 1 })
	srv.SetHeartbeatAnswers(false)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Twice the misses that would end a silent link.
	if err := srv.WaitCount(ctx, exlive.CmdHeartbeat, srv.Count(exlive.CmdHeartbeat)+2*exlive.HeartbeatMisses); err != nil {
		t.Fatal(err)
	}
	rec.mu.Lock()
	drop, dropped := firstDrop(rec)
	positions := len(rec.positions)
	rec.mu.Unlock()
	if dropped {
		t.Fatalf("dropped (%v) while positions flowed", drop.Err)
	}
	if positions == 0 {
		t.Fatal("no positions flowed")
	}
	srv.Stall()
	rec.wait(t, "the drop", func() bool { _, ok := firstDrop(rec); return ok })
	rec.mu.Lock()
	drop, _ = firstDrop(rec)
	rec.mu.Unlock()
	if !errors.Is(drop.Err, exlive.ErrHeartbeatLost) {
		t.Errorf("dropped with %v, want ErrHeartbeatLost", drop.Err)
	}
}

// blockingHandler holds the session's reader in HandleMessage on the first
// position until released, as a stuck broker can.
type blockingHandler struct {
	*recorder
	held    chan struct{}
	release chan struct{}
	once    sync.Once
}

func (h *blockingHandler) HandleMessage(m exlive.Message) {
	if _, ok := m.(*exlive.Position); ok {
		h.once.Do(func() {
			close(h.held)
			<-h.release
		})
	}
	h.recorder.HandleMessage(m)
}

// TestHeldUpReaderIsNotADeadLink: while the reader is held up (the broker
// is stuck, say), the platform's heartbeat answers wait unread in the
// socket: heartbeats that seem unanswered then are no sign of a dead link.
func TestHeldUpReaderIsNotADeadLink(t *testing.T) {
	srv := startSim(t, exlivesim.Config{Rate: 50, Vehicles: 2, Paused: true})
	h := &blockingHandler{recorder: newRecorder(), held: make(chan struct{}), release: make(chan struct{})}
	cfg := testConfig(srv.Addr())
	cfg.Heartbeat = 20 * time.Millisecond
	runSession(t, cfg, h)
	h.wait(t, "heartbeats answered", func() bool { return heartbeatAnswers(h.recorder) >= 2 })
	srv.SetPaused(false)
	<-h.held
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := srv.WaitCount(ctx, exlive.CmdHeartbeat, srv.Count(exlive.CmdHeartbeat)+10*exlive.HeartbeatMisses)
	close(h.release)
	if err != nil {
		t.Fatal(err)
	}
	h.mu.Lock()
	n := heartbeatAnswers(h.recorder)
	h.mu.Unlock()
	h.wait(t, "the held answers read", func() bool { return heartbeatAnswers(h.recorder) >= n+10*exlive.HeartbeatMisses })
	h.mu.Lock()
	defer h.mu.Unlock()
	if drop, ok := firstDrop(h.recorder); ok {
		t.Errorf("dropped (%v) while the reader was held up", drop.Err)
	}
}

// scripted is a platform a test writes frame by frame.
type scripted struct {
	t  *testing.T
	nc net.Conn
	r  *exlive.Reader
	w  *exlive.Writer
	d  *exlive.Decoder
}

// acceptScripted accepts one connection on ln and answers its login.
func acceptScripted(t *testing.T, ln net.Listener) *scripted {
	t.Helper()
	nc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	p := &scripted{t: t, nc: nc, r: exlive.NewReader(nc, 0, exlive.EncodingAuto), w: exlive.NewWriter(nc, exlive.EncodingUTF8), d: exlive.NewDecoder(nil)}
	p.w.SetLineEnd("")
	if m := p.next(); m.Cmd() != exlive.CmdLogin {
		t.Fatalf("first frame %v, want a login", m.Cmd())
	}
	p.write(&exlive.Answer{Command: exlive.CmdLogin, Result: exlive.ResultSucceed})
	return p
}

// next returns the client's next frame that is not a heartbeat or an
// inventory request (the script leaves those unanswered).
func (p *scripted) next() exlive.Message {
	p.t.Helper()
	p.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		f, err := p.r.ReadFrame()
		if err != nil {
			p.t.Fatalf("platform read: %v", err)
		}
		m, err := p.d.Decode(f.Data)
		if err != nil {
			p.t.Fatalf("platform decode: %v", err)
		}
		switch m.Cmd() {
		case exlive.CmdHeartbeat, exlive.CmdGroupsRequest:
		default:
			return m
		}
	}
}

func (p *scripted) write(m exlive.Message) {
	p.t.Helper()
	if err := p.w.WriteMessage(m); err != nil {
		p.t.Fatalf("platform write: %v", err)
	}
}

func (p *scripted) writeRaw(s string) {
	p.t.Helper()
	if _, err := p.nc.Write([]byte(s)); err != nil {
		p.t.Fatalf("platform write: %v", err)
	}
}

type outcome struct {
	a   *exlive.Answer
	err error
}

// TestHeartbeatAnswersNeverTakeACommandsPlace: answers carry no request id
// and are matched first in, first out, per command (the ghost waiters of
// pending.go). A heartbeat answer, or an 8000 that names no command, that
// comes while a command awaits its answer is never taken for it; a command
// that timed out still absorbs its late answer, so the next one gets its
// own.
func TestHeartbeatAnswersNeverTakeACommandsPlace(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cfg := testConfig(ln.Addr().String())
	cfg.Heartbeat = time.Hour // the script answers heartbeats itself
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	nc, err := exlive.Dial(context.Background(), cfg.Addr)
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	c := exlive.NewClient(nc, cfg, rec, zerolog.Nop())
	platform := make(chan *scripted, 1)
	go func() { platform <- acceptScripted(t, ln) }()
	ctx, cancel := context.WithCancel(context.Background())
	if err := c.Login(ctx); err != nil {
		t.Fatal(err)
	}
	p := <-platform
	served := make(chan error, 1)
	go func() { served <- c.Serve(ctx) }()
	defer func() {
		cancel()
		<-served
	}()
	request := func(data string, timeout time.Duration) chan outcome {
		ch := make(chan outcome, 1)
		if err := c.Request(&exlive.VehicleCommand{ID: "V1", Data: data}, timeout, func(a *exlive.Answer, err error) { ch <- outcome{a, err} }); err != nil {
			t.Fatal(err)
		}
		if m := p.next(); m.Cmd() != exlive.CmdVehicleCommand || m.(*exlive.VehicleCommand).Data != data {
			t.Fatalf("platform got %T %+v, want 1004 %s", m, m, data)
		}
		return ch
	}
	heartbeatAnswer := &exlive.Answer{Command: exlive.CmdHeartbeat, Result: exlive.ResultSucceed}

	// 1. Answered in time, with heartbeat answers and a cmd-less 8000 before.
	first := request("ONE", 5*time.Second)
	p.write(heartbeatAnswer)
	p.writeRaw(`{"header":{"cmd":"8000"},"body":{"result":"succeed"}}`)
	p.write(heartbeatAnswer)
	p.write(&exlive.Answer{Command: exlive.CmdVehicleCommand, Result: "设备不在线"})
	if o := <-first; o.err != nil || o.a.Result != "设备不在线" || o.a.OK() {
		t.Fatalf("first command: %+v, %v; want its own refusal, not a heartbeat's succeed", o.a, o.err)
	}

	// 2. Unanswered: heartbeat answers come, the command times out.
	const timeout = 300 * time.Millisecond
	second := request("TWO", timeout)
	p.write(heartbeatAnswer)
	if o := <-second; !errors.Is(o.err, exlive.ErrTimeout) {
		t.Fatalf("second command: %+v, %v; want ErrTimeout", o.a, o.err)
	}
	// Its answer comes late (within a timeout of the timeout): its ghost
	// takes it, and the third command gets its own answer.
	p.write(&exlive.Answer{Command: exlive.CmdVehicleCommand, Result: exlive.ResultSucceed})
	third := request("THREE", 5*time.Second)
	p.write(heartbeatAnswer)
	p.write(&exlive.Answer{Command: exlive.CmdVehicleCommand, Result: "终端离线"})
	if o := <-third; o.err != nil || o.a.Result != "终端离线" {
		t.Fatalf("third command: %+v, %v; want its own answer, not the late one of the second", o.a, o.err)
	}

	// Every heartbeat answer, and the cmd-less one, went to the handler
	// as unmatched; the session stayed up.
	rec.wait(t, "the unmatched answers", func() bool {
		n := 0
		for _, m := range rec.messages {
			if a, ok := m.(*exlive.Answer); ok && (a.Command == exlive.CmdHeartbeat || a.Command == 0) {
				n++
			}
		}
		return n == 5
	})
}

// tapLog is a Tap that keeps what it is shown, in order.
type tapLog struct {
	mu     sync.Mutex
	events []string // "out 1002", "in 8000/1002", …
	login  []byte   // the login's wire
}

func (l *tapLog) Sent(_ time.Time, m exlive.Message, wire []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, "out "+m.Cmd().String())
	if m.Cmd() == exlive.CmdLogin {
		l.login = append([]byte(nil), wire...)
	}
}

func (l *tapLog) Received(_ time.Time, f exlive.Frame, m exlive.Message, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if a, ok := m.(*exlive.Answer); ok {
		l.events = append(l.events, "in 8000/"+a.Command.String())
	}
}

// TestTapShowsEveryFrameInOrder: a Tap is shown each frame as it goes,
// before its answer can come, with the bytes written (the login's password
// among them: masking is the tap's business).
func TestTapShowsEveryFrameInOrder(t *testing.T) {
	srv := startSim(t, exlivesim.Config{Rate: 0})
	cfg := testConfig(srv.Addr())
	cfg.Heartbeat = 20 * time.Millisecond
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	nc, err := exlive.Dial(context.Background(), cfg.Addr)
	if err != nil {
		t.Fatal(err)
	}
	c := exlive.NewClient(nc, cfg, newRecorder(), zerolog.Nop())
	tap := &tapLog{}
	c.SetTap(tap)
	ctx, cancel := context.WithCancel(context.Background())
	if err := c.Login(ctx); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Serve(ctx) }()
	wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer wcancel()
	if err := srv.WaitCount(wctx, exlive.CmdHeartbeat, 20); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Serve = %v, want it to run until cancelled", err)
	}

	tap.mu.Lock()
	defer tap.mu.Unlock()
	if !bytes.Contains(tap.login, []byte(`"pass":"`+exlivesim.DefaultPass+`"`)) {
		t.Errorf("login wire %q lacks the password the platform got", tap.login)
	}
	sent, answered := 0, 0
	for i, e := range tap.events {
		switch e {
		case "out 1002":
			sent++
		case "in 8000/1002":
			answered++
			if answered > sent {
				t.Fatalf("event %d: heartbeat answer %d shown before its heartbeat (%d sent): %v", i, answered, sent, tap.events[:i+1])
			}
		}
	}
	// The last frame written is the logout. The answer to the last
	// heartbeat may still be read after it: the platform answered it as
	// the test stopped the client.
	lastOut := ""
	for _, e := range tap.events {
		if strings.HasPrefix(e, "out ") {
			lastOut = e
		}
	}
	if tap.events[0] != "out 1000" || tap.events[1] != "in 8000/1000" || answered < 15 || lastOut != "out 1001" {
		t.Errorf("events: first %v, %d heartbeats answered, last written %q", tap.events[:2], answered, lastOut)
	}
}
