package bridge_test

// Helpers of the contract tests (contract_test.go, requests_test.go,
// shutdown_test.go): a fixture whose log can be waited on, snapshots of what
// a broker retains, and readers of what the simulated platform received.

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
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/exlive2mqtt/exlive2mqtt/bridge"
	"github.com/exlive2mqtt/exlive2mqtt/exlive"
	"github.com/exlive2mqtt/exlive2mqtt/exlive/exlivesim"
	"github.com/exlive2mqtt/exlive2mqtt/internal/brokertest"
	"github.com/rs/zerolog"
)

// ctWait bounds every wait of the contract tests. Conditions are waited
// for, never slept on: this only decides how long a broken bridge takes to
// fail a test.
const ctWait = 10 * time.Second

// ctFixture is a fixture whose log is watched. Every request ends in exactly
// one audit line, so a test waits for the line instead of sleeping, and can
// count answers after it.
type ctFixture struct {
	*fixture
	log *ctLog
	n   int // barriers sent
}

// newCT builds and (unless s.noStart) starts a fixture that logs to a
// ctLog at debug level.
func newCT(t *testing.T, target brokertest.Target, s setup) *ctFixture {
	t.Helper()
	lw := newCTLog()
	edit := s.edit
	s.edit = func(o *bridge.Options) {
		o.Log = zerolog.New(lw).Level(zerolog.DebugLevel)
		if edit != nil {
			edit(o)
		}
	}
	f := &ctFixture{fixture: newFixture(t, target, s), log: lw}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("bridge log (without positions):\n%s", lw.brief())
		}
		if target.Name == "external" {
			// A shared broker keeps what the test retained forever.
			f.stop()
			for topic := range ctRetained(t, target.URL, f.prefix+"/#") {
				f.sub.Publish(topic, nil, true)
			}
		}
	})
	return f
}

// ready waits until the session is logged in and the inventory is
// published, so that requests to the fleet's vehicles can be carried out.
func (f *ctFixture) ready() {
	f.t.Helper()
	f.waitLoggedIn()
	f.sub.WaitTopic(ctWait, f.topic("bridge/vehicles"))
}

// set publishes payload on P/rest/set.
func (f *ctFixture) set(rest, payload string) {
	f.t.Helper()
	f.sub.Publish(f.topic(rest+"/set"), []byte(payload), false)
}

// ask publishes payload on P/rest/set and returns the first result on
// P/rest/result that carries request_id id ("" for none) and came after
// it. A request the bridge answers with nothing fails the test.
func (f *ctFixture) ask(rest, id, payload string) map[string]any {
	f.t.Helper()
	before := len(f.sub.Messages())
	f.set(rest, payload)
	return f.resultAfter(before, rest, id)
}

// resultAfter waits for a result on P/rest/result with request_id id among
// the messages received after the first before.
func (f *ctFixture) resultAfter(before int, rest, id string) map[string]any {
	f.t.Helper()
	topic := f.topic(rest + "/result")
	var found map[string]any
	f.sub.Wait(ctWait, "a result for "+id+" on "+topic, func(ms []brokertest.Msg) bool {
		for _, m := range ms[before:] {
			if m.Topic != topic {
				continue
			}
			var r map[string]any
			if json.Unmarshal([]byte(m.Payload), &r) == nil && ctStr(r["request_id"]) == id {
				found = r
				return true
			}
		}
		return false
	})
	return found
}

// results returns every result on P/rest/result with request_id id.
func (f *ctFixture) results(rest, id string) []map[string]any {
	f.t.Helper()
	var out []map[string]any
	for _, m := range f.sub.Messages() {
		if m.Topic != f.topic(rest+"/result") {
			continue
		}
		r := decode(f.t, m.Payload)
		if ctStr(r["request_id"]) == id {
			out = append(out, r)
		}
	}
	return out
}

// settle sends a request the bridge refuses at once (a message without
// msg) and waits for its answer. The bridge carries requests out one at a
// time and publishes in order, so once its answer is in, every answer to a
// request whose audit line came before it is in too.
func (f *ctFixture) settle() {
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
func (f *ctFixture) waitAudit(cmd, id string) []ctAudit {
	f.t.Helper()
	var got []ctAudit
	f.log.wait(f.t, "the audit line of request "+id, func(as []ctAudit) bool {
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

// ctAudit is one audit line of the bridge: what became of a request.
type ctAudit struct {
	Cmd, Vehicle, Level, RequestID, Outcome, Result, Error string
}

// ctLog collects the bridge's JSON log lines and wakes waiters on each.
type ctLog struct {
	mu      sync.Mutex
	raw     bytes.Buffer
	audits  []ctAudit
	changed chan struct{}
}

func newCTLog() *ctLog { return &ctLog{changed: make(chan struct{})} }

func (l *ctLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.raw.Write(p)
	for _, line := range bytes.Split(bytes.TrimSpace(p), []byte("\n")) {
		var e map[string]any
		if json.Unmarshal(line, &e) != nil || e["component"] != "audit" {
			continue
		}
		l.audits = append(l.audits, ctAudit{
			Cmd: ctStr(e["cmd"]), Vehicle: ctStr(e["vehicle"]), Level: ctStr(e["topic_level"]),
			RequestID: ctStr(e["request_id"]), Outcome: ctStr(e["outcome"]),
			Result: ctStr(e["result"]), Error: ctStr(e["error"]),
		})
	}
	close(l.changed)
	l.changed = make(chan struct{})
	return len(p), nil
}

func (l *ctLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.raw.String()
}

// brief returns the log without the lines of each position, at most its
// last 200 lines.
func (l *ctLog) brief() string {
	var keep []string
	for _, line := range strings.Split(l.String(), "\n") {
		if !strings.Contains(line, `"position published"`) && !strings.Contains(line, `"cmd":"1007","bytes"`) {
			keep = append(keep, line)
		}
	}
	return strings.Join(keep[max(0, len(keep)-200):], "\n")
}

// wait waits until cond holds for the audit lines so far.
func (l *ctLog) wait(t *testing.T, what string, cond func([]ctAudit) bool) {
	t.Helper()
	deadline := time.NewTimer(ctWait)
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
func (l *ctLog) waitText(t *testing.T, s string) {
	t.Helper()
	if !l.await(s) {
		t.Fatalf("timed out waiting for %q in the log", s)
	}
}

// await waits until the log holds s, at most ctWait, and reports whether
// it does. Unlike waitText it can be called from any goroutine.
func (l *ctLog) await(s string) bool {
	deadline := time.NewTimer(ctWait)
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

// ctRetained returns what the broker at url retains under filter, by
// topic. A fresh client subscribes to filter and then to a sentinel topic
// retained just for this: brokers send a subscription's retained messages
// right after acknowledging it, so once the sentinel is in, everything
// retained under filter is in. Both subscriptions are QoS 0: the embedded
// broker (mochi v2.7.9) shares one packet id space between the QoS 1
// messages it sends and the client's SUBSCRIBE, and refuses a subscription
// whose id one of its retained messages still holds.
func ctRetained(t *testing.T, url, filter string) map[string]brokertest.Msg {
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
	if tok := c.Connect(); !tok.WaitTimeout(ctWait) || tok.Error() != nil {
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
		if !tok.WaitTimeout(ctWait) || tok.Error() != nil {
			t.Fatalf("subscribe %s: %v", f, tok.Error())
		}
	}
	select {
	case <-done:
	case <-time.After(ctWait):
		t.Fatalf("the retained sentinel %s did not come", sentinel)
	}
	mu.Lock()
	defer mu.Unlock()
	return maps.Clone(out)
}

// ctReceived returns the messages of type T the platform received, oldest
// first.
func ctReceived[T exlive.Message](sim *exlivesim.Server) []T {
	var out []T
	for _, r := range sim.Received() {
		if m, ok := r.Msg.(T); ok {
			out = append(out, m)
		}
	}
	return out
}

// ctWaitSim waits until the platform has received what cond wants.
func ctWaitSim(t *testing.T, sim *exlivesim.Server, what string, cond func([]exlivesim.Received) bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), ctWait)
	defer cancel()
	if err := sim.WaitFor(ctx, cond); err != nil {
		t.Fatalf("platform: waiting for %s: %v", what, err)
	}
}

// ctRawPosition is a 1007 frame as the platform writes it: every value a
// string. Keys not in body are sent as "".
func ctRawPosition(body map[string]string) []byte {
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

// ctAfter returns the messages on topic among ms[from:].
func ctAfter(ms []brokertest.Msg, from int, topic string) []brokertest.Msg {
	var out []brokertest.Msg
	for _, m := range ms[min(from, len(ms)):] {
		if m.Topic == topic {
			out = append(out, m)
		}
	}
	return out
}

// ctWaitPayload waits for a message on topic with payload want among those
// received after the first from, and returns its index.
func ctWaitPayload(t *testing.T, sub *brokertest.Subscriber, from int, topic, want string) int {
	t.Helper()
	idx := -1
	sub.Wait(ctWait, fmt.Sprintf("%s = %q", topic, want), func(ms []brokertest.Msg) bool {
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

// str returns v as a string when it is one.
func ctStr(v any) string {
	s, _ := v.(string)
	return s
}

// ctBuild builds the command pkg into the test's temporary directory, with
// the race detector when this test binary has it, and returns its path.
func ctBuild(t *testing.T, pkg string) string {
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
