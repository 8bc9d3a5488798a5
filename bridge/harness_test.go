package bridge_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/exlive2mqtt/exlive2mqtt/bridge"
	"github.com/exlive2mqtt/exlive2mqtt/exlive"
	"github.com/exlive2mqtt/exlive2mqtt/exlive/exlivesim"
	"github.com/exlive2mqtt/exlive2mqtt/internal/brokertest"
	"github.com/exlive2mqtt/exlive2mqtt/mqtt"
	dto "github.com/prometheus/client_model/go"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fixture is a bridge running between a simulated platform and a real
// broker, with a subscriber on everything under its prefix.
type fixture struct {
	t      *testing.T
	sim    *exlivesim.Server
	url    string // the broker
	prefix string
	opts   bridge.Options
	bridge *bridge.Bridge
	sub    *brokertest.Subscriber
	logs   *syncBuffer

	cancel context.CancelFunc
	done   chan error
}

// setup is what a test changes in a fixture before it starts.
type setup struct {
	sim  exlivesim.Config
	edit func(*bridge.Options)
	// noStart leaves the bridge unstarted (call f.start).
	noStart bool
}

// newFixture builds the fixture and starts the bridge. Settings are the
// defaults, with fast retries and a short inventory quiet period.
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

	f := &fixture{t: t, sim: sim, url: target.URL, prefix: brokertest.Prefix(t), logs: &syncBuffer{}}
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
		Version:   "test",
		Log:       zerolog.New(f.logs).Level(zerolog.DebugLevel),
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
	f.sub = brokertest.Subscribe(t, target.URL, f.prefix+"/#")
	if !s.noStart {
		f.start()
	}
	return f
}

// start runs the bridge until the test ends (or stop).
func (f *fixture) start() {
	f.t.Helper()
	b, err := bridge.New(f.opts)
	if err != nil {
		f.t.Fatal(err)
	}
	f.bridge = b
	ctx, cancel := context.WithCancel(context.Background())
	f.cancel = cancel
	f.done = make(chan error, 1)
	go func() { f.done <- b.Run(ctx, 5*time.Second) }()
	f.t.Cleanup(f.stop)
}

// stop shuts the bridge down and waits for it; it can be called twice.
func (f *fixture) stop() {
	if f.cancel == nil {
		return
	}
	f.cancel()
	f.cancel = nil
	select {
	case err := <-f.done:
		if err != nil {
			f.t.Errorf("Run = %v", err)
		}
	case <-time.After(15 * time.Second):
		f.t.Error("bridge did not stop")
	}
}

// topic returns P/rest.
func (f *fixture) topic(rest string) string { return f.prefix + "/" + rest }

// waitLoggedIn waits for the retained session state logged_in.
func (f *fixture) waitLoggedIn() {
	f.t.Helper()
	f.sub.Wait(10*time.Second, "session logged_in", func(ms []brokertest.Msg) bool {
		m, ok := last(ms, f.topic("bridge/session"))
		return ok && strings.Contains(m.Payload, `"state":"logged_in"`)
	})
}

// request publishes payload on P/rest/set and returns the next message on
// P/rest/result.
func (f *fixture) request(rest string, payload string) map[string]any {
	f.t.Helper()
	before := len(f.sub.Messages())
	f.sub.Publish(f.topic(rest+"/set"), []byte(payload), false)
	resultTopic := f.topic(rest + "/result")
	msgs := f.sub.Wait(10*time.Second, "a result on "+resultTopic, func(ms []brokertest.Msg) bool {
		for _, m := range ms[before:] {
			if m.Topic == resultTopic {
				return true
			}
		}
		return false
	})
	for _, m := range msgs[before:] {
		if m.Topic == resultTopic {
			return decode(f.t, m.Payload)
		}
	}
	return nil
}

func decode(t *testing.T, payload string) map[string]any {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal([]byte(payload), &v); err != nil {
		t.Fatalf("payload %q is not a JSON object: %v", payload, err)
	}
	return v
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

// syncBuffer collects log output from several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
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
		var key, quoted string
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
