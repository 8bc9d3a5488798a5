//go:build unix

package bridge

import (
	"bytes"
	"context"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/exlive2mqtt/exlive2mqtt/events"
	"github.com/exlive2mqtt/exlive2mqtt/exlive"
	"github.com/exlive2mqtt/exlive2mqtt/exlive/exlivesim"
	"github.com/exlive2mqtt/exlive2mqtt/internal/brokertest"
	"github.com/exlive2mqtt/exlive2mqtt/mqtt"
	"github.com/exlive2mqtt/exlive2mqtt/opt"
	"github.com/exlive2mqtt/exlive2mqtt/topic"
	"github.com/rs/zerolog"
	"golang.org/x/text/encoding/simplifiedchinese"
)

// The hot path of the bridge, one position at a time: see BENCHMARKS.md for
// what each costs and for the load tool that measures the whole program.

// cpuPerOp reports the process's CPU time per iteration (user and
// system, every thread: GC included) as cpu-ns/op, measured from its call
// to the returned function's, which is to be deferred right before the
// loop. On a machine shared with other work, ns/op counts the time the
// benchmark waited for a core; cpu-ns/op does not.
func cpuPerOp(b *testing.B) func() {
	start := cpuNow()
	return func() { b.ReportMetric(float64(cpuNow()-start)/float64(max(b.N, 1)), "cpu-ns/op") }
}

func cpuNow() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// benchFleet is positions of n vehicles as the simulated platform sends
// them, already decoded.
func benchFleet(b *testing.B, n int) []exlive.Position {
	b.Helper()
	loc, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		b.Fatal(err)
	}
	ps := make([]exlive.Position, n)
	for i := range ps {
		ps[i] = exlive.Position{
			ID: "V" + strconv.Itoa(i+1), Code: "沪A" + strconv.Itoa(10000+i),
			Lat: 31.230416 + float64(i)*1e-4, Lng: 121.473701 - float64(i)*1e-4,
			Speed: opt.Some(42.5), Direction: opt.Some(270.0),
			Time:  opt.Some(time.Date(2011, 11, 1, 12, 38, 39, 0, loc)),
			Valid: opt.Some(true), Alarm: opt.Some(false),
			Fuel: opt.Some(35.2), Mileage: opt.Some(123456.7),
			WState: "1700000000123456789", CState: "ACC开",
			PosInfo: "上海市黄浦区人民大道",
		}
	}
	return ps
}

// benchBridge is a Bridge whose MQTT client is never started: Publish
// queues, and the queue drops its oldest message once full, so position()
// is measured up to the client's queue and nothing else runs.
func benchBridge(b testing.TB, url string) *Bridge {
	b.Helper()
	// Events as the program runs them by default: availability, moving
	// and stopped, no geofences.
	return benchBridgeEvents(b, url, events.Defaults())
}

func benchBridgeEvents(b testing.TB, url string, ev events.Config) *Bridge {
	b.Helper()
	ex := exlive.Defaults()
	ex.Addr, ex.User, ex.Pass = "127.0.0.1:1", "u", "p"
	if err := ex.Validate(); err != nil {
		b.Fatal(err)
	}
	mq := mqtt.Defaults()
	mq.URL = url
	mq.ClientID = brokertest.ClientID(b)
	mq.TopicPrefix = brokertest.Prefix(b)
	mq.QueueLimit = 4096
	if err := mq.Validate(nil); err != nil {
		b.Fatal(err)
	}
	br, err := New(Options{Bridge: Defaults(), Exlive: ex, MQTT: mq, Log: zerolog.Nop(), Version: "bench",
		OwnTracks: OwnTracksConfig{User: "exlive"}, Hass: HassConfig{Prefix: "homeassistant"}, Events: ev})
	if err != nil {
		b.Fatal(err)
	}
	return br
}

// BenchmarkPosition is position(): metrics, the vehicle registry, the
// payload, the copy the MQTT client keeps, and Publish into its queue.
// One allocation is inherent: paho keeps the payload slice until the
// broker has it, so each message needs its own.
func BenchmarkPosition(b *testing.B) {
	for _, vehicles := range []int{1000, 100_000} {
		b.Run(strconv.Itoa(vehicles)+"-vehicles", func(b *testing.B) {
			benchPositions(b, benchBridge(b, "tcp://127.0.0.1:1"), benchFleet(b, vehicles))
		})
	}
}

// benchPositions measures br's position() over the fleet ps in turn, once
// every vehicle is registered: the steady state.
func benchPositions(b *testing.B, br *Bridge, ps []exlive.Position) {
	for i := range ps {
		br.feed.position(&ps[i])
	}
	b.ReportAllocs()
	i := 0
	defer cpuPerOp(b)()
	for b.Loop() {
		br.feed.position(&ps[i])
		if i++; i == len(ps) {
			i = 0
		}
	}
}

// BenchmarkPositionEvents is position() of 100 000 vehicles with every
// EVENT_ and VEHICLE_ setting 0 and at their defaults: the difference is
// what the default events (availability, moving and stopped) cost a
// position in the bridge. The engine runs in both (it keeps each vehicle's
// state for the status page); alone it is events BenchmarkObserve.
func BenchmarkPositionEvents(b *testing.B) {
	for _, on := range []bool{false, true} {
		b.Run(map[bool]string{false: "off", true: "defaults"}[on], func(b *testing.B) {
			ev := events.Config{}
			if on {
				ev = events.Defaults()
			}
			benchPositions(b, benchBridgeEvents(b, "tcp://127.0.0.1:1", ev), benchFleet(b, 100_000))
		})
	}
}

// BenchmarkParseRequest is a request read from its MQTT payload with the
// bounds on its strings (docs/security.md): a command, a position upload,
// an OwnTracks location, and a command whose request_id is past its
// bound, which is refused.
func BenchmarkParseRequest(b *testing.B) {
	long := bytes.Repeat([]byte("r"), 4096)
	for _, tc := range []struct {
		name    string
		kind    topic.Kind
		payload []byte
		ok      bool
	}{
		{"command", topic.KindCommand, []byte(`{"data":"STOP","request_id":"r-1"}`), true},
		{"position", topic.KindPosition, []byte(`{"request_id":"r-2","lat":31.2304567,"lng":121.4737012,"speed":42.5,"direction":270,"time":"2026-12-02T10:00:00Z","posinfo":"上海市黄浦区人民大道"}`), true},
		{"owntracks", topic.KindPosition, []byte(`{"_type":"location","lat":31.2304567,"lon":121.4737012,"tst":1764669600,"vel":42,"cog":270}`), true},
		{"bounded", topic.KindCommand, append(append([]byte(`{"data":"STOP","request_id":"`), long...), `"}`...), false},
	} {
		b.Run(tc.name, func(b *testing.B) {
			if _, err := parseRequest(tc.kind, tc.payload); (err == nil) != tc.ok {
				b.Fatalf("parseRequest: %v, want ok %v", err, tc.ok)
			}
			b.ReportAllocs()
			defer cpuPerOp(b)()
			for b.Loop() {
				parseRequest(tc.kind, tc.payload)
			}
		})
	}
}

// BenchmarkAppendPosition is the position payload alone.
func BenchmarkAppendPosition(b *testing.B) {
	p := &benchFleet(b, 1)[0]
	buf := appendPosition(nil, p, p.Lat, p.Lng, []byte("2011-11-01T04:38:40Z"))
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	defer cpuPerOp(b)()
	for b.Loop() {
		buf = appendPosition(buf[:0], p, p.Lat, p.Lng, []byte("2011-11-01T04:38:40Z"))
	}
}

// BenchmarkAppendVehicles is the retained vehicle list of a big account
// (100 000 vehicles, 7 MB), built once per inventory: one allocation of the
// right size.
func BenchmarkAppendVehicles(b *testing.B) {
	vs := make([]exlive.Vehicle, 100_000)
	for i := range vs {
		vs[i] = exlive.Vehicle{ID: "V" + strconv.Itoa(i), Code: "沪A" + strconv.Itoa(10000+i), SIM: "1380000" + strconv.Itoa(i), GroupID: strconv.Itoa(i % 20)}
	}
	b.ReportAllocs()
	defer cpuPerOp(b)()
	for b.Loop() {
		appendVehicles(nil, vs)
	}
}

// BenchmarkVehicle is the registry lookup that gives a known vehicle its
// topic (built once per vehicle).
func BenchmarkVehicle(b *testing.B) {
	br := benchBridge(b, "tcp://127.0.0.1:1")
	ps := benchFleet(b, 1000)
	for i := range ps {
		br.feed.vehicle(ps[i].ID, ps[i].Code)
	}
	b.ReportAllocs()
	i := 0
	defer cpuPerOp(b)()
	for b.Loop() {
		br.feed.vehicle(ps[i].ID, ps[i].Code)
		if i++; i == len(ps) {
			i = 0
		}
	}
}

// BenchmarkNewVehicleTopic is what the first position of a vehicle costs
// on top: its topic level and topics, and its registry entry.
func BenchmarkNewVehicleTopic(b *testing.B) {
	r := newRegistry(topic.Layout{Prefix: "exlive"}, 1<<30)
	ids := make([]string, 1<<16)
	for i := range ids {
		ids[i] = "V" + strconv.Itoa(i)
	}
	b.ReportAllocs()
	i := 0
	defer cpuPerOp(b)()
	for b.Loop() {
		if i == len(ids) {
			b.StopTimer()
			r, i = newRegistry(topic.Layout{Prefix: "exlive"}, 1<<30), 0
			b.StartTimer()
		}
		r.get(ids[i])
		i++
	}
}

// BenchmarkPlatformToQueue is everything the bridge does with a position
// before the MQTT client: the frame read from the socket's bytes, decoded,
// converted, its payload built and queued; in the specification's literal
// form (compact UTF-8, one a line) and in the live dialect (GBK, laid out
// over lines, back to back), read in auto mode as by default.
func BenchmarkPlatformToQueue(b *testing.B) {
	for _, form := range []string{"literal", "dialect"} {
		b.Run(form, func(b *testing.B) {
			br := benchBridge(b, "tcp://127.0.0.1:1")
			var stream []byte
			for _, p := range benchFleet(b, 1000) {
				if form == "literal" {
					stream = exlive.AppendFrame(stream, &p)
					stream = append(stream, '\r', '\n')
				} else {
					stream = exlivesim.Pretty(stream, exlive.AppendFrame(nil, &p))
				}
			}
			if form == "dialect" {
				gbk, err := simplifiedchinese.GB18030.NewEncoder().Bytes(stream)
				if err != nil {
					b.Fatal(err)
				}
				stream = gbk
			}
			r := exlive.NewReader(&benchStream{data: stream}, 0, exlive.EncodingAuto)
			dec := exlive.NewDecoder(time.FixedZone("CST", 8*3600))
			b.SetBytes(int64(len(stream) / 1000))
			b.ReportAllocs()
			defer cpuPerOp(b)()
			for b.Loop() {
				// As the session's read loop reads (exlive.Client.read).
				m, _, err := r.ReadMessage(dec)
				if err != nil {
					b.Fatal(err)
				}
				br.feed.message(m)
			}
		})
	}
}

// BenchmarkDecodeToQueue is a position frame decoded, converted, its
// payload built and queued, for a fleet whose wstate repeats (a state
// word, as platforms send) and one whose wstate never does (the load
// tool's send time stamps).
func BenchmarkDecodeToQueue(b *testing.B) {
	for _, stamped := range []bool{false, true} {
		name := "repeated-wstate"
		if stamped {
			name = "unique-wstate"
		}
		b.Run(name, func(b *testing.B) {
			br := benchBridge(b, "tcp://127.0.0.1:1")
			var frames [][]byte
			var stamps []int // where each frame's 19-digit wstate is
			for _, p := range benchFleet(b, 1000) {
				f := exlive.AppendFrame(nil, &p)
				frames = append(frames, f)
				stamps = append(stamps, bytes.Index(f, []byte(p.WState)))
			}
			dec := exlive.NewDecoder(time.FixedZone("CST", 8*3600))
			b.ReportAllocs()
			i, n := 0, int64(1e18)
			defer cpuPerOp(b)()
			for b.Loop() {
				if stamped {
					n++
					strconv.AppendInt(frames[i][:stamps[i]], n, 10)
				}
				m, err := dec.Decode(frames[i])
				if err != nil {
					b.Fatal(err)
				}
				br.feed.message(m)
				if i++; i == len(frames) {
					i = 0
				}
			}
		})
	}
}

// benchStream reads its data over and over, in reads of at most 4 KiB.
type benchStream struct {
	data []byte
	off  int
}

func (c *benchStream) Read(p []byte) (int, error) {
	n := copy(p[:min(len(p), 4096)], c.data[c.off:])
	c.off = (c.off + n) % len(c.data)
	return n, nil
}

// BenchmarkPositionBroker is position() through a started MQTT client to a
// real broker (the embedded one, and EXLIVE2MQTT_TEST_MQTT_URL's), at QoS 0
// and 1: the time per position with the client's sender, paho and the
// broker's acknowledgements all running. On two cores the broker and paho
// compete with the loop; the load tool measures the real thing.
func BenchmarkPositionBroker(b *testing.B) {
	for _, target := range brokertest.Targets(b) {
		for _, qos := range []byte{0, 1} {
			b.Run(target.Name+"/qos"+strconv.Itoa(int(qos)), func(b *testing.B) {
				br := benchBridge(b, target.URL)
				br.feed.retain = false // nothing left behind on a shared broker
				mq := newStartedClient(b, target.URL, qos)
				br.feed.pub.mq = mq
				ps := benchFleet(b, 1000)
				b.ReportAllocs()
				i := 0
				defer cpuPerOp(b)()
				for b.Loop() {
					br.feed.position(&ps[i])
					if i++; i == len(ps) {
						i = 0
					}
				}
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				if lost := mq.Stop(ctx); lost > 0 {
					b.Fatalf("%d messages not delivered", lost)
				}
			})
		}
	}
}

// newStartedClient returns a client connected to url.
func newStartedClient(b *testing.B, url string, qos byte) *mqtt.Client {
	b.Helper()
	cfg := mqtt.Defaults()
	cfg.URL = url
	cfg.ClientID = brokertest.ClientID(b)
	cfg.TopicPrefix = brokertest.Prefix(b)
	cfg.QoS = qos
	if err := cfg.Validate(nil); err != nil {
		b.Fatal(err)
	}
	up := make(chan struct{}, 1)
	state := mqtt.State{Topic: topic.Layout{Prefix: cfg.TopicPrefix}.State(), Online: topic.Online, Offline: topic.Offline}
	c, err := mqtt.New(cfg, state, zerolog.Nop(), func(l mqtt.Link) {
		if l.Connected {
			select {
			case up <- struct{}{}:
			default:
			}
		}
	})
	if err != nil {
		b.Fatal(err)
	}
	c.Start()
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c.Stop(ctx)
	})
	select {
	case <-up:
	case <-time.After(10 * time.Second):
		b.Fatal("not connected to " + url)
	}
	return c
}
