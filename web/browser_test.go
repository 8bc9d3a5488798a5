package web_test

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/exlive2mqtt/exlive2mqtt/web"
	"github.com/exlive2mqtt/exlive2mqtt/web/browsertest"
)

// offlineTileServer answers every tile with 404, as a page without internet
// sees it, and counts the requests, which proves the tile layer is there
// and the CSP lets it load.
func offlineTileServer(t *testing.T) (tileURL string, requests *atomic.Int64) {
	t.Helper()
	requests = new(atomic.Int64)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		http.NotFound(w, r)
	}))
	t.Cleanup(ts.Close)
	return ts.URL + "/tiles/{z}/{x}/{y}.png", requests
}

// servePage serves the status page of src on a loopback port.
func servePage(t *testing.T, src web.Source, tileURL string) string {
	t.Helper()
	cfg := web.Config{TileURL: tileURL, TileAttribution: "© OpenStreetMap contributors"}
	ts := httptest.NewServer(web.New(cfg, src, nil, zerolog.Nop()).Handler())
	t.Cleanup(ts.Close)
	return ts.URL + "/"
}

func TestStatusPageInBrowser(t *testing.T) {
	browsertest.Chromium(t) // skip or fail early, before starting servers
	src := demoSourceAt(time.Now())
	tileURL, tileRequests := offlineTileServer(t)
	page := browsertest.LoadStatusPage(t, servePage(t, src, tileURL))

	if !page.Live {
		t.Errorf("page is not live (its API polls failed)")
	}
	if len(page.Rows) != len(src.vehicles) {
		t.Errorf("table has %d rows, want %d", len(page.Rows), len(src.vehicles))
	}
	if page.Markers != len(src.vehicles) {
		t.Errorf("map has %d markers, want %d", page.Markers, len(src.vehicles))
	}
	for _, v := range src.vehicles {
		row, ok := page.RowByID(v.ID)
		if !ok {
			t.Errorf("no row for vehicle %s", v.ID)
			continue
		}
		if row.Code != v.Code {
			t.Errorf("vehicle %s: code cell %q, want %q", v.ID, row.Code, v.Code)
		}
	}
	if want := []string{"9", "10", "77", "1002", "abc"}; len(page.Rows) == len(want) {
		for i, id := range want {
			if page.Rows[i].ID != id {
				t.Errorf("row %d is vehicle %s, want %s (server order)", i, page.Rows[i].ID, id)
			}
		}
	}
	if row, ok := page.RowByID("1002"); ok && !strings.Contains(strings.Join(row.Cells, "|"), "ALARM") {
		t.Errorf("vehicle in alarm shows no ALARM: %q", row.Cells)
	}

	// Hostile codes are text: no element was made from them, and nothing
	// in them ran.
	if strings.Contains(page.DOM, "<script>alert") || strings.Contains(page.DOM, `<img src="x"`) {
		t.Error("a vehicle code was inserted as HTML")
	}
	if strings.Contains(page.DOM, "data-pwned") {
		t.Error("a vehicle code's script ran")
	}

	for _, want := range []string{"logged in", "connected", "exlive.example.com:1502", "tcp://mosquitto:1883", "version 1.2.3", "exlive_positions_received_total", "12,345"} {
		if !strings.Contains(page.DOM, want) {
			t.Errorf("page does not show %q", want)
		}
	}
	if tileRequests.Load() == 0 {
		t.Error("the map requested no tiles")
	}
	if !strings.Contains(page.DOM, "Map tiles cannot be loaded") {
		t.Error("page does not say that the tiles failed")
	}
	for _, p := range page.Problems() {
		t.Errorf("page console: %s", p)
	}

	if os.Getenv("UPDATE_SCREENSHOT") == "1" {
		path, err := filepath.Abs(filepath.Join("..", "docs", "status.png"))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		// The README shows a plain fleet; the hostile codes above are for
		// the checks, not for people.
		shown := demoSourceAt(time.Now())
		for i, code := range []string{"浙A·12345", "沪B-66778 冷链", "浙A·D8812 危险品", "皖K-30571", "Truck 7"} {
			shown.vehicles[i].Code = code
		}
		browsertest.Screenshot(t, servePage(t, shown, tileURL), path, 1280, 900)
		t.Logf("wrote %s", path)
	}
}

// Without a tile URL the page shows the markers on a blank map and says
// why, instead of requesting tiles from nowhere.
func TestStatusPageInBrowserWithoutTiles(t *testing.T) {
	browsertest.Chromium(t)
	src := demoSourceAt(time.Now())
	src.vehicles = src.vehicles[:2]
	page := browsertest.LoadStatusPage(t, servePage(t, src, ""))
	if !page.Live || len(page.Rows) != 2 || page.Markers != 2 {
		t.Errorf("live %v, %d rows, %d markers; want live, 2, 2", page.Live, len(page.Rows), page.Markers)
	}
	if strings.Contains(page.DOM, "leaflet-tile-container") && strings.Contains(page.DOM, "leaflet-tile ") {
		t.Error("page has tiles without a tile URL")
	}
	if !strings.Contains(page.DOM, "No map tiles configured") {
		t.Error("page does not say that no tiles are configured")
	}
	for _, p := range page.Problems() {
		t.Errorf("page console: %s", p)
	}
}

// A bridge that is not ready says so, with the failing link's error.
func TestStatusPageInBrowserNotReady(t *testing.T) {
	browsertest.Chromium(t)
	src := demoSourceAt(time.Now())
	src.setReady(false, "mqtt: disconnected")
	src.status.Broker = web.LinkState{State: "disconnected", Error: "dial tcp 127.0.0.1:1883: connection refused", Addr: "tcp://127.0.0.1:1883"}
	page := browsertest.LoadStatusPage(t, servePage(t, src, ""))
	for _, want := range []string{"not ready", "disconnected", "connection refused"} {
		if !strings.Contains(page.DOM, want) {
			t.Errorf("page does not show %q", want)
		}
	}
}
