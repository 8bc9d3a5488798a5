package events

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/exlive2mqtt/exlive2mqtt/geofence"
)

// t0 is the start of every test engine.
var t0 = time.Date(2024, 5, 1, 8, 0, 0, 0, time.UTC)

// pb builds a position of V1 in Shenzhen with a valid fix, sent and
// received sec seconds after t0.
type pb struct {
	p    Position
	recv time.Time
}

func at(sec int) pb {
	t := t0.Add(time.Duration(sec) * time.Second)
	return pb{p: Position{ID: "V1", Code: "粤B12345", Time: t, Lat: 22.6, Lng: 114, Valid: true, HasValid: true}, recv: t}
}

func (b pb) pos() *Position          { return &b.p }
func (b pb) id(id string) pb         { b.p.ID = id; return b }
func (b pb) speed(kmh float64) pb    { b.p.Speed, b.p.HasSpeed = kmh, true; return b }
func (b pb) alarm(on bool) pb        { b.p.Alarm, b.p.HasAlarm = on, true; return b }
func (b pb) cstate(s string) pb      { b.p.CState = s; return b }
func (b pb) loc(lat, lng float64) pb { b.p.Lat, b.p.Lng = lat, lng; return b }
func (b pb) invalidFix() pb          { b.p.Valid = false; return b }
func (b pb) noTime() pb              { b.p.Time = time.Time{}; return b }
func (b pb) received(sec int) pb     { b.recv = t0.Add(time.Duration(sec) * time.Second); return b }
func (b pb) code(code string) pb     { b.p.Code = code; return b }
func (b pb) validUnknown() pb        { b.p.HasValid = false; return b }
func (b pb) speedUnknown() pb        { b.p.HasSpeed = false; return b }
func (b pb) alarmUnknown() pb        { b.p.HasAlarm = false; return b }

// step is one call to the engine and what it should say, each thing it
// says in the form describe gives, joined by "; ".
type step struct {
	do   func(*Engine) []string
	want string
}

func observe(b pb, want string) step {
	return step{func(e *Engine) []string {
		evs, u := e.Observe(nil, &b.p, b.recv)
		return describe(evs, u)
	}, want}
}

func sweep(sec int, want string) step {
	return step{func(e *Engine) []string {
		var out []string
		e.Sweep(t0.Add(time.Duration(sec)*time.Second), func(ev Event) {
			s := "availability=offline " + ev.ID
			if !ev.Initial {
				s += "; offline"
			}
			out = append(out, s)
		})
		// The order of vehicles in one sweep is the wheel's.
		slices.Sort(out)
		return out
	}, want}
}

func known(id string, sec int) step {
	return step{func(e *Engine) []string {
		e.Known(id, "", t0.Add(time.Duration(sec)*time.Second))
		return nil
	}, ""}
}

func reload(s *geofence.Set) step {
	return step{func(e *Engine) []string { e.SetFences(s); return nil }, ""}
}

func describe(evs []Event, u Update) []string {
	var out []string
	if u.Online {
		out = append(out, "availability=online")
	}
	if u.FencesChanged {
		out = append(out, "geofences=["+strings.Join(u.Fences, ",")+"]")
	}
	for _, e := range evs {
		s := e.Type.String()
		switch e.Type {
		case Overspeed:
			s += " " + num(e.Speed) + ">" + num(e.Limit)
		case Moving:
			s += " " + num(e.Speed)
		case Stopped:
			s += " since " + strconv.Itoa(int(e.Since.Sub(t0).Seconds()))
		case GeofenceEnter, GeofenceExit:
			s += " " + e.Geofence
		}
		out = append(out, s)
	}
	return out
}

func num(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

func parseFences(t testing.TB, features ...string) *geofence.Set {
	t.Helper()
	s, err := geofence.Parse("test.json", []byte(`{"type":"FeatureCollection","features":[`+strings.Join(features, ",")+`]}`))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// box is a Polygon feature from lng0,lat0 to lng1,lat1.
func box(props string, lng0, lat0, lng1, lat1 float64) string {
	return fmt.Sprintf(`{"type":"Feature","properties":%s,"geometry":{"type":"Polygon","coordinates":[[[%v,%v],[%v,%v],[%v,%v],[%v,%v],[%v,%v]]]}}`,
		props, lng0, lat0, lng1, lat0, lng1, lat1, lng0, lat1, lng0, lat0)
}

func testConfig() Config {
	c := Defaults()
	c.OverspeedKmh = 80
	return c
}

func TestEvents(t *testing.T) {
	// Fences in Shenzhen: a depot; a two-part yard; a school zone at 30
	// km/h inside a district at 50; a motorway at 120; a circle of 100 m;
	// and a fence only for V1.
	fences := parseFences(t,
		box(`{"name":"depot"}`, 113.99, 22.59, 114.01, 22.61),
		`{"type":"Feature","properties":{"name":"yard"},"geometry":{"type":"MultiPolygon","coordinates":[
			[[[114.1,22.5],[114.11,22.5],[114.11,22.51],[114.1,22.51],[114.1,22.5]]],
			[[[114.2,22.5],[114.21,22.5],[114.21,22.51],[114.2,22.51],[114.2,22.5]]]]}}`,
		box(`{"name":"district","speed_limit":50}`, 113.5, 22.0, 113.7, 22.2),
		box(`{"name":"school","speed_limit":30}`, 113.6, 22.1, 113.61, 22.11),
		box(`{"name":"motorway","speed_limit":120}`, 113.0, 23.0, 113.5, 23.01),
		`{"type":"Feature","properties":{"name":"gate","radius":100},"geometry":{"type":"Point","coordinates":[114.5,22.5]}}`,
		box(`{"name":"v1 only","vehicles":["V1"]}`, 114.8, 22.8, 114.9, 22.9),
	)
	// 100 m north of the gate's centre is 0.000899322 degrees of latitude.
	const gateLat = 22.5
	const dLat100 = 100 / 6378137.0 * 180 / 3.141592653589793

	for _, tc := range []struct {
		name   string
		config func(*Config)
		fences *geofence.Set
		steps  []step
	}{
		{name: "first position only tells what is known", steps: []step{
			observe(at(0).speed(100).alarm(true).cstate("ACC开"), "availability=online"),
			observe(at(10).speed(100).alarm(true).cstate("ACC开"), ""),
		}},
		{name: "first position with fences", fences: fences, steps: []step{
			observe(at(0).loc(22.6, 114), "availability=online; geofences=[depot]"),
			observe(at(10).loc(22.6, 114), ""),
			observe(at(20).loc(22.3, 114.3), "geofences=[]; geofence_exit depot"),
		}},
		{name: "first position outside every fence", fences: fences, steps: []step{
			observe(at(0).loc(22.3, 114.3), "availability=online; geofences=[]"),
			observe(at(10).loc(22.3, 114.3), ""),
		}},
		{name: "alarm", steps: []step{
			observe(at(0).alarm(false), "availability=online"),
			observe(at(10).alarm(true), "alarm_on"),
			observe(at(20).alarm(true), ""),
			observe(at(30).alarmUnknown(), ""),
			observe(at(40).alarm(false), "alarm_off"),
			observe(at(50).alarm(false), ""),
		}},
		{name: "alarm first known later is not an event", steps: []step{
			observe(at(0), "availability=online"),
			observe(at(10).alarm(true), ""),
			observe(at(20).alarm(false), "alarm_off"),
		}},
		{name: "alarm on an invalid fix counts", steps: []step{
			observe(at(0).alarm(false), "availability=online"),
			observe(at(10).alarm(true).invalidFix(), "alarm_on"),
		}},
		{name: "ignition", steps: []step{
			observe(at(0).cstate("ACC关"), "availability=online"),
			observe(at(10).cstate("ACC开"), "ignition_on"),
			observe(at(20).cstate("ACC开,定位"), ""),
			observe(at(30).cstate("定位"), ""),
			observe(at(40).cstate(""), ""),
			observe(at(50).cstate("GPS;acc off"), "ignition_off"),
			observe(at(60).cstate("ACC ON;GPS"), "ignition_on"),
			observe(at(70).cstate("Acc On"), ""),
			observe(at(80).cstate("ACC:OFF"), "ignition_off"),
		}},
		{name: "overspeed hysteresis", steps: []step{
			observe(at(0).speed(70), "availability=online"),
			observe(at(10).speed(90), "overspeed 90>80"),
			observe(at(20).speed(95), ""),
			observe(at(30).speedUnknown(), ""),
			observe(at(40).speed(85), ""),
			observe(at(50).speed(80), ""), // back to the limit: the next one above counts
			observe(at(60).speed(81), "overspeed 81>80"),
			observe(at(70).speed(79.9), ""),
			observe(at(80).speed(100), "overspeed 100>80"),
		}},
		{name: "overspeed on the first position is known, not an event", steps: []step{
			observe(at(0).speed(120), "availability=online"),
			observe(at(10).speed(110), ""),
			observe(at(20).speed(60), ""),
			observe(at(30).speed(90), "overspeed 90>80"),
		}},
		{name: "overspeed off", config: func(c *Config) { c.OverspeedKmh = 0 }, steps: []step{
			observe(at(0).speed(0), "availability=online"),
			observe(at(10).speed(300), "moving 300"),
		}},
		{name: "overspeed ignores an invalid fix", steps: []step{
			observe(at(0).speed(60), "availability=online"),
			observe(at(10).speed(200).invalidFix(), ""),
			observe(at(20).speed(90), "overspeed 90>80"),
		}},
		{name: "fence speed limits: the lowest of the fences a vehicle is in", fences: fences, steps: []step{
			observe(at(0).loc(22.15, 113.55).speed(45), "availability=online; geofences=[district]"),
			observe(at(10).loc(22.15, 113.55).speed(55), "overspeed 55>50"),
			observe(at(20).loc(22.105, 113.605).speed(55), "geofences=[district,school]; geofence_enter school"),
			observe(at(30).loc(22.105, 113.605).speed(25), ""),
			observe(at(40).loc(22.105, 113.605).speed(35), "overspeed 35>30"),
			observe(at(50).loc(22.15, 113.55).speed(35), "geofences=[district]; geofence_exit school"),
			observe(at(60).loc(22.3, 114.3).speed(70), "geofences=[]; geofence_exit district"),
			observe(at(70).loc(22.3, 114.3).speed(85), "overspeed 85>80"),
		}},
		{name: "a fence's limit overrides a lower global one", fences: fences, steps: []step{
			observe(at(0).loc(23.005, 113.2).speed(100), "availability=online; geofences=[motorway]"),
			observe(at(10).loc(23.005, 113.2).speed(119), ""),
			observe(at(20).loc(23.005, 113.2).speed(121), "overspeed 121>120"),
			observe(at(30).loc(23.02, 113.2).speed(100), "geofences=[]; geofence_exit motorway"),
		}},
		{name: "a fence's limit applies with the global one off", config: func(c *Config) { c.OverspeedKmh = 0 }, fences: fences, steps: []step{
			observe(at(0).loc(22.3, 114.3).speed(100), "availability=online; geofences=[]"),
			observe(at(10).loc(22.105, 113.605).speed(40), "geofences=[district,school]; geofence_enter district; geofence_enter school; overspeed 40>30"),
		}},
		{name: "entering at speed: enter before overspeed", fences: fences, steps: []step{
			observe(at(0).loc(22.3, 114.3).speed(60), "availability=online; geofences=[]"),
			observe(at(10).loc(22.15, 113.55).speed(60), "geofences=[district]; geofence_enter district; overspeed 60>50"),
		}},
		{name: "MultiPolygon: from one part to the other is no event", fences: fences, steps: []step{
			observe(at(0).loc(22.3, 114.3), "availability=online; geofences=[]"),
			observe(at(10).loc(22.505, 114.105), "geofences=[yard]; geofence_enter yard"),
			observe(at(20).loc(22.505, 114.205), ""),
			observe(at(30).loc(22.505, 114.15), "geofences=[]; geofence_exit yard"),
			observe(at(40).loc(22.505, 114.205), "geofences=[yard]; geofence_enter yard"),
		}},
		{name: "circle boundary", fences: fences, steps: []step{
			observe(at(0).loc(gateLat+dLat100*1.01, 114.5), "availability=online; geofences=[]"),
			observe(at(10).loc(gateLat+dLat100*0.99, 114.5), "geofences=[gate]; geofence_enter gate"),
			observe(at(20).loc(gateLat-dLat100*0.99, 114.5), ""),
			observe(at(30).loc(gateLat-dLat100*1.01, 114.5), "geofences=[]; geofence_exit gate"),
		}},
		{name: "a fence for other vehicles", fences: fences, steps: []step{
			observe(at(0).id("V2").loc(22.3, 114.3), "availability=online; geofences=[]"),
			observe(at(10).id("V2").loc(22.85, 114.85), ""),
			observe(at(20).loc(22.3, 114.3), "availability=online; geofences=[]"),
			observe(at(30).loc(22.85, 114.85), "geofences=[v1 only]; geofence_enter v1 only"),
		}},
		{name: "an invalid fix or 0,0 does not move a vehicle", fences: fences, steps: []step{
			observe(at(0).loc(22.6, 114), "availability=online; geofences=[depot]"),
			observe(at(10).loc(22.3, 114.3).invalidFix(), ""),
			observe(at(20).loc(0, 0).validUnknown(), ""),
			observe(at(30).loc(22.3, 114.3).validUnknown(), "geofences=[]; geofence_exit depot"),
		}},
		{name: "geofences first known at the first fix", fences: fences, steps: []step{
			observe(at(0).loc(22.6, 114).invalidFix(), "availability=online"),
			observe(at(10).loc(22.6, 114), "geofences=[depot]"),
		}},
		{name: "reloaded fences: leave what is gone, enter what is new", fences: fences, steps: []step{
			observe(at(0).loc(22.6, 114), "availability=online; geofences=[depot]"),
			reload(parseFences(t, box(`{"name":"depot 2"}`, 113.9, 22.5, 114.1, 22.7), box(`{"name":"depot"}`, 113.99, 22.59, 114.01, 22.61))),
			observe(at(10).loc(22.6, 114), "geofences=[depot,depot 2]; geofence_enter depot 2"),
			reload(parseFences(t, box(`{"name":"depot 2"}`, 113.9, 22.5, 114.1, 22.7))),
			observe(at(20).loc(22.6, 114), "geofences=[depot 2]; geofence_exit depot"),
			reload(nil),
			observe(at(30).loc(22.6, 114), "geofences=[]; geofence_exit depot 2"),
			observe(at(40).loc(22.6, 114), ""),
		}},
		{name: "moving and stopped", steps: []step{
			observe(at(0).speed(0), "availability=online"),
			observe(at(10).speed(4), ""),
			observe(at(20).speed(5), ""), // at the threshold is not above it
			observe(at(30).speed(30), "moving 30"),
			observe(at(40).speed(2), ""),
			observe(at(100).speed(0), ""),
			observe(at(200).speed(40), ""), // moving again: the stop is over
			observe(at(210).speed(3), ""),
			observe(at(389).speed(1), ""),
			observe(at(390).speed(0), "stopped since 210"),
			observe(at(600).speed(0), ""),
			observe(at(610).speed(6), "moving 6"),
		}},
		{name: "moving on the first position is known, not an event", steps: []step{
			observe(at(0).speed(50), "availability=online"),
			observe(at(10).speed(0), ""),
			observe(at(190).speed(0), "stopped since 10"),
		}},
		{name: "stopped at once with EVENT_STOPPED_AFTER=0", config: func(c *Config) { c.StoppedAfter = 0 }, steps: []step{
			observe(at(0).speed(50), "availability=online"),
			observe(at(10).speed(0), "stopped since 10"),
		}},
		{name: "moving and stopped off", config: func(c *Config) { c.MovingKmh = 0 }, steps: []step{
			observe(at(0).speed(0), "availability=online"),
			observe(at(10).speed(50), ""),
			observe(at(300).speed(0), ""),
		}},
		{name: "offline and online again", steps: []step{
			observe(at(0), "availability=online"),
			sweep(300, ""),
			sweep(600, ""), // silent for exactly 10m: not yet
			sweep(601, "availability=offline V1; offline"),
			sweep(700, ""),
			observe(at(700), "availability=online; online"),
			observe(at(710), ""),
			sweep(1310, ""),
			sweep(1311, "availability=offline V1; offline"),
			observe(at(1400), "availability=online; online"),
		}},
		{name: "a position within the silence pushes offline back", steps: []step{
			observe(at(0), "availability=online"),
			observe(at(500), ""),
			sweep(601, ""),
			sweep(1100, ""),
			sweep(1101, "availability=offline V1; offline"),
		}},
		{name: "a late sweep decides at once", steps: []step{
			observe(at(0), "availability=online"),
			observe(at(0).id("V2"), "availability=online"),
			sweep(5000, "availability=offline V1; offline; availability=offline V2; offline"),
			sweep(5001, ""),
		}},
		{name: "offline off", config: func(c *Config) { c.OfflineAfter = 0 }, steps: []step{
			observe(at(0), "availability=online"),
			known("V2", 0),
			sweep(100000, ""),
			observe(at(100000), ""),
		}},
		{name: "listed, never heard from: offline that long after it is listed, not an event", steps: []step{
			known("V2", 0),
			observe(at(600), "availability=online"),
			sweep(601, "availability=offline V2"),
			sweep(1201, "availability=offline V1; offline"),
			observe(at(1300).id("V2"), "availability=online"),
			observe(at(1310).id("V2").alarm(true), ""),
			sweep(1911, "availability=offline V2; offline"),
		}},
		{name: "listed, heard before the deadline", steps: []step{
			known("V1", 0),
			observe(at(300), "availability=online"),
			sweep(601, ""),
			sweep(901, "availability=offline V1; offline"),
			known("V1", 1000), // listed again: no new deadline
			sweep(5000, ""),
		}},
		{name: "stale positions keep a vehicle online and change nothing else", fences: fences, steps: []step{
			observe(at(100).loc(22.6, 114).alarm(false).speed(10), "availability=online; geofences=[depot]"),
			observe(at(50).received(110).loc(22.3, 114.3).alarm(true).speed(0).cstate("ACC关"), ""),
			observe(at(100).received(120).alarm(true), "alarm_on"), // the same second is not stale
			observe(at(60).received(650), ""),
			sweep(721, ""),
			sweep(1251, "availability=offline V1; offline"),
			observe(at(90).received(1300), "availability=online; online"),
			observe(at(1300).loc(22.3, 114.3).alarm(false), "geofences=[]; alarm_off; geofence_exit depot"),
		}},
		{name: "positions without gpstime are never stale", steps: []step{
			observe(at(100).alarm(false), "availability=online"),
			observe(at(0).noTime().received(110).alarm(true), "alarm_on"),
			observe(at(105).received(120).alarm(false), "alarm_off"),
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := testConfig()
			if tc.config != nil {
				tc.config(&c)
			}
			if err := c.Validate(); err != nil {
				t.Fatal(err)
			}
			e := New(c, Options{Fences: tc.fences, Start: t0})
			for i, s := range tc.steps {
				if got := strings.Join(s.do(e), "; "); got != s.want {
					t.Fatalf("step %d:\n got %s\nwant %s", i, got, s.want)
				}
			}
		})
	}
}

func TestEventFields(t *testing.T) {
	e := New(testConfig(), Options{Start: t0})
	e.Observe(nil, at(0).speed(10).pos(), at(0).recv)
	p := at(60).speed(95).code("粤B99999").loc(22.61, 114.02)
	p.p.Time = p.p.Time.In(time.FixedZone("CST", 8*3600))
	evs, _ := e.Observe(nil, &p.p, p.recv.Add(2*time.Second))
	if len(evs) != 1 {
		t.Fatalf("events %v, want overspeed", describe(evs, Update{}))
	}
	ev := evs[0]
	want := Event{Type: Overspeed, ID: "V1", Code: "粤B99999", Time: p.p.Time, Lat: 22.61, Lng: 114.02, HasLocation: true, Speed: 95, Limit: 80}
	if ev != want {
		t.Errorf("event\n got %+v\nwant %+v", ev, want)
	}
	// A position without a code keeps the one known.
	evs, _ = e.Observe(nil, at(70).speed(50).code("").pos(), at(70).recv)
	_ = evs
	var off *Event
	e.Sweep(t0.Add(time.Hour), func(ev Event) { off = &ev })
	want = Event{Type: Offline, ID: "V1", Code: "粤B99999", Time: t0.Add(time.Hour), Lat: 22.6, Lng: 114, HasLocation: true, Since: t0.Add(70 * time.Second)}
	if off == nil || *off != want {
		t.Errorf("offline\n got %+v\nwant %+v", off, want)
	}
}

func TestStatusAndStats(t *testing.T) {
	fences := parseFences(t, box(`{"name":"depot"}`, 113.99, 22.59, 114.01, 22.61))
	e := New(testConfig(), Options{Start: t0, Fences: fences, MaxVehicles: 2})
	e.Known("V9", "", t0)
	e.Observe(nil, at(5).pos(), at(5).recv.Add(300*time.Millisecond))
	st, ok := e.Status("V1")
	if want := (Status{Online: true, Heard: true, LastSeen: t0.Add(5 * time.Second), Geofences: []string{"depot"}}); !ok || !statusEqual(st, want) {
		t.Errorf("Status(V1) = %+v, %v; want %+v", st, ok, want)
	}
	if st, ok := e.Status("V9"); !ok || !statusEqual(st, Status{}) {
		t.Errorf("Status(V9) = %+v, %v; want nothing known", st, ok)
	}
	if _, ok := e.Status("V3"); ok {
		t.Error("Status(V3) of a vehicle never seen: ok")
	}
	// Full: V3 raises nothing, and is counted.
	evs, u := e.Observe(nil, at(10).id("V3").pos(), at(10).recv)
	e.Known("V4", "", t0)
	if len(evs) != 0 || u.Online {
		t.Errorf("a vehicle past MaxVehicles: %v", describe(evs, u))
	}
	e.Observe(nil, at(1).pos(), at(1).recv.Add(time.Minute)) // stale
	if got, want := e.Stats(), (Stats{Vehicles: 2, Online: 1, Stale: 1, Full: 2}); got != want {
		t.Errorf("Stats() = %+v, want %+v", got, want)
	}
	e.Sweep(t0.Add(time.Hour), func(Event) {})
	if got := e.Stats().Online; got != 0 {
		t.Errorf("Online after the sweep = %d, want 0", got)
	}
	if e.Fences() != fences {
		t.Error("Fences() is not the set given")
	}
}

func statusEqual(a, b Status) bool {
	return a.Online == b.Online && a.Heard == b.Heard && a.LastSeen.Equal(b.LastSeen) && slices.Equal(a.Geofences, b.Geofences)
}

func TestObserveIgnoresNoID(t *testing.T) {
	e := New(testConfig(), Options{Start: t0})
	evs, u := e.Observe(nil, at(0).id("").pos(), t0)
	e.Known("", "x", t0)
	if len(evs) != 0 || u.Online || e.Stats().Vehicles != 0 {
		t.Errorf("a position without an id: %v, %d vehicles", describe(evs, u), e.Stats().Vehicles)
	}
}

func TestObserveAllocatesNothing(t *testing.T) {
	fences := parseFences(t, box(`{"name":"depot"}`, 113.99, 22.59, 114.01, 22.61))
	e := New(testConfig(), Options{Start: t0, Fences: fences})
	p := at(0).speed(30).alarm(false).cstate("ACC开")
	dst := make([]Event, 0, 8)
	e.Observe(dst, &p.p, p.recv)
	sec := 0
	allocs := testing.AllocsPerRun(1000, func() {
		sec++
		q := p
		q.p.Time = t0.Add(time.Duration(sec) * time.Second)
		q.p.Speed = float64(20 + sec%80) // overspeed and back, no allocation
		dst, _ = e.Observe(dst[:0], &q.p, q.p.Time)
	})
	if allocs != 0 {
		t.Errorf("Observe allocates %v times per position", allocs)
	}
}

// TestMembershipsAreShared checks that vehicles in the same fences share
// one list of names, and that names holding any character do not mix.
func TestMembershipsAreShared(t *testing.T) {
	fences := parseFences(t,
		box(`{"name":"a\u0000b","vehicles":["V1","V2"]}`, 113.9, 22.5, 114.1, 22.7),
		box(`{"name":"c","vehicles":["V1","V2"]}`, 113.9, 22.5, 114.1, 22.7),
		box(`{"name":"a","vehicles":["V3"]}`, 113.9, 22.5, 114.1, 22.7),
		box(`{"name":"b\u0000c","vehicles":["V3"]}`, 113.9, 22.5, 114.1, 22.7),
	)
	e := New(testConfig(), Options{Start: t0, Fences: fences})
	_, u1 := e.Observe(nil, at(0).pos(), t0)
	_, u2 := e.Observe(nil, at(0).id("V2").pos(), t0)
	_, u3 := e.Observe(nil, at(0).id("V3").pos(), t0)
	if want := []string{"a\x00b", "c"}; !slices.Equal(u1.Fences, want) || !slices.Equal(u2.Fences, want) {
		t.Fatalf("V1 in %q, V2 in %q; want %q", u1.Fences, u2.Fences, want)
	}
	if &u1.Fences[0] != &u2.Fences[0] {
		t.Error("V1 and V2, in the same fences, do not share their list")
	}
	// Joined with NUL between them, both lists would be "a\x00b\x00c".
	if want := []string{"a", "b\x00c"}; !slices.Equal(u3.Fences, want) {
		t.Errorf("V3 in %q, want %q", u3.Fences, want)
	}
}

// TestSlot: Observe sets a position's Slot, takes the vehicle's back without
// a look-up, and finds out one that is not the vehicle's.
func TestSlot(t *testing.T) {
	e := New(testConfig(), Options{Start: t0})
	a, b := at(0).alarm(false).pos(), at(0).id("V2").alarm(false).pos()
	e.Observe(nil, a, t0)
	e.Observe(nil, b, t0)
	if a.Slot <= 0 || b.Slot <= 0 || a.Slot == b.Slot {
		t.Fatalf("slots %d, %d", a.Slot, b.Slot)
	}
	for k, slot := range []int32{a.Slot, b.Slot, 0, -5, 1 << 20} {
		on := at(10*k + 1).alarm(true)
		on.p.Slot = slot
		evs, _ := e.Observe(nil, &on.p, on.recv)
		if len(evs) != 1 || evs[0].Type != AlarmOn || evs[0].ID != "V1" || on.p.Slot != a.Slot {
			t.Errorf("slot %d: %v, slot now %d, want V1's alarm_on and slot %d", slot, evs, on.p.Slot, a.Slot)
		}
		off := at(10*k + 2).alarm(false)
		e.Observe(nil, &off.p, off.recv) // back to no alarm
	}
	if st := e.Stats(); st.Vehicles != 2 {
		t.Errorf("%d vehicles, want 2", st.Vehicles)
	}
}

// TestLastSeenIsTheArrivalSecond: an offline event's last_seen is when the
// last position came, rounded down to its second as the position payload's
// received is, whatever fraction of a second the engine started at (CI saw
// it a second and more early with an engine started at .9 s).
func TestLastSeenIsTheArrivalSecond(t *testing.T) {
	c := testConfig()
	c.OfflineAfter = time.Second
	start := time.Date(2026, 12, 3, 0, 37, 25, 900_000_000, time.UTC)
	e := New(c, Options{Start: start})
	arrived := start.Add(2*time.Second + 50*time.Millisecond) // 27.95
	e.Observe(nil, &Position{ID: "V1", Time: arrived}, arrived)
	var got []Event
	e.Sweep(arrived.Add(3*time.Second), func(ev Event) { got = append(got, ev) })
	if len(got) != 1 || got[0].Type != Offline {
		t.Fatalf("sweep gave %+v, want one offline event", got)
	}
	if want := arrived.Truncate(time.Second); !got[0].Since.Equal(want) {
		t.Errorf("last_seen %s, want %s", got[0].Since.Format(time.RFC3339Nano), want.Format(time.RFC3339Nano))
	}
}
