package web_test

import (
	"html"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
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
	if page.OnMap() != len(src.vehicles) {
		t.Errorf("map shows %d vehicles (%d markers, clusters %v), want %d", page.OnMap(), page.Markers, page.Clusters, len(src.vehicles))
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

	// Availability: a column, and a grey marker for the offline vehicle.
	if row, ok := page.RowByID("77"); !ok || row.Cells[len(row.Cells)-1] != "no" {
		t.Errorf("offline vehicle's row: %q", row.Cells)
	}
	if !regexp.MustCompile(`<td class="online" title="offline · 46 min ago">no</td>`).MatchString(page.DOM) {
		t.Error("the offline vehicle's cell does not say when it was last seen")
	}
	if row, ok := page.RowByID("10"); !ok || row.Cells[len(row.Cells)-1] != "yes" {
		t.Errorf("online vehicle's row: %q", row.Cells)
	}
	if n := len(regexp.MustCompile(`<img[^>]*\bclass="[^"]*\bleaflet-marker-icon\b[^"]*\boffline\b`).FindAllString(page.DOM, -1)); n != 1 {
		t.Errorf("%d grey (offline) markers, want 1", n)
	}
	// The geofences: a polygon and a circle, drawn as SVG paths.
	if n := len(regexp.MustCompile(`<path[^>]*\bclass="[^"]*\bgeofence\b`).FindAllString(page.DOM, -1)); n != 2 {
		t.Errorf("%d geofences drawn, want 2", n)
	}
	if !strings.Contains(page.DOM, "2 geofences") {
		t.Error("the map does not say how many geofences it draws")
	}
	// The latest events, newest first, as text.
	events := regexp.MustCompile(`(?s)<tr[^>]*\bclass="event ([a-z_]+)"[^>]*>(.*?)</tr>`).FindAllStringSubmatch(page.DOM, -1)
	var got []string
	for _, e := range events {
		got = append(got, e[1]+": "+html.UnescapeString(regexp.MustCompile(`<[^>]*>`).ReplaceAllString(e[2], "|")))
	}
	for i, want := range []string{
		`geofence_enter: ||.*|浙A·12345 \(10\)|geofence enter|West Lake|`,
		`overspeed: ||.*|<script>alert\("x"\)</script> \(1002\)|overspeed|64 km/h \(limit 60 km/h\)|`,
		`offline: ||.*|77|offline|last seen .*|`,
	} {
		if i >= len(got) || !regexp.MustCompile("^"+want+"$").MatchString(got[i]) {
			t.Errorf("events %q: want %s at %d", got, want, i)
		}
	}

	// Hostile codes are text: no element was made from them, and nothing
	// in them ran.
	if strings.Contains(page.DOM, "<script>alert") || strings.Contains(page.DOM, `<img src="x"`) {
		t.Error("a vehicle code was inserted as HTML")
	}
	if strings.Contains(page.DOM, "data-pwned") {
		t.Error("a vehicle code's script ran")
	}
	if strings.Contains(page.DOM, "<b onmouseover") {
		t.Error("a geofence name was inserted as HTML")
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
		for i, e := range shown.events {
			shown.events[i] = []byte(strings.Replace(string(e), `<script>alert(\"x\")</script>`, "浙A·D8812 危险品", 1))
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
	if !page.Live || len(page.Rows) != 2 || page.OnMap() != 2 {
		t.Errorf("live %v, %d rows, %d vehicles on the map; want live, 2, 2", page.Live, len(page.Rows), page.OnMap())
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

// A session the platform keeps closing shows the bridge's hint, and the
// address in use, on the page.
func TestStatusPageInBrowserSessionHint(t *testing.T) {
	browsertest.Chromium(t)
	src := demoSourceAt(time.Now())
	src.setReady(false, "EXLIVE session disconnected")
	src.status.Session = web.LinkState{State: "disconnected", Error: "exlive: read: EOF", Addr: "203.0.113.8:1502",
		Hint: "another client may be logged in with this account"}
	page := browsertest.LoadStatusPage(t, servePage(t, src, ""))
	for _, want := range []string{"203.0.113.8:1502", "exlive: read: EOF", `<p class="hint">another client may be logged in with this account</p>`} {
		if !strings.Contains(page.DOM, want) {
			t.Errorf("page does not show %q", want)
		}
	}
	// Without a hint, none is shown.
	src = demoSourceAt(time.Now())
	page = browsertest.LoadStatusPage(t, servePage(t, src, ""))
	if strings.Contains(page.DOM, `<p class="hint">`) {
		t.Error("a hint is shown when there is none")
	}
}

// manyVehicles is the fleet of the regular many-vehicle browser tests: big
// enough that the page must cluster and page, small enough for CI.
const manyVehicles = 5000

// With thousands of vehicles the map draws clusters and the table shows
// one page, not thousands of rows.
func TestStatusPageInBrowserManyVehicles(t *testing.T) {
	browsertest.Chromium(t)
	src := demoSourceAt(time.Now())
	src.setVehicles(fleet(manyVehicles))
	page := browsertest.LoadStatusPage(t, servePage(t, src, ""))

	located := manyVehicles - manyVehicles/10 // fleet leaves every tenth without a position
	if !page.Live {
		t.Error("page is not live")
	}
	if len(page.Clusters) == 0 || len(page.Clusters) > 500 {
		t.Errorf("%d clusters, want some and not hundreds", len(page.Clusters))
	}
	if page.OnMap() != located {
		t.Errorf("map shows %d vehicles (%d markers, %d clusters), want %d", page.OnMap(), page.Markers, len(page.Clusters), located)
	}
	if len(page.Rows) != 50 {
		t.Errorf("table has %d rows, want one page of 50", len(page.Rows))
	}
	if want := "1–50 of 5,000"; page.PageInfo != want {
		t.Errorf("page info %q, want %q", page.PageInfo, want)
	}
	if len(page.Rows) > 0 && (page.Rows[0].ID != "V0" || page.Rows[len(page.Rows)-1].ID != "V49") {
		t.Errorf("rows %s…%s, want V0…V49", page.Rows[0].ID, page.Rows[len(page.Rows)-1].ID)
	}
	if !strings.Contains(page.DOM, "(5,000)") {
		t.Error("the heading does not give the fleet's size")
	}
	for _, p := range page.Problems() {
		t.Errorf("page console: %s", p)
	}
}

// The table's paging buttons and filter work, as a person uses them.
func TestStatusPageInBrowserPagingAndFilter(t *testing.T) {
	browsertest.Chromium(t)
	src := demoSourceAt(time.Now())
	src.setVehicles(fleet(manyVehicles))
	url := servePage(t, src, "")
	b := browsertest.Open(t)
	b.Navigate(url)
	const wait = 60 * time.Second
	rows := `document.querySelectorAll('#vehicle-rows tr')`
	first := rows + `[0].dataset.vehicleId`
	info := `document.getElementById('vehicle-page').textContent`
	b.WaitFor(rows+`.length === 50 && `+first+` === 'V0'`, wait)

	b.Eval(`document.getElementById('page-next').click()`, nil)
	b.WaitFor(first+` === 'V50' && `+info+` === '51–100 of 5,000'`, wait)
	b.Eval(`document.getElementById('page-last').click()`, nil)
	b.WaitFor(first+` === 'V4950' && `+info+` === '4,951–5,000 of 5,000'`, wait)
	var disabled bool
	b.Eval(`document.getElementById('page-next').disabled`, &disabled)
	if !disabled {
		t.Error("Next is enabled on the last page")
	}

	// The filter matches ids and codes, and starts again at page one.
	b.Eval(`(() => { const f = document.getElementById('vehicle-filter'); f.value = 'V123'; f.dispatchEvent(new Event('input')); })()`, nil)
	b.WaitFor(info+` === '1–11 of 11 matching'`, wait)
	var got []string
	b.Eval(`[...`+rows+`].map((tr) => tr.dataset.vehicleId)`, &got)
	if want := "V123 V1230 V1231 V1232 V1233 V1234 V1235 V1236 V1237 V1238 V1239"; strings.Join(got, " ") != want {
		t.Errorf("filtered rows %v, want %s", got, want)
	}
	b.Eval(`(() => { const f = document.getElementById('vehicle-filter'); f.value = '浙A·04999'; f.dispatchEvent(new Event('input')); })()`, nil)
	b.WaitFor(info+` === '1–1 of 1 matching' && `+first+` === 'V4999'`, wait)
	b.Eval(`(() => { const f = document.getElementById('vehicle-filter'); f.value = 'nothing like it'; f.dispatchEvent(new Event('input')); })()`, nil)
	b.WaitFor(info+` === 'no vehicle matches' && `+rows+`.length === 0`, wait)

	// A click on a row opens the vehicle's popup on the map.
	b.Eval(`(() => { const f = document.getElementById('vehicle-filter'); f.value = 'V42'; f.dispatchEvent(new Event('input')); })()`, nil)
	b.WaitFor(first+` === 'V42'`, wait)
	b.Eval(rows+`[0].click()`, nil)
	b.WaitFor(`document.querySelector('.leaflet-popup-content h3') && document.querySelector('.leaflet-popup-content h3').textContent === '浙A·00042 (V42)'`, wait)
	for _, p := range b.ConsoleProblems() {
		t.Errorf("page console: %s", p)
	}
}

// TestMeasureStatusPage measures the status page with a big fleet in
// headless Chromium: the numbers of docs/operations.md. It runs only when
// EXLIVE2MQTT_MEASURE_VEHICLES names the fleet's size, such as 100000.
func TestMeasureStatusPage(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("EXLIVE2MQTT_MEASURE_VEHICLES"))
	if n <= 0 {
		t.Skip("set EXLIVE2MQTT_MEASURE_VEHICLES=100000 to measure")
	}
	browsertest.Chromium(t)
	// EXLIVE2MQTT_MEASURE_URL measures a running bridge's page instead,
	// with a fleet of n that moves (exlive-sim -vehicles n).
	url := os.Getenv("EXLIVE2MQTT_MEASURE_URL")
	if url == "" {
		src := demoSourceAt(time.Now())
		src.setVehicles(fleet(n))
		url = servePage(t, src, "")
	}
	b := browsertest.Open(t)
	table := `document.querySelectorAll('#vehicle-rows tr').length === 50 && document.getElementById('vehicle-count').textContent === '(` + thousands(n) + `)'`
	// markercluster draws the clusters once it has taken in every marker.
	clusters := `document.querySelector('.marker-cluster') !== null`
	timing := b.Measure(url, table+" && "+clusters, map[string]string{"table shown": table}, 5*time.Second, 5*time.Minute)
	t.Logf("status page with %d vehicles: %v", n, timing)

	// Then how long a person waits for the filter and the next page.
	for _, step := range []struct{ what, do, done string }{
		{"filter", `(() => { const f = document.getElementById('vehicle-filter'); f.value = 'V1234'; f.dispatchEvent(new Event('input')); })()`,
			`document.getElementById('vehicle-page').textContent.endsWith('matching')`},
		{"clear filter", `(() => { const f = document.getElementById('vehicle-filter'); f.value = ''; f.dispatchEvent(new Event('input')); })()`,
			`document.getElementById('vehicle-page').textContent === '1–50 of ` + thousands(n) + `'`},
		{"next page", `document.getElementById('page-next').click()`,
			`document.getElementById('vehicle-page').textContent === '51–100 of ` + thousands(n) + `'`},
	} {
		start := time.Now()
		b.Eval(step.do, nil)
		b.WaitFor(step.done, time.Minute)
		t.Logf("%s: %v (wall clock; the filter waits 250 ms for a pause in typing above 10 000 vehicles, 50 ms below)", step.what, time.Since(start).Round(time.Millisecond))
	}
	for _, p := range b.ConsoleProblems() {
		t.Errorf("page console: %s", p)
	}
}

// thousands formats n as the page does: 100000 → "100,000".
func thousands(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// A fleet that moves and shrinks between polls: the map follows, both when
// most vehicles moved (the clusters are rebuilt) and when a few did (only
// those are taken out and put back).
func TestStatusPageInBrowserFleetMoves(t *testing.T) {
	browsertest.Chromium(t)
	src := demoSourceAt(time.Now())
	vs := fleet(2000) // above BIG_FLEET in app.js
	src.setVehicles(vs)
	b := browsertest.Open(t)
	b.Navigate(servePage(t, src, ""))
	const wait = 60 * time.Second
	// Vehicles the map shows in its view: single markers and the counts of
	// the clusters.
	onMap := `[...document.querySelectorAll('.marker-cluster span')].reduce((n, s) => n + Number(s.textContent), 0) + ` +
		`document.querySelectorAll('img.leaflet-marker-icon').length`
	b.WaitFor(onMap+` === 1800`, wait) // fleet leaves every tenth without a position

	moveTo := func(vs []web.Vehicle, every int, lat, lng float64) []web.Vehicle {
		out := slices.Clone(vs)
		for i := range out {
			if out[i].Lat != nil && i%every == 0 {
				out[i].Lat, out[i].Lng = ptr(lat), ptr(lng)
			}
		}
		return out
	}
	clusters := `[...document.querySelectorAll('.marker-cluster span')].map((s) => Number(s.textContent)).sort((a, b) => a - b).join(' ')`
	// Every vehicle moves to one place, and the last 100 are gone: one
	// cluster holds them all.
	vs = moveTo(vs[:1900], 1, 10, 20)
	src.setVehicles(vs)
	b.WaitFor(clusters+` === '1710'`, wait)
	// A few move elsewhere (every 50th: 36 of them), and more are gone.
	vs = moveTo(vs[:1800], 50, 45, 90)
	src.setVehicles(vs)
	b.WaitFor(clusters+` === '36 1584'`, wait)
	b.WaitFor(`document.getElementById('vehicle-count').textContent === '(1,800)'`, wait)
	for _, p := range b.ConsoleProblems() {
		t.Errorf("page console: %s", p)
	}
}
