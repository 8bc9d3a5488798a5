package bridge_test

// Operations, seen from the bridge: /readyz follows both links, and
// /metrics counts what the bridge does, on a real bridge between the
// simulated platform and a real broker, served by the web package as
// exlive2mqtt serves it.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/exlive2mqtt/exlive2mqtt/bridge"
	"github.com/exlive2mqtt/exlive2mqtt/exlive/exlivesim"
	"github.com/exlive2mqtt/exlive2mqtt/internal/brokertest"
	"github.com/exlive2mqtt/exlive2mqtt/web"
	"github.com/rs/zerolog"
)

const opsWait = 10 * time.Second

// opsServe serves f's bridge as exlive2mqtt does (web.New with the bridge
// as Source and its metrics) and returns the base URL and a client.
func opsServe(t *testing.T, f *fixture) (string, *http.Client) {
	t.Helper()
	ts := httptest.NewServer(web.New(web.Config{}, f.bridge, f.bridge.Metrics(), zerolog.Nop()).Handler())
	t.Cleanup(ts.Close)
	return ts.URL, ts.Client()
}

// opsGet returns the status and body of GET base+path.
func opsGet(t *testing.T, c *http.Client, url string) (int, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp.StatusCode, string(b)
}

type opsReadiness struct {
	Ready  bool   `json:"ready"`
	Reason string `json:"reason"`
}

// opsWaitReady polls /readyz until it answers code with a reason that cond
// accepts, and returns that answer. Readiness has no event to wait on from
// outside; polling the endpoint is what a probe does.
func opsWaitReady(t *testing.T, c *http.Client, base string, code int, what string, cond func(reason string) bool) opsReadiness {
	t.Helper()
	deadline := time.Now().Add(opsWait)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	var lastCode int
	var lastBody string
	for {
		lastCode, lastBody = opsGet(t, c, base+"/readyz")
		var r opsReadiness
		if err := json.Unmarshal([]byte(lastBody), &r); err != nil {
			t.Fatalf("/readyz body %q is not JSON: %v", lastBody, err)
		}
		if lastCode == code && r.Ready == (code == http.StatusOK) && cond(r.Reason) {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz: waited %v for %d (%s); last answer %d %s", opsWait, code, what, lastCode, lastBody)
		}
		<-tick.C
	}
}

func TestReadyzFollowsBothLinks(t *testing.T) {
	target := brokertest.Target{Name: "embedded", URL: brokertest.Embedded(t).URL()}
	var mqProxy, exProxy *brokertest.Proxy
	f := newFixture(t, target, setup{edit: func(o *bridge.Options) {
		// Both links go through proxies that can cut them without
		// stopping the broker or the platform.
		exProxy = brokertest.NewProxy(t, o.Exlive.Addr)
		o.Exlive.Addr = exProxy.Addr()
		mqProxy = brokertest.NewProxy(t, strings.TrimPrefix(o.MQTT.URL, "tcp://"))
		o.MQTT.URL = mqProxy.URL()
	}})
	base, c := opsServe(t, f)

	ok := func(reason string) bool { return reason == "" }
	mqttDown := func(reason string) bool {
		return strings.Contains(reason, "MQTT") && !strings.Contains(reason, "EXLIVE")
	}
	exliveDown := func(reason string) bool {
		return strings.HasPrefix(reason, "EXLIVE session ") && !strings.Contains(reason, "logged_in") && !strings.Contains(reason, "MQTT")
	}
	bothDown := func(reason string) bool {
		return strings.Contains(reason, "MQTT") && strings.Contains(reason, "EXLIVE session ") && !strings.Contains(reason, "logged_in")
	}

	opsWaitReady(t, c, base, http.StatusOK, "both links up", ok)
	if code, body := opsGet(t, c, base+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz = %d %s", code, body)
	}

	mqProxy.SetDown(true)
	r := opsWaitReady(t, c, base, http.StatusServiceUnavailable, "the MQTT link named", mqttDown)
	t.Logf("MQTT down: %q", r.Reason)
	// Liveness is not readiness: the process is fine.
	if code, _ := opsGet(t, c, base+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz = %d while the broker is away, want 200", code)
	}
	mqProxy.SetDown(false)
	opsWaitReady(t, c, base, http.StatusOK, "the MQTT link back", ok)

	exProxy.SetDown(true)
	r = opsWaitReady(t, c, base, http.StatusServiceUnavailable, "the EXLIVE link named", exliveDown)
	t.Logf("EXLIVE down: %q", r.Reason)

	mqProxy.SetDown(true)
	r = opsWaitReady(t, c, base, http.StatusServiceUnavailable, "both links named", bothDown)
	t.Logf("both down: %q", r.Reason)

	mqProxy.SetDown(false)
	opsWaitReady(t, c, base, http.StatusServiceUnavailable, "only the EXLIVE link named", exliveDown)
	exProxy.SetDown(false)
	opsWaitReady(t, c, base, http.StatusOK, "both links back", ok)
}

// A platform that refuses the login leaves the bridge not ready, with the
// reason, and the gauge and counter say so.
func TestReadyzAndMetricsAfterRejectedLogin(t *testing.T) {
	target := brokertest.Target{Name: "embedded", URL: brokertest.Embedded(t).URL()}
	f := newFixture(t, target, setup{edit: func(o *bridge.Options) {
		o.Exlive.Pass = "not-the-password"
		// After a refusal the session waits RetryMax: long enough that
		// exactly one refusal is counted while the test looks.
		o.Exlive.RetryMax = time.Minute
	}})
	base, c := opsServe(t, f)

	r := opsWaitReady(t, c, base, http.StatusServiceUnavailable, "login_failed", func(reason string) bool {
		return reason == "EXLIVE session login_failed"
	})
	t.Logf("reason: %q", r.Reason)
	// The state is set before it is counted: wait for the count.
	m := opsWaitMetric(t, c, base, `exlive_login_failures_total`, 1)
	m.want(t, `exlive_logins_total`, 0)
	m.want(t, `exlive_session_state{state="login_failed"}`, 1)
	m.want(t, `exlive_session_state{state="logged_in"}`, 0)
	if _, refused := f.sim.Logins(); refused != 1 {
		t.Errorf("platform refused %d logins, want 1", refused)
	}
	if strings.Contains(m.text, "not-the-password") {
		t.Error("the password is in /metrics")
	}
}

func TestMetricsCountWhatTheBridgeDoes(t *testing.T) {
	target := brokertest.Target{Name: "embedded", URL: brokertest.Embedded(t).URL()}
	// No positions of its own: the test sends exactly the ones it counts.
	f := newFixture(t, target, setup{sim: exlivesim.Config{Vehicles: 3, Rate: 0}})
	base, c := opsServe(t, f)
	f.waitLoggedIn()
	f.sub.WaitTopic(opsWait, f.topic("bridge/vehicles"))

	m := opsScrape(t, c, base)
	m.want(t, `exlive_session_state{state="logged_in"}`, 1)
	m.want(t, `exlive_session_state{state="connecting"}`, 0)
	m.want(t, `exlive_session_state{state="disconnected"}`, 0)
	m.want(t, `exlive_session_state{state="login_failed"}`, 0)
	m.want(t, `exlive_logins_total`, 1)
	m.want(t, `exlive_login_failures_total`, 0)
	m.want(t, `exlive_positions_received_total`, 0)
	m.want(t, `exlive_newest_position_age_seconds`, -1)
	m.want(t, `mqtt_connected`, 1)
	m.want(t, fmt.Sprintf(`exlive2mqtt_build_info{goversion=%q,version="test"}`, runtime.Version()), 1)

	// N positions.
	const n = 7
	for i := range n {
		f.sim.SendRaw([]byte(fmt.Sprintf(`{"header":{"cmd":"1007"},"body":{"id":"V%d","lat":"31.2%d","lng":"121.4%d","veo":"%d"}}`+"\r\n", i%3+1, i, i, 10+i)))
	}
	m = opsWaitMetric(t, c, base, `bridge_positions_published_total`, n)
	m.want(t, `exlive_positions_received_total`, n)
	m.want(t, `exlive_frames_received_total{cmd="1007"}`, n)
	if age := m.value(t, `exlive_newest_position_age_seconds`); age < 0 || age > 60 {
		t.Errorf("exlive_newest_position_age_seconds = %v, want a few seconds at most", age)
	}
	f.sub.Wait(opsWait, "the positions on MQTT", func(ms []brokertest.Msg) bool {
		got := 0
		for _, msg := range ms {
			if strings.HasSuffix(msg.Topic, "/position") {
				got++
			}
		}
		return got == n
	})

	// A command the platform carries out, and one it refuses.
	if r := f.request("vehicles/V1/command", `{"data":"STOP","request_id":"ops-1"}`); r["ok"] != true {
		t.Fatalf("command result = %v", r)
	}
	f.sim.SetAnswer("离线", 0, false)
	if r := f.request("vehicles/V2/command", `{"data":"STOP","request_id":"ops-2"}`); r["ok"] != false {
		t.Fatalf("refused command result = %v", r)
	}
	// And one for a vehicle the platform does not have: never sent.
	if r := f.request("vehicles/V404/command", `{"data":"STOP","request_id":"ops-3"}`); r["ok"] != false {
		t.Fatalf("unknown vehicle result = %v", r)
	}

	// A junk frame, skipped; the next good frame still counts.
	f.sim.SendRaw([]byte("GARBAGE!\r\n" + `{"header":{"cmd":"1007"},"body":{"id":"V1","lat":"31.3","lng":"121.5"}}` + "\r\n"))
	m = opsWaitMetric(t, c, base, `exlive_positions_received_total`, n+1)
	m.want(t, `exlive_frames_skipped_total{reason="junk"}`, 1)
	m.want(t, `exlive_frames_skipped_total{reason="invalid_json"}`, 0)
	m.want(t, `bridge_requests_total{cmd="1004",outcome="ok"}`, 1)
	m.want(t, `bridge_requests_total{cmd="1004",outcome="rejected"}`, 1)
	m.want(t, `bridge_requests_total{cmd="1004",outcome="refused"}`, 1)
	// Latency is observed for answered requests only.
	m.want(t, `bridge_request_duration_seconds_count{cmd="1004"}`, 2)
	if sum := m.value(t, `bridge_request_duration_seconds_sum{cmd="1004"}`); sum <= 0 || sum > 2*opsWait.Seconds() {
		t.Errorf("bridge_request_duration_seconds_sum = %v", sum)
	}
	m.want(t, `bridge_request_duration_seconds_bucket{cmd="1004",le="+Inf"}`, 2)
	// Answers to requests are the session's own, not frames handed on.
	m.want(t, `exlive_frames_received_total{cmd="1007"}`, n+1)
	m.want(t, `exlive_pending_requests`, 0)
	m.want(t, `bridge_request_queue_depth`, 0)

	// The status page shows the same totals.
	code, body := opsGet(t, c, base+"/api/status")
	if code != http.StatusOK {
		t.Fatalf("/api/status = %d %s", code, body)
	}
	var st web.Status
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatal(err)
	}
	for _, ctr := range st.Counters {
		switch ctr.Name {
		case "exlive_positions_received_total":
			if ctr.Value != n+1 {
				t.Errorf("status page: positions received = %v, want %d", ctr.Value, n+1)
			}
		case "exlive_frames_skipped_total":
			if ctr.Value != 1 {
				t.Errorf("status page: frames skipped = %v, want 1", ctr.Value)
			}
		case "bridge_requests_total":
			if ctr.Value != 3 {
				t.Errorf("status page: requests = %v, want 3", ctr.Value)
			}
		}
	}
	if st.Session.State != "logged_in" || st.Broker.State != "connected" || st.Version != "test" || st.Vehicles != 3 {
		t.Errorf("status = %+v", st)
	}

	// The platform goes away: the disconnect counter and the state gauge
	// follow.
	f.sim.Close()
	opsWaitMetricFunc(t, c, base, `exlive_disconnects_total`, ">= 1", func(v float64) bool { return v >= 1 })
	m = opsWaitMetric(t, c, base, `exlive_session_state{state="logged_in"}`, 0)
	if m.value(t, `exlive_session_state{state="connecting"}`)+m.value(t, `exlive_session_state{state="disconnected"}`) != 1 {
		t.Errorf("session state gauge is not connecting or disconnected:\n%s", m.grep("exlive_session_state"))
	}
}

// opsMetrics is one scrape of /metrics: series (name with its labels, as
// the text format writes them) to value.
type opsMetrics struct {
	text   string
	series map[string]float64
}

func opsScrape(t *testing.T, c *http.Client, base string) opsMetrics {
	t.Helper()
	code, body := opsGet(t, c, base+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics = %d %s", code, body)
	}
	m := opsMetrics{text: body, series: map[string]float64{}}
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			t.Fatalf("/metrics line %q", line)
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("/metrics line %q: %v", line, err)
		}
		m.series[line[:i]] = v
	}
	return m
}

// value returns the value of a series, failing if it is not there.
func (m opsMetrics) value(t *testing.T, series string) float64 {
	t.Helper()
	v, ok := m.series[series]
	if !ok {
		name, _, _ := strings.Cut(series, "{")
		t.Fatalf("/metrics has no %s; it has:\n%s", series, m.grep(name))
	}
	return v
}

func (m opsMetrics) want(t *testing.T, series string, want float64) {
	t.Helper()
	if got := m.value(t, series); got != want {
		t.Errorf("%s = %v, want %v", series, got, want)
	}
}

// grep returns the lines of the scrape about name.
func (m opsMetrics) grep(name string) string {
	var b strings.Builder
	for _, line := range strings.Split(m.text, "\n") {
		if strings.Contains(line, name) {
			b.WriteString(line + "\n")
		}
	}
	return b.String()
}

// opsWaitMetric scrapes until series has the value want, then returns a
// new scrape. One scrape is no snapshot: the registry collects its metrics
// one after another while the bridge goes on counting, so a scrape can
// show the last of a burst in one counter and miss it in another. Counters
// only grow, so a scrape begun after the condition held shows everything
// counted before it.
func opsWaitMetric(t *testing.T, c *http.Client, base, series string, want float64) opsMetrics {
	t.Helper()
	return opsWaitMetricFunc(t, c, base, series, fmt.Sprint("= ", want), func(v float64) bool { return v == want })
}

func opsWaitMetricFunc(t *testing.T, c *http.Client, base, series, what string, cond func(float64) bool) opsMetrics {
	t.Helper()
	deadline := time.Now().Add(opsWait)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		m := opsScrape(t, c, base)
		if got, ok := m.series[series]; ok && cond(got) {
			return opsScrape(t, c, base)
		}
		if time.Now().After(deadline) {
			name, _, _ := strings.Cut(series, "{")
			t.Fatalf("waited %v for %s %s; last scrape:\n%s", opsWait, series, what, m.grep(name))
		}
		<-tick.C
	}
}
