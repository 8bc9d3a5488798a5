package web_test

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/exlive2mqtt/exlive2mqtt/web"
)

// fakeSource is a Source whose answers the test sets.
type fakeSource struct {
	mu       sync.Mutex
	ready    bool
	reason   string
	status   web.Status
	vehicles []web.Vehicle
	version  uint64 // bumped by setVehicles
	calls    int    // of Vehicles: how often the server built the list
	fences   []byte
	events   [][]byte
}

func (f *fakeSource) Geofences() []byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.fences
}

func (f *fakeSource) Events() [][]byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.events
}

func (f *fakeSource) Ready() (bool, string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.ready, f.reason
}

func (f *fakeSource) Status() web.Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.status
}

func (f *fakeSource) Vehicles() []web.Vehicle {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	return f.vehicles
}

func (f *fakeSource) VehiclesVersion() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.version
}

// setVehicles replaces the vehicles and tells the server so.
func (f *fakeSource) setVehicles(vs []web.Vehicle) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.vehicles = vs
	f.version++
}

// vehicleCalls returns how often the server asked for the list.
func (f *fakeSource) vehicleCalls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

func (f *fakeSource) setReady(ok bool, reason string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ready, f.reason = ok, reason
}

func ptr[T any](v T) *T { return &v }

const hostileCode = `<script>alert("x")</script>`

// demoSource returns demoSourceAt a fixed time, for tests that compare
// times.
func demoSource() *fakeSource { return demoSourceAt(time.Date(2026, 11, 27, 9, 30, 0, 0, time.UTC)) }

// demoFences are two geofences around Hangzhou's West Lake, one a polygon
// and one a circle, with names that must stay text.
const demoFences = `{"type":"FeatureCollection","features":[` +
	`{"type":"Feature","properties":{"name":"West Lake","speed_limit":30},"geometry":{"type":"Polygon","coordinates":[[[120.13,30.23],[120.17,30.23],[120.17,30.28],[120.13,30.28],[120.13,30.23]]]}},` +
	`{"type":"Feature","properties":{"name":"<b onmouseover=\"document.body.dataset.pwned=1\">gate</b>","radius":800},"geometry":{"type":"Point","coordinates":[120.2,30.31]}}]}`

// demoSourceAt returns a ready source with five vehicles around Hangzhou,
// including hostile and non-ASCII codes, one in alarm, one without a valid
// fix that is also offline, and one in a geofence; two geofences and three
// events. Vehicle 10 has its last fix at now, the others a little earlier;
// both links came up an hour before.
func demoSourceAt(now time.Time) *fakeSource {
	since := now.Add(-time.Hour)
	v := func(id, code string, age time.Duration, lat, lng, speed, dir float64, valid, alarm bool) web.Vehicle {
		return web.Vehicle{
			ID: id, Code: code, Topic: "exlive/vehicles/" + id,
			Lat: ptr(lat), Lng: ptr(lng), Speed: ptr(speed), Direction: ptr(dir),
			Time: ptr(now.Add(-age)), Valid: ptr(valid), Alarm: ptr(alarm), Online: ptr(true),
		}
	}
	offline := v("77", `<img src=x onerror="document.body.dataset.pwned=1">`, 47*time.Minute, 30.2950, 120.0400, 12, 315, false, false)
	offline.Online, offline.LastSeen = ptr(false), ptr(now.Add(-46*time.Minute))
	inLake := v("10", "浙A·12345", 0, 30.2741, 120.1551, 42, 90, true, false)
	inLake.Geofences = []string{"West Lake"}
	at := func(age time.Duration) string { return now.Add(-age).UTC().Format(time.RFC3339) }
	return &fakeSource{
		fences: []byte(demoFences),
		events: [][]byte{
			[]byte(`{"type":"geofence_enter","id":"10","code":"浙A·12345","time":"` + at(0) + `","lat":30.2741,"lng":120.1551,"geofence":"West Lake"}`),
			[]byte(`{"type":"overspeed","id":"1002","code":"<script>alert(\"x\")</script>","time":"` + at(3*time.Second) + `","lat":30.2205,"lng":120.082,"speed":63.5,"limit":60}`),
			[]byte(`{"type":"offline","id":"77","time":"` + at(36*time.Minute) + `","lat":30.295,"lng":120.04,"last_seen":"` + at(46*time.Minute) + `"}`),
		},
		ready: true,
		status: web.Status{
			Version: "1.2.3",
			Session: web.LinkState{State: "logged_in", Since: since, Addr: "exlive.example.com:1502"},
			Broker:  web.LinkState{State: "connected", Since: since, Addr: "tcp://mosquitto:1883"},
			Counters: []web.Counter{
				{Name: "exlive_positions_received_total", Help: "Positions received from the platform.", Value: 12345},
				{Name: "mqtt_messages_published_total", Help: "Messages published to the broker.", Value: 12001},
				{Name: "exlive_reconnects_total", Help: "Reconnections to the platform.", Value: 2},
			},
			Vehicles: 5,
		},
		vehicles: []web.Vehicle{
			inLake,
			v("9", "沪B-66778 冷链", 4*time.Minute, 30.3102, 120.2010, 0, 0, true, false),
			v("1002", hostileCode, 3*time.Second, 30.2205, 120.0820, 63.5, 225, true, true),
			offline,
			v("abc", `Truck 7 & "Co"`, 12*time.Second, 30.2500, 120.2500, 88, 180, true, false),
		},
	}
}

func newServer(t *testing.T, src web.Source, metrics http.Handler) *web.Server {
	t.Helper()
	cfg := web.Config{
		Addr:            "127.0.0.1:0",
		TileURL:         "https://{s}.tile.example.org/{z}/{x}/{y}.png",
		TileAttribution: "© Example <contributors>",
	}
	return web.New(cfg, src, metrics, zerolog.New(zerolog.NewTestWriter(t)))
}

// get performs one request against h and returns the response with its
// body read.
func get(t *testing.T, h http.Handler, method, target string, header http.Header) (*http.Response, string) {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	for k, vs := range header {
		req.Header[k] = vs
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	resp := rec.Result()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(body)
}

func mediaType(t *testing.T, resp *http.Response) string {
	t.Helper()
	mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if err != nil {
		t.Fatalf("Content-Type %q: %v", resp.Header.Get("Content-Type"), err)
	}
	return mt
}

func TestHealthz(t *testing.T) {
	src := demoSource()
	src.setReady(false, "mqtt disconnected") // liveness does not depend on the links
	resp, body := get(t, newServer(t, src, nil).Handler(), "GET", "/healthz", nil)
	if resp.StatusCode != http.StatusOK || body != "ok\n" {
		t.Fatalf("got %d %q, want 200 ok", resp.StatusCode, body)
	}
	if mt := mediaType(t, resp); mt != "text/plain" {
		t.Errorf("Content-Type %s, want text/plain", mt)
	}
}

func TestReadyz(t *testing.T) {
	tests := []struct {
		name     string
		ready    bool
		reason   string
		wantCode int
		wantBody map[string]any
	}{
		{"ready", true, "", 200, map[string]any{"ready": true}},
		{"ready drops a stray reason", true, "ignored", 200, map[string]any{"ready": true}},
		{"not ready", false, "exlive session: login_failed", 503, map[string]any{"ready": false, "reason": "exlive session: login_failed"}},
		{"not ready without reason", false, "", 503, map[string]any{"ready": false, "reason": "not ready"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := demoSource()
			src.setReady(tt.ready, tt.reason)
			resp, body := get(t, newServer(t, src, nil).Handler(), "GET", "/readyz", nil)
			if resp.StatusCode != tt.wantCode {
				t.Errorf("status %d, want %d", resp.StatusCode, tt.wantCode)
			}
			if mt := mediaType(t, resp); mt != "application/json" {
				t.Errorf("Content-Type %s, want application/json", mt)
			}
			if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
				t.Errorf("Cache-Control %q, want no-store", cc)
			}
			var got map[string]any
			if err := json.Unmarshal([]byte(body), &got); err != nil {
				t.Fatalf("body %q: %v", body, err)
			}
			if !mapsEqual(got, tt.wantBody) {
				t.Errorf("body %v, want %v", got, tt.wantBody)
			}
		})
	}
}

func mapsEqual(a, b map[string]any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

func TestMetrics(t *testing.T) {
	metrics := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		io.WriteString(w, "exlive_up 1\n")
	})
	resp, body := get(t, newServer(t, demoSource(), metrics).Handler(), "GET", "/metrics", nil)
	if resp.StatusCode != 200 || body != "exlive_up 1\n" {
		t.Errorf("with a handler: got %d %q", resp.StatusCode, body)
	}
	resp, _ = get(t, newServer(t, demoSource(), nil).Handler(), "GET", "/metrics", nil)
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("without a handler: got %d, want 404", resp.StatusCode)
	}
}

func TestNotFoundAndMethods(t *testing.T) {
	h := newServer(t, demoSource(), nil).Handler()
	for _, path := range []string{"/nope", "/api/", "/api/nope", "/index.html", "/static/", "/static/vendor/leaflet/", "/static/nope.js", "/static/vendor/leaflet/leaflet.js.map", "/metrics"} {
		resp, _ := get(t, h, "GET", path, nil)
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", path, resp.StatusCode)
		}
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: no nosniff on the 404", path)
		}
	}
	resp, _ := get(t, h, "POST", "/api/vehicles", nil)
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /api/vehicles: %d, want 405", resp.StatusCode)
	}
	resp, _ = get(t, h, "HEAD", "/healthz", nil)
	if resp.StatusCode != http.StatusOK {
		t.Errorf("HEAD /healthz: %d, want 200", resp.StatusCode)
	}
}

func TestAPIStatus(t *testing.T) {
	src := demoSource()
	src.status.Session.Error = "read tcp: connection reset"
	resp, body := get(t, newServer(t, src, nil).Handler(), "GET", "/api/status", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if mt := mediaType(t, resp); mt != "application/json" {
		t.Errorf("Content-Type %s, want application/json", mt)
	}
	// The JSON shape is the contract with the page: check names, not Go.
	var got struct {
		Version string `json:"version"`
		Session map[string]any
		Broker  map[string]any
		Counter []map[string]any `json:"counters"`
		Count   *int             `json:"vehicles"`
	}
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatalf("%q: %v", body, err)
	}
	if got.Version != "1.2.3" || got.Count == nil || *got.Count != 5 || len(got.Counter) != 3 {
		t.Errorf("got %s", body)
	}
	for _, k := range []string{"state", "since", "error", "addr"} {
		if _, ok := got.Session[k]; !ok {
			t.Errorf("session has no %q: %s", k, body)
		}
	}
	if got.Session["since"] != "2026-11-27T08:30:00Z" {
		t.Errorf("session.since = %v", got.Session["since"])
	}
	if _, ok := got.Broker["error"]; ok {
		t.Errorf("broker without error has an error field: %s", body)
	}
	for _, k := range []string{"name", "help", "value"} {
		if _, ok := got.Counter[0][k]; !ok {
			t.Errorf("counter has no %q: %s", k, body)
		}
	}
}

func TestAPIStatusEmptyAndOdd(t *testing.T) {
	src := &fakeSource{status: web.Status{
		Session:  web.LinkState{State: "connecting"},
		Counters: []web.Counter{{Name: "bad", Value: math.NaN()}, {Name: "inf", Value: math.Inf(1)}},
	}}
	_, body := get(t, newServer(t, src, nil).Handler(), "GET", "/api/status", nil)
	var got map[string]any
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatalf("%q: %v", body, err)
	}
	if c, ok := got["counters"].([]any); !ok || len(c) != 0 {
		t.Errorf("counters = %#v, want [] (non-finite values dropped, never null)", got["counters"])
	}
	if s := got["session"].(map[string]any); s["since"] != nil {
		t.Errorf("zero since is sent as %v, want it left out", s["since"])
	}
	if len(src.status.Counters) != 2 {
		t.Error("the handler modified the source's counters")
	}
}

func TestAPIVehicles(t *testing.T) {
	src := demoSource()
	src.vehicles = append(src.vehicles, web.Vehicle{ID: "5", Topic: "t/5", Lat: ptr(math.NaN()), Lng: ptr(120.0)})
	resp, body := get(t, newServer(t, src, nil).Handler(), "GET", "/api/vehicles", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if mt := mediaType(t, resp); mt != "application/json" {
		t.Errorf("Content-Type %s, want application/json", mt)
	}
	var got []map[string]any
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatalf("%q: %v", body, err)
	}
	var ids []string
	for _, v := range got {
		ids = append(ids, v["id"].(string))
	}
	if want := "5 9 10 77 1002 abc"; strings.Join(ids, " ") != want {
		t.Errorf("ids in order %v, want %s (numbers by value, then text)", ids, want)
	}
	if src.vehicles[0].ID != "10" {
		t.Error("the handler sorted the source's slice")
	}

	first := got[0]
	if _, ok := first["lat"]; ok {
		t.Errorf("NaN lat is sent as %v, want it left out", first["lat"])
	}
	if _, ok := first["code"]; ok {
		t.Errorf("empty code is sent: %v", first)
	}
	full := got[2] // "10"
	for _, k := range []string{"id", "code", "topic", "lat", "lng", "speed", "direction", "time", "valid", "alarm", "online", "geofences"} {
		if _, ok := full[k]; !ok {
			t.Errorf("vehicle has no %q: %v", k, full)
		}
	}
	if full["code"] != "浙A·12345" || full["time"] != "2026-11-27T09:30:00Z" || full["lat"] != 30.2741 ||
		full["online"] != true || fmt.Sprint(full["geofences"]) != "[West Lake]" {
		t.Errorf("vehicle 10 = %v", full)
	}
	if off := got[3]; off["online"] != false || off["last_seen"] != "2026-11-27T08:44:00Z" {
		t.Errorf("vehicle 77 = %v", off)
	}
}

// The page must never see markup from the API as markup. JSON escapes <, >
// and & itself, so that a response sniffed or opened as HTML cannot run a
// vehicle's code either; the page then puts it in as text (see the browser
// test).
func TestAPIVehiclesEscapesMarkup(t *testing.T) {
	_, body := get(t, newServer(t, demoSource(), nil).Handler(), "GET", "/api/vehicles", nil)
	for _, raw := range []string{"<script>", "<img", "&"} {
		if strings.Contains(body, raw) {
			t.Errorf("body contains raw %q: %s", raw, body)
		}
	}
	if !strings.Contains(body, `\u003cscript\u003e`) {
		t.Errorf("hostile code not escaped as expected: %s", body)
	}
	if !strings.Contains(body, "浙A·12345") {
		t.Errorf("Chinese text is not sent as UTF-8: %s", body)
	}
	var got []web.Vehicle
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatal(err)
	}
	for _, v := range got {
		if v.ID == "1002" && v.Code != hostileCode {
			t.Errorf("code round-trips as %q, want %q", v.Code, hostileCode)
		}
	}
}

func TestAPIVehiclesEmpty(t *testing.T) {
	_, body := get(t, newServer(t, &fakeSource{}, nil).Handler(), "GET", "/api/vehicles", nil)
	if strings.TrimSpace(body) != "[]" {
		t.Errorf("got %q, want []", body)
	}
}

func TestAPIETag(t *testing.T) {
	src := demoSource()
	h := newServer(t, src, nil).Handler()
	resp, _ := get(t, h, "GET", "/api/vehicles", nil)
	etag := resp.Header.Get("ETag")
	if etag == "" || resp.Header.Get("Cache-Control") != "no-cache" {
		t.Fatalf("ETag %q, Cache-Control %q", etag, resp.Header.Get("Cache-Control"))
	}
	resp, body := get(t, h, "GET", "/api/vehicles", http.Header{"If-None-Match": {etag}})
	if resp.StatusCode != http.StatusNotModified || body != "" {
		t.Errorf("unchanged: %d %q, want 304 and no body", resp.StatusCode, body)
	}
	src.setVehicles(src.vehicles[1:])
	resp, _ = get(t, h, "GET", "/api/vehicles", http.Header{"If-None-Match": {etag}})
	if resp.StatusCode != http.StatusOK {
		t.Errorf("changed: %d, want 200", resp.StatusCode)
	}
}

// TestAPIGeofences: the source's GeoJSON as it is, an empty collection
// without geofences, and a bodyless 304 until they change.
func TestAPIGeofences(t *testing.T) {
	src := demoSource()
	h := newServer(t, src, nil).Handler()
	resp, body := get(t, h, "GET", "/api/geofences", nil)
	if mt := mediaType(t, resp); resp.StatusCode != 200 || mt != "application/geo+json" || body != demoFences {
		t.Fatalf("got %d %s %s", resp.StatusCode, mt, body)
	}
	etag := resp.Header.Get("ETag")
	if resp, body := get(t, h, "GET", "/api/geofences", http.Header{"If-None-Match": {etag}}); resp.StatusCode != http.StatusNotModified || body != "" {
		t.Errorf("unchanged: %d %q, want 304", resp.StatusCode, body)
	}
	src.mu.Lock()
	src.fences = nil
	src.mu.Unlock()
	resp, body = get(t, h, "GET", "/api/geofences", http.Header{"If-None-Match": {etag}})
	if resp.StatusCode != 200 || body != `{"type":"FeatureCollection","features":[]}` || resp.Header.Get("ETag") == etag {
		t.Errorf("no geofences: %d %s, ETag %s", resp.StatusCode, body, resp.Header.Get("ETag"))
	}
}

// TestAPIEvents: the source's events in its order, an event that is not
// JSON left out, and [] when there are none.
func TestAPIEvents(t *testing.T) {
	src := demoSource()
	src.events = append(src.events, []byte(`{"type":"broken`))
	h := newServer(t, src, nil).Handler()
	resp, body := get(t, h, "GET", "/api/events", nil)
	if mt := mediaType(t, resp); resp.StatusCode != 200 || mt != "application/json" {
		t.Fatalf("got %d %s", resp.StatusCode, mt)
	}
	var got []map[string]any
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatalf("%q: %v", body, err)
	}
	var types []string
	for _, e := range got {
		types = append(types, e["type"].(string))
	}
	if strings.Join(types, " ") != "geofence_enter overspeed offline" {
		t.Errorf("types %v", types)
	}
	if strings.Contains(body, "<script>") {
		t.Errorf("markup not escaped: %s", body)
	}
	src.events = nil
	if _, body := get(t, h, "GET", "/api/events", nil); strings.TrimSpace(body) != "[]" {
		t.Errorf("no events: %q, want []", body)
	}
}

func TestAPIConfig(t *testing.T) {
	resp, body := get(t, newServer(t, demoSource(), nil).Handler(), "GET", "/api/config", nil)
	if mt := mediaType(t, resp); resp.StatusCode != 200 || mt != "application/json" {
		t.Fatalf("got %d %s", resp.StatusCode, mt)
	}
	var got map[string]string
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatal(err)
	}
	if got["tileURL"] != "https://{s}.tile.example.org/{z}/{x}/{y}.png" || got["tileAttribution"] != "© Example <contributors>" {
		t.Errorf("got %v", got)
	}
}

func TestIndexPage(t *testing.T) {
	h := newServer(t, demoSource(), nil).Handler()
	resp, body := get(t, h, "GET", "/", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if mt := mediaType(t, resp); mt != "text/html" {
		t.Errorf("Content-Type %s, want text/html", mt)
	}
	csp := resp.Header.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'self'", "script-src 'self'", "img-src 'self' data: https://*.tile.example.org;", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe") {
		t.Errorf("CSP allows unsafe sources: %q", csp)
	}
	if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Error("no X-Content-Type-Options: nosniff")
	}

	// Everything the page links to is embedded and served.
	refs := regexp.MustCompile(`(?:href|src)="([^"]+)"`).FindAllStringSubmatch(body, -1)
	if len(refs) < 5 {
		t.Fatalf("found only %d references in the page", len(refs))
	}
	for _, m := range refs {
		if strings.Contains(m[1], "//") {
			t.Errorf("page loads %s from another host", m[1])
			continue
		}
		resp, _ := get(t, h, "GET", "/"+m[1], nil)
		if resp.StatusCode != 200 {
			t.Errorf("page references %s: %d", m[1], resp.StatusCode)
		}
	}
}

func TestStaticAssets(t *testing.T) {
	h := newServer(t, demoSource(), nil).Handler()
	tests := []struct {
		path, mediaType, contains string
	}{
		{"/static/vendor/leaflet/leaflet.js", "text/javascript", `version="1.9.4"`},
		{"/static/vendor/leaflet/leaflet.css", "text/css", ".leaflet-marker-icon"},
		{"/static/vendor/leaflet/images/marker-icon.png", "image/png", "\x89PNG"},
		{"/static/vendor/leaflet/images/marker-icon-2x.png", "image/png", "\x89PNG"},
		{"/static/vendor/leaflet/images/marker-shadow.png", "image/png", "\x89PNG"},
		{"/static/vendor/leaflet/images/layers.png", "image/png", "\x89PNG"},
		{"/static/vendor/leaflet/LICENSE", "text/plain", "BSD 2-Clause License"},
		{"/static/vendor/leaflet.markercluster/leaflet.markercluster.js", "text/javascript", "L.MarkerClusterGroup"},
		{"/static/vendor/leaflet.markercluster/MarkerCluster.css", "text/css", ".leaflet-cluster-anim"},
		{"/static/vendor/leaflet.markercluster/MarkerCluster.Default.css", "text/css", ".marker-cluster-small"},
		{"/static/vendor/leaflet.markercluster/LICENSE", "text/plain", "Copyright 2012 David Leaver"},
		{"/static/app.js", "text/javascript", "use strict"},
		{"/static/style.css", "text/css", "body"},
		{"/static/favicon.svg", "image/svg+xml", "<svg"},
	}
	for _, tt := range tests {
		resp, body := get(t, h, "GET", tt.path, nil)
		if resp.StatusCode != 200 {
			t.Errorf("%s: %d", tt.path, resp.StatusCode)
			continue
		}
		if mt := mediaType(t, resp); mt != tt.mediaType {
			t.Errorf("%s: Content-Type %s, want %s", tt.path, mt, tt.mediaType)
		}
		if !strings.Contains(body, tt.contains) {
			t.Errorf("%s: body lacks %q", tt.path, tt.contains)
		}
		etag := resp.Header.Get("ETag")
		if etag == "" {
			t.Errorf("%s: no ETag", tt.path)
			continue
		}
		resp, _ = get(t, h, "GET", tt.path, http.Header{"If-None-Match": {etag}})
		if resp.StatusCode != http.StatusNotModified {
			t.Errorf("%s with its ETag: %d, want 304", tt.path, resp.StatusCode)
		}
	}
}

// The page's script must put API strings into the DOM as text only. This
// guards the rule where a reviewer might miss a new innerHTML.
func TestAppJSNeverParsesAPIStringsAsHTML(t *testing.T) {
	_, body := get(t, newServer(t, demoSource(), nil).Handler(), "GET", "/static/app.js", nil)
	for _, sink := range []string{".innerHTML", ".outerHTML", "insertAdjacentHTML", "document.write", "eval("} {
		if strings.Contains(body, sink) {
			t.Errorf("app.js uses %s", sink)
		}
	}
}

func TestSecurityHeadersEverywhere(t *testing.T) {
	h := newServer(t, demoSource(), http.NotFoundHandler()).Handler()
	for _, path := range []string{"/", "/healthz", "/readyz", "/api/status", "/api/vehicles", "/api/config", "/static/app.js", "/metrics", "/nope"} {
		resp, _ := get(t, h, "GET", path, nil)
		for _, k := range []string{"Content-Security-Policy", "X-Content-Type-Options", "X-Frame-Options", "Referrer-Policy"} {
			if resp.Header.Get(k) == "" {
				t.Errorf("GET %s: no %s", path, k)
			}
		}
	}
}

func TestNewRejectsNilSource(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("New(nil Source) did not panic")
		}
	}()
	web.New(web.Config{}, nil, nil, zerolog.Nop())
}
