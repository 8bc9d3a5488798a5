package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/exlive2mqtt/exlive2mqtt/web"
	"github.com/exlive2mqtt/exlive2mqtt/web/browsertest"
)

// The demo as a person meets it: `exlive2mqtt demo`, then its status page in
// a browser. The table fills with the simulated fleet and every vehicle has
// a marker on the map. With UPDATE_SCREENSHOT=1 it also takes the README's
// picture, docs/status.png, of this page.
func TestDemoStatusPageInBrowser(t *testing.T) {
	browsertest.Chromium(t) // skip (or fail in CI) before starting anything
	opsNoLeaks(t)
	const vehicles = 20 // the demo's default fleet

	// A blank map: this machine, like many where the bridge runs, reaches
	// no tile server.
	addr, _ := opsRun(t, []string{"demo", "-listen", "127.0.0.1:0", "-http", "127.0.0.1:0"}, []string{"LOG_FORMAT=json", "HTTP_TILE_URL="})
	base := "http://" + addr

	// The page shows what the API says; wait until the API has a position
	// for every vehicle, so that the page has the whole fleet to show.
	api := waitDemoFleet(t, base, vehicles)

	page := browsertest.LoadStatusPage(t, base+"/")
	if !page.Live {
		t.Error("page is not live (its API polls failed)")
	}
	if len(page.Rows) != vehicles {
		t.Errorf("table has %d rows, want %d", len(page.Rows), vehicles)
	}
	if page.OnMap() != vehicles {
		t.Errorf("map shows %d vehicles (%d markers, clusters %v), want %d", page.OnMap(), page.Markers, page.Clusters, vehicles)
	}
	for i, v := range api {
		if i >= len(page.Rows) {
			break
		}
		if r := page.Rows[i]; r.ID != v.ID || r.Code != v.Code {
			t.Errorf("row %d is %s %q, want %s %q (the API's order)", i, r.ID, r.Code, v.ID, v.Code)
		}
	}
	for _, want := range []string{"logged in", "connected", "exlive_positions_received_total", "No map tiles configured"} {
		if !strings.Contains(page.DOM, want) {
			t.Errorf("page does not show %q", want)
		}
	}
	for _, p := range page.Problems() {
		t.Errorf("page console: %s", p)
	}

	if os.Getenv("UPDATE_SCREENSHOT") == "1" {
		path, err := filepath.Abs(filepath.Join("..", "..", "docs", "status.png"))
		if err != nil {
			t.Fatal(err)
		}
		// Tall enough for the whole table of the default fleet.
		browsertest.Screenshot(t, base+"/", path, 1280, 1240)
		t.Logf("wrote %s", path)
	}
}

// waitDemoFleet polls /api/vehicles until n vehicles have a position, and
// returns them in the API's order.
func waitDemoFleet(t *testing.T, base string, n int) []web.Vehicle {
	t.Helper()
	return waitVehicles(t, base, fmt.Sprintf("%d vehicles with a position", n), func(vs []web.Vehicle) bool {
		located := 0
		for _, v := range vs {
			if v.Lat != nil && v.Lng != nil && v.Code != "" {
				located++
			}
		}
		return located == n && len(vs) == n
	})
}

// waitVehicles polls /api/vehicles until done holds for the list, and
// returns it.
func waitVehicles(t *testing.T, base, what string, done func([]web.Vehicle) bool) []web.Vehicle {
	t.Helper()
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
	deadline := time.Now().Add(opsWait)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		var vs []web.Vehicle
		resp, err := client.Get(base + "/api/vehicles")
		if err == nil {
			err = json.NewDecoder(resp.Body).Decode(&vs)
			resp.Body.Close()
		}
		if err != nil {
			t.Fatalf("GET /api/vehicles: %v", err)
		}
		if done(vs) {
			return vs
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v, still not %s: %d listed", opsWait, what, len(vs))
		}
		<-tick.C
	}
}
