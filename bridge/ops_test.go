package bridge_test

// Operations, seen from the bridge: readiness follows both links, and the
// metrics count what the bridge does, on a real bridge between the
// simulated platform and a real broker. The metrics are read from the
// bridge's registry; cmd/exlive2mqtt's tests read them, and readiness,
// over HTTP as the program serves them.

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/exlive2mqtt/exlive2mqtt/bridge"
	"github.com/exlive2mqtt/exlive2mqtt/exlive/exlivesim"
	"github.com/exlive2mqtt/exlive2mqtt/internal/brokertest"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"
)

// opsWaitReady polls Ready, which /readyz answers with, until it reports
// ready with a reason that cond accepts, and returns that reason. Readiness
// has no event to wait on from outside; polling it is what a probe does.
func opsWaitReady(t *testing.T, b *bridge.Bridge, ready bool, what string, cond func(reason string) bool) string {
	t.Helper()
	deadline := time.Now().Add(testWait)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, reason := b.Ready()
		if ok == ready && cond(reason) {
			return reason
		}
		if time.Now().After(deadline) {
			t.Fatalf("Ready: waited %v for %v (%s); last answer %v %q", testWait, ready, what, ok, reason)
		}
		<-tick.C
	}
}

func TestReadyFollowsBothLinks(t *testing.T) {
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

	opsWaitReady(t, f.bridge, true, "both links up", ok)

	mqProxy.SetDown(true)
	r := opsWaitReady(t, f.bridge, false, "the MQTT link named", mqttDown)
	t.Logf("MQTT down: %q", r)
	mqProxy.SetDown(false)
	opsWaitReady(t, f.bridge, true, "the MQTT link back", ok)

	exProxy.SetDown(true)
	r = opsWaitReady(t, f.bridge, false, "the EXLIVE link named", exliveDown)
	t.Logf("EXLIVE down: %q", r)

	mqProxy.SetDown(true)
	r = opsWaitReady(t, f.bridge, false, "both links named", bothDown)
	t.Logf("both down: %q", r)

	mqProxy.SetDown(false)
	opsWaitReady(t, f.bridge, false, "only the EXLIVE link named", exliveDown)
	exProxy.SetDown(false)
	opsWaitReady(t, f.bridge, true, "both links back", ok)
}

// A platform that refuses the login leaves the bridge not ready, with the
// reason, and the gauge and counter say so.
func TestReadyAndMetricsAfterRejectedLogin(t *testing.T) {
	target := brokertest.Target{Name: "embedded", URL: brokertest.Embedded(t).URL()}
	f := newFixture(t, target, setup{edit: func(o *bridge.Options) {
		o.Exlive.Pass = "not-the-password"
		// After a refusal the session waits RetryMax: long enough that
		// exactly one refusal is counted while the test looks.
		o.Exlive.RetryMax = time.Minute
	}})

	r := opsWaitReady(t, f.bridge, false, "login_failed", func(reason string) bool {
		return reason == "EXLIVE session login_failed"
	})
	t.Logf("reason: %q", r)
	// The state is set before it is counted: wait for the count.
	m := opsWaitMetric(t, f.bridge, `exlive_login_failures_total`, 1)
	m.want(t, `exlive_logins_total`, 0)
	m.want(t, `exlive_session_state{state="login_failed"}`, 1)
	m.want(t, `exlive_session_state{state="logged_in"}`, 0)
	if _, refused := f.sim.Logins(); refused != 1 {
		t.Errorf("platform refused %d logins, want 1", refused)
	}
	text, err := testutil.GatherAndFormat(f.bridge.Gatherer(), expfmt.TypeTextPlain)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(text), "not-the-password") {
		t.Error("the password is in the metrics")
	}
}

func TestMetricsCountWhatTheBridgeDoes(t *testing.T) {
	target := brokertest.Target{Name: "embedded", URL: brokertest.Embedded(t).URL()}
	// No positions of its own: the test sends exactly the ones it counts.
	f := newFixture(t, target, setup{sim: exlivesim.Config{Vehicles: 3, Rate: 0}})
	f.waitLoggedIn()
	f.sub.WaitTopic(testWait, f.topic("bridge/vehicles"))

	m := gather(t, f.bridge)
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
	m = opsWaitMetric(t, f.bridge, `bridge_positions_published_total`, n)
	m.want(t, `exlive_positions_received_total`, n)
	m.want(t, `exlive_frames_received_total{cmd="1007"}`, n)
	if age := m.value(t, `exlive_newest_position_age_seconds`); age < 0 || age > 60 {
		t.Errorf("exlive_newest_position_age_seconds = %v, want a few seconds at most", age)
	}
	f.sub.Wait(testWait, "the positions on MQTT", func(ms []brokertest.Msg) bool {
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
	m = opsWaitMetric(t, f.bridge, `exlive_positions_received_total`, n+1)
	m.want(t, `exlive_frames_skipped_total{reason="junk"}`, 1)
	m.want(t, `exlive_frames_skipped_total{reason="invalid_json"}`, 0)
	m.want(t, `bridge_requests_total{cmd="1004",outcome="ok"}`, 1)
	m.want(t, `bridge_requests_total{cmd="1004",outcome="rejected"}`, 1)
	m.want(t, `bridge_requests_total{cmd="1004",outcome="refused"}`, 1)
	// Latency is observed for answered requests only.
	m.want(t, `bridge_request_duration_seconds_count{cmd="1004"}`, 2)
	if sum := m.value(t, `bridge_request_duration_seconds_sum{cmd="1004"}`); sum <= 0 || sum > 2*testWait.Seconds() {
		t.Errorf("bridge_request_duration_seconds_sum = %v", sum)
	}
	m.want(t, `bridge_request_duration_seconds_bucket{cmd="1004",le="+Inf"}`, 2)
	// Answers to requests are the session's own, not frames handed on.
	m.want(t, `exlive_frames_received_total{cmd="1007"}`, n+1)
	m.want(t, `exlive_pending_requests`, 0)
	m.want(t, `bridge_request_queue_depth`, 0)

	// The status page shows the same totals.
	st := f.bridge.Status()
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
	opsWaitMetricFunc(t, f.bridge, `exlive_disconnects_total`, ">= 1", func(v float64) bool { return v >= 1 })
	m = opsWaitMetric(t, f.bridge, `exlive_session_state{state="logged_in"}`, 0)
	if m.value(t, `exlive_session_state{state="connecting"}`)+m.value(t, `exlive_session_state{state="disconnected"}`) != 1 {
		t.Errorf("session state gauge is not connecting or disconnected:\n%s", m.grep("exlive_session_state"))
	}
}

// opsWaitMetric gathers until series has the value want, then returns a
// new gathering. One gathering is no snapshot: the registry collects its
// metrics one after another while the bridge goes on counting, so it can
// show the last of a burst in one counter and miss it in another. Counters
// only grow, so a gathering begun after the condition held shows
// everything counted before it.
func opsWaitMetric(t *testing.T, b *bridge.Bridge, series string, want float64) metrics {
	t.Helper()
	return opsWaitMetricFunc(t, b, series, fmt.Sprint("= ", want), func(v float64) bool { return v == want })
}

func opsWaitMetricFunc(t *testing.T, b *bridge.Bridge, series, what string, cond func(float64) bool) metrics {
	t.Helper()
	deadline := time.Now().Add(testWait)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		m := gather(t, b)
		if got, ok := m.get(t, series); ok && cond(got) {
			return gather(t, b)
		}
		if time.Now().After(deadline) {
			name, _, _ := strings.Cut(series, "{")
			t.Fatalf("waited %v for %s %s; last gathered:\n%s", testWait, series, what, m.grep(name))
		}
		<-tick.C
	}
}
