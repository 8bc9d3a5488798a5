package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/exlive2mqtt/exlive2mqtt/datum"
	"github.com/exlive2mqtt/exlive2mqtt/exlive"
	"github.com/rs/zerolog"
)

// Limits of what a probe keeps, so that a big account cannot make it grow
// without bound.
const (
	probeFirst        = 3      // groups, vehicles and positions shown
	probeFieldSample  = 10_000 // positions whose fields are looked at
	probeDatumSample  = 1_000  // positions compared with their raw fix
	probeVehicleIDs   = 100_000
	probeUnknownBody  = 200 // bytes of an unknown command's body shown
	defaultProbeWait  = 30 * time.Second
	probeMinHeartbeat = time.Second
)

// specPositionFields are the fields of 1007 in the specification.
var specPositionFields = []string{"code", "id", "lat", "lng", "veo", "dir", "gpstime", "av", "alarm", "oil", "dis", "wstate", "cstate", "posinfo"}

// probe runs `exlive2mqtt probe`: it logs in to the platform with the
// EXLIVE_* settings alone, watches the session for a while, logs out and
// reports what the platform said and did. It returns nil when the login
// held for the whole wait.
func probe(ctx context.Context, args []string, envs map[string]string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("exlive2mqtt probe", flag.ContinueOnError)
	fs.SetOutput(stderr)
	wait := fs.Duration("wait", defaultProbeWait, "how long to stay logged in and watch")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	capturePath := fs.String("capture", "", "write every frame, both ways, with its time to `FILE` (JSON lines, password masked)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: exlive2mqtt probe [flags]\n\nLogs in to the EXLIVE platform with the EXLIVE_* settings (no broker needed),\nwatches the session for a while, logs out and reports what the platform said\nand did. Exit status 0 when the login held, 1 when it did not.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return &ConfigError{[]string{err.Error()}}
	}
	if fs.NArg() > 0 {
		return &ConfigError{[]string{fmt.Sprintf("probe takes no arguments, got %q", fs.Args())}}
	}
	if *wait < time.Second || *wait > time.Hour {
		return &ConfigError{[]string{fmt.Sprintf("-wait %s: want 1s to 1h", *wait)}}
	}
	s, err := loadPlatformSettings(envs, os.ReadFile)
	if err != nil {
		return err
	}
	lc := logConfig{Level: "warn", Format: "console"} // the report is the output
	if v, ok := envs["LOG_LEVEL"]; ok {
		lc.Level = v
	}
	if v, ok := envs["LOG_FORMAT"]; ok {
		lc.Format = v
	}
	log := newLogger(lc, stderr).With().Str("component", "exlive").Logger()

	mask := newMasker(s.Exlive.Pass.Reveal())
	p := &prober{cfg: s.Exlive, wait: *wait, mask: mask}
	if *capturePath != "" {
		f, err := os.OpenFile(*capturePath, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
		if err != nil {
			return fmt.Errorf("probe: -capture: %w", err)
		}
		defer f.Close()
		p.capture = newCapture(f, mask, s.Exlive.Addr, s.Exlive.User, s.Exlive.Encoding, time.Now())
	}
	rep, failure := p.run(ctx, log)
	if p.capture != nil {
		if err := p.capture.flush(); err != nil {
			failure = errors.Join(failure, fmt.Errorf("probe: -capture: %w", err))
		}
		rep.Capture = *capturePath
	}
	var out string
	if *asJSON {
		b, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return err
		}
		out = string(b) + "\n"
	} else {
		out = rep.text()
	}
	fmt.Fprint(stdout, mask.String(out))
	if failure != nil {
		return errors.New(mask.String(failure.Error()))
	}
	return nil
}

// probeReport is what a probe found; -json prints it as it is.
type probeReport struct {
	Platform   string          `json:"platform"`
	User       string          `json:"user"`
	Started    time.Time       `json:"started"`
	WaitS      float64         `json:"wait_s"`
	Connect    probeStep       `json:"connect"`
	Login      probeLogin      `json:"login"`
	Encoding   probeEncoding   `json:"encoding"`
	Framing    probeFraming    `json:"framing"`
	Heartbeats probeHeartbeats `json:"heartbeats"`
	Groups     probeList       `json:"groups"`
	Vehicles   probeList       `json:"vehicles"`
	Positions  probePositions  `json:"positions"`
	Frames     probeFrames     `json:"frames"`
	Unknown    []probeUnknown  `json:"unknown_commands"`
	Logout     bool            `json:"logout_sent"`
	Held       bool            `json:"login_held"`
	HeldS      float64         `json:"held_s"`
	Result     string          `json:"result"`
	Capture    string          `json:"capture,omitempty"`
}

type probeStep struct {
	OK    bool    `json:"ok"`
	MS    float64 `json:"ms"`
	Error string  `json:"error,omitempty"`
}

type probeLogin struct {
	probeStep
	// Answer is the result word of the platform's 8000, as received.
	Answer string `json:"answer"`
	Sent   struct {
		Ver  string `json:"ver"`
		Type string `json:"type"`
		Mode string `json:"mode"`
	} `json:"sent"`
}

type probeEncoding struct {
	// Seen is gbk, utf-8, or ascii when no frame held text to tell by.
	Seen  string `json:"seen"`
	GBK   int    `json:"gbk_frames"`
	UTF8  int    `json:"utf8_frames"`
	ASCII int    `json:"ascii_frames"`
}

type probeFraming struct {
	// Between counts what came before each frame: "nothing", "CRLF", "LF",
	// "other" (other spaces or junk).
	Between   map[string]int `json:"between"`
	MultiLine int            `json:"multi_line_frames"`
}

type probeHeartbeats struct {
	EveryS   float64        `json:"every_s"`
	Sent     int            `json:"sent"`
	Answered int            `json:"answered"`
	Answers  map[string]int `json:"answers,omitempty"` // result word → count
	MedianMS float64        `json:"median_ms,omitempty"`
	MaxMS    float64        `json:"max_ms,omitempty"`
}

type probeList struct {
	Count    int      `json:"count"`
	First    []string `json:"first"`
	Complete bool     `json:"complete"` // the inventory was collected to its end
}

type probePosition struct {
	ID      string  `json:"id"`
	Code    string  `json:"code"`
	Lat     float64 `json:"lat"`
	Lng     float64 `json:"lng"`
	GPSTime string  `json:"gpstime"`
	Speed   string  `json:"veo"`
}

type probePositions struct {
	Count    int             `json:"count"`
	Vehicles int             `json:"vehicles"`
	First    []probePosition `json:"first"`
	// Counted over the first probeFieldSample positions.
	Examined   int            `json:"examined"`
	Empty      map[string]int `json:"empty_fields"`      // present, but "" or null
	Missing    map[string]int `json:"missing_fields"`    // of the specification, absent
	Extra      map[string]int `json:"extra_fields"`      // not in the specification
	Unreadable map[string]int `json:"unreadable_fields"` // present, but not what the field holds
	Datum      *probeDatum    `json:"datum,omitempty"`
}

// probeDatum compares lat/lng with lato/lngo, the raw fix some platforms
// send besides.
type probeDatum struct {
	Compared         int     `json:"compared"`
	MedianToRaw      float64 `json:"median_m_to_raw"`
	MedianToRawGCJ   float64 `json:"median_m_to_raw_as_gcj02"`
	LatLngLookLike   string  `json:"lat_lng_look_like"` // wgs84, gcj02 or unknown
	SuggestedSetting string  `json:"suggested_setting,omitempty"`
}

type probeFrames struct {
	Received int                       `json:"received"`
	Sent     int                       `json:"sent"`
	ByCmd    map[string]int            `json:"received_by_cmd"`
	Answers  map[string]map[string]int `json:"answers"` // answered cmd → result word → count
	Repaired int                       `json:"repaired"`
	Replaced int                       `json:"replaced"`
	Skipped  map[string]probeSkip      `json:"skipped"`
	Messages []string                  `json:"messages,omitempty"` // 1003 texts, the first few
}

type probeSkip struct {
	Count int    `json:"count"`
	First string `json:"first"`
}

type probeUnknown struct {
	Cmd   string `json:"cmd"`
	Count int    `json:"count"`
	Body  string `json:"first_body"`
}

// prober watches one connection: it is the session's Handler and Tap.
type prober struct {
	cfg     exlive.Config
	wait    time.Duration
	mask    *masker
	capture *capture

	mu         sync.Mutex
	rep        probeReport
	beatsSent  []time.Time // awaiting their answer, oldest first
	latencies  []time.Duration
	vehicleIDs map[string]struct{}
	datumTo    []float64 // metres from lat/lng to the raw fix
	datumToGCJ []float64 // metres from lat/lng to the raw fix as GCJ-02
	unknown    map[exlive.Cmd]*probeUnknown
}

func (p *prober) run(ctx context.Context, log zerolog.Logger) (probeReport, error) {
	p.rep = probeReport{
		Platform: p.cfg.Addr, User: p.cfg.User, Started: time.Now().UTC().Truncate(time.Millisecond), WaitS: p.wait.Seconds(),
		Framing:   probeFraming{Between: map[string]int{}},
		Frames:    probeFrames{ByCmd: map[string]int{}, Answers: map[string]map[string]int{}, Skipped: map[string]probeSkip{}},
		Positions: probePositions{Empty: map[string]int{}, Missing: map[string]int{}, Extra: map[string]int{}, Unreadable: map[string]int{}},
		Groups:    probeList{First: []string{}},
		Vehicles:  probeList{First: []string{}},
		Unknown:   []probeUnknown{},
	}
	p.rep.Positions.First = []probePosition{}
	p.vehicleIDs = make(map[string]struct{})
	p.unknown = make(map[exlive.Cmd]*probeUnknown)
	rep := &p.rep
	rep.Login.Sent.Ver, rep.Login.Sent.Type, rep.Login.Sent.Mode = p.cfg.LoginVer, p.cfg.LoginType, p.cfg.LoginMode
	// Heartbeats come more often than in the bridge, so that a short wait
	// sees some answered: the first at once, as the public clients of live
	// servers send it, then every quarter of the wait.
	beat := min(p.cfg.Heartbeat, max(p.wait/4, probeMinHeartbeat))
	rep.Heartbeats.EveryS = beat.Seconds()

	// The addresses of EXLIVE_ADDR in turn, as the bridge tries them: the
	// report is of the first that takes the connection.
	var (
		nc    net.Conn
		err   error
		start time.Time
	)
	addrs := p.cfg.Addrs()
	if len(addrs) == 0 {
		addrs = []string{p.cfg.Addr}
	}
	for _, addr := range addrs {
		start = time.Now()
		rep.Platform = addr
		if nc, err = exlive.Dial(ctx, addr); err == nil {
			break
		}
	}
	rep.Connect.MS = millis(time.Since(start))
	if err != nil {
		rep.Connect.Error = err.Error()
		rep.Result = "no connection"
		return p.finish(), fmt.Errorf("probe: cannot connect to %s: %w", p.cfg.Addr, err)
	}
	rep.Connect.OK = true
	if p.capture != nil {
		p.capture.connected(time.Now(), time.Since(start))
	}
	cfg := p.cfg
	cfg.Heartbeat = beat
	c := exlive.NewClient(nc, cfg, p, log)
	c.SetTap(p)

	start = time.Now()
	err = c.Login(ctx)
	rep.Login.MS = millis(time.Since(start))
	if err != nil {
		c.Close()
		p.closed(err)
		var refused *exlive.LoginError
		if errors.As(err, &refused) {
			rep.Login.Error = "refused"
			rep.Result = "login refused"
			return p.finish(), fmt.Errorf("probe: the platform refused the login: %q", refused.Result)
		}
		rep.Login.Error = err.Error()
		rep.Result = "no login"
		return p.finish(), fmt.Errorf("probe: login: %w", err)
	}
	rep.Login.OK = true
	loggedIn := time.Now()
	if err := c.Send(&exlive.Heartbeat{}); err != nil {
		log.Warn().Err(err).Msg("first heartbeat not sent")
	}
	wctx, cancel := context.WithTimeout(ctx, p.wait)
	err = c.Serve(wctx)
	cancel()
	held := time.Since(loggedIn)
	p.closed(err)

	p.mu.Lock()
	rep.HeldS = math.Round(held.Seconds()*10) / 10
	switch {
	case errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
		rep.Held, rep.Result = true, "ok"
	case ctx.Err() != nil:
		rep.Held, rep.Result = true, "interrupted"
	default:
		rep.Result = "session ended"
	}
	p.mu.Unlock()
	if !rep.Held {
		return p.finish(), fmt.Errorf("probe: the session ended after %.1fs: %w", held.Seconds(), err)
	}
	return p.finish(), nil
}

func (p *prober) closed(err error) {
	if p.capture == nil {
		return
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		err = nil // the probe's own end
	}
	p.capture.closed(time.Now(), err)
}

// finish completes the report from what was observed.
func (p *prober) finish() probeReport {
	p.mu.Lock()
	defer p.mu.Unlock()
	rep := p.rep
	e := &rep.Encoding
	switch {
	case e.GBK > 0:
		e.Seen = "gbk"
	case e.UTF8 > 0:
		e.Seen = "utf-8"
	default:
		e.Seen = "ascii"
	}
	if len(p.latencies) > 0 {
		ls := slices.Clone(p.latencies)
		slices.Sort(ls)
		rep.Heartbeats.MedianMS = millis(ls[len(ls)/2])
		rep.Heartbeats.MaxMS = millis(ls[len(ls)-1])
	}
	rep.Positions.Vehicles = len(p.vehicleIDs)
	if n := len(p.datumTo); n > 0 {
		d := &probeDatum{Compared: n, MedianToRaw: median(p.datumTo), MedianToRawGCJ: median(p.datumToGCJ), LatLngLookLike: "unknown"}
		switch {
		case d.MedianToRaw <= 5:
			d.LatLngLookLike = "wgs84"
			if p.cfg.Datum != datum.WGS84 {
				d.SuggestedSetting = "EXLIVE_DATUM=wgs84"
			}
		case d.MedianToRawGCJ <= 5:
			d.LatLngLookLike = "gcj02"
			if p.cfg.Datum != datum.GCJ02 {
				d.SuggestedSetting = "EXLIVE_DATUM=gcj02"
			}
		}
		rep.Positions.Datum = d
	}
	for _, u := range p.unknown {
		rep.Unknown = append(rep.Unknown, *u)
	}
	sort.Slice(rep.Unknown, func(i, j int) bool { return rep.Unknown[i].Cmd < rep.Unknown[j].Cmd })
	return rep
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return math.Round(s[len(s)/2]*10) / 10
}

// HandleMessage is part of exlive.Handler: the probe sees every frame by
// its tap instead.
func (p *prober) HandleMessage(exlive.Message) {}

// HandleState is part of exlive.Handler.
func (p *prober) HandleState(exlive.State) {}

// HandleSkip is part of exlive.Handler: the tap sees skips too.
func (p *prober) HandleSkip(*exlive.FrameError) {}

// HandleInventory notes that the inventory was collected to its end.
func (p *prober) HandleInventory(inv exlive.Inventory) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rep.Groups.Complete, p.rep.Vehicles.Complete = true, !inv.Truncated
}

// Sent is part of exlive.Tap.
func (p *prober) Sent(at time.Time, m exlive.Message, wire []byte) {
	if p.capture != nil {
		p.capture.Sent(at, m, wire)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rep.Frames.Sent++
	switch m.Cmd() {
	case exlive.CmdHeartbeat:
		p.rep.Heartbeats.Sent++
		p.beatsSent = append(p.beatsSent, at)
	case exlive.CmdLogout:
		p.rep.Logout = true
	}
}

// Received is part of exlive.Tap.
func (p *prober) Received(at time.Time, f exlive.Frame, m exlive.Message, err error) {
	if p.capture != nil {
		p.capture.Received(at, f, m, err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	rep := &p.rep
	var fe *exlive.FrameError
	if errors.As(err, &fe) {
		s := rep.Frames.Skipped[string(fe.Reason)]
		if s.Count == 0 {
			s.First = p.mask.String(fe.Error())
		}
		s.Count++
		rep.Frames.Skipped[string(fe.Reason)] = s
	}
	if f.Data == nil {
		return // bytes between frames
	}
	rep.Frames.Received++
	switch {
	case f.GBK:
		rep.Encoding.GBK++
	case !isASCII(f.Data):
		rep.Encoding.UTF8++
	default:
		rep.Encoding.ASCII++
	}
	if f.Repaired {
		rep.Frames.Repaired++
	}
	if f.Replaced {
		rep.Frames.Replaced++
	}
	p.framing(f.Wire)
	if m == nil {
		return
	}
	cmd := m.Cmd().String()
	rep.Frames.ByCmd[cmd]++
	switch m := m.(type) {
	case *exlive.Answer:
		answered := m.Command.String()
		if rep.Frames.Answers[answered] == nil {
			rep.Frames.Answers[answered] = map[string]int{}
		}
		rep.Frames.Answers[answered][m.Result]++
		switch m.Command {
		case exlive.CmdLogin:
			if rep.Login.Answer == "" {
				rep.Login.Answer = m.Result
			}
		case exlive.CmdHeartbeat:
			h := &rep.Heartbeats
			h.Answered++
			if h.Answers == nil {
				h.Answers = map[string]int{}
			}
			h.Answers[m.Result]++
			if len(p.beatsSent) > 0 {
				p.latencies = append(p.latencies, at.Sub(p.beatsSent[0]))
				p.beatsSent = p.beatsSent[1:]
			}
		}
	case *exlive.Group:
		rep.Groups.Count++
		if len(rep.Groups.First) < probeFirst {
			rep.Groups.First = append(rep.Groups.First, strings.TrimSpace(m.ID+" "+m.Name))
		}
	case *exlive.Vehicle:
		rep.Vehicles.Count++
		if len(rep.Vehicles.First) < probeFirst {
			rep.Vehicles.First = append(rep.Vehicles.First, strings.TrimSpace(m.ID+" "+m.Code))
		}
	case *exlive.Position:
		p.position(m, f.Data)
	case *exlive.TextMessage:
		if len(rep.Frames.Messages) < probeFirst {
			rep.Frames.Messages = append(rep.Frames.Messages, m.Msg)
		}
	case *exlive.Unknown:
		u := p.unknown[m.Command]
		if u == nil {
			body := m.Body
			if len(body) > probeUnknownBody {
				body = body[:probeUnknownBody]
			}
			u = &probeUnknown{Cmd: cmd, Body: string(body)}
			p.unknown[m.Command] = u
		}
		u.Count++
	}
}

// framing notes what came before a frame, and whether it spans lines.
func (p *prober) framing(wire []byte) {
	if wire == nil {
		return
	}
	i := strings.IndexByte(string(wire), '{')
	if i < 0 {
		return
	}
	lead := string(wire[:i])
	kind := "other"
	switch lead {
	case "":
		kind = "nothing"
	case "\r\n":
		kind = "CRLF"
	case "\n":
		kind = "LF"
	}
	p.rep.Framing.Between[kind]++
	if strings.ContainsAny(string(wire[i:]), "\r\n") {
		p.rep.Framing.MultiLine++
	}
}

// position notes one position, and looks at the fields of the first ones.
func (p *prober) position(m *exlive.Position, data []byte) {
	ps := &p.rep.Positions
	ps.Count++
	if len(p.vehicleIDs) < probeVehicleIDs {
		p.vehicleIDs[m.ID] = struct{}{}
	}
	var frame struct {
		Body map[string]json.RawMessage `json:"body"`
	}
	examine := ps.Examined < probeFieldSample
	if !examine && len(ps.First) >= probeFirst {
		return
	}
	if json.Unmarshal(data, &frame) != nil {
		return
	}
	text := func(k string) string {
		raw, ok := frame.Body[k]
		if !ok {
			return ""
		}
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return s
		}
		return string(raw)
	}
	if len(ps.First) < probeFirst {
		ps.First = append(ps.First, probePosition{ID: m.ID, Code: m.Code, Lat: m.Lat, Lng: m.Lng, GPSTime: text("gpstime"), Speed: text("veo")})
	}
	if !examine {
		return
	}
	ps.Examined++
	for k, raw := range frame.Body {
		if !slices.Contains(specPositionFields, k) {
			ps.Extra[k]++
		}
		if v := strings.TrimSpace(string(raw)); v == `""` || v == "null" {
			ps.Empty[k]++
		}
	}
	for _, k := range specPositionFields {
		if _, ok := frame.Body[k]; !ok {
			ps.Missing[k]++
		}
	}
	for _, name := range m.Invalid.Names() {
		ps.Unreadable[name]++
	}
	// A raw fix besides (lato/lngo): which datum lat/lng are in shows in
	// how far they lie from it.
	if len(p.datumTo) < probeDatumSample {
		rawLat, err1 := strconv.ParseFloat(strings.TrimSpace(text("lato")), 64)
		rawLng, err2 := strconv.ParseFloat(strings.TrimSpace(text("lngo")), 64)
		if err1 == nil && err2 == nil && (rawLat != 0 || rawLng != 0) {
			gLat, gLng := datum.WGS84ToGCJ02(rawLat, rawLng)
			p.datumTo = append(p.datumTo, metres(m.Lat, m.Lng, rawLat, rawLng))
			p.datumToGCJ = append(p.datumToGCJ, metres(m.Lat, m.Lng, gLat, gLng))
		}
	}
}

// metres is the distance between two points, good enough for a few km.
func metres(lat1, lng1, lat2, lng2 float64) float64 {
	const r = 6371000.0
	dLat := (lat2 - lat1) * math.Pi / 180
	dLng := (lng2 - lng1) * math.Pi / 180 * math.Cos((lat1+lat2)/2*math.Pi/180)
	return r * math.Hypot(dLat, dLng)
}

func isASCII(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return false
		}
	}
	return true
}

// text is the report for people: one subject a line, the word the platform
// used quoted as it came.
func (r probeReport) text() string {
	var b strings.Builder
	line := func(label, format string, args ...any) {
		fmt.Fprintf(&b, "%-11s %s\n", label, fmt.Sprintf(format, args...))
	}
	more := func(format string, args ...any) { fmt.Fprintf(&b, "%-11s %s\n", "", fmt.Sprintf(format, args...)) }
	fmt.Fprintf(&b, "exlive2mqtt probe of %s as %s, %s\n\n", r.Platform, r.User, r.Started.Format(time.RFC3339))
	if !r.Connect.OK {
		line("connect", "failed after %s: %s", ms(r.Connect.MS), r.Connect.Error)
		line("result", "FAILED: no connection")
		return b.String()
	}
	line("connect", "ok in %s", ms(r.Connect.MS))
	switch {
	case r.Login.OK:
		line("login", "accepted in %s: the platform answered %q", ms(r.Login.MS), r.Login.Answer)
	case r.Login.Answer != "":
		line("login", "REFUSED in %s: the platform answered %q", ms(r.Login.MS), r.Login.Answer)
	default:
		line("login", "FAILED after %s: %s", ms(r.Login.MS), r.Login.Error)
	}
	more("sent ver %q, type %q, mode %q", r.Login.Sent.Ver, r.Login.Sent.Type, r.Login.Sent.Mode)
	if !r.Login.OK {
		line("result", "FAILED: %s", r.Result)
		return b.String()
	}
	e := r.Encoding
	switch e.Seen {
	case "gbk":
		line("encoding", "GBK: %d of %d frames held text read as GB18030 (EXLIVE_ENCODING=gbk is exact for this platform)", e.GBK, r.Frames.Received)
	case "utf-8":
		line("encoding", "UTF-8: %d of %d frames held non-ASCII text, all valid UTF-8", e.UTF8, r.Frames.Received)
	default:
		line("encoding", "cannot tell: the %d frames received were all ASCII", r.Frames.Received)
	}
	line("framing", "%s", framingText(r.Framing))
	h := r.Heartbeats
	switch {
	case h.Answered > 0:
		line("heartbeats", "%d sent (every %gs), %d answered %s in %s median, %s at most", h.Sent, h.EveryS, h.Answered, wordCounts(h.Answers), ms(h.MedianMS), ms(h.MaxMS))
	default:
		line("heartbeats", "%d sent (every %gs), none answered: the bridge can notice a dead link only with EXLIVE_IDLE_TIMEOUT", h.Sent, h.EveryS)
	}
	list := func(label string, l probeList, noun string) {
		switch {
		case l.Count == 0 && l.Complete:
			line(label, "none listed")
			return
		case l.Count == 0:
			line(label, "none yet: the inventory was not complete when the wait ended (a longer -wait)")
			return
		}
		s := fmt.Sprintf("%d listed: %s", l.Count, strings.Join(l.First, ", "))
		if l.Count > len(l.First) {
			s += ", …"
		}
		if !l.Complete {
			s += " (the " + noun + " was still coming when the wait ended)"
		}
		line(label, "%s", s)
	}
	list("groups", r.Groups, "list")
	list("vehicles", r.Vehicles, "list")
	ps := r.Positions
	if ps.Count == 0 {
		line("positions", "none in %gs", r.HeldS)
	} else {
		line("positions", "%d in %gs from %d vehicles", ps.Count, r.HeldS, ps.Vehicles)
		for _, p := range ps.First {
			more("%s %s %.6f,%.6f %s veo %q", p.ID, p.Code, p.Lat, p.Lng, p.GPSTime, p.Speed)
		}
		more("fields left empty: %s", fieldCounts(ps.Empty, ps.Examined))
		if len(ps.Missing) > 0 {
			more("fields missing: %s", fieldCounts(ps.Missing, ps.Examined))
		}
		if len(ps.Extra) > 0 {
			more("fields beyond the specification: %s", fieldCounts(ps.Extra, ps.Examined))
		}
		if len(ps.Unreadable) > 0 {
			more("fields unreadable, left out: %s", fieldCounts(ps.Unreadable, ps.Examined))
		}
		if d := ps.Datum; d != nil {
			s := fmt.Sprintf("lat/lng lie %gm from lato/lngo (the raw fix), %gm from it in GCJ-02: they look %s", d.MedianToRaw, d.MedianToRawGCJ, d.LatLngLookLike)
			if d.SuggestedSetting != "" {
				s += "; set " + d.SuggestedSetting
			}
			more("%s", s)
		}
	}
	f := r.Frames
	line("frames", "%d received, %d sent; %d repaired, %d with bytes valid in no encoding", f.Received, f.Sent, f.Repaired, f.Replaced)
	if len(f.Skipped) == 0 {
		more("none skipped")
	}
	for _, reason := range sortedKeys(f.Skipped) {
		s := f.Skipped[reason]
		more("skipped %d %s, the first: %s", s.Count, reason, s.First)
	}
	var answers []string
	for _, cmd := range sortedKeys(f.Answers) {
		answers = append(answers, cmd+" "+wordCounts(f.Answers[cmd]))
	}
	if len(answers) > 0 {
		more("answers (8000): %s", strings.Join(answers, ", "))
	}
	for _, m := range f.Messages {
		more("message (1003): %q", m)
	}
	if len(r.Unknown) == 0 {
		line("unknown", "no unknown commands")
	}
	for _, u := range r.Unknown {
		line("unknown", "command %s ×%d, the first: %s", u.Cmd, u.Count, u.Body)
	}
	if r.Logout {
		line("logout", "sent")
	} else {
		line("logout", "not sent")
	}
	switch r.Result {
	case "ok":
		line("result", "OK: the login held for the whole %gs", r.WaitS)
	case "interrupted":
		line("result", "OK so far: the login held for %gs, until interrupted", r.HeldS)
	default:
		line("result", "FAILED: the session ended after %gs", r.HeldS)
	}
	if r.Capture != "" {
		line("capture", "%s", r.Capture)
	}
	return b.String()
}

func framingText(f probeFraming) string {
	if len(f.Between) == 0 {
		return "no frames"
	}
	var parts []string
	for _, k := range sortedKeys(f.Between) {
		name := map[string]string{"nothing": "back to back", "CRLF": "after CRLF", "LF": "after LF", "other": "after other bytes"}[k]
		parts = append(parts, fmt.Sprintf("%d %s", f.Between[k], name))
	}
	total := 0
	for _, n := range f.Between {
		total += n
	}
	return fmt.Sprintf("%s; %d of %d laid out over several lines", strings.Join(parts, ", "), f.MultiLine, total)
}

func ms(v float64) string {
	switch {
	case v < 10:
		return strconv.FormatFloat(v, 'f', 1, 64) + " ms"
	case v < 10_000:
		return strconv.FormatFloat(v, 'f', 0, 64) + " ms"
	}
	return strconv.FormatFloat(v/1000, 'f', 1, 64) + " s"
}

// wordCounts prints {"succeed": 3} as "succeed" ×3.
func wordCounts(m map[string]int) string {
	var parts []string
	for _, k := range sortedKeys(m) {
		parts = append(parts, fmt.Sprintf("%q ×%d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

func fieldCounts(m map[string]int, of int) string {
	if len(m) == 0 {
		return "none"
	}
	var parts []string
	for _, k := range sortedKeys(m) {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ") + fmt.Sprintf(" (of %d)", of)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
