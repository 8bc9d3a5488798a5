package bridge_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/exlive2mqtt/exlive2mqtt/bridge"
	"github.com/exlive2mqtt/exlive2mqtt/exlive"
	"github.com/exlive2mqtt/exlive2mqtt/exlive/exlivesim"
	"github.com/exlive2mqtt/exlive2mqtt/internal/brokertest"
	"github.com/exlive2mqtt/exlive2mqtt/opt"
)

// Faults injected against real sockets and real brokers: the simulated
// platform misbehaves (refuses, drops, falls silent, rejects the login,
// sends junk, oversized or invalid frames), and a private Mosquitto is
// stopped, killed, frozen and started again. The bridge must keep running,
// reconnect within its bounds, say what happened, count what it skipped,
// and lose no position at QoS 1.

// ftMQTT is the MQTT client's counters as one gathering of the metrics
// shows them: the collector reads them all from one Stats.
type ftMQTT struct {
	accepted, published, failed, dropped, stored, queued, inflight float64
}

func ftGatherMQTT(t testing.TB, b *bridge.Bridge) ftMQTT {
	t.Helper()
	m := gather(t, b)
	v := func(series string) float64 { x, _ := m.get(t, series); return x }
	return ftMQTT{
		accepted:  v("mqtt_messages_accepted_total"),
		published: v("mqtt_messages_published_total"),
		failed:    v("mqtt_publish_errors_total"),
		dropped:   v("mqtt_messages_dropped_total"),
		stored:    v("mqtt_messages_stored_at_stop_total"),
		queued:    v("mqtt_queue_depth"),
		inflight:  v("mqtt_inflight"),
	}
}

// addsUp reports whether every message accepted is accounted for once.
func (m ftMQTT) addsUp() bool {
	return m.accepted == m.published+m.failed+m.dropped+m.stored+m.queued+m.inflight
}

// ftAccounted waits until the MQTT client's counters add up, at rest
// (nothing queued or in flight) when rest is set, and returns them. A
// message lost or counted twice never adds up; one gathering taken while a
// message moves may not, so it gathers again.
func ftAccounted(t testing.TB, b *bridge.Bridge, rest bool) ftMQTT {
	t.Helper()
	var m ftMQTT
	if !brokertest.Eventually(testWait, func() bool {
		m = ftGatherMQTT(t, b)
		return m.addsUp() && (!rest || m.queued == 0 && m.inflight == 0)
	}) {
		t.Fatalf("MQTT counters %+v: want accepted = published + failed + dropped + stored + queued + in flight (at rest: %v)", m, rest)
	}
	return m
}

// ftPosition is a position whose wstate makes its payload unique.
func ftPosition(id string, seq int) *exlive.Position {
	return &exlive.Position{
		ID: id, Code: "沪A" + id, Lat: 31.2 + float64(seq%1000)*1e-5, Lng: 121.4,
		Speed: opt.Some(42.5), Time: opt.Some(time.Now().Truncate(time.Second)),
		WState: "seq" + strconv.Itoa(seq),
	}
}

// ftRaw is a raw 1007 frame with the given id and lat, as a platform may
// send it. Both are written into the JSON as they are, not encoded: a test
// can send escapes (\u0000) and text no encoder would write.
func ftRaw(id, lat string) []byte {
	return []byte(`{"header":{"cmd":"1007"},"body":{"id":"` + id + `","code":"X","lat":"` + lat +
		`","lng":"121.4","veo":"1","dir":"2","gpstime":"2024-05-01 12:00:00","av":"1","alarm":"0","oil":"","dis":"","wstate":"","cstate":"","posinfo":""}}` + "\r\n")
}

// ftMark sends a position for a vehicle of its own and waits until it is
// published: everything the platform sent before it has been handled.
// It sends again until then: the platform counts a connection as logged in
// only once it has answered the login, which the bridge may see first.
func ftMark(t *testing.T, f *fixture, name string) {
	t.Helper()
	topic := f.topic("vehicles/" + name + "/position")
	for deadline := time.Now().Add(testWait); time.Now().Before(deadline); {
		f.sim.Send(ftPosition(name, 0))
		if brokertest.Eventually(200*time.Millisecond, func() bool { _, ok := f.sub.Last(topic); return ok }) {
			return
		}
	}
	t.Fatalf("position of %s never published", name)
}

// ftDial dials the addresses addrs returns for each attempt, and records
// when each attempt was made.
type ftDial struct {
	mu    sync.Mutex
	at    []time.Time
	addrs func(attempt int) string
}

func (d *ftDial) dial(ctx context.Context, _ string) (net.Conn, error) {
	d.mu.Lock()
	n := len(d.at)
	d.at = append(d.at, time.Now())
	d.mu.Unlock()
	return exlive.Dial(ctx, d.addrs(n))
}

func (d *ftDial) times() []time.Time {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]time.Time(nil), d.at...)
}

// ftCheckGaps checks that the waits between attempts stayed within the
// backoff bounds: at least lo, at most hi (with room for a loaded machine).
func ftCheckGaps(t *testing.T, at []time.Time, lo, hi time.Duration) {
	t.Helper()
	for i := 1; i < len(at); i++ {
		gap := at[i].Sub(at[i-1])
		if gap < lo || gap > hi+time.Second {
			t.Errorf("attempt %d came %s after the one before, want between %s and %s", i+1, gap, lo, hi)
		}
	}
}

// TestPlatformRefusesConnection: nothing listens at the platform's address.
// The bridge retries within its backoff bounds, publishes disconnected with
// the error, and logs in once the platform is there.
func TestPlatformRefusesConnection(t *testing.T) {
	closed := closedAddr(t)
	d := &ftDial{}
	f := newFixture(t, brokertest.Targets(t)[0], setup{noStart: true, sim: exlivesim.Config{Rate: 20}})
	ex := f.opts.Exlive
	d.addrs = func(n int) string {
		if n < 5 {
			return closed
		}
		return f.sim.Addr()
	}
	f.opts.Dial = d.dial
	f.start()
	f.waitLoggedIn()
	f.waitSession(0, `"state":"disconnected"`, "connection refused")
	at := d.times()
	if len(at) < 6 {
		t.Fatalf("%d attempts, want 6", len(at))
	}
	ftCheckGaps(t, at[:6], ex.RetryMin, ex.RetryMax)
	if n := metric(t, f.bridge, "exlive_disconnects_total"); n != 5 {
		t.Errorf("exlive_disconnects_total = %v, want 5", n)
	}
	f.sub.WaitTopic(testWait, f.topic("vehicles/V1/position"))
}

// TestPlatformRejectsLogin: the platform refuses the account and closes the
// connection, as the protocol says. The bridge publishes login_failed, waits
// the longest backoff before asking again, and keeps running.
func TestPlatformRejectsLogin(t *testing.T) {
	wrong := exlivesim.New(exlivesim.Config{Accounts: map[string]string{exlivesim.DefaultUser: "another password"}, Vehicles: 1})
	if err := wrong.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { wrong.Close() })
	d := &ftDial{}
	f := newFixture(t, brokertest.Targets(t)[0], setup{noStart: true, sim: exlivesim.Config{Rate: 20}})
	f.opts.Exlive.RetryMax = 300 * time.Millisecond
	ex := f.opts.Exlive
	d.addrs = func(n int) string {
		if n < 3 {
			return wrong.Addr()
		}
		return f.sim.Addr()
	}
	f.opts.Dial = d.dial
	f.start()
	s, _ := f.waitSession(0, `"state":"login_failed"`)
	if !strings.Contains(s, exlivesim.LoginRefused) {
		t.Errorf("login_failed state %s lacks the platform's answer", s)
	}
	f.waitLoggedIn()
	if _, refused := wrong.Logins(); refused != 3 {
		t.Errorf("%d logins refused, want 3", refused)
	}
	// After a rejected login the bridge waits the longest backoff (less
	// its jitter of up to a fifth).
	ftCheckGaps(t, d.times()[:4], ex.RetryMax*4/5, ex.RetryMax)
	if n := metric(t, f.bridge, "exlive_login_failures_total"); n != 3 {
		t.Errorf("exlive_login_failures_total = %v, want 3", n)
	}
	f.sub.WaitTopic(testWait, f.topic("vehicles/V1/position"))
}

// TestPlatformDropsMidFrame: the platform sends half a frame and drops the
// connection. The session ends with the error, reconnects, and positions
// flow again.
func TestPlatformDropsMidFrame(t *testing.T) {
	f := newFixture(t, brokertest.Targets(t)[0], setup{})
	f.waitLoggedIn()
	ftMark(t, f, "M1")
	f.sim.SendRaw([]byte(`{"header":{"cmd":"1007"},"body":{"id":"HALF","lat":"31.2`))
	f.sim.DropAll()
	f.waitSession(0, `"state":"disconnected"`, "stream ended inside a frame")
	waitFor(t, testWait, "a second login", func() bool { n, _ := f.sim.Logins(); return n >= 2 })
	f.waitLoggedIn()
	ftMark(t, f, "M2")
	if _, ok := f.sub.Last(f.topic("vehicles/HALF/position")); ok {
		t.Error("half a frame was published")
	}
	if n := metric(t, f.bridge, "exlive_disconnects_total"); n != 1 {
		t.Errorf("exlive_disconnects_total = %v, want 1", n)
	}
}

// TestPlatformFallsSilent: with EXLIVE_IDLE_TIMEOUT, a platform that sends
// nothing more (a half-open connection) is given up after the timeout and
// dialled again; when it speaks again, positions flow. The platform speaks
// the specification's literal form, which never answers heartbeats: the
// idle timeout is all there is to notice it.
func TestPlatformFallsSilent(t *testing.T) {
	f := newFixture(t, brokertest.Targets(t)[0], setup{noStart: true, sim: exlivesim.Config{Rate: 50, Literal: true}})
	f.opts.Exlive.Heartbeat = 100 * time.Millisecond
	f.opts.Exlive.IdleTimeout = 400 * time.Millisecond
	f.start()
	f.waitLoggedIn()
	f.sub.WaitTopic(testWait, f.topic("vehicles/V1/position"))
	f.sim.SetSilent(true)
	silent := time.Now()
	f.waitSession(0, `"state":"disconnected"`, "silent for too long")
	// The deadline moves only when it fires, so giving up takes between
	// one and two timeouts.
	if d := time.Since(silent); d > 2*f.opts.Exlive.IdleTimeout+time.Second {
		t.Errorf("gave up %s after the platform fell silent, want about %s", d, f.opts.Exlive.IdleTimeout)
	}
	before := len(f.sub.Messages())
	f.sim.SetSilent(false)
	f.sub.Wait(testWait, "positions again", func(ms []brokertest.Msg) bool {
		for _, m := range ms[before:] {
			if strings.HasSuffix(m.Topic, "/position") {
				return true
			}
		}
		return false
	})
	if n := metric(t, f.bridge, "exlive_disconnects_total"); n < 1 {
		t.Errorf("exlive_disconnects_total = %v", n)
	}
}

// TestPlatformDeadLink: a platform that speaks the live dialect from login
// to heartbeat loss. It logs the bridge in with "succeed", sends GBK,
// multi-line positions back to back and answers every heartbeat; then the
// link dies without a word (the connection stays open, nothing more comes).
// With default settings but a short heartbeat, the bridge takes the link for
// dead after three unanswered heartbeats, says so on the session topic,
// dials again, logs in again, and positions flow again. Against the
// embedded broker and Mosquitto.
func TestPlatformDeadLink(t *testing.T) {
	brokertest.Each(t, func(t *testing.T, target brokertest.Target) {
		f := newFixture(t, target, setup{noStart: true, sim: exlivesim.Config{Rate: 50}})
		f.opts.Exlive.Heartbeat = 100 * time.Millisecond
		f.start()
		f.waitLoggedIn()
		first := decode(t, f.sub.WaitTopic(testWait, f.topic("vehicles/V1/position")).Payload)
		if first["code"] != "沪A10000" || first["posinfo"] == nil {
			t.Errorf("position read from the GBK dialect: %v", first)
		}
		waitFor(t, testWait, "heartbeats answered", func() bool {
			return metric(t, f.bridge, `exlive_frames_received_total{cmd="8000"}`) >= 3
		})
		f.sim.Stall()
		stalled := time.Now()
		s, _ := f.waitSession(0, `"state":"disconnected"`, "heartbeats unanswered")
		if d := time.Since(stalled); d < 2*f.opts.Exlive.Heartbeat {
			t.Errorf("gave up %s after the link died, before three heartbeats could go unanswered", d)
		}
		waitFor(t, testWait, "a second login", func() bool { n, _ := f.sim.Logins(); return n >= 2 })
		f.sub.Wait(testWait, "logged_in after the drop", func(ms []brokertest.Msg) bool {
			after := false
			for _, m := range ms {
				if m.Topic != f.topic("bridge/session") {
					continue
				}
				if m.Payload == s {
					after = true
				} else if after && strings.Contains(m.Payload, `"state":"logged_in"`) {
					return true
				}
			}
			return false
		})
		before := len(f.sub.Messages())
		f.sub.Wait(testWait, "positions again", func(ms []brokertest.Msg) bool {
			for _, m := range ms[before:] {
				if strings.HasSuffix(m.Topic, "/position") {
					return true
				}
			}
			return false
		})
		if n := metric(t, f.bridge, "exlive_disconnects_total"); n != 1 {
			t.Errorf("exlive_disconnects_total = %v, want 1", n)
		}
		if strings.Contains(f.log.String(), "frame skipped") {
			t.Error("frames of the dialect were skipped")
		}
		if !strings.Contains(f.log.String(), "platform answers heartbeats") {
			t.Error("the log does not say the platform answers heartbeats")
		}
	})
}

// TestPlatformWithoutHeartbeatAnswers: a platform that speaks the
// specification's literal form never answers heartbeats; when its link goes
// dead, the bridge with default settings (no EXLIVE_IDLE_TIMEOUT) keeps the
// session, as it always has: nothing tells it the link is dead. Against the
// embedded broker and Mosquitto.
func TestPlatformWithoutHeartbeatAnswers(t *testing.T) {
	brokertest.Each(t, func(t *testing.T, target brokertest.Target) {
		f := newFixture(t, target, setup{noStart: true, sim: exlivesim.Config{Rate: 50, Literal: true}})
		f.opts.Exlive.Heartbeat = 20 * time.Millisecond
		f.start()
		f.waitLoggedIn()
		f.sub.WaitTopic(testWait, f.topic("vehicles/V1/position"))
		f.sim.Stall()
		ctx, cancel := context.WithTimeout(context.Background(), testWait)
		defer cancel()
		n := f.sim.Count(exlive.CmdHeartbeat)
		if err := f.sim.WaitCount(ctx, exlive.CmdHeartbeat, n+10*exlive.HeartbeatMisses); err != nil {
			t.Fatal(err)
		}
		if d := metric(t, f.bridge, "exlive_disconnects_total"); d != 0 {
			t.Errorf("exlive_disconnects_total = %v: dropped by a platform that never answers heartbeats", d)
		}
		if m, ok := f.sub.Last(f.topic("bridge/session")); !ok || !strings.Contains(m.Payload, `"state":"logged_in"`) {
			t.Errorf("session %v", m.Payload)
		}
		if logins, _ := f.sim.Logins(); logins != 1 {
			t.Errorf("%d logins, want 1", logins)
		}
	})
}

// TestPlatformBadFrames sends, on one session, everything a platform can
// get wrong short of ending the session: junk between frames, frames that
// are not JSON, JSON of the wrong shape, unknown commands, positions with
// numbers out of range or not numbers at all, invalid UTF-8 and GBK text.
// Nothing is published from them, each is counted under its reason, and the
// session stays up.
func TestPlatformBadFrames(t *testing.T) {
	f := newFixture(t, brokertest.Targets(t)[0], setup{})
	f.waitLoggedIn()
	ftMark(t, f, "M0")
	for _, raw := range []string{
		"garbage between frames\r\n",                                          // junk
		`{"header":{"cmd":"1007"},"body":{"id":"J1",}}` + "\r\n",              // invalid_json
		`{"header":{"cmd":"1007"},"body":{"id":"J2","lat":"1` + "\n",          // invalid_json: line break in a string
		`{"header":"1007","body":{}}` + "\r\n",                                // malformed
		`{"header":{"cmd":"99999999999"},"body":{}}` + "\r\n",                 // malformed: cmd out of range
		`{"header":{"cmd":"1999"},"body":{"what":"is this"}}` + "\r\n",        // unknown command
		string(ftRaw("J3", "91")),                                             // out_of_range
		string(ftRaw("J4", "-90.0001")),                                       // out_of_range
		string(ftRaw("J5", "north")),                                          // bad_field
		string(ftRaw("J7", "1e999")),                                          // bad_field: not a float64
		`{"header":{"cmd":"1007"},"body":{"id":"J6","lng":"121.4"}}` + "\r\n", // bad_field: no lat
	} {
		f.sim.SendRaw([]byte(raw))
	}
	// Invalid text is kept, not skipped: bytes that are neither UTF-8 nor
	// GB18030 become U+FFFD.
	f.sim.SendRaw([]byte("{\"header\":{\"cmd\":\"1007\"},\"body\":{\"id\":\"T1\",\"lat\":\"31.2\",\"lng\":\"121.4\",\"posinfo\":\"bad \xff\xfe\x80 text\"}}\r\n"))
	f.sim.SendRaw([]byte("{\"header\":{\"cmd\":\"1007\"},\"body\":{\"id\":\"T2\",\"lat\":\"31.2\",\"lng\":\"121.4\",\"posinfo\":\"\xc9\xcf\xba\xa3\"}}\r\n")) // 上海 in GBK
	ftMark(t, f, "M1")

	for reason, want := range map[string]float64{"junk": 1, "invalid_json": 2, "malformed": 2, "out_of_range": 2, "bad_field": 3} {
		if got := metric(t, f.bridge, `exlive_frames_skipped_total{reason="`+reason+`"}`); got != want {
			t.Errorf("skipped %s = %v, want %v", reason, got, want)
		}
	}
	if got := metric(t, f.bridge, `exlive_frames_received_total{cmd="unknown"}`); got != 1 {
		t.Errorf("unknown frames = %v, want 1", got)
	}
	for _, id := range []string{"J1", "J2", "J3", "J4", "J5", "J6", "J7"} {
		if _, ok := f.sub.Last(f.topic("vehicles/" + id + "/position")); ok {
			t.Errorf("position of %s published from a bad frame", id)
		}
	}
	t1 := decode(t, f.sub.WaitTopic(testWait, f.topic("vehicles/T1/position")).Payload)
	if p, _ := t1["posinfo"].(string); !strings.Contains(p, "\uFFFD") {
		t.Errorf("invalid text published as %q, want U+FFFD in it", p)
	}
	if t2 := decode(t, f.sub.WaitTopic(testWait, f.topic("vehicles/T2/position")).Payload); t2["posinfo"] != "上海" {
		t.Errorf("GBK text published as %q", t2["posinfo"])
	}
	if accepted, _ := f.sim.Logins(); accepted != 1 {
		t.Errorf("%d logins, want the one session to have stayed up", accepted)
	}
	if n := metric(t, f.bridge, "exlive_disconnects_total"); n != 0 {
		t.Errorf("exlive_disconnects_total = %v, want 0", n)
	}
}

// TestPlatformOversizedFrame: a frame larger than EXLIVE_MAX_FRAME cannot be
// skipped (there is no telling where it ends), so it ends the session; it is
// counted, and the bridge reconnects.
func TestPlatformOversizedFrame(t *testing.T) {
	f := newFixture(t, brokertest.Targets(t)[0], setup{noStart: true})
	f.opts.Exlive.MaxFrame = 4096
	f.start()
	f.waitLoggedIn()
	ftMark(t, f, "M1")
	f.sim.SendRaw([]byte(`{"header":{"cmd":"1003"},"body":{"msg":"` + strings.Repeat("x", 10000) + `"}}` + "\r\n"))
	f.waitSession(0, `"state":"disconnected"`, "frame too large")
	waitFor(t, testWait, "a second login", func() bool { n, _ := f.sim.Logins(); return n >= 2 })
	f.waitLoggedIn()
	ftMark(t, f, "M2")
	if got := metric(t, f.bridge, `exlive_frames_skipped_total{reason="too_large"}`); got != 1 {
		t.Errorf(`skipped too_large = %v, want 1`, got)
	}
}

// ftGaps wraps the platform connection and records the longest time the
// session spent between two reads: how long its reader was held up.
type ftGaps struct {
	mu        sync.Mutex
	lastRead  time.Time
	worst     time.Duration
	recording bool
}

type ftGapConn struct {
	net.Conn
	g *ftGaps
}

func (c ftGapConn) Read(p []byte) (int, error) {
	g := c.g
	g.mu.Lock()
	if g.recording && !g.lastRead.IsZero() {
		g.worst = max(g.worst, time.Since(g.lastRead))
	}
	g.mu.Unlock()
	n, err := c.Conn.Read(p)
	g.mu.Lock()
	g.lastRead = time.Now()
	g.mu.Unlock()
	return n, err
}

func (g *ftGaps) record(on bool) time.Duration {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.recording = on
	return g.worst
}

// ftHeartbeatGap returns the longest gap between heartbeats the platform
// received from from to to.
func ftHeartbeatGap(sim *exlivesim.Server, from, to time.Time) time.Duration {
	var worst time.Duration
	prev := from
	for _, r := range sim.Received() {
		if _, ok := r.Msg.(*exlive.Heartbeat); !ok || r.At.Before(from) || r.At.After(to) {
			continue
		}
		worst = max(worst, r.At.Sub(prev))
		prev = r.At
	}
	return max(worst, to.Sub(prev))
}

// ftStalls measures how late the test process's goroutines get to run: a
// goroutine asks to wake every 10 ms and notes how late it woke. On a busy
// machine every goroutine is late by as much; a timing bound that allows
// for the lateness measured over the same window still tells a goroutine
// held up by the code (a heartbeat waiting on MQTT) from one held up by the
// machine.
type ftStalls struct {
	stop, done chan struct{}
	worst      time.Duration
}

func ftMeasureStalls() *ftStalls {
	s := &ftStalls{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		const every = 10 * time.Millisecond
		timer := time.NewTimer(every)
		defer timer.Stop()
		for due := time.Now().Add(every); ; due = time.Now().Add(every) {
			timer.Reset(every)
			select {
			case <-s.stop:
				return
			case <-timer.C:
				s.worst = max(s.worst, time.Since(due))
			}
		}
	}()
	return s
}

// end stops the measuring and returns the worst lateness seen.
func (s *ftStalls) end() time.Duration {
	close(s.stop)
	<-s.done
	return s.worst
}

// TestStuckBrokerKeepsThePlatformSessionAlive freezes Mosquitto (SIGSTOP)
// while the platform sends 1 000 positions a second. The platform reader
// never waits on MQTT for longer than MQTT_WRITE_TIMEOUT, heartbeats keep
// their interval, the platform session stays up, and once the broker
// resumes every position is delivered.
func TestStuckBrokerKeepsThePlatformSessionAlive(t *testing.T) {
	m := brokertest.StartMosquitto(t, "")
	const n = 5000
	f := newFixture(t, brokertest.Target{Name: "mosquitto", URL: m.URL()}, setup{noStart: true,
		sim: exlivesim.Config{Vehicles: 20, Rate: 1000, Count: n, StampSent: true}})
	f.opts.Exlive.Heartbeat = 200 * time.Millisecond
	f.opts.MQTT.WriteTimeout = time.Second
	f.opts.MQTT.Keepalive = 2 * time.Second
	gaps := &ftGaps{}
	f.opts.Dial = func(ctx context.Context, _ string) (net.Conn, error) {
		nc, err := exlive.Dial(ctx, f.sim.Addr())
		if err != nil {
			return nil, err
		}
		return ftGapConn{nc, gaps}, nil
	}
	cnt := brokertest.NewCounter(t, m.URL(), f.topic("vehicles/+/position"))
	f.start()
	f.waitLoggedIn()
	cnt.WaitCount(testWait, "/position", 500)

	m.Pause()
	paused := time.Now()
	stalls := ftMeasureStalls()
	gaps.record(true)
	before := metric(t, f.bridge, "exlive_positions_received_total")
	// The reader goes on while the broker is stuck, until paho gives the
	// connection up (keepalive without an answer).
	waitFor(t, 20*time.Second, "positions read and the broker link given up while the broker is stuck", func() bool {
		return metric(t, f.bridge, "exlive_positions_received_total") >= min(before+2000, n) &&
			metric(t, f.bridge, "mqtt_connected") == 0
	})
	worst := gaps.record(false)
	resumed := time.Now()
	stall := stalls.end()
	m.Resume()
	t.Logf("broker stuck for %s: reader held up at most %s; goroutines of the test process late by up to %s", resumed.Sub(paused), worst, stall)
	// Both bounds allow for how late the machine let any goroutine run.
	if limit := f.opts.MQTT.WriteTimeout + 500*time.Millisecond + stall; worst > limit {
		t.Errorf("the platform reader was held up %s by a stuck broker, want at most the write timeout (%s; goroutines late by up to %s)", worst, f.opts.MQTT.WriteTimeout, stall)
	}
	if gap := ftHeartbeatGap(f.sim, paused, resumed); gap > 3*f.opts.Exlive.Heartbeat+stall {
		t.Errorf("heartbeats stalled for %s while the broker was stuck (interval %s; goroutines late by up to %s)", gap, f.opts.Exlive.Heartbeat, stall)
	}

	cnt.WaitCount(60*time.Second, "/position", n)
	if got := metric(t, f.bridge, "exlive_positions_received_total"); got != n {
		t.Errorf("positions received = %v, want %d", got, n)
	}
	if accepted, _ := f.sim.Logins(); accepted != 1 {
		t.Errorf("%d logins: the platform session was dropped", accepted)
	}
	if d := metric(t, f.bridge, "exlive_disconnects_total"); d != 0 {
		t.Errorf("exlive_disconnects_total = %v", d)
	}
	if m := ftAccounted(t, f.bridge, true); m.published != m.accepted {
		t.Errorf("MQTT counters %+v: want every message published", m)
	}
}

// ftWaitSaved waits until Mosquitto has written its database after since,
// so that a subscriber's session survives even SIGKILL.
func ftWaitSaved(t *testing.T, m *brokertest.Mosquitto, since time.Time) {
	t.Helper()
	path := filepath.Join(m.Dir(), "mosquitto.db")
	waitFor(t, testWait, "mosquitto to save its database", func() bool {
		fi, err := os.Stat(path)
		return err == nil && fi.ModTime().After(since)
	})
}

// ftBrokerUpWithin waits for the bridge's broker link and fails when it
// came later than within after up.
func ftBrokerUpWithin(t *testing.T, f *fixture, up time.Time, within time.Duration) {
	t.Helper()
	waitFor(t, testWait, "the broker link", func() bool { return f.bridge.Status().Broker.State == "connected" })
	if d := f.bridge.Status().Broker.Since.Sub(up); d > within {
		t.Errorf("broker link up %s after the broker's return, want within %s", d, within)
	}
}

// ftSender sends positions of 20 vehicles, each unique, from the platform.
type ftSender struct {
	f *fixture
	n int
}

func (s *ftSender) send(k int) {
	s.f.t.Helper()
	// The platform sends only on connections whose login it has answered.
	if !brokertest.Eventually(testWait, func() bool { return s.f.sim.Connections() > 0 }) {
		s.f.t.Fatal("the platform has no logged-in connection to send on")
	}
	for range k {
		s.f.sim.Send(ftPosition(fmt.Sprintf("V%d", s.n%20+1), s.n))
		s.n++
	}
}

// waitRead waits until the bridge has read every position sent.
func (s *ftSender) waitRead(t *testing.T) {
	t.Helper()
	waitFor(t, testWait, fmt.Sprintf("the bridge to read %d positions", s.n), func() bool {
		return metric(t, s.f.bridge, "exlive_positions_received_total") == float64(s.n)
	})
}

// TestBrokerRestartLosesNoPosition restarts Mosquitto with SIGTERM and with
// SIGKILL while positions flow, and sends thousands more while it is down:
// the bridge reconnects within 5 s of its return, states online and its
// session again, subscribes again, and every position arrives at QoS 1.
func TestBrokerRestartLosesNoPosition(t *testing.T) {
	for _, kill := range []bool{false, true} {
		name := "sigterm"
		if kill {
			name = "sigkill"
		}
		t.Run(name, func(t *testing.T) {
			m := brokertest.StartMosquitto(t, "autosave_interval 1")
			f := newFixture(t, brokertest.Target{Name: "mosquitto", URL: m.URL()}, setup{noStart: true})
			cnt := brokertest.NewCounter(t, m.URL(), f.topic("vehicles/+/position"))
			ftWaitSaved(t, m, time.Now())
			f.start()
			f.waitLoggedIn()
			f.sub.WaitTopic(testWait, f.topic("bridge/vehicles"))
			s := &ftSender{f: f}
			s.send(2000)
			if kill {
				// What Mosquitto acknowledged and had not saved dies
				// with it; only what reached the subscriber is safe.
				cnt.WaitCount(testWait, "/position", s.n)
				m.Kill()
			} else {
				m.Stop() // positions in flight must come through too
			}
			waitFor(t, testWait, "the bridge to see the broker gone", func() bool { return metric(t, f.bridge, "mqtt_connected") == 0 })
			s.send(3000)
			s.waitRead(t)
			up := time.Now()
			if err := m.Restart(); err != nil {
				t.Fatal(err)
			}
			ftBrokerUpWithin(t, f, up, 5*time.Second)
			s.send(1000)
			cnt.WaitCount(30*time.Second, "/position", s.n)
			if m := ftAccounted(t, f.bridge, true); m.published != m.accepted {
				t.Errorf("MQTT counters %+v: want every message published", m)
			}
			late := brokertest.Subscribe(t, m.URL(), f.topic("bridge/state"), f.topic("bridge/session"))
			if st := late.WaitTopic(testWait, f.topic("bridge/state")); st.Payload != "online" {
				t.Errorf("retained state after the restart = %q", st.Payload)
			}
			if ss := late.WaitTopic(testWait, f.topic("bridge/session")); !strings.Contains(ss.Payload, "logged_in") {
				t.Errorf("retained session after the restart = %s", ss.Payload)
			}
			if r := f.request("vehicles/V1/command", `{"data":"AFTER","request_id":"after-restart"}`); r["ok"] != true {
				t.Errorf("request after the restart: %v", r)
			}
		})
	}
}

// TestBrokerDownAtStart: the bridge starts while the broker is down; it
// serves the platform all the same, queues the positions, connects within
// 5 s of the broker's start and delivers them.
func TestBrokerDownAtStart(t *testing.T) {
	m := brokertest.StartMosquitto(t, "autosave_interval 1")
	f := newFixture(t, brokertest.Target{Name: "mosquitto", URL: m.URL()}, setup{noStart: true})
	cnt := brokertest.NewCounter(t, m.URL(), f.topic("vehicles/+/position"))
	ftWaitSaved(t, m, time.Now())
	m.Stop()
	f.start()
	waitFor(t, testWait, "the platform session", func() bool { return f.bridge.State().State == exlive.StateLoggedIn })
	s := &ftSender{f: f}
	s.send(1000)
	s.waitRead(t)
	up := time.Now()
	if err := m.Restart(); err != nil {
		t.Fatal(err)
	}
	ftBrokerUpWithin(t, f, up, 5*time.Second)
	cnt.WaitCount(30*time.Second, "/position", s.n)
	if m := ftAccounted(t, f.bridge, true); m.published != m.accepted {
		t.Errorf("MQTT counters %+v: want every message published", m)
	}
	late := brokertest.Subscribe(t, m.URL(), f.topic("bridge/#"))
	if ss := late.WaitTopic(testWait, f.topic("bridge/session")); !strings.Contains(ss.Payload, "logged_in") {
		t.Errorf("retained session = %s", ss.Payload)
	}
	if st := late.WaitTopic(testWait, f.topic("bridge/state")); st.Payload != "online" {
		t.Errorf("retained state = %q", st.Payload)
	}
}

// TestOutageQueueOverflowIsCounted: the outage queue has a cap; what
// overflows it is dropped oldest first, counted and logged, and the newest
// positions are delivered when the broker returns.
func TestOutageQueueOverflowIsCounted(t *testing.T) {
	target := brokertest.Targets(t)[0]
	proxy := brokertest.NewProxy(t, strings.TrimPrefix(target.URL, "tcp://"))
	f := newFixture(t, target, setup{edit: func(o *bridge.Options) {
		o.MQTT.URL = proxy.URL()
		o.MQTT.QueueLimit = 200
	}})
	f.waitLoggedIn()
	proxy.SetDown(true)
	waitFor(t, testWait, "the bridge to see the broker gone", func() bool { return metric(t, f.bridge, "mqtt_connected") == 0 })
	before := ftAccounted(t, f.bridge, false)
	positions := metric(t, f.bridge, "bridge_positions_published_total")
	s := &ftSender{f: f}
	s.send(1000)
	s.waitRead(t)
	if n := metric(t, f.bridge, "bridge_positions_published_total") - positions; n != 1000 {
		t.Errorf("%v positions handed to the broker in the outage, want 1000", n)
	}
	// What entered the queue (what it held, and everything accepted in
	// the outage: the positions and anything else) is dropped, oldest
	// first, but the newest 200.
	after := ftAccounted(t, f.bridge, false)
	if in := before.queued + after.accepted - before.accepted; after.queued != 200 || after.dropped-before.dropped != in-200 {
		t.Errorf("MQTT counters before the outage %+v, after %+v: %v through the queue, want all but the newest 200 dropped", before, after, in)
	}
	if !strings.Contains(f.log.String(), "outage queue full") {
		t.Error("no warning that the outage queue overflowed")
	}
	proxy.SetDown(false)
	newest := ftPosition("", s.n-1).WState
	f.sub.Wait(testWait, "the newest position", func(ms []brokertest.Msg) bool {
		for _, m := range ms {
			if strings.Contains(m.Payload, `"wstate":"`+newest+`"`) {
				return true
			}
		}
		return false
	})
}

// TestStoreDirKeepsPositionsAcrossBridgeRestart: with MQTT_STORE_DIR, the
// positions held when the bridge is stopped during a broker outage are kept
// on disk and delivered by the next start (same client id, same store).
func TestStoreDirKeepsPositionsAcrossBridgeRestart(t *testing.T) {
	m := brokertest.StartMosquitto(t, "autosave_interval 1")
	proxy := brokertest.NewProxy(t, m.Addr())
	f := newFixture(t, brokertest.Target{Name: "mosquitto", URL: m.URL()}, setup{noStart: true, edit: func(o *bridge.Options) {
		o.MQTT.URL = proxy.URL()
		o.MQTT.StoreDir = t.TempDir()
	}})
	cnt := brokertest.NewCounter(t, m.URL(), f.topic("vehicles/+/position"))
	// Stopped during an outage, the bridge would wait its whole stop
	// timeout for the broker: a short one keeps the test quick.
	b, stop := runBridge(t, f.opts, time.Second)
	f.bridge = b
	f.waitLoggedIn()
	proxy.SetDown(true)
	waitFor(t, testWait, "the bridge to see the broker gone", func() bool { return metric(t, b, "mqtt_connected") == 0 })
	s := &ftSender{f: f}
	before := ftAccounted(t, b, false)
	// Each message costs the file store a file of its own at stop, about
	// 1 ms here (3 ms with -race on a busy machine): a few hundred keep
	// the stop well within its bounds.
	s.send(500)
	s.waitRead(t)
	stop()
	// Everything not settled before the outage is stored, but the offline
	// state (the broker's last will says it): nothing is published,
	// failed or dropped since.
	if m := ftAccounted(t, b, true); m.published != before.published || m.failed != before.failed || m.dropped != before.dropped+1 {
		t.Errorf("MQTT counters before the outage %+v, after the stop %+v: want all accepted since stored but the offline state", before, m)
	}
	proxy.SetDown(false)
	b, _ = runBridge(t, f.opts, time.Second)
	cnt.WaitCount(30*time.Second, "/position", s.n)
	// What the store kept is the last run's; this run publishes its own.
	if m := ftAccounted(t, b, true); m.published != m.accepted {
		t.Errorf("MQTT counters after the restart %+v: want every message published", m)
	}
}

// TestPoisonVehicleIDs sends positions whose vehicle ids are no valid topic
// level, against the real Mosquitto, which disconnects a client that
// publishes to a topic with + or #, a NUL or a non-character (and paho would
// send it again after every reconnect). Every id is made one safe level or
// refused before publishing (empty, or longer than exlive.MaxIDLen); the
// bridge never loses its broker connection.
func TestPoisonVehicleIDs(t *testing.T) {
	m := brokertest.StartMosquitto(t, "")
	f := newFixture(t, brokertest.Target{Name: "mosquitto", URL: m.URL()}, setup{})
	f.waitLoggedIn()
	long := strings.Repeat("x", 70000) // longer than a topic can be
	levels := map[string]string{       // raw JSON id → level published
		`p+1`:          "p_1",
		`h#2`:          "h_2",
		`s/3`:          "s_3",
		`nul\u0000`:    "nul_",
		`ctl\u0001x`:   "ctl_x",
		`del\u007f`:    "del_",
		`c1\u0085`:     "c1_",
		`nc\ufffe`:     "nc_",
		`nc2\ufdd0`:    "nc2_",
		`+`:            "_",
		`#/+`:          "___",
		`\ud800broken`: "\uFFFDbroken", // a lone surrogate reads as U+FFFD
	}
	for id := range levels {
		f.sim.SendRaw(ftRaw(id, "31.2"))
	}
	f.sim.SendRaw(ftRaw("", "31.2"))
	f.sim.SendRaw(ftRaw(long, "31.2"))
	f.sim.SendRaw(ftRaw("V+9", "31.2")) // V+9 and V#9 share the level V_9
	f.sim.SendRaw(ftRaw("V#9", "31.2"))
	ftMark(t, f, "M1")

	for _, level := range levels {
		f.sub.WaitTopic(testWait, f.topic("vehicles/"+level+"/position"))
	}
	for _, msg := range f.sub.Messages() {
		rest := strings.TrimPrefix(msg.Topic, f.prefix+"/")
		if strings.ContainsAny(rest, "+#\x00") || len(msg.Topic) > 65535 {
			t.Errorf("published on %q", msg.Topic)
		}
		if strings.HasPrefix(rest, "vehicles/") && strings.Count(rest, "/") != 2 {
			t.Errorf("vehicle id spread over several levels: %q", msg.Topic)
		}
	}
	for series, want := range map[string]float64{
		"mqtt_reconnects_total":                            0,
		"mqtt_connected":                                   1,
		"mqtt_invalid_topics_total":                        0, // the 70 000-byte id never gets that far
		"bridge_topic_collisions_total":                    1,
		`bridge_positions_dropped_total{reason="no_id"}`:   1,
		`bridge_positions_dropped_total{reason="bad_id"}`:  1,
		`bridge_positions_dropped_total{reason="refused"}`: 0,
	} {
		if got := metric(t, f.bridge, series); got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
	// Mosquitto never had cause to drop the bridge.
	if log := m.Log(); strings.Contains(log, f.opts.MQTT.ClientID+" disconnected") || strings.Contains(log, "protocol error") {
		t.Errorf("mosquitto dropped the bridge:\n%s", log)
	}
	// A request to a level two ids share is refused as ambiguous.
	if r := f.request("vehicles/V_9/command", `{"data":"x","request_id":"amb"}`); r["ok"] != false || !strings.Contains(fmt.Sprint(r["error"]), "ambiguous") {
		t.Errorf("request to a shared level: %v", r)
	}
}

// TestPoisonIDsInInventory: a platform whose vehicle ids hold / + # lists
// them in its inventory; they are published as single levels, the
// inventory payload keeps the real ids, and a request on the level reaches
// the vehicle by its real id.
func TestPoisonIDsInInventory(t *testing.T) {
	m := brokertest.StartMosquitto(t, "")
	f := newFixture(t, brokertest.Target{Name: "mosquitto", URL: m.URL()}, setup{sim: exlivesim.Config{Vehicles: 2, IDPrefix: "a/b+#", Rate: 20}})
	f.waitLoggedIn()
	vehicles := f.sub.WaitTopic(testWait, f.topic("bridge/vehicles"))
	if !strings.Contains(vehicles.Payload, `"id":"a/b+#1"`) {
		t.Errorf("inventory = %s", vehicles.Payload)
	}
	f.sub.WaitTopic(testWait, f.topic("vehicles/a_b__1/position"))
	if r := f.request("vehicles/a_b__1/command", `{"data":"PING","request_id":"p1"}`); r["ok"] != true {
		t.Errorf("request = %v", r)
	}
	var got []string
	for _, r := range f.sim.Received() {
		if c, ok := r.Msg.(*exlive.VehicleCommand); ok {
			got = append(got, c.ID)
		}
	}
	if len(got) != 1 || got[0] != "a/b+#1" {
		t.Errorf("platform received commands for %q, want a/b+#1", got)
	}
	if n := metric(t, f.bridge, "mqtt_reconnects_total"); n != 0 {
		t.Errorf("mqtt_reconnects_total = %v", n)
	}
}

// TestBadRequestsRefused: requests that cannot be carried out get a clear
// ok:false answer, and nothing reaches the platform: non-UTF-8 payloads,
// payloads over BRIDGE_MAX_REQUEST (huge ones too), JSON of the wrong
// shape, bad numbers and times, unknown vehicles.
func TestBadRequestsRefused(t *testing.T) {
	f := newFixture(t, brokertest.Targets(t)[0], setup{edit: func(o *bridge.Options) { o.Bridge.MaxRequest = 1024 }})
	f.waitLoggedIn()
	f.sub.WaitTopic(testWait, f.topic("bridge/vehicles"))
	for _, tc := range []struct {
		rest, payload, want string
	}{
		{"vehicles/V1/command", "\xff\xfe STOP", "not valid UTF-8"},
		{"vehicles/V1/passthrough", "\xc3\x28", "not valid UTF-8"},
		{"vehicles/V1/command", strings.Repeat("x", 1025), "payload too large: 1025 bytes, at most 1024"},
		{"vehicles/V1/command", strings.Repeat("x", 4<<20), "payload too large"},
		{"vehicles/V1/position", `[31.2,121.4]`, "want a JSON object"},
		{"vehicles/V1/position", `{"lat":"north","lng":121.4}`, "lat: want a number"},
		{"vehicles/V1/position", `{"lat":91,"lng":121.4}`, "out of range"},
		{"vehicles/V1/position", `{"lat":31.2}`, "lat and lng are required"},
		{"vehicles/V1/position", `{"lat":31.2,"lng":121.4,"speed":-3}`, "speed -3: out of range"},
		{"vehicles/V1/position", `{"lat":31.2,"lng":121.4,"time":"yesterday"}`, "time: want RFC 3339"},
		{"vehicles/V1/position", `{"id":"V2","lat":31.2,"lng":121.4}`, "not the vehicle of this topic"},
		{"vehicles/V1/position", `{"lat":31.2,"lng":121.4,"code":"` + strings.Repeat("c", 129) + `"}`, "code longer than 128 bytes"},
		{"vehicles/" + strings.Repeat("v", 129) + "/position", `{"lat":31.2,"lng":121.4}`, "vehicle id longer than 128 bytes"},
		{"vehicles/V1/position", `{"lat":31.2,"lng":121.4,"mileage":1e13}`, "mileage 1e+13: out of range"},
		{"vehicles/V1/command", `{"request_id":"x"}`, `missing "data"`},
		{"vehicles/V1/command", `{"data":"x","expires":"soon"}`, "expires: want RFC 3339"},
		{"vehicles/V1/command", `{"data":"x","request_id":"` + strings.Repeat("r", 300) + `"}`, "request_id longer than 256 bytes"},
		{"vehicles/V1/command", ``, "empty payload"},
		{"vehicles/V999/command", `{"data":"x"}`, "unknown vehicle"},
		{"vehicles/V999/passthrough", `{"data":"x"}`, "unknown vehicle"},
		{"bridge/message", `{"request_id":"m"}`, `missing "msg"`},
		{"bridge/groups", ``, "empty payload"},
	} {
		r := f.request(tc.rest, tc.payload)
		if r["ok"] != false || !strings.Contains(fmt.Sprint(r["error"]), tc.want) {
			t.Errorf("%s %.40q: result %v, want ok:false with %q", tc.rest, tc.payload, r, tc.want)
		}
	}
	if sent := requests(f.sim.Received()); len(sent) != 0 {
		t.Errorf("the platform received %d requests: %v", len(sent), sent)
	}
}

// TestRequestsPublishedWhileBridgeIsDown: the bridge keeps a persistent
// MQTT session (clean session off, same client id), so the broker holds
// the requests published while it is away and delivers them when it comes
// back. Those whose expires has passed are refused as expired; the others
// are carried out once the platform session is up.
func TestRequestsPublishedWhileBridgeIsDown(t *testing.T) {
	m := brokertest.StartMosquitto(t, "")
	f := newFixture(t, brokertest.Target{Name: "mosquitto", URL: m.URL()}, setup{})
	f.waitLoggedIn()
	f.sub.WaitTopic(testWait, f.topic("bridge/vehicles"))
	f.stop()

	past := time.Now().Add(-time.Minute)
	future := time.Now().Add(time.Hour)
	for _, r := range []struct{ rest, payload string }{
		{"vehicles/V1/command", fmt.Sprintf(`{"data":"OLD","request_id":"old","expires":%q}`, past.Format(time.RFC3339))},
		{"vehicles/V1/command", fmt.Sprintf(`{"data":"OLD2","request_id":"old-epoch","expires":%d}`, past.Unix())},
		{"vehicles/V1/command", fmt.Sprintf(`{"data":"NEW","request_id":"new","expires":%q}`, future.Format(time.RFC3339))},
		{"vehicles/V2/passthrough", `{"data":"PT","request_id":"plain"}`},
		{"bridge/message", fmt.Sprintf(`{"msg":"hello","request_id":"msg","expires":%d}`, future.Unix())},
	} {
		f.sub.Publish(f.topic(r.rest+"/set"), []byte(r.payload), false)
	}
	f.start()
	for _, id := range []string{"old", "old-epoch"} {
		if r := f.resultAfter(0, "vehicles/V1/command", id); r["ok"] != false || r["error"] != "expired" {
			t.Errorf("%s: %v, want ok:false, expired", id, r)
		}
	}
	if r := f.resultAfter(0, "vehicles/V1/command", "new"); r["ok"] != true {
		t.Errorf("new: %v, want carried out", r)
	}
	if r := f.resultAfter(0, "vehicles/V2/passthrough", "plain"); r["ok"] != true {
		t.Errorf("plain: %v, want carried out", r)
	}
	waitFor(t, testWait, "the message to reach the platform", func() bool { return f.sim.Count(exlive.CmdText) == 1 })
	var got []string
	for _, msg := range requests(f.sim.Received()) {
		switch msg := msg.(type) {
		case *exlive.VehicleCommand:
			got = append(got, "1004 "+msg.ID+" "+msg.Data)
		case *exlive.Passthrough:
			got = append(got, "1012 "+msg.TerminalID+" "+msg.Data)
		case *exlive.TextMessage:
			got = append(got, "1003 "+msg.Msg)
		}
	}
	slices.Sort(got) // handlers run concurrently: no order across topics
	if want := "1003 hello|1004 V1 NEW|1012 V2 PT"; strings.Join(got, "|") != want {
		t.Errorf("platform received %q, want %q", strings.Join(got, "|"), want)
	}
}
