//go:build linux

package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/exlive2mqtt/exlive2mqtt/internal/brokertest"
)

// TestMain lets the test binary stand in for exlive-bench when run does
// what it does for real: start `exlive-bench publisher` as its own process.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "publisher" {
		if err := publisher(os.Args[2:], os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestPairsRoundTrip(t *testing.T) {
	want := []pair{{"a/b", []byte(`{"x":1}`)}, {"a/c", nil}, {"a/b", bytes.Repeat([]byte("é"), 300)}}
	path := filepath.Join(t.TempDir(), "pairs")
	if err := writePairs(path, want); err != nil {
		t.Fatal(err)
	}
	data, err := mapFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var got []pair
	n, err := eachPair(data, func(topic, payload []byte) { got = append(got, pair{string(topic), bytes.Clone(payload)}) })
	if err != nil || n != len(want) {
		t.Fatalf("eachPair = %d, %v", n, err)
	}
	for i := range want {
		if got[i].topic != want[i].topic || !bytes.Equal(got[i].payload, want[i].payload) {
			t.Errorf("pair %d = %q %q, want %q %q", i, got[i].topic, got[i].payload, want[i].topic, want[i].payload)
		}
	}
	if _, err := eachPair([]byte{5, 'a'}, func(_, _ []byte) {}); err == nil {
		t.Error("a truncated file was read without an error")
	}
}

func TestRSSTrend(t *testing.T) {
	var flat, growing []rssSample
	for i := range 120 {
		at := time.Duration(i) * 5 * time.Second
		flat = append(flat, rssSample{at, 20 << 10})
		growing = append(growing, rssSample{at, 20<<10 + int64(i)*1024/12}) // 1 MiB a minute
	}
	if warm, lo, hi, slope := rssTrend(flat); warm != time.Minute || lo != 20 || hi != 20 || slope != 0 {
		t.Errorf("flat: %s %v %v %v", warm, lo, hi, slope)
	}
	if _, _, _, slope := rssTrend(growing); slope < 0.99 || slope > 1.01 {
		t.Errorf("growing by 1 MiB a minute: slope %v", slope)
	}
}

// TestSubscriberCountsEveryMessage publishes a burst at QoS 0 past the
// subscriber: it counts each live position once, reads the send time in
// wstate, keeps the pairs, and ignores retained ones.
func TestSubscriberCountsEveryMessage(t *testing.T) {
	url := brokertest.Embedded(t).URL()
	prefix := brokertest.Prefix(t)
	pc := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID(brokertest.ClientID(t)))
	if tok := pc.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer pc.Disconnect(100)
	old := prefix + "/vehicles/OLD/position"
	if tok := pc.Publish(old, 1, true, []byte(`{"id":"OLD"}`)); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}

	s, err := newSubscriber(url, prefix, brokertest.ClientID(t))
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	const n = 5000
	ph := newPhase(n, true)
	s.start(ph)
	for i := range n {
		payload := fmt.Sprintf(`{"id":"V%d","wstate":"%d"}`, i%10, time.Now().UnixNano())
		pc.Publish(fmt.Sprintf("%s/vehicles/V%d/position", prefix, i%10), 0, false, payload)
	}
	if err := ph.wait(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	s.stop()
	if len(ph.pairs) != n || len(ph.latencies) != n || len(ph.topics) != 10 {
		t.Errorf("%d pairs, %d latencies, %d topics; want %d, %d, 10", len(ph.pairs), len(ph.latencies), len(ph.topics), n, n)
	}
	if !strings.HasPrefix(string(ph.pairs[n-1].payload), `{"id":"V9"`) {
		t.Errorf("last payload %q", ph.pairs[n-1].payload)
	}
	if s.retained.Load() != 1 {
		t.Errorf("%d retained positions seen, want 1", s.retained.Load())
	}
	for _, l := range ph.latencies {
		if l <= 0 || l > int64(10*time.Second) {
			t.Fatalf("latency %s", time.Duration(l))
		}
	}
}

// TestRunSmall is the tool end to end, small: the real bridge binary built,
// the simulated platform, the embedded broker, the bare publisher.
func TestRunSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("builds exlive2mqtt")
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command to build exlive2mqtt with")
	}
	url := brokertest.Embedded(t).URL()
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	err := run(ctx, []string{"-broker", url, "-runs", "throughput", "-qos", "1", "-positions", "1000", "-vehicles", "50", "-mem-vehicles", "0"}, &out, &out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	text := out.String()
	for _, want := range []string{"| throughput | 1 | bridge | 1000/1000 |", "| throughput | 1 | bare | 1000/1000 |", "CPU/msg bridge/bare",
		"\nplatform: 20000 positions prerendered"} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "MISSING") {
		t.Errorf("messages lost:\n%s", text)
	}
}

// TestPrerenderFlag: a negative -prerender is refused before anything is
// built or started, and 0 is reported as the old way.
func TestPrerenderFlag(t *testing.T) {
	var out bytes.Buffer
	err := run(context.Background(), []string{"-prerender", "-1"}, &out, &out)
	if err == nil || !strings.Contains(err.Error(), "-prerender -1") {
		t.Errorf("-prerender -1: %v, want it refused", err)
	}
	if got := (&bench{}).platformForm(); !strings.Contains(got, "as it is sent (-prerender 0)") {
		t.Errorf("-prerender 0 is described as %q", got)
	}
}
