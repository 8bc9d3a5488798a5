// Package web serves the bridge's small HTTP face: liveness and readiness
// probes for docker compose and Kubernetes, the Prometheus metrics handler,
// a JSON API, and a status page with a live map of the fleet, so that users
// can see their vehicles without building a dashboard.
//
// The page and its Leaflet copy are embedded in the binary: the bridge often
// runs where the internet is not reachable, and the page must still work
// there (markers on a blank map instead of map tiles).
//
// Who may see the fleet is decided here too (docs/security.md): the server
// listens on loopback unless told otherwise, takes TLS and basic auth from a
// Prometheus web configuration file (github.com/prometheus/exporter-toolkit),
// keeps the two probes open, and refuses a Host it does not know when a
// browser could be tricked into asking (DNS rebinding).
//
// The package knows nothing about EXLIVE or MQTT: the program (cmd/exlive2mqtt)
// adapts the bridge to [Source], and web only reads from it.
package web

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"math"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/rs/zerolog"
)

// Config is the HTTP configuration. main composes it with envPrefix "HTTP_".
type Config struct {
	// Addr is the listen address; empty turns the HTTP server off. The
	// default is loopback only: the API shows every vehicle's live
	// position, which nobody else should see unless the operator says so
	// (containers set ":9883" and publish the port on loopback).
	Addr string `env:"ADDR" envDefault:"127.0.0.1:9883" help:"health, metrics, API and status page; this machine only by default; empty turns it off"`
	// WebConfigFile names a Prometheus web configuration file: TLS
	// (tls_server_config) and basic auth with bcrypt hashes
	// (basic_auth_users), read by github.com/prometheus/exporter-toolkit.
	// The probes /healthz and /readyz stay open.
	WebConfigFile string `env:"WEB_CONFIG_FILE" envDefault:"" help:"TLS and basic auth: a Prometheus web configuration file (docs/security.md)"`
	// AllowedHosts are the host names, besides localhost and IP addresses
	// of this machine's loopback, that requests may name in their Host
	// header. When the server listens on loopback, or when this is set, a
	// request for any other name is refused: that is how a web page that
	// rebinds its own DNS name to 127.0.0.1 would read the API.
	AllowedHosts []string `env:"ALLOWED_HOSTS" help:"host names besides localhost the server answers to, comma-separated (behind a reverse proxy that keeps the Host)"`
	// TileURL is a Leaflet tile URL template ({s}, {z}, {x}, {y}); empty
	// shows the vehicles on a blank map, which suits installations without
	// internet access or without a tile server they may use. Browsers
	// fetch the tiles themselves, so any key in it is visible to them.
	TileURL string `env:"TILE_URL" envDefault:"https://tile.openstreetmap.org/{z}/{x}/{y}.png" help:"map tiles of the status page; empty: a blank map"`
	// TileAttribution is shown in the map corner as plain text; most tile
	// servers require it.
	TileAttribution string `env:"TILE_ATTRIBUTION" envDefault:"© OpenStreetMap contributors" help:"attribution the tile server requires"`
}

// Source is what the program exposes to the HTTP server. Its methods are
// called from request goroutines, concurrently with each other and with the
// bridge's own work, so they must be safe for concurrent use and should
// return quickly (they are called every two seconds per open status page).
type Source interface {
	// Ready reports whether the bridge does its job: the MQTT client is
	// connected AND the EXLIVE session is logged in. When it is not, reason
	// says why, for a person reading `docker compose ps` or a probe log.
	Ready() (ok bool, reason string)
	// Status returns the state of both links and the counters.
	Status() Status
	// Vehicles returns the latest known state of every vehicle, with
	// WGS-84 coordinates. The server neither keeps nor modifies the slice.
	// A big account has a hundred thousand vehicles, so the server calls
	// it only when VehiclesVersion has changed.
	Vehicles() []Vehicle
	// VehiclesVersion returns a number that changes whenever what Vehicles
	// returns may have changed: a position, a code, a vehicle added or
	// gone. It must be cheap: it is called on every request of the list.
	VehiclesVersion() uint64
	// Geofences returns the geofences in force as a GeoJSON
	// FeatureCollection (WGS-84; a circle is a Point with a radius
	// property in metres), or nil when there are none. It returns the
	// same slice until they change, and nobody modifies it.
	Geofences() []byte
	// Events returns the latest events, newest first, each a JSON object
	// (docs/events.md). The server neither keeps nor modifies them.
	Events() [][]byte
}

// LinkState is the state of one of the bridge's two links.
type LinkState struct {
	// State is, for the EXLIVE session, one of connecting, logged_in,
	// login_failed, disconnected; for the MQTT broker, connected or
	// disconnected. The page colours the known states and shows any other
	// as it is.
	State string `json:"state"`
	// Since is when State was entered; zero if unknown.
	Since time.Time `json:"since,omitzero"`
	// Error is the last error of the link, if any.
	Error string `json:"error,omitempty"`
	// Addr is the platform address or the broker URL. It is shown to anyone
	// who can open the page, so it must never contain credentials.
	Addr string `json:"addr"`
	// Hint says what may be wrong, when the bridge can tell: for the
	// session, that another client may be using the account.
	Hint string `json:"hint,omitempty"`
}

// Counter is one monotonically growing count shown on the status page, such
// as the number of positions received or messages published.
type Counter struct {
	Name  string  `json:"name"`
	Help  string  `json:"help"`
	Value float64 `json:"value"`
}

// Status is the bridge's state as shown on the status page and served at
// /api/status.
type Status struct {
	Version  string    `json:"version"`
	Session  LinkState `json:"session"` // the EXLIVE platform link
	Broker   LinkState `json:"broker"`  // the MQTT link
	Counters []Counter `json:"counters"`
	Vehicles int       `json:"vehicles"`
}

// Vehicle is the latest known state of one vehicle. Pointer fields are nil
// when the platform has not told that value yet, which the page shows as a
// dash rather than as a misleading zero.
type Vehicle struct {
	ID    string `json:"id"`             // the platform's vehicle id
	Code  string `json:"code,omitempty"` // the plate or name; any text
	Topic string `json:"topic"`          // the MQTT topic of its state

	Lat       *float64   `json:"lat,omitempty"`       // WGS-84 degrees
	Lng       *float64   `json:"lng,omitempty"`       // WGS-84 degrees
	Speed     *float64   `json:"speed,omitempty"`     // km/h
	Direction *float64   `json:"direction,omitempty"` // degrees clockwise from north
	Time      *time.Time `json:"time,omitempty"`      // time of the last fix
	Valid     *bool      `json:"valid,omitempty"`     // whether the last fix is a valid GPS fix
	Alarm     *bool      `json:"alarm,omitempty"`     // whether an alarm is active

	Online    *bool      `json:"online,omitempty"`    // its availability; nil when not tracked
	LastSeen  *time.Time `json:"last_seen,omitempty"` // when its last position arrived (the program gives it for offline vehicles)
	Geofences []string   `json:"geofences,omitempty"` // the geofences it is in
}

// Server serves the HTTP endpoints. Create it with [New].
type Server struct {
	cfg Config
	src Source
	log zerolog.Logger

	// probes serves /healthz and /readyz and nothing else: the part that
	// stays open to anyone, whatever the web configuration file says.
	probes http.Handler
	// app serves every endpoint, the probes included.
	app http.Handler
	// csp is the Content-Security-Policy of every response.
	csp string

	vehicleList *vehicleCache
	// slots bounds the /api/vehicles requests served at once: each can
	// write megabytes, and a burst must not take the process's memory.
	slots chan struct{}
	// fences is the ETag of the last geofences the source returned:
	// hashed once per change, not once per request.
	fences etagCache

	shutdownTimeout time.Duration

	// onListen, when set by tests, is called with the bound address before
	// Run serves, so that tests can listen on port 0 without a race.
	onListen func(addr string)
}

// maxVehicleRequests is how many /api/vehicles requests are served at once;
// more get 503 with Retry-After. The list is encoded once per change, so
// a request only copies bytes out, or picks a page or a box from them; eight
// at a time keep a machine's cores and a few tens of megabytes busy, and a
// status page asks once every two seconds.
const maxVehicleRequests = 8

// New returns a server reading from src, which must not be nil. metrics is
// served at /metrics; nil leaves /metrics unanswered (404).
func New(cfg Config, src Source, metrics http.Handler, log zerolog.Logger) *Server {
	if src == nil {
		// Fail at start-up rather than on the first probe.
		panic("web: New called with a nil Source")
	}
	s := &Server{
		cfg: cfg,
		src: src,
		log: log.With().Str("component", "http").Logger(),
		csp: contentSecurityPolicy(cfg.TileURL),

		vehicleList: newVehicleCache(src),
		slots:       make(chan struct{}, maxVehicleRequests),

		shutdownTimeout: shutdownTimeout,
	}

	probes := http.NewServeMux()
	probes.HandleFunc("GET /healthz", s.healthz)
	probes.HandleFunc("GET /readyz", s.readyz)
	s.probes = probes

	mux := http.NewServeMux()
	mux.Handle("GET /healthz", probes)
	mux.Handle("GET /readyz", probes)
	mux.HandleFunc("GET /api/status", s.status)
	mux.HandleFunc("GET /api/vehicles", s.vehicles)
	mux.HandleFunc("GET /api/config", s.config)
	mux.HandleFunc("GET /api/geofences", s.geofences)
	mux.HandleFunc("GET /api/events", s.events)
	if metrics != nil {
		mux.Handle("GET /metrics", metrics)
	}
	mux.HandleFunc("GET /{$}", serveAsset("index.html"))
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.HandlerFunc(serveStatic)))
	s.app = mux
	return s
}

// Handler returns the handler serving every endpoint without
// authentication, for tests and for mounting into another server that
// does its own. Requests must name an allowed host if Config.AllowedHosts
// is set; Run also refuses other names when it listens on loopback.
func (s *Server) Handler() http.Handler {
	return s.chain(s.app, newHostPolicy(s.cfg.AllowedHosts, false))
}

// chain puts in front of protected (the app, behind the web configuration
// file's authentication when there is one) what every request goes
// through: the log, the security headers, and the split between the open
// probes and the rest, which must name a host the server knows.
func (s *Server) chain(protected http.Handler, hosts hostPolicy) http.Handler {
	guarded := hosts.guard(protected)
	return s.logRequests(securityHeaders(s.csp, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if isProbe(r) {
			s.probes.ServeHTTP(w, r)
			return
		}
		guarded.ServeHTTP(w, r)
	})))
}

// isProbe reports whether r asks for one of the probes, which stay open:
// container and Kubernetes probes cannot log in, and they learn only
// whether the bridge is up. Anything else, a probe path with a trailing
// slash included, goes the protected way.
func isProbe(r *http.Request) bool {
	return r.URL.Path == "/healthz" || r.URL.Path == "/readyz"
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write([]byte("ok\n"))
}

type readiness struct {
	Ready  bool   `json:"ready"`
	Reason string `json:"reason,omitempty"`
}

func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	ok, reason := s.src.Ready()
	code := http.StatusOK
	if !ok {
		code = http.StatusServiceUnavailable
		if reason == "" {
			reason = "not ready"
		}
	} else {
		reason = ""
	}
	body, err := json.Marshal(readiness{Ready: ok, Reason: reason})
	if err != nil {
		// Cannot happen for two plain fields; kept so a change cannot turn
		// it into a silent 200.
		s.log.Error().Err(err).Msg("encode readiness")
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write(append(body, '\n'))
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	st := s.src.Status()
	// A non-finite value cannot be encoded as JSON and would take the
	// whole status down with it; one odd counter is not worth that.
	st.Counters = slices.DeleteFunc(slices.Clone(st.Counters), func(c Counter) bool {
		return math.IsNaN(c.Value) || math.IsInf(c.Value, 0)
	})
	if st.Counters == nil {
		st.Counters = []Counter{}
	}
	s.serveJSON(w, r, st)
}

// pageConfig is what the status page needs to know of Config.
type pageConfig struct {
	TileURL         string `json:"tileURL"`
	TileAttribution string `json:"tileAttribution"`
}

func (s *Server) config(w http.ResponseWriter, r *http.Request) {
	s.serveJSON(w, r, pageConfig{TileURL: s.cfg.TileURL, TileAttribution: s.cfg.TileAttribution})
}

// emptyCollection is /api/geofences when there are no geofences.
var emptyCollection = []byte(`{"type":"FeatureCollection","features":[]}`)

// geofences serves the geofences as GeoJSON, for the map to draw. The
// page asks again now and then, to see a reload; the ETag makes that a
// bodyless 304.
func (s *Server) geofences(w http.ResponseWriter, r *http.Request) {
	body := s.src.Geofences()
	if len(body) == 0 {
		body = emptyCollection
	}
	h := w.Header()
	h.Set("Content-Type", "application/geo+json")
	h.Set("Cache-Control", "no-cache")
	h.Set("ETag", s.fences.etag(body))
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
}

// events serves the latest events, newest first.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	evs := s.src.Events()
	list := make([]json.RawMessage, 0, len(evs))
	for _, e := range evs {
		if json.Valid(e) { // one bad event must not take the list down
			list = append(list, e)
		}
	}
	s.serveJSON(w, r, list)
}

// etagCache remembers the ETag of the last body it hashed, by the body's
// first byte and length: a source hands the same slice until it changes.
type etagCache struct {
	mu   sync.Mutex
	last []byte
	tag  string
}

func (c *etagCache) etag(body []byte) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.last) != len(body) || len(body) == 0 || &c.last[0] != &body[0] {
		sum := sha256.Sum256(body)
		c.last, c.tag = body, `"`+hex.EncodeToString(sum[:16])+`"`
	}
	return c.tag
}

// sortedVehicles returns a copy of vs sorted by id, with values that JSON
// cannot carry dropped so that one bad record does not blank the map.
func sortedVehicles(vs []Vehicle) []Vehicle {
	out := make([]Vehicle, len(vs))
	copy(out, vs)
	for i := range out {
		v := &out[i]
		for _, f := range []**float64{&v.Lat, &v.Lng, &v.Speed, &v.Direction} {
			if *f != nil && (math.IsNaN(**f) || math.IsInf(**f, 0)) {
				*f = nil
			}
		}
	}
	slices.SortStableFunc(out, func(a, b Vehicle) int { return compareIDs(a.ID, b.ID) })
	return out
}

// compareIDs orders ids the way people count: runs of digits by their
// value, the rest as text, so "9" comes before "10" and "V2" before "V10"
// (EXLIVE's ids are numbers in strings; simulated and custom ones often a
// letter and a number). Ids that compare equal so ("01", "1") fall back to
// plain text order, so the order is total.
func compareIDs(a, b string) int {
	x, y := a, b
	for x != "" && y != "" {
		dx, dy := digits(x), digits(y)
		if dx > 0 && dy > 0 {
			nx, ny := strings.TrimLeft(x[:dx], "0"), strings.TrimLeft(y[:dy], "0")
			if c := cmp.Or(cmp.Compare(len(nx), len(ny)), strings.Compare(nx, ny)); c != 0 {
				return c
			}
			x, y = x[dx:], y[dy:]
			continue
		}
		rx, sx := utf8.DecodeRuneInString(x)
		ry, sy := utf8.DecodeRuneInString(y)
		if rx != ry {
			return cmp.Compare(rx, ry)
		}
		x, y = x[sx:], y[sy:]
	}
	return cmp.Or(cmp.Compare(len(x), len(y)), cmp.Compare(a, b))
}

// digits returns how many ASCII digits s starts with.
func digits(s string) int {
	n := 0
	for n < len(s) && s[n] >= '0' && s[n] <= '9' {
		n++
	}
	return n
}

// serveJSON writes v with an ETag, so that a polling page whose data did
// not change gets a bodyless 304 (the browser revalidates by itself because
// of Cache-Control: no-cache).
func (s *Server) serveJSON(w http.ResponseWriter, r *http.Request, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		s.log.Error().Err(err).Str("path", r.URL.Path).Msg("encode json")
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	body = append(body, '\n')
	sum := sha256.Sum256(body)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-cache")
	h.Set("ETag", `"`+hex.EncodeToString(sum[:16])+`"`)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
}

// logRequests logs every request at debug level: the status page polls
// every two seconds, which would drown anything louder.
func (s *Server) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		s.log.Debug().
			Str("method", r.Method).
			Str("path", r.URL.Path).
			Int("status", rec.status).
			Dur("duration", time.Since(start)).
			Str("remote", r.RemoteAddr).
			Msg("http request")
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (r *statusRecorder) WriteHeader(code int) {
	if !r.wrote {
		r.status, r.wrote = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	r.wrote = true
	return r.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the real writer (promhttp
// flushes through it).
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
