package main

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/exlive2mqtt/exlive2mqtt/exlive/exlivesim"
	"github.com/exlive2mqtt/exlive2mqtt/internal/brokertest"
)

// TestHugeVehicleIDsAreNeverKept runs the built program against a platform
// that sends positions whose vehicle ids are 900 kB long (a topic cannot be
// longer than 65 535 bytes): none is published or kept, each is counted,
// /api/vehicles stays small, and the process's memory does not grow with
// their number. Kept, 300 of them would be 270 MB.
func TestHugeVehicleIDsAreNeverKept(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the program")
	}
	sim := exlivesim.New(exlivesim.Config{Vehicles: 3})
	if err := sim.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	httpAddr := fmt.Sprintf("127.0.0.1:%d", brokertest.FreePort(t))
	cmd := exec.Command(mtBuild(t))
	cmd.Env = []string{
		"EXLIVE_ADDR=" + sim.Addr(), "EXLIVE_USER=" + exlivesim.DefaultUser, "EXLIVE_PASS=" + exlivesim.DefaultPass,
		"EXLIVE_INVENTORY_QUIET=50ms", "MQTT_URL=" + brokertest.Embedded(t).URL(),
		"MQTT_CLIENT_ID=" + brokertest.ClientID(t), "MQTT_TOPIC_PREFIX=" + brokertest.Prefix(t),
		"HTTP_ADDR=" + httpAddr, "LOG_LEVEL=info",
	}
	logs := newMTWriter()
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(os.Interrupt)
		if err := cmd.Wait(); err != nil {
			t.Errorf("exlive2mqtt: %v", err)
		}
		if t.Failed() {
			t.Logf("log:\n%.5000s", logs.String())
		}
	}()
	base := "http://" + httpAddr
	btWait(t, "ready", func() bool { return btGet(base+"/readyz") != "" })
	btWait(t, "the fleet listed", func() bool { return strings.Contains(btGet(base+"/api/vehicles"), `"id":"V3"`) })
	start := time.Now()

	huge := strings.Repeat("h", 900_000)
	send := func(from, to int) {
		for i := from; i < to; i++ {
			sim.SendRaw([]byte(`{"header":{"cmd":"1007"},"body":{"id":"` + huge + strconv.Itoa(i) + `","lat":"31.2","lng":"121.4"}}` + "\r\n"))
		}
		btWait(t, fmt.Sprintf("%d positions received", to), func() bool {
			return btMetric(btGet(base+"/metrics"), "exlive_positions_received_total") == float64(to)
		})
	}
	rss0 := btRSS(t, cmd.Process.Pid)
	send(0, 100)
	rss100 := btRSS(t, cmd.Process.Pid)
	send(100, 300)
	rss300 := btRSS(t, cmd.Process.Pid)
	// A vehicle after them: once the list shows it, it was made after
	// the 900 kB ids came.
	sim.SendRaw([]byte(`{"header":{"cmd":"1007"},"body":{"id":"AFTER","lat":"31.2","lng":"121.4"}}` + "\r\n"))
	var vehicles string
	btWait(t, "the list to show AFTER", func() bool {
		vehicles = btGet(base + "/api/vehicles")
		return strings.Contains(vehicles, `"id":"AFTER"`)
	})
	rssAPI := btRSS(t, cmd.Process.Pid)
	t.Logf("RSS: %d MiB at start, %d MiB after 100 positions with 900 kB ids, %d MiB after 300, %d MiB after GET /api/vehicles (%d bytes)",
		rss0>>20, rss100>>20, rss300>>20, rssAPI>>20, len(vehicles))

	if n := btMetric(btGet(base+"/metrics"), `bridge_positions_dropped_total{reason="bad_id"}`); n != 300 {
		t.Errorf(`bridge_positions_dropped_total{reason="bad_id"} = %v, want 300`, n)
	}
	if len(vehicles) > 4096 || strings.Contains(vehicles, "hhhhhhhh") {
		t.Errorf("/api/vehicles is %d bytes: %.200s", len(vehicles), vehicles)
	}
	// 200 more ids would be 180 MB kept; dropped, they cost the buffers
	// of a frame or two.
	if grew := rss300 - rss100; grew > 64<<20 {
		t.Errorf("RSS grew by %d MiB from 100 to 300 dropped positions", grew>>20)
	}
	// One warning every ten seconds at most.
	if n, most := strings.Count(logs.String(), "position without a usable vehicle id"), 1+int(time.Since(start)/(10*time.Second)); n < 1 || n > most {
		t.Errorf("%d warnings for 300 dropped positions, want 1 to %d", n, most)
	}
}

// btGet returns the body of a 200 answer to GET url, "" for anything else.
func btGet(url string) string {
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		return ""
	}
	return string(b)
}

// btMetric returns the value of series in a /metrics text, -1 when absent.
func btMetric(text, series string) float64 {
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindStringSubmatch(text)
	if m == nil {
		return -1
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	return v
}

// btRSS returns the resident set size of process pid, from /proc.
func btRSS(t *testing.T, pid int) int64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				t.Fatalf("VmRSS %q: %v", rest, err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmRSS in /proc/PID/status")
	return 0
}

// btWait polls cond every 20 ms until it holds, at most 30 s.
func btWait(t *testing.T, what string, cond func() bool) {
	t.Helper()
	if !brokertest.Eventually(30*time.Second, cond) {
		t.Fatalf("timed out waiting for %s", what)
	}
}
