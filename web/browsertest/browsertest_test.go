package browsertest

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestParseStatusPage(t *testing.T) {
	dom := `<html><head></head><body data-live="true">
<table><tbody id="vehicle-rows">
<tr data-vehicle-id="1002" class="alarm"><td class="id">1002</td><td class="code">&lt;script&gt;alert("x")&lt;/script&gt;</td><td class="time"><span class="fix">2026-11-27 09:30:00</span><span class="age">3 s ago</span></td></tr>
<tr data-vehicle-id="a&amp;b"><td class="id">a&amp;b</td><td class="code">浙A·12345</td></tr>
</tbody></table>
<div class="leaflet-marker-pane"><img src="m.png" class="leaflet-marker-icon leaflet-zoom-animated leaflet-interactive" alt="x"><img src="m.png" class="leaflet-marker-icon alarm"><img src="s.png" class="leaflet-marker-shadow"></div>
</body></html>`
	p := ParseStatusPage(dom)
	if !p.Live || p.Markers != 2 || len(p.Rows) != 2 {
		t.Fatalf("live %v, %d markers, %d rows; want true, 2, 2", p.Live, p.Markers, len(p.Rows))
	}
	if r := p.Rows[0]; r.ID != "1002" || r.Code != `<script>alert("x")</script>` || !strings.Contains(r.Cells[2], "3 s ago") {
		t.Errorf("row 0 = %+v", r)
	}
	if r, ok := p.RowByID("a&b"); !ok || r.Code != "浙A·12345" {
		t.Errorf("row a&b = %+v, %v", r, ok)
	}
	if p.PageInfo != "" || len(p.Clusters) != 0 || p.OnMap() != 2 {
		t.Errorf("page info %q, clusters %v, on the map %d; want none, none, 2", p.PageInfo, p.Clusters, p.OnMap())
	}
	clustered := ParseStatusPage(`<body data-live="true">
<div class="leaflet-marker-icon marker-cluster marker-cluster-large leaflet-zoom-animated leaflet-interactive" tabindex="0"><div><span>99950</span></div></div>
<div class="leaflet-marker-icon marker-cluster marker-cluster-small"><div><span>49</span></div></div>
<img class="leaflet-marker-icon" src="m.png">
<nav id="paging" aria-label="Pages"><button id="page-first">«</button><span id="vehicle-page" class="muted">1–50 of 100,000</span></nav>`)
	if clustered.OnMap() != 100000 || len(clustered.Clusters) != 2 || clustered.PageInfo != "1–50 of 100,000" {
		t.Errorf("clusters %v, %d on the map, page info %q; want [99950 49], 100000, 1–50 of 100,000", clustered.Clusters, clustered.OnMap(), clustered.PageInfo)
	}
	if got := ParseStatusPage(`<nav id="paging" hidden=""><span id="vehicle-page" class="muted">1–5 of 5</span></nav>`).PageInfo; got != "" {
		t.Errorf("hidden paging read as %q", got)
	}
	if ParseStatusPage(`<body data-live="false">`).Live {
		t.Error("data-live=false parsed as live")
	}
}

// The console capture must see what it is there to catch, or a broken page
// would pass silently.
func TestProblemsSeesCSPViolationsAndErrors(t *testing.T) {
	Chromium(t)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/":
			w.Header().Set("Content-Security-Policy", "script-src 'self'")
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			_, _ = w.Write([]byte(`<!doctype html><body data-live="true"><script>document.body.dataset.inline = "ran"</script><script src="/bad.js"></script></body>`))
		case "/bad.js":
			w.Header().Set("Content-Type", "text/javascript")
			_, _ = w.Write([]byte(`console.log("hello from bad.js"); null.boom();`))
		default:
			http.NotFound(w, r)
		}
	}))
	defer ts.Close()

	p := LoadStatusPage(t, ts.URL+"/")
	if !p.Live || strings.Contains(p.DOM, `data-inline="ran"`) {
		t.Fatalf("page not loaded as expected: %s", p.DOM)
	}
	joined := strings.Join(p.Console, "\n")
	if !strings.Contains(joined, "hello from bad.js") {
		t.Errorf("console.log not captured: %q", p.Console)
	}
	problems := strings.Join(p.Problems(), "\n")
	for _, want := range []string{"Content Security Policy", "Uncaught"} {
		if !strings.Contains(problems, want) {
			t.Errorf("Problems() = %q, want one with %q", p.Problems(), want)
		}
	}
}

func TestScreenshot(t *testing.T) {
	Chromium(t)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(`<!doctype html><h1>hello</h1>`))
	}))
	defer ts.Close()
	Screenshot(t, ts.URL+"/", t.TempDir()+"/shot.png", 320, 200) // checks the PNG itself
}
