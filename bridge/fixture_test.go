package bridge_test

// The fixture of the bridge's end-to-end tests, and the helpers they share:
// a bridge running between the simulated platform and a real broker, its
// watched log (every request ends in one audit line, so tests wait for the
// line instead of sleeping), what the broker retains, what the platform
// received, and the bridge's metrics read from its registry.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/exlive2mqtt/exlive2mqtt/bridge"
	"github.com/exlive2mqtt/exlive2mqtt/events"
	"github.com/exlive2mqtt/exlive2mqtt/exlive"
	"github.com/exlive2mqtt/exlive2mqtt/exlive/exlivesim"
	"github.com/exlive2mqtt/exlive2mqtt/internal/brokertest"
	"github.com/exlive2mqtt/exlive2mqtt/mqtt"
	dto "github.com/prometheus/client_model/go"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testWait bounds every wait of the tests. Conditions are waited for, never
// slept on: this only decides how long a broken bridge takes to fail a
// test.
const testWait = 10 * time.Second

// fixture is a bridge running between a simulated platform and a real
// broker, with a subscriber on everything under its prefix and its log
// watched.
type fixture struct {
	t      *testing.T
	sim    *exlivesim.Server
	url    string // the broker
	prefix string
	opts   bridge.Options
	bridge *bridge.Bridge
	sub    *brokertest.Subscriber
	log    *testLog

	stopBridge func() // set by start
	n          int    // barriers sent (see settle)
}

// setup is what a test changes in a fixture before it starts.
type setup struct {
	sim  exlivesim.Config
	edit func(*bridge.Options)
	// noStart leaves the bridge unstarted (call f.start).
	noStart bool
	// watch is what the fixture's subscriber subscribes to, under the
	// prefix; everything ("#") when empty. A test that floods positions
	// watches less, so as not to keep them all.
	watch []string
}

// newFixture builds the fixture and, unless s.noStart, starts the bridge.
// Settings are the defaults, with fast retries, a short inventory quiet
// period and a debug log. On a failure the log is printed (without the
// lines of each position); on a shared broker what the test retained is
// deleted at the end.
func newFixture(t *testing.T, target brokertest.Target, s setup) *fixture {
	t.Helper()
	if s.sim.Vehicles == 0 {
		s.sim.Vehicles = 3
	}
	sim := exlivesim.New(s.sim)
	if err := sim.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })

	f := &fixture{t: t, sim: sim, url: target.URL, prefix: brokertest.Prefix(t), log: newTestLog()}
	ex := exlive.Defaults()
	ex.Addr = sim.Addr()
	ex.User, ex.Pass = exlivesim.DefaultUser, exlivesim.DefaultPass
	ex.RetryMin, ex.RetryMax = 20*time.Millisecond, 200*time.Millisecond
	ex.InventoryQuiet = 50 * time.Millisecond
	ex.CommandTimeout = 2 * time.Second
	mq := mqtt.Defaults()
	mq.URL = target.URL
	mq.ClientID = brokertest.ClientID(t)
	mq.TopicPrefix = f.prefix
	mq.RetryMax = 200 * time.Millisecond
	mq.WriteTimeout = 2 * time.Second
	f.opts = bridge.Options{
		Bridge:    bridge.Defaults(),
		Exlive:    ex,
		MQTT:      mq,
		Hass:      bridge.HassConfig{Prefix: "homeassistant"},
		OwnTracks: bridge.OwnTracksConfig{User: "exlive"},
		Events:    events.Defaults(),
		Version:   "test",
		Log:       zerolog.New(f.log).Level(zerolog.DebugLevel),
	}
	if s.edit != nil {
		s.edit(&f.opts)
	}
	if err := f.opts.Exlive.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := f.opts.MQTT.Validate(nil); err != nil {
		t.Fatal(err)
	}
	watch := []string{f.prefix + "/#"}
	if len(s.watch) > 0 {
		watch = watch[:0]
		for _, w := range s.watch {
			watch = append(watch, f.prefix+"/"+w)
		}
	}
	f.sub = brokertest.Subscribe(t, target.URL, watch...)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("bridge log (without positions):\n%s", f.log.brief())
		}
		if target.Name == "external" {
			// A shared broker keeps what the test retained forever.
			f.stop()
			for topic := range retained(t, target.URL, f.prefix+"/#") {
				f.sub.Publish(topic, nil, true)
			}
		}
	})
	if !s.noStart {
		f.start()
	}
	return f
}

// start runs the bridge until the test ends (or stop).
func (f *fixture) start() {
	f.t.Helper()
	f.bridge, f.stopBridge = runBridge(f.t, f.opts, 5*time.Second)
}

// stop shuts the bridge down and waits for it; it can be called twice.
func (f *fixture) stop() {
	if f.stopBridge != nil {
		f.stopBridge()
	}
}

// runBridge runs a bridge with the given stop timeout until the test ends
// or stop is called (which waits for it, and may be called again).
func runBridge(t *testing.T, o bridge.Options, stopTimeout time.Duration) (*bridge.Bridge, func()) {
	t.Helper()
	b, err := bridge.New(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx, stopTimeout) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run = %v", err)
				}
			case <-time.After(stopTimeout + 10*time.Second):
				t.Error("bridge did not stop")
			}
		})
	}
	t.Cleanup(stop)
	return b, stop
}

// topic returns P/rest.
func (f *fixture) topic(rest string) string { return f.prefix + "/" + rest }

// waitLoggedIn waits for the retained session state logged_in.
func (f *fixture) waitLoggedIn() {
	f.t.Helper()
	f.sub.Wait(testWait, "session logged_in", func(ms []brokertest.Msg) bool {
		m, ok := last(ms, f.topic("bridge/session"))
		return ok && strings.Contains(m.Payload, `"state":"logged_in"`)
	})
}

// ready waits until the session is logged in and the inventory is
// published, so that requests to the fleet's vehicles can be carried out.
func (f *fixture) ready() {
	f.t.Helper()
	f.waitLoggedIn()
	f.sub.WaitTopic(testWait, f.topic("bridge/vehicles"))
}

// waitSession waits for a session state holding every one of want (as
// `"state":"disconnected"`) among those published after the first from, and
// returns its payload and its index among the messages.
func (f *fixture) waitSession(from int, want ...string) (payload string, i int) {
	f.t.Helper()
	topic := f.topic("bridge/session")
	f.sub.Wait(testWait, fmt.Sprintf("a session state with %q", want), func(ms []brokertest.Msg) bool {
		for i = from; i < len(ms); i++ {
			if ms[i].Topic != topic {
				continue
			}
			ok := true
			for _, w := range want {
				ok = ok && strings.Contains(ms[i].Payload, w)
			}
			if ok {
				payload = ms[i].Payload
				return true
			}
		}
		return false
	})
	return payload, i
}

// set publishes payload on P/rest/set.
func (f *fixture) set(rest, payload string) {
	f.t.Helper()
	f.sub.Publish(f.topic(rest+"/set"), []byte(payload), false)
}

// request publishes payload on P/rest/set and returns the next result on
// P/rest/result, whatever its request_id.
func (f *fixture) request(rest, payload string) map[string]any {
	f.t.Helper()
	before := len(f.sub.Messages())
	f.set(rest, payload)
	return f.waitResult(before, rest, "a result", func(map[string]any) bool { return true })
}

// ask publishes payload on P/rest/set and returns the first result on
// P/rest/result that carries request_id id ("" for none) and came after
// it. A request the bridge answers with nothing fails the test.
func (f *fixture) ask(rest, id, payload string) map[string]any {
	f.t.Helper()
	before := len(f.sub.Messages())
	f.set(rest, payload)
	return f.resultAfter(before, rest, id)
}

// resultAfter waits for a result on P/rest/result with request_id id among
// the messages received after the first before.
func (f *fixture) resultAfter(before int, rest, id string) map[string]any {
	f.t.Helper()
	return f.waitResult(before, rest, "a result for "+id, func(r map[string]any) bool { return str(r["request_id"]) == id })
}

func (f *fixture) waitResult(before int, rest, what string, match func(map[string]any) bool) map[string]any {
	f.t.Helper()
	topic := f.topic(rest + "/result")
	var found map[string]any
	f.sub.Wait(testWait, what+" on "+topic, func(ms []brokertest.Msg) bool {
		for _, m := range ms[min(before, len(ms)):] {
			if m.Topic != topic {
				continue
			}
			var r map[string]any
			if json.Unmarshal([]byte(m.Payload), &r) == nil && match(r) {
				found = r
				return true
			}
		}
		return false
	})
	return found
}

// results returns every result on P/rest/result with request_id id.
func (f *fixture) results(rest, id string) []map[string]any {
	f.t.Helper()
	var out []map[string]any
	for _, m := range f.sub.Messages() {
		if m.Topic != f.topic(rest+"/result") {
			continue
		}
		r := decode(f.t, m.Payload)
		if str(r["request_id"]) == id {
			out = append(out, r)
		}
	}
	return out
}

// waitResults waits until P/rest/result has n answers with request_id id,
// and returns them; more than n fails the test.
func (f *fixture) waitResults(rest, id string, n int) []map[string]any {
	f.t.Helper()
	topic := f.topic(rest + "/result")
	var found []map[string]any
	f.sub.Wait(testWait, fmt.Sprintf("%d results for %s on %s", n, id, topic), func(ms []brokertest.Msg) bool {
		found = found[:0]
		for _, m := range ms {
			var r map[string]any
			if m.Topic == topic && json.Unmarshal([]byte(m.Payload), &r) == nil && str(r["request_id"]) == id {
				found = append(found, r)
			}
		}
		return len(found) >= n
	})
	if len(found) > n {
		f.t.Errorf("%d results for %s on %s, want %d: %v", len(found), id, topic, n, found)
	}
	return found
}

// settle sends a request the bridge refuses at once (a message without
// msg) and waits for its answer. The bridge carries requests out one at a
// time and publishes in order, so once its answer is in, every answer to a
// request whose audit line came before it is in too.
func (f *fixture) settle() {
	f.t.Helper()
	f.n++
	id := fmt.Sprintf("barrier-%d", f.n)
	r := f.ask("bridge/message", id, `{"request_id":"`+id+`"}`)
	if r["ok"] != false {
		f.t.Fatalf("barrier answered %v", r)
	}
}

// waitAudit waits for an audit line of request id (and of cmd, when not
// empty) and returns every such line.
func (f *fixture) waitAudit(cmd, id string) []audit {
	f.t.Helper()
	var got []audit
	f.log.wait(f.t, "the audit line of request "+id, func(as []audit) bool {
		got = got[:0]
		for _, a := range as {
			if a.RequestID == id && (cmd == "" || a.Cmd == cmd) {
				got = append(got, a)
			}
		}
		return len(got) > 0
	})
	return got
}

func decode(t testing.TB, payload string) map[string]any {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal([]byte(payload), &v); err != nil {
		t.Fatalf("payload %q is not a JSON object: %v", payload, err)
	}
	return v
}

// str returns v as a string when it is one.
func str(v any) string {
	s, _ := v.(string)
	return s
}

func last(ms []brokertest.Msg, topic string) (brokertest.Msg, bool) {
	for i := len(ms) - 1; i >= 0; i-- {
		if ms[i].Topic == topic {
			return ms[i], true
		}
	}
	return brokertest.Msg{}, false
}

func count(ms []brokertest.Msg, topic string) int {
	n := 0
	for _, m := range ms {
		if m.Topic == topic {
			n++
		}
	}
	return n
}

// after returns the messages on topic among ms[from:].
func after(ms []brokertest.Msg, from int, topic string) []brokertest.Msg {
	var out []brokertest.Msg
	for _, m := range ms[min(from, len(ms)):] {
		if m.Topic == topic {
			out = append(out, m)
		}
	}
	return out
}

// waitPayload waits for a message on topic with payload want among those
// received after the first from, and returns its index.
func waitPayload(t *testing.T, sub *brokertest.Subscriber, from int, topic, want string) int {
	t.Helper()
	idx := -1
	sub.Wait(testWait, fmt.Sprintf("%s = %q", topic, want), func(ms []brokertest.Msg) bool {
		for i := from; i < len(ms); i++ {
			if ms[i].Topic == topic && ms[i].Payload == want {
				idx = i
				return true
			}
		}
		return false
	})
	return idx
}

// waitPayloads waits until every topic of want has received its payload
// since message number from.
func waitPayloads(t *testing.T, sub *brokertest.Subscriber, from int, want map[string]string, what string) []brokertest.Msg {
	t.Helper()
	return sub.Wait(15*time.Second, what, func(ms []brokertest.Msg) bool {
		if from > len(ms) {
			return false
		}
		seen := make(map[string]bool, len(want))
		for _, m := range ms[from:] {
			if p, ok := want[m.Topic]; ok && m.Payload == p {
				seen[m.Topic] = true
			}
		}
		return len(seen) == len(want)
	})
}

// waitFor waits until cond holds, checking every few milliseconds: for
// states that signal no change (metrics, files, readiness).
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	if !brokertest.Eventually(timeout, cond) {
		t.Fatalf("timed out after %s waiting for %s", timeout, what)
	}
}

// retained returns what the broker at url retains under filter, by topic,
// as a client that subscribes now (Home Assistant starting, say) gets it.
// A fresh client subscribes to filter and then to a sentinel topic
// retained just for this: brokers send a subscription's retained messages
// right after acknowledging it, so once the sentinel is in, everything
// retained under filter is in. Both subscriptions are QoS 0: the embedded
// broker (mochi v2.7.9) shares one packet id space between the QoS 1
// messages it sends and the client's SUBSCRIBE, and refuses a subscription
// whose id one of its retained messages still holds.
func retained(t *testing.T, url, filter string) map[string]brokertest.Msg {
	t.Helper()
	var b [6]byte
	rand.Read(b[:])
	sentinel := "test/sentinel-" + hex.EncodeToString(b[:])
	pub := brokertest.Subscribe(t, url)
	pub.Publish(sentinel, []byte("x"), true)
	defer pub.Publish(sentinel, nil, true)

	out := make(map[string]brokertest.Msg)
	done := make(chan struct{})
	var mu sync.Mutex
	c := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID(brokertest.ClientID(t)).
		SetCleanSession(true).SetOrderMatters(true).SetAutoReconnect(false))
	if tok := c.Connect(); !tok.WaitTimeout(testWait) || tok.Error() != nil {
		t.Fatalf("connect to %s: %v", url, tok.Error())
	}
	defer c.Disconnect(100)
	for _, f := range []string{filter, sentinel} {
		tok := c.Subscribe(f, 0, func(_ paho.Client, m paho.Message) {
			mu.Lock()
			defer mu.Unlock()
			switch {
			case m.Topic() == sentinel:
				select {
				case <-done:
				default:
					close(done)
				}
			case m.Retained():
				out[m.Topic()] = brokertest.Msg{Topic: m.Topic(), Payload: string(m.Payload()), Retained: true, At: time.Now()}
			}
		})
		if !tok.WaitTimeout(testWait) || tok.Error() != nil {
			t.Fatalf("subscribe %s: %v", f, tok.Error())
		}
	}
	select {
	case <-done:
	case <-time.After(testWait):
		t.Fatalf("the retained sentinel %s did not come", sentinel)
	}
	mu.Lock()
	defer mu.Unlock()
	return maps.Clone(out)
}

// clearRetainedAtEnd deletes, when the test ends and after stop, every
// retained message under filter, so that a shared broker does not keep
// discovery configs and OwnTracks locations of finished tests (an OwnTracks
// Recorder on that broker would show them).
func clearRetainedAtEnd(t *testing.T, url, filter string, stop func()) {
	t.Cleanup(func() {
		stop()
		pub := brokertest.Subscribe(t, url)
		for topic := range retained(t, url, filter) {
			pub.Publish(topic, nil, true)
		}
	})
}

// received returns the messages of type T the platform received, oldest
// first.
func received[T exlive.Message](sim *exlivesim.Server) []T {
	var out []T
	for _, r := range sim.Received() {
		if m, ok := r.Msg.(T); ok {
			out = append(out, m)
		}
	}
	return out
}

// lastReceived returns the latest frame of type T the platform received.
func lastReceived[T any](sim *exlivesim.Server) (T, exlivesim.Received, bool) {
	rs := sim.Received()
	for i := len(rs) - 1; i >= 0; i-- {
		if m, ok := rs[i].Msg.(T); ok {
			return m, rs[i], true
		}
	}
	var zero T
	return zero, exlivesim.Received{}, false
}

// requests returns the requests among what the platform received: every
// frame but the session's own (login, logout, heartbeats, inventory).
func requests(rs []exlivesim.Received) []exlive.Message {
	var out []exlive.Message
	for _, r := range rs {
		switch r.Msg.(type) {
		case *exlive.Login, *exlive.Logout, *exlive.Heartbeat, *exlive.GroupsRequest, *exlive.VehiclesRequest:
		default:
			out = append(out, r.Msg)
		}
	}
	return out
}

// waitSim waits until the platform has received what cond wants.
func waitSim(t *testing.T, sim *exlivesim.Server, what string, cond func([]exlivesim.Received) bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	defer cancel()
	if err := sim.WaitFor(ctx, cond); err != nil {
		t.Fatalf("platform: waiting for %s: %v", what, err)
	}
}

// rawPosition is a 1007 frame as the platform writes it: every value a
// string. Keys not in body are sent as "".
func rawPosition(body map[string]string) []byte {
	var b strings.Builder
	b.WriteString(`{"header":{"cmd":"1007"},"body":{`)
	for i, k := range []string{"code", "id", "lat", "lng", "veo", "dir", "gpstime", "av", "alarm", "oil", "dis", "wstate", "cstate", "posinfo"} {
		if i > 0 {
			b.WriteByte(',')
		}
		k2, _ := json.Marshal(k)
		v, _ := json.Marshal(body[k])
		b.Write(k2)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteString("}}\r\n")
	return []byte(b.String())
}

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	return fmt.Sprintf("127.0.0.1:%d", brokertest.FreePort(t))
}

// buildCommand builds the command pkg into the test's temporary directory,
// with the race detector when this test binary has it, and returns its
// path.
func buildCommand(t *testing.T, pkg string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), path.Base(pkg))
	args := []string{"build", "-o", bin}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "-race" && s.Value == "true" {
				args = append(args, "-race")
			}
		}
	}
	goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goTool); err != nil {
		goTool = "go"
	}
	if out, err := exec.Command(goTool, append(args, pkg)...).CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
	return bin
}

// audit is one audit line of the bridge: what became of a request.
type audit struct {
	Level, Message          string // of the log line: info, "request"
	Cmd, RequestID, Outcome string
	Vehicle                 string
	HasVehicle              bool // the line names a vehicle, even as "" (one the bridge does not know)
	TopicLevel              string
	Result, Error           string
}

// testLog collects the bridge's JSON log lines, reads the audit lines among
// them, and wakes waiters on each write.
type testLog struct {
	mu      sync.Mutex
	raw     bytes.Buffer
	audits  []audit
	changed chan struct{}
}

func newTestLog() *testLog { return &testLog{changed: make(chan struct{})} }

func (l *testLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.raw.Write(p)
	for _, line := range bytes.Split(bytes.TrimSpace(p), []byte("\n")) {
		var e map[string]any
		if json.Unmarshal(line, &e) != nil || e["component"] != "audit" {
			continue
		}
		_, hasVehicle := e["vehicle"].(string)
		l.audits = append(l.audits, audit{
			Level: str(e["level"]), Message: str(e["message"]),
			Cmd: str(e["cmd"]), RequestID: str(e["request_id"]), Outcome: str(e["outcome"]),
			Vehicle: str(e["vehicle"]), HasVehicle: hasVehicle, TopicLevel: str(e["topic_level"]),
			Result: str(e["result"]), Error: str(e["error"]),
		})
	}
	close(l.changed)
	l.changed = make(chan struct{})
	return len(p), nil
}

func (l *testLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.raw.String()
}

// byRequest returns the audit lines so far, by request id.
func (l *testLog) byRequest() map[string][]audit {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[string][]audit)
	for _, a := range l.audits {
		out[a.RequestID] = append(out[a.RequestID], a)
	}
	return out
}

// brief returns the log without the lines of each position, at most its
// last 200 lines.
func (l *testLog) brief() string {
	var keep []string
	for _, line := range strings.Split(l.String(), "\n") {
		if !strings.Contains(line, `"position published"`) && !strings.Contains(line, `"cmd":"1007","bytes"`) {
			keep = append(keep, line)
		}
	}
	return strings.Join(keep[max(0, len(keep)-200):], "\n")
}

// wait waits until cond holds for the audit lines so far.
func (l *testLog) wait(t *testing.T, what string, cond func([]audit) bool) {
	t.Helper()
	deadline := time.NewTimer(testWait)
	defer deadline.Stop()
	for {
		l.mu.Lock()
		ok := cond(l.audits)
		ch := l.changed
		l.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// waitText waits until the log holds s.
func (l *testLog) waitText(t *testing.T, s string) {
	t.Helper()
	if !l.await(s) {
		t.Fatalf("timed out waiting for %q in the log", s)
	}
}

// await waits until the log holds s, at most testWait, and reports whether
// it does. Unlike waitText it can be called from any goroutine.
func (l *testLog) await(s string) bool {
	deadline := time.NewTimer(testWait)
	defer deadline.Stop()
	for {
		l.mu.Lock()
		ok := bytes.Contains(l.raw.Bytes(), []byte(s))
		ch := l.changed
		l.mu.Unlock()
		if ok {
			return true
		}
		select {
		case <-ch:
		case <-deadline.C:
			return false
		}
	}
}

// metrics is one gathering of the bridge's metrics, read from its registry
// (no text format in between).
type metrics struct {
	families map[string]*dto.MetricFamily
}

// gather gathers the bridge's metrics once. Like a scrape it is no
// snapshot: the registry collects one metric after another while the
// bridge goes on counting.
func gather(t testing.TB, b *bridge.Bridge) metrics {
	t.Helper()
	fs, err := b.Gatherer().Gather()
	if err != nil {
		t.Fatalf("gather metrics: %v", err)
	}
	m := metrics{families: make(map[string]*dto.MetricFamily, len(fs))}
	for _, f := range fs {
		m.families[f.GetName()] = f
	}
	return m
}

// metric returns a series of the bridge's metrics now (see metrics.get);
// 0 when there is none.
func metric(t testing.TB, b *bridge.Bridge, series string) float64 {
	t.Helper()
	v, _ := gather(t, b).get(t, series)
	return v
}

// get returns the value of series, written as /metrics writes it: a
// metric's name with some or all of its labels,
// `exlive_frames_skipped_total{reason="junk"}`. The values of every series
// with those labels are summed. A histogram's are named as in /metrics:
// name_count, name_sum, name_bucket{le="…"}. ok is false when no series
// matches.
func (m metrics) get(t testing.TB, series string) (v float64, ok bool) {
	t.Helper()
	name, labels := parseSeries(t, series)
	part := ""
	f := m.families[name]
	if f == nil {
		for _, suffix := range []string{"_count", "_sum", "_bucket"} {
			if base, cut := strings.CutSuffix(name, suffix); cut && m.families[base].GetType() == dto.MetricType_HISTOGRAM {
				f, part = m.families[base], suffix
			}
		}
	}
	le, hasLE := labels["le"]
	if part == "_bucket" {
		delete(labels, "le")
	}
	for _, s := range f.GetMetric() {
		if !hasLabels(s, labels) {
			continue
		}
		switch part {
		case "":
			v += s.GetCounter().GetValue() + s.GetGauge().GetValue() + s.GetUntyped().GetValue()
			ok = true
		case "_count":
			v += float64(s.GetHistogram().GetSampleCount())
			ok = true
		case "_sum":
			v += s.GetHistogram().GetSampleSum()
			ok = true
		case "_bucket":
			if !hasLE {
				t.Fatalf("%s: a bucket needs le", series)
			}
			if le == "+Inf" {
				v += float64(s.GetHistogram().GetSampleCount())
				ok = true
			}
			for _, bk := range s.GetHistogram().GetBucket() {
				if strconv.FormatFloat(bk.GetUpperBound(), 'g', -1, 64) == le {
					v += float64(bk.GetCumulativeCount())
					ok = true
				}
			}
		}
	}
	return v, ok
}

// value returns series, failing the test when there is no such series.
func (m metrics) value(t testing.TB, series string) float64 {
	t.Helper()
	v, ok := m.get(t, series)
	if !ok {
		name, _, _ := strings.Cut(series, "{")
		t.Fatalf("the metrics have no %s; they have:\n%s", series, m.grep(name))
	}
	return v
}

// want checks that series is there with the value want.
func (m metrics) want(t testing.TB, series string, want float64) {
	t.Helper()
	if got := m.value(t, series); got != want {
		t.Errorf("%s = %v, want %v", series, got, want)
	}
}

// grep lists the series of the metrics whose name contains name, for
// failure messages.
func (m metrics) grep(name string) string {
	var b strings.Builder
	for fname, f := range m.families {
		if !strings.Contains(fname, name) {
			continue
		}
		for _, s := range f.GetMetric() {
			fmt.Fprintf(&b, "%s%v %v\n", fname, s.GetLabel(),
				s.GetCounter().GetValue()+s.GetGauge().GetValue()+float64(s.GetHistogram().GetSampleCount()))
		}
	}
	return b.String()
}

func hasLabels(s *dto.Metric, want map[string]string) bool {
	n := 0
	for _, l := range s.GetLabel() {
		if v, ok := want[l.GetName()]; ok {
			if v != l.GetValue() {
				return false
			}
			n++
		}
	}
	return n == len(want)
}

// parseSeries splits `name{a="x",b="y"}` into its name and labels.
func parseSeries(t testing.TB, series string) (string, map[string]string) {
	t.Helper()
	name, rest, found := strings.Cut(series, "{")
	labels := map[string]string{}
	if !found {
		return name, labels
	}
	rest, ok := strings.CutSuffix(rest, "}")
	for ok && rest != "" {
		var key string
		key, rest, ok = strings.Cut(rest, "=")
		if !ok {
			break
		}
		quoted, err := strconv.QuotedPrefix(rest)
		if err != nil {
			ok = false
			break
		}
		labels[key], _ = strconv.Unquote(quoted)
		rest = strings.TrimPrefix(rest[len(quoted):], ",")
	}
	if !ok {
		t.Fatalf("series %q: want name{label=\"value\",…}", series)
	}
	return name, labels
}
