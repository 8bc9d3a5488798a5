package exlive_test

import (
	"context"
	"errors"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/exlive2mqtt/exlive2mqtt/exlive"
	"github.com/exlive2mqtt/exlive2mqtt/exlive/exlivesim"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// recorder is a Handler that keeps what it is given and lets a test wait
// for a condition on it.
type recorder struct {
	mu          sync.Mutex
	states      []exlive.State
	positions   []exlive.Position
	messages    []exlive.Message
	inventories []exlive.Inventory
	skips       []*exlive.FrameError
	changed     chan struct{}
}

func newRecorder() *recorder { return &recorder{changed: make(chan struct{})} }

func (r *recorder) update(f func()) {
	r.mu.Lock()
	f()
	close(r.changed)
	r.changed = make(chan struct{})
	r.mu.Unlock()
}

func (r *recorder) HandleMessage(m exlive.Message) {
	r.update(func() {
		if p, ok := m.(*exlive.Position); ok {
			r.positions = append(r.positions, *p)
			return
		}
		r.messages = append(r.messages, m)
	})
}
func (r *recorder) HandleState(s exlive.State) { r.update(func() { r.states = append(r.states, s) }) }
func (r *recorder) HandleInventory(inv exlive.Inventory) {
	r.update(func() { r.inventories = append(r.inventories, inv) })
}
func (r *recorder) HandleSkip(err *exlive.FrameError) {
	r.update(func() { r.skips = append(r.skips, err) })
}

// wait waits up to 10 s for cond, called under the lock.
func (r *recorder) wait(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		r.mu.Lock()
		ok := cond()
		ch := r.changed
		r.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func (r *recorder) countState(kind exlive.StateKind) int {
	n := 0
	for _, s := range r.states {
		if s.State == kind {
			n++
		}
	}
	return n
}

func startSim(t *testing.T, cfg exlivesim.Config) *exlivesim.Server {
	t.Helper()
	srv := exlivesim.New(cfg)
	if err := srv.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

func testConfig(addr string) exlive.Config {
	cfg := exlive.Defaults()
	cfg.Addr = addr
	cfg.User = exlivesim.DefaultUser
	cfg.Pass = exlivesim.DefaultPass
	cfg.RetryMin = 20 * time.Millisecond
	cfg.RetryMax = 200 * time.Millisecond
	cfg.InventoryQuiet = 50 * time.Millisecond
	cfg.CommandTimeout = 2 * time.Second
	return cfg
}

// runSession runs a session until the test ends.
func runSession(t *testing.T, cfg exlive.Config, h exlive.Handler) *exlive.Session {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	s := exlive.New(cfg, h, zerolog.Nop())
	run(t, s)
	return s
}

// run runs s until the test ends, or until the returned stop is called
// (which waits for Run to return).
func run(t *testing.T, s *exlive.Session) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run returned %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Error("Run did not return after cancel")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func TestLoginAcceptedPositionsAndInventory(t *testing.T) {
	srv := startSim(t, exlivesim.Config{Vehicles: 7, Groups: 3, Rate: 200})
	rec := newRecorder()
	runSession(t, testConfig(srv.Addr()), rec)

	rec.wait(t, "logged_in", func() bool { return rec.countState(exlive.StateLoggedIn) == 1 })
	rec.wait(t, "inventory", func() bool { return len(rec.inventories) == 1 })
	rec.wait(t, "20 positions", func() bool { return len(rec.positions) >= 20 })

	rec.mu.Lock()
	defer rec.mu.Unlock()
	if got := []exlive.StateKind{rec.states[0].State, rec.states[1].State}; !slices.Equal(got, []exlive.StateKind{exlive.StateConnecting, exlive.StateLoggedIn}) {
		t.Errorf("states = %v, want connecting, logged_in", got)
	}
	groups, vehicles := srv.Fleet()
	inv := rec.inventories[0]
	if !slices.Equal(inv.Groups, groups) {
		t.Errorf("groups = %+v, want %+v", inv.Groups, groups)
	}
	sortV := func(vs []exlive.Vehicle) {
		slices.SortFunc(vs, func(a, b exlive.Vehicle) int { return compare(a.ID, b.ID) })
	}
	sortV(inv.Vehicles)
	sortV(vehicles)
	if !slices.Equal(inv.Vehicles, vehicles) {
		t.Errorf("vehicles = %+v, want %+v", inv.Vehicles, vehicles)
	}
	for _, p := range rec.positions {
		if p.ID == "" || !p.Time.Valid || !p.Speed.Valid || p.Lat < 30 || p.Lat > 33 {
			t.Fatalf("implausible position %+v", p)
		}
	}
	if n := srv.Count(exlive.CmdGroupsRequest); n != 1 {
		t.Errorf("sim got %d 1008 requests, want 1", n)
	}
	if n := srv.Count(exlive.CmdVehiclesRequest); n != 3 {
		t.Errorf("sim got %d 1010 requests, want one per group (3)", n)
	}
}

func TestLoginRejectedWaitsRetryMax(t *testing.T) {
	srv := startSim(t, exlivesim.Config{})
	rec := newRecorder()
	cfg := testConfig(srv.Addr())
	cfg.Pass = "wrong"
	cfg.RetryMax = time.Second
	runSession(t, cfg, rec)

	rec.wait(t, "login_failed", func() bool { return rec.countState(exlive.StateLoginFailed) >= 1 })
	rec.mu.Lock()
	var failed exlive.State
	for _, s := range rec.states {
		if s.State == exlive.StateLoginFailed {
			failed = s
		}
	}
	rec.mu.Unlock()
	var le *exlive.LoginError
	if !errors.As(failed.Err, &le) || le.Result != exlivesim.LoginRefused {
		t.Fatalf("login_failed error = %v, want LoginError %q", failed.Err, exlivesim.LoginRefused)
	}
	if failed.Retry < cfg.RetryMax*4/5 || failed.Retry > cfg.RetryMax {
		t.Errorf("retry after a rejected login = %s, want within [%s, %s]", failed.Retry, cfg.RetryMax*4/5, cfg.RetryMax)
	}
	if _, refused := srv.Logins(); refused != 1 {
		t.Errorf("refused logins = %d, want 1 (the session must wait before trying again)", refused)
	}
}

func TestHeartbeatInterval(t *testing.T) {
	srv := startSim(t, exlivesim.Config{Rate: 0})
	cfg := testConfig(srv.Addr())
	cfg.Heartbeat = 40 * time.Millisecond
	runSession(t, cfg, newRecorder())

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.WaitCount(ctx, exlive.CmdHeartbeat, 7); err != nil {
		t.Fatal(err)
	}
	var login time.Time
	var times []time.Time
	var prev exlive.Cmd
	for _, r := range srv.Received() {
		switch r.Msg.Cmd() {
		case exlive.CmdLogin:
			login = r.At
		case exlive.CmdHeartbeat:
			// The heartbeat written right after an inventory request is
			// that list's barrier (inventory.go), not one of the beats.
			if prev != exlive.CmdGroupsRequest && prev != exlive.CmdVehiclesRequest {
				times = append(times, r.At)
			}
		}
		prev = r.Msg.Cmd()
	}
	// The ticker starts after the login and never fires early; a busy
	// machine may deliver a beat late, and the next then follows closely.
	// So beat k comes no sooner than k intervals after the login, and all
	// of them take about as long as they should.
	for i, at := range times {
		due := time.Duration(i+1) * cfg.Heartbeat
		if since := at.Sub(login); since < due {
			t.Errorf("heartbeat %d came %s after the login, before its time (%s)", i+1, since, due)
		}
	}
	n := len(times)
	if span := times[n-1].Sub(login); span > time.Duration(n)*cfg.Heartbeat+2*time.Second {
		t.Errorf("%d heartbeats took %s, want about %s", n, span, time.Duration(n)*cfg.Heartbeat)
	}
}

func TestReconnectAfterDropResetsBackoff(t *testing.T) {
	srv := startSim(t, exlivesim.Config{Rate: 0})
	rec := newRecorder()
	cfg := testConfig(srv.Addr())
	cfg.HealthyAfter = time.Millisecond
	runSession(t, cfg, rec)

	rec.wait(t, "logged_in", func() bool { return rec.countState(exlive.StateLoggedIn) == 1 })
	srv.DropAll()
	rec.wait(t, "logged_in again", func() bool { return rec.countState(exlive.StateLoggedIn) == 2 })

	rec.mu.Lock()
	defer rec.mu.Unlock()
	var drop exlive.State
	for _, s := range rec.states {
		if s.State == exlive.StateDisconnected {
			drop = s
			break
		}
	}
	if drop.Err == nil {
		t.Error("disconnected state carries no error")
	}
	if drop.Retry < cfg.RetryMin || drop.Retry > cfg.RetryMin {
		// Backoff never goes below RetryMin, and a healthy session starts
		// over from attempt 0, whose wait is RetryMin less up to a fifth,
		// then raised back to RetryMin.
		t.Errorf("retry after a healthy session = %s, want %s", drop.Retry, cfg.RetryMin)
	}
	if accepted, _ := srv.Logins(); accepted != 2 {
		t.Errorf("logins = %d, want 2", accepted)
	}
}

func TestBackoffGrowsWhenPlatformIsDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens: every dial is refused
	rec := newRecorder()
	cfg := testConfig(addr)
	cfg.RetryMin = 5 * time.Millisecond
	cfg.RetryMax = 40 * time.Millisecond
	runSession(t, cfg, rec)

	rec.wait(t, "8 failed attempts", func() bool { return rec.countState(exlive.StateDisconnected) >= 8 })
	rec.mu.Lock()
	defer rec.mu.Unlock()
	var waits []time.Duration
	for _, s := range rec.states {
		if s.State == exlive.StateDisconnected {
			waits = append(waits, s.Retry)
		}
	}
	for i, w := range waits {
		hi := min(cfg.RetryMin<<i, cfg.RetryMax)
		lo := max(cfg.RetryMin, hi*4/5)
		if w < lo || w > hi {
			t.Errorf("wait %d = %s, want within [%s, %s]", i, w, lo, hi)
		}
	}
}

func TestBackoffBounds(t *testing.T) {
	lo, hi := time.Second, time.Minute
	for n := range 20 {
		for _, r := range []float64{0, 0.5, 0.999999} {
			d := exlive.Backoff(n, lo, hi, func() float64 { return r })
			base := min(lo<<min(n, 10), hi)
			if d < lo || d > hi || d > base || d < base*4/5 {
				t.Errorf("Backoff(%d, r=%v) = %s, want within [%s, %s]", n, r, d, max(lo, base*4/5), base)
			}
		}
	}
}

func TestRequestAnswered(t *testing.T) {
	srv := startSim(t, exlivesim.Config{Rate: 0})
	rec := newRecorder()
	s := runSession(t, testConfig(srv.Addr()), rec)
	rec.wait(t, "logged_in", func() bool { return rec.countState(exlive.StateLoggedIn) == 1 })

	ctx := context.Background()
	a, err := s.Request(ctx, &exlive.VehicleCommand{ID: "V1", Data: "STOP"})
	if err != nil || !a.OK() || a.Command != exlive.CmdVehicleCommand {
		t.Fatalf("1004 answer = %+v, %v; want success", a, err)
	}
	a, err = s.Request(ctx, &exlive.Passthrough{TerminalID: "V2", Code: "沪A10001", Data: "AT+GPS"})
	if err != nil || !a.OK() || a.Command != exlive.CmdPassthrough {
		t.Fatalf("1012 answer = %+v, %v; want success", a, err)
	}
	// The simulated device answers a passthrough with a 1013.
	rec.wait(t, "1013", func() bool {
		for _, m := range rec.messages {
			if r, ok := m.(*exlive.PassthroughReply); ok && r.TerminalID == "V2" && r.Data == "ACK AT+GPS" {
				return true
			}
		}
		return false
	})
	srv.SetAnswer("设备不在线", 0, false)
	a, err = s.Request(ctx, &exlive.VehicleCommand{ID: "V1", Data: "STOP"})
	if err != nil || a.OK() || a.Result != "设备不在线" {
		t.Fatalf("refused 1004 answer = %+v, %v; want the platform's refusal text", a, err)
	}
	var got *exlive.VehicleCommand
	for _, r := range srv.Received() {
		if c, ok := r.Msg.(*exlive.VehicleCommand); ok {
			got = c
		}
	}
	if got == nil || got.ID != "V1" || got.Data != "STOP" {
		t.Fatalf("platform received %+v", got)
	}
}

func TestRequestTimeoutAndOffline(t *testing.T) {
	srv := startSim(t, exlivesim.Config{Rate: 0})
	rec := newRecorder()
	cfg := testConfig(srv.Addr())
	cfg.CommandTimeout = 100 * time.Millisecond
	cfg.Validate()
	s := exlive.New(cfg, rec, zerolog.Nop())

	// Not running yet: refused at once, nothing sent.
	start := time.Now()
	if _, err := s.Request(context.Background(), &exlive.VehicleCommand{ID: "V1"}); !errors.Is(err, exlive.ErrNotLoggedIn) {
		t.Fatalf("request before login: %v, want ErrNotLoggedIn", err)
	}
	if err := s.Send(&exlive.TextMessage{Msg: "hi"}); !errors.Is(err, exlive.ErrNotLoggedIn) {
		t.Fatalf("send before login: %v, want ErrNotLoggedIn", err)
	}
	if time.Since(start) > 50*time.Millisecond {
		t.Error("refusal was not immediate")
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Run(ctx) }()
	rec.wait(t, "logged_in", func() bool { return rec.countState(exlive.StateLoggedIn) == 1 })

	srv.SetAnswer("", 0, true)
	start = time.Now()
	_, err := s.Request(context.Background(), &exlive.VehicleCommand{ID: "V1", Data: "X"})
	if !errors.Is(err, exlive.ErrTimeout) {
		t.Fatalf("unanswered request: %v, want ErrTimeout", err)
	}
	if d := time.Since(start); d < cfg.CommandTimeout {
		t.Errorf("timed out after %s, before the %s timeout", d, cfg.CommandTimeout)
	}

	cancel()
	<-done
	if _, err := s.Request(context.Background(), &exlive.VehicleCommand{ID: "V1"}); !errors.Is(err, exlive.ErrNotLoggedIn) {
		t.Fatalf("request after Run: %v, want ErrNotLoggedIn", err)
	}
}

func TestRequestFailsWhenLinkDrops(t *testing.T) {
	srv := startSim(t, exlivesim.Config{Rate: 0})
	rec := newRecorder()
	cfg := testConfig(srv.Addr())
	cfg.CommandTimeout = time.Minute
	s := runSession(t, cfg, rec)
	rec.wait(t, "logged_in", func() bool { return rec.countState(exlive.StateLoggedIn) == 1 })

	srv.SetAnswer("", 0, true)
	errc := make(chan error, 1)
	if err := s.RequestAsync(&exlive.Passthrough{TerminalID: "V1", Data: "X"}, func(_ *exlive.Answer, err error) { errc <- err }); err != nil {
		t.Fatal(err)
	}
	if s.Pending() != 1 {
		t.Errorf("pending = %d, want 1", s.Pending())
	}
	srv.DropAll()
	select {
	case err := <-errc:
		if !errors.Is(err, exlive.ErrClosed) {
			t.Errorf("request in flight at a drop: %v, want ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("request in flight at a drop never failed")
	}
}

func TestLogoutOnCancel(t *testing.T) {
	srv := startSim(t, exlivesim.Config{Rate: 0})
	rec := newRecorder()
	cfg := testConfig(srv.Addr())
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	s := exlive.New(cfg, rec, zerolog.Nop())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Run(ctx) }()
	rec.wait(t, "logged_in", func() bool { return rec.countState(exlive.StateLoggedIn) == 1 })
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v", err)
	}
	wctx, wcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer wcancel()
	if err := srv.WaitCount(wctx, exlive.CmdLogout, 1); err != nil {
		t.Fatal("no 1001 logout received:", err)
	}
	if st := s.State(); st.State != exlive.StateDisconnected {
		t.Errorf("state after Run = %s", st.State)
	}
}

func TestIdleTimeoutReconnects(t *testing.T) {
	srv := startSim(t, exlivesim.Config{Rate: 0})
	rec := newRecorder()
	cfg := testConfig(srv.Addr())
	cfg.Heartbeat = 50 * time.Millisecond
	cfg.IdleTimeout = 150 * time.Millisecond
	srv.SetSilent(true) // the platform never answers heartbeats, and now sends nothing
	s := runSession(t, cfg, rec)
	_ = s
	rec.wait(t, "idle disconnect", func() bool {
		for _, st := range rec.states {
			if st.State == exlive.StateDisconnected && errors.Is(st.Err, exlive.ErrIdleTimeout) {
				return true
			}
		}
		return false
	})
	rec.wait(t, "logged_in again", func() bool { return rec.countState(exlive.StateLoggedIn) >= 2 })
}

func TestPlatformSpeakingGBK(t *testing.T) {
	srv := startSim(t, exlivesim.Config{Rate: 100, Vehicles: 3, Encoding: exlive.EncodingGBK})
	rec := newRecorder()
	s := runSession(t, testConfig(srv.Addr()), rec) // auto
	rec.wait(t, "positions", func() bool { return len(rec.positions) >= 3 })
	rec.mu.Lock()
	p := rec.positions[0]
	rec.mu.Unlock()
	if p.Code != "沪A10000" && p.Code != "沪A10001" && p.Code != "沪A10002" {
		t.Errorf("code = %q, want a 沪A plate read from GBK", p.Code)
	}
	if p.CState != "ACC开" {
		t.Errorf("cstate = %q", p.CState)
	}
	// Having heard GBK, the session answers in GBK.
	if _, err := s.Request(context.Background(), &exlive.VehicleCommand{ID: "V1", Data: "关闭油路"}); err != nil {
		t.Fatal(err)
	}
	var got string
	for _, r := range srv.Received() {
		if c, ok := r.Msg.(*exlive.VehicleCommand); ok {
			got = c.Data
		}
	}
	if got != "关闭油路" {
		t.Errorf("platform read command data %q", got)
	}
}

func TestJunkAndBadFramesAreSkippedNotFatal(t *testing.T) {
	srv := startSim(t, exlivesim.Config{Rate: 0})
	rec := newRecorder()
	runSession(t, testConfig(srv.Addr()), rec)
	rec.wait(t, "logged_in", func() bool { return rec.countState(exlive.StateLoggedIn) == 1 })

	srv.SendRaw([]byte("garbage!!\r\n"))
	srv.SendRaw([]byte(`{"header":{"cmd":"1007"},"body":{"id":"V9","lat":"north","lng":"121"}}` + "\r\n"))
	srv.SendRaw([]byte(`{"header":{"cmd":"1007"},"body":{"id":"V9","lat":"95","lng":"121"}}` + "\r\n"))
	srv.SendRaw([]byte(`{"header":{"cmd":"4242"},"body":{"x":"y"}}` + "\r\n"))
	srv.SendRaw([]byte(`{"header":{"cmd":"1007"},"body":{"id":"V9","lat":"31.2","lng":"121.4","veo":""}}` + "\r\n"))
	rec.wait(t, "the good position", func() bool { return len(rec.positions) == 1 })

	rec.mu.Lock()
	defer rec.mu.Unlock()
	var reasons []exlive.Reason
	for _, s := range rec.skips {
		reasons = append(reasons, s.Reason)
	}
	want := []exlive.Reason{exlive.ReasonJunk, exlive.ReasonBadField, exlive.ReasonOutOfRange}
	if !slices.Equal(reasons, want) {
		t.Errorf("skip reasons = %v, want %v", reasons, want)
	}
	var unknown *exlive.Unknown
	for _, m := range rec.messages {
		if u, ok := m.(*exlive.Unknown); ok {
			unknown = u
		}
	}
	if unknown == nil || unknown.Command != 4242 || string(unknown.Body) != `{"x":"y"}` {
		t.Errorf("unknown command = %+v", unknown)
	}
	if p := rec.positions[0]; p.Speed.Valid {
		t.Errorf("empty veo became %v, want absent", p.Speed)
	}
	if rec.countState(exlive.StateDisconnected) != 0 {
		t.Error("bad frames ended the session")
	}
}

func TestOversizedFrameEndsSession(t *testing.T) {
	srv := startSim(t, exlivesim.Config{Rate: 0})
	rec := newRecorder()
	cfg := testConfig(srv.Addr())
	cfg.MaxFrame = 4096
	runSession(t, cfg, rec)
	rec.wait(t, "logged_in", func() bool { return rec.countState(exlive.StateLoggedIn) == 1 })
	big := []byte(`{"header":{"cmd":"1003"},"body":{"msg":"`)
	for len(big) < 10000 {
		big = append(big, 'x')
	}
	srv.SendRaw(big)
	rec.wait(t, "disconnect", func() bool {
		for _, st := range rec.states {
			if st.State == exlive.StateDisconnected && errors.Is(st.Err, exlive.ErrFrameTooLarge) {
				return true
			}
		}
		return false
	})
	rec.wait(t, "logged_in again", func() bool { return rec.countState(exlive.StateLoggedIn) == 2 })
}

func compare(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// TestInventoryWaitsForASlowFirstAnswer: a platform that begins its list of
// groups later than InventoryQuiet after the request (slow, or a busy
// machine) still has its groups and vehicles collected: the first frame of
// a list is an answer, awaited up to CommandTimeout; only after it does a
// quiet InventoryQuiet end the list.
func TestInventoryWaitsForASlowFirstAnswer(t *testing.T) {
	cfg := testConfig("127.0.0.1:1502")
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	client, platform := net.Pipe()
	inventory := make(chan exlive.Inventory, 1)
	c := exlive.NewClient(client, cfg, exlive.Handlers{Inventory: func(inv exlive.Inventory) { inventory <- inv }}, zerolog.Nop())

	// The platform: accepts the login, answers 1008 five quiet periods
	// late, and 1010 at once with two vehicles.
	served := make(chan error, 1)
	go func() {
		r := exlive.NewReader(platform, 0, exlive.EncodingUTF8)
		w := exlive.NewWriter(platform, exlive.EncodingUTF8)
		dec := exlive.NewDecoder(time.UTC)
		for {
			f, err := r.ReadFrame()
			if err != nil {
				served <- nil // the client closed the pipe
				return
			}
			m, err := dec.Decode(f.Data)
			if err != nil {
				served <- err
				return
			}
			switch m := m.(type) {
			case *exlive.Login:
				err = w.WriteMessage(&exlive.Answer{Command: exlive.CmdLogin, Result: exlive.ResultSuccess})
			case *exlive.GroupsRequest:
				time.Sleep(5 * cfg.InventoryQuiet) // the platform's latency
				err = w.WriteMessage(&exlive.Group{ID: "7", Name: "fleet"})
			case *exlive.VehiclesRequest:
				if err = w.WriteMessage(&exlive.Vehicle{ID: "V1", Code: "A1"}); err == nil {
					err = w.WriteMessage(&exlive.Vehicle{ID: "V2", Code: "A2"})
				}
				if m.GroupID != "7" {
					err = errors.New("1010 for group " + m.GroupID)
				}
			}
			if err != nil {
				served <- err
				return
			}
		}
	}()

	ctx, cancel := context.WithCancel(context.Background())
	if err := c.Login(ctx); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Serve(ctx) }()
	select {
	case inv := <-inventory:
		want := []exlive.Vehicle{{ID: "V1", Code: "A1", GroupID: "7"}, {ID: "V2", Code: "A2", GroupID: "7"}}
		if len(inv.Groups) != 1 || inv.Groups[0].ID != "7" || !slices.Equal(inv.Vehicles, want) {
			t.Errorf("inventory = %+v, want group 7 with V1 and V2", inv)
		}
	case <-time.After(10 * time.Second):
		t.Error("no inventory")
	}
	cancel()
	<-done
	platform.Close()
	if err := <-served; err != nil {
		t.Error(err)
	}
}
