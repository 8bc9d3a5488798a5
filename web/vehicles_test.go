package web_test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/exlive2mqtt/exlive2mqtt/web"
)

// fleet returns n vehicles V0…V(n-1) on a grid over the world, every
// tenth without a position, every twentieth offline.
func fleet(n int) []web.Vehicle {
	vs := make([]web.Vehicle, n)
	for i := range vs {
		vs[i] = web.Vehicle{ID: "V" + strconv.Itoa(i), Code: fmt.Sprintf("浙A·%05d", i), Topic: "exlive/vehicles/V" + strconv.Itoa(i) + "/position"}
		if i%10 != 9 {
			vs[i].Lat = ptr(-80 + float64(i%161))
			vs[i].Lng = ptr(-179.5 + float64(i%360))
			vs[i].Speed = ptr(float64(i % 120))
			vs[i].Time = ptr(time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC))
			vs[i].Online = ptr(i%20 != 0)
			if i%20 == 0 {
				vs[i].LastSeen = ptr(time.Date(2026, 11, 27, 9, 0, 5, 0, time.UTC))
			}
		}
	}
	return vs
}

// apiServer serves src on a loopback port and returns its base URL and a
// client that neither decompresses nor keeps anything, to see the bytes
// the server sends.
func apiServer(t *testing.T, src web.Source) (string, *http.Client) {
	t.Helper()
	ts := httptest.NewServer(web.New(web.Config{}, src, nil, zerolog.New(zerolog.NewTestWriter(t))).Handler())
	t.Cleanup(ts.Close)
	return ts.URL, &http.Client{Transport: &http.Transport{DisableCompression: true}}
}

type apiResponse struct {
	code   int
	header http.Header
	body   []byte // decompressed
	wire   int    // bytes on the wire
}

func apiGet(t *testing.T, client *http.Client, url string, header http.Header) apiResponse {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	r := apiResponse{code: resp.StatusCode, header: resp.Header, body: raw, wire: len(raw)}
	if resp.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			t.Fatalf("%s: gzip: %v", url, err)
		}
		if r.body, err = io.ReadAll(zr); err != nil {
			t.Fatalf("%s: gzip: %v", url, err)
		}
	}
	return r
}

func ids(t *testing.T, body []byte) []string {
	t.Helper()
	var vs []web.Vehicle
	if err := json.Unmarshal(body, &vs); err != nil {
		t.Fatalf("body %.200q: %v", body, err)
	}
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = v.ID
	}
	return out
}

func TestAPIVehiclesGzip(t *testing.T) {
	src := &fakeSource{}
	src.setVehicles(fleet(2000))
	base, client := apiServer(t, src)

	plain := apiGet(t, client, base+"/api/vehicles", nil)
	if plain.header.Get("Content-Encoding") != "" || len(ids(t, plain.body)) != 2000 {
		t.Fatalf("without Accept-Encoding: %q, %d bytes", plain.header.Get("Content-Encoding"), len(plain.body))
	}
	for _, ae := range []string{"gzip", "gzip, deflate, br", "br;q=1.0, GZIP;q=0.5"} {
		gz := apiGet(t, client, base+"/api/vehicles", http.Header{"Accept-Encoding": {ae}})
		if gz.header.Get("Content-Encoding") != "gzip" {
			t.Errorf("Accept-Encoding %q: Content-Encoding %q, want gzip", ae, gz.header.Get("Content-Encoding"))
			continue
		}
		if !bytes.Equal(gz.body, plain.body) {
			t.Errorf("Accept-Encoding %q: the gzip body differs from the plain one", ae)
		}
		if gz.wire*4 > plain.wire {
			t.Errorf("gzip sends %d bytes for %d: less than 4:1", gz.wire, plain.wire)
		}
		if !strings.Contains(gz.header.Get("Vary"), "Accept-Encoding") {
			t.Errorf("Vary %q lacks Accept-Encoding", gz.header.Get("Vary"))
		}
		if gz.header.Get("ETag") != plain.header.Get("ETag") {
			t.Errorf("ETag %q with gzip, %q without: they name the same list", gz.header.Get("ETag"), plain.header.Get("ETag"))
		}
	}
	if r := apiGet(t, client, base+"/api/vehicles", http.Header{"Accept-Encoding": {"gzip;q=0, identity"}}); r.header.Get("Content-Encoding") != "" {
		t.Errorf("gzip;q=0 got Content-Encoding %q", r.header.Get("Content-Encoding"))
	}
	// A page is compressed too, when it is worth it.
	page := apiGet(t, client, base+"/api/vehicles?limit=500", http.Header{"Accept-Encoding": {"gzip"}})
	if page.header.Get("Content-Encoding") != "gzip" || len(ids(t, page.body)) != 500 {
		t.Errorf("page: Content-Encoding %q, %d bytes", page.header.Get("Content-Encoding"), len(page.body))
	}
	small := apiGet(t, client, base+"/api/vehicles?limit=1", http.Header{"Accept-Encoding": {"gzip"}})
	if small.header.Get("Content-Encoding") != "" || len(ids(t, small.body)) != 1 {
		t.Errorf("one vehicle: Content-Encoding %q (not worth it), body %q", small.header.Get("Content-Encoding"), small.body)
	}
}

func TestAPIVehiclesPaging(t *testing.T) {
	src := &fakeSource{}
	src.setVehicles(fleet(250))
	base, client := apiServer(t, src)
	all := ids(t, apiGet(t, client, base+"/api/vehicles", nil).body)
	if len(all) != 250 || all[0] != "V0" || all[1] != "V1" || all[10] != "V10" {
		t.Fatalf("whole list: %d, starting %v", len(all), all[:min(len(all), 11)])
	}

	tests := []struct {
		query string
		want  []string
	}{
		{"offset=0&limit=100", all[:100]},
		{"offset=100&limit=100", all[100:200]},
		{"offset=200&limit=100", all[200:]},
		{"offset=250&limit=100", []string{}},
		{"offset=9999", []string{}},
		{"limit=3", all[:3]},
		{"offset=247", all[247:]},
	}
	var pages []string
	for _, tt := range tests {
		r := apiGet(t, client, base+"/api/vehicles?"+tt.query, nil)
		if r.code != 200 {
			t.Errorf("%s: %d %s", tt.query, r.code, r.body)
			continue
		}
		if got := ids(t, r.body); !slices.Equal(got, tt.want) {
			t.Errorf("%s: %d vehicles %v…, want %d", tt.query, len(got), got[:min(len(got), 3)], len(tt.want))
		}
		if r.header.Get("X-Total-Count") != "250" {
			t.Errorf("%s: X-Total-Count %q, want 250", tt.query, r.header.Get("X-Total-Count"))
		}
		pages = append(pages, r.header.Get("ETag"))
	}
	unique := slices.Clone(pages)
	slices.Sort(unique)
	if len(slices.Compact(unique)) != len(pages) {
		t.Errorf("pages share ETags: %q", pages)
	}

	// A page revalidates like the whole list.
	r := apiGet(t, client, base+"/api/vehicles?offset=100&limit=100", nil)
	if again := apiGet(t, client, base+"/api/vehicles?offset=100&limit=100", http.Header{"If-None-Match": {r.header.Get("ETag")}}); again.code != http.StatusNotModified {
		t.Errorf("unchanged page with its ETag: %d, want 304", again.code)
	}
}

func TestAPIVehiclesBBox(t *testing.T) {
	v := func(id string, lat, lng float64) web.Vehicle {
		return web.Vehicle{ID: id, Lat: ptr(lat), Lng: ptr(lng)}
	}
	src := &fakeSource{}
	src.setVehicles([]web.Vehicle{
		v("hangzhou", 30.27, 120.15), v("shanghai", 31.23, 121.47), v("beijing", 39.90, 116.40),
		v("fiji", -17.7, 178.0), v("samoa", -13.8, -172.1), v("corner", 30, 120),
		{ID: "nowhere"}, // no position: never in a box
	})
	base, client := apiServer(t, src)
	tests := []struct {
		query string
		want  string
	}{
		{"bbox=119,29,122,32", "corner hangzhou shanghai"},
		{"bbox=120,30,120.15,30.27", "corner hangzhou"}, // edges are inside
		{"bbox=-180,-90,180,90", "beijing corner fiji hangzhou samoa shanghai"},
		{"bbox=170,-20,-170,-10", "fiji samoa"}, // across the antimeridian
		{"bbox=0,0,1,1", ""},
		{"bbox=119,29,122,32&offset=1&limit=1", "hangzhou"},
		{"bbox=%20119%20,29,122,32", "corner hangzhou shanghai"},
	}
	for _, tt := range tests {
		r := apiGet(t, client, base+"/api/vehicles?"+tt.query, nil)
		if r.code != 200 {
			t.Errorf("%s: %d %s", tt.query, r.code, r.body)
			continue
		}
		if got := strings.Join(ids(t, r.body), " "); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.query, got, tt.want)
		}
	}
	if r := apiGet(t, client, base+"/api/vehicles?bbox=119,29,122,32&limit=1", nil); r.header.Get("X-Total-Count") != "3" {
		t.Errorf("X-Total-Count with a box %q, want 3 (in the box, before paging)", r.header.Get("X-Total-Count"))
	}
}

func TestAPIVehiclesBadQueries(t *testing.T) {
	src := &fakeSource{}
	src.setVehicles(fleet(10))
	base, client := apiServer(t, src)
	tests := []struct{ query, want string }{
		{"bbox=1,2,3", "minLng,minLat,maxLng,maxLat"},
		{"bbox=a,2,3,4", `"a" is not a number`},
		{"bbox=1,2,3,NaN", "not a number"},
		{"bbox=-181,0,0,1", "longitudes"},
		{"bbox=0,-91,1,1", "latitudes"},
		{"bbox=0,10,1,5", "minLat is north of maxLat"},
		{"offset=-1", "offset"},
		{"offset=x", "offset"},
		{"limit=0", "limit"},
		{"limit=1e3", "limit"},
		{"limit=1&limit=2", "limit is given 2 times"},
		{"bbbox=1,2,3,4", `unknown parameter "bbbox"`},
		{"limit=%zz", "invalid URL escape"},
	}
	for _, tt := range tests {
		r := apiGet(t, client, base+"/api/vehicles?"+tt.query, nil)
		if r.code != http.StatusBadRequest || !strings.Contains(string(r.body), tt.want) {
			t.Errorf("%s: %d %q, want 400 with %q", tt.query, r.code, r.body, tt.want)
		}
	}
}

// The list is built when the source says it changed, not per request.
func TestAPIVehiclesBuiltOncePerChange(t *testing.T) {
	src := &fakeSource{}
	src.setVehicles(fleet(100))
	base, client := apiServer(t, src)
	queries := []string{"", "?limit=10", "?bbox=-10,-10,10,10", "?offset=50&limit=5"}
	for range 5 {
		for _, q := range queries {
			for _, ae := range []string{"", "gzip"} {
				if r := apiGet(t, client, base+"/api/vehicles"+q, http.Header{"Accept-Encoding": {ae}}); r.code != 200 {
					t.Fatalf("%s: %d", q, r.code)
				}
			}
		}
	}
	if n := src.vehicleCalls(); n != 1 {
		t.Errorf("40 requests of an unchanged list built it %d times, want 1", n)
	}

	vs := fleet(100)
	vs[3].Code = "changed"
	src.setVehicles(vs)
	r := apiGet(t, client, base+"/api/vehicles?offset=3&limit=1", nil)
	if got := ids(t, r.body); len(got) != 1 || !strings.Contains(string(r.body), `"changed"`) {
		t.Errorf("after a change: %s, want the new code", r.body)
	}
	for range 10 {
		apiGet(t, client, base+"/api/vehicles", nil)
	}
	if n := src.vehicleCalls(); n != 2 {
		t.Errorf("one change: built %d times in all, want 2", n)
	}
}
