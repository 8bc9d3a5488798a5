package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/exlive2mqtt/exlive2mqtt/exlive/exlivesim"
	"github.com/exlive2mqtt/exlive2mqtt/internal/brokertest"
	"github.com/exlive2mqtt/exlive2mqtt/web"
)

// TestStatusPageAndMetrics runs the whole program against the simulated
// platform and the embedded broker and reads what it serves over HTTP, as
// a probe, Prometheus and the status page do: /readyz and /healthz, the
// counters of /metrics, and the same totals, links and vehicles on
// /api/status and /api/vehicles, which statusPage makes out of the
// bridge's state.
func TestStatusPageAndMetrics(t *testing.T) {
	sim := exlivesim.New(exlivesim.Config{Vehicles: 3, Rate: 0})
	if err := sim.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	brokerURL := brokertest.Embedded(t).URL()
	prefix := brokertest.Prefix(t)
	env := map[string]string{
		"EXLIVE_ADDR": sim.Addr(), "EXLIVE_USER": exlivesim.DefaultUser, "EXLIVE_PASS": exlivesim.DefaultPass,
		"EXLIVE_RETRY_MIN": "50ms", "EXLIVE_RETRY_MAX": "200ms", "EXLIVE_INVENTORY_QUIET": "50ms",
		"MQTT_URL": brokerURL, "MQTT_TOPIC_PREFIX": prefix, "MQTT_CLIENT_ID": brokertest.ClientID(t),
		"HTTP_ADDR": "127.0.0.1:0", "LOG_LEVEL": "info",
	}
	logs := newMTWriter()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, nil, mtEnviron(env), io.Discard, logs) }()
	defer func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("run = %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Fatal("run did not return")
		}
	}()
	base := "http://" + logs.wait(t, 0, mtListening)
	client := &http.Client{Timeout: 5 * time.Second}
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := client.Get(base + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		return resp.StatusCode, string(b)
	}
	// waitFor polls path until ok holds for its answer: what a probe or a
	// scraper does, since HTTP has no event to wait on.
	waitFor := func(path, what string, ok func(code int, body string) bool) string {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			code, body := get(path)
			if ok(code, body) {
				return body
			}
			if time.Now().After(deadline) {
				t.Fatalf("GET %s: waited for %s; last answer %d %s", path, what, code, body)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	waitFor("/readyz", "ready", func(code int, body string) bool {
		return code == http.StatusOK && strings.Contains(body, `"ready":true`)
	})
	if code, body := get("/healthz"); code != http.StatusOK {
		t.Errorf("/healthz = %d %s", code, body)
	}
	// The inventory is in once the vehicles are: V1..V3 without positions.
	waitFor("/api/status", "3 vehicles", func(code int, body string) bool {
		var st web.Status
		return code == http.StatusOK && json.Unmarshal([]byte(body), &st) == nil && st.Vehicles == 3
	})

	const n = 7
	for i := range n {
		sim.SendRaw([]byte(fmt.Sprintf(`{"header":{"cmd":"1007"},"body":{"id":"V%d","lat":"31.2%d","lng":"121.4%d","veo":"%d"}}`+"\r\n", i%2+1, i, i, 10+i)))
	}
	scrape := func(body string) map[string]float64 {
		series := map[string]float64{}
		sc := bufio.NewScanner(strings.NewReader(body))
		for sc.Scan() {
			line := sc.Text()
			if line == "" || line[0] == '#' {
				continue
			}
			i := strings.LastIndexByte(line, ' ')
			if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
				series[line[:i]] = v
			}
		}
		return series
	}
	scraped := waitFor("/metrics", fmt.Sprintf("%d positions published", n), func(code int, body string) bool {
		return code == http.StatusOK && scrape(body)["bridge_positions_published_total"] == n
	})
	metrics := scrape(scraped)
	defer func() {
		if t.Failed() {
			t.Logf("/metrics:\n%s", scraped)
		}
	}()
	for series, want := range map[string]float64{
		"exlive_positions_received_total":          n,
		`exlive_frames_received_total{cmd="1007"}`: n,
		`exlive_session_state{state="logged_in"}`:  1,
		"mqtt_connected":                           1,
	} {
		if got, ok := metrics[series]; !ok || got != want {
			t.Errorf("/metrics %s = %v (%v), want %v", series, got, ok, want)
		}
	}

	_, body := get("/api/status")
	var st web.Status
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatalf("/api/status %s: %v", body, err)
	}
	if st.Session.State != "logged_in" || st.Session.Addr != sim.Addr() || st.Broker.State != "connected" ||
		st.Broker.Addr != brokerURL || st.Vehicles != 3 || st.Session.Since.IsZero() || st.Version == "" {
		t.Errorf("/api/status = %+v", st)
	}
	counters := map[string]float64{}
	for _, c := range st.Counters {
		if c.Help == "" {
			t.Errorf("counter %s has no help", c.Name)
		}
		counters[c.Name] = c.Value
	}
	for _, name := range []string{"exlive_positions_received_total", "bridge_positions_published_total"} {
		if counters[name] != n || counters[name] != metrics[name] {
			t.Errorf("/api/status %s = %v, /metrics %v, want %d", name, counters[name], metrics[name], n)
		}
	}
	if len(counters) != 10 {
		t.Errorf("/api/status has %d counters, want 10: %v", len(counters), counters)
	}

	_, body = get("/api/vehicles")
	var vs []web.Vehicle
	if err := json.Unmarshal([]byte(body), &vs); err != nil {
		t.Fatalf("/api/vehicles %s: %v", body, err)
	}
	if len(vs) != 3 {
		t.Fatalf("/api/vehicles = %s, want 3 vehicles", body)
	}
	for i, v := range vs {
		id := fmt.Sprintf("V%d", i+1)
		if v.ID != id || v.Topic != prefix+"/vehicles/"+id+"/position" || v.Code == "" {
			t.Errorf("vehicle %d = %+v, want %s with its topic and code", i, v, id)
		}
		// V1 and V2 have positions, with a speed and no direction; V3 has
		// none, so nothing of a fix.
		hasFix := v.Lat != nil && v.Lng != nil && v.Speed != nil
		if hasFix != (id != "V3") || v.Direction != nil || v.Time != nil || v.Valid != nil || v.Alarm != nil {
			t.Errorf("vehicle %s = %+v", id, v)
		}
	}
	if vs[1].Lat == nil || *vs[1].Lat != 31.25 || *vs[1].Speed != 15 {
		t.Errorf("V2's last fix = %+v, want the 6th position (31.25, speed 15)", vs[1])
	}
}
