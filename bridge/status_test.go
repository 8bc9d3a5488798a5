package bridge

import (
	"errors"
	"testing"

	"github.com/exlive2mqtt/exlive2mqtt/exlive"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
)

// TestStatusCountersAreMetrics: every total of the status page is read
// from the collector of the metric it names, so it is the value the
// registry serves under that name, and a renamed metric fails here rather
// than show 0 on the page.
func TestStatusCountersAreMetrics(t *testing.T) {
	b := benchBridge(t, "tcp://127.0.0.1:1")
	// Something in every counter the bridge owns; the MQTT client's stay 0
	// (it is never started) but are read all the same.
	b.feed.message(&exlive.Position{ID: "V1", Lat: 31.2, Lng: 121.4})
	b.feed.message(&exlive.Position{ID: "V2", Lat: 31.2, Lng: 121.4})
	b.feed.skip(&exlive.FrameError{Reason: exlive.ReasonJunk})
	b.feed.setState(exlive.State{State: exlive.StateDisconnected, Err: errors.New("gone")})
	b.metrics.requests.WithLabelValues("1004", outcomeOK).Inc()
	b.metrics.requests.WithLabelValues("1003", outcomeSent).Add(2)

	if got := testutil.ToFloat64(b.metrics.received); got != 2 {
		t.Errorf("positions received = %v, want 2", got)
	}
	families, err := b.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	gathered := map[string]*dto.MetricFamily{}
	for _, f := range families {
		gathered[f.GetName()] = f
	}
	want := map[string]float64{
		"exlive_positions_received_total": 2, "bridge_positions_published_total": 2,
		"exlive_frames_skipped_total": 1, "bridge_requests_total": 3, "exlive_disconnects_total": 1,
	}
	for _, c := range b.Status().Counters {
		f := gathered[c.Name]
		if f == nil {
			t.Errorf("status counter %s is no metric of the registry", c.Name)
			continue
		}
		sum := 0.0
		for _, m := range f.GetMetric() {
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
		if c.Value != sum {
			t.Errorf("status counter %s = %v, the registry says %v", c.Name, c.Value, sum)
		}
		if w, ok := want[c.Name]; ok && c.Value != w {
			t.Errorf("status counter %s = %v, want %v", c.Name, c.Value, w)
		}
		delete(want, c.Name)
	}
	if len(want) > 0 {
		t.Errorf("the status page lacks %v", want)
	}
}

// TestMetricsLint: every metric follows Prometheus' naming and help
// conventions (promlint, as promtool check metrics runs it).
func TestMetricsLint(t *testing.T) {
	b := benchBridge(t, "tcp://127.0.0.1:1")
	problems, err := testutil.GatherAndLint(b.Gatherer())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", p.Metric, p.Text)
	}
}
