package exlivesim

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/exlive2mqtt/exlive2mqtt/exlive"
	"github.com/exlive2mqtt/exlive2mqtt/secret"
	"go.uber.org/goleak"
	"golang.org/x/text/encoding/simplifiedchinese"
)

// prForms are the forms a server can send positions in: the live dialect
// (GBK, pretty, back to back), the literal form (UTF-8, compact, one a
// line), and each with the other encoding.
var prForms = []struct {
	name string
	cfg  Config
	gbk  bool
	end  string
}{
	{"dialect", Config{}, true, ""},
	{"dialect utf-8", Config{Encoding: exlive.EncodingUTF8}, false, ""},
	{"literal", Config{Literal: true}, false, "\r\n"},
	{"literal gbk", Config{Literal: true, Encoding: exlive.EncodingGBK}, true, "\r\n"},
}

// prDecode reads the one frame in wire, in auto mode as the bridge does by
// default, and decodes it to a position.
func prDecode(t *testing.T, wire []byte, wantGBK bool, loc *time.Location) exlive.Position {
	t.Helper()
	r := exlive.NewReader(bytes.NewReader(wire), exlive.DefaultMaxFrame, exlive.EncodingAuto)
	f, err := r.ReadFrame()
	if err != nil {
		t.Fatalf("read %q: %v", wire, err)
	}
	if f.GBK != wantGBK {
		t.Errorf("frame read as GBK %v, want %v: %q", f.GBK, wantGBK, wire)
	}
	m, err := exlive.NewDecoder(loc).Decode(f.Data)
	if err != nil {
		t.Fatalf("decode %s: %v", f.Data, err)
	}
	p, ok := m.(*exlive.Position)
	if !ok {
		t.Fatalf("got %T, want a position", m)
	}
	if _, err := r.ReadFrame(); !errors.Is(err, io.EOF) {
		t.Errorf("more than one frame in %q (%v)", wire, err)
	}
	return *p
}

// TestPrerenderIsTheServersForm: every prepared frame is, byte for byte,
// what the server would have sent for its position (form, encoding, line
// end), with a stamp slot in wstate; the fleet is rounded up to whole laps
// a second apart; copies get the stamp patched in and go round the set,
// which stays as it was.
func TestPrerenderIsTheServersForm(t *testing.T) {
	for _, form := range prForms {
		t.Run(form.name, func(t *testing.T) {
			cfg := form.cfg
			cfg.Vehicles, cfg.Prerender, cfg.StampSent, cfg.Seed = 7, 20, true, 1
			s := New(cfg)
			pr, err := s.prerender()
			if err != nil {
				t.Fatal(err)
			}
			if pr.frames() != 21 {
				t.Fatalf("%d frames for 20 positions of 7 vehicles, want 21", pr.frames())
			}
			gbk := simplifiedchinese.GB18030.NewEncoder()
			var times []time.Time
			for i := range pr.frames() {
				wire := pr.wire[pr.start(i):pr.ends[i]]
				if !bytes.HasSuffix(wire, []byte("}"+form.end)) {
					t.Errorf("frame %d does not end in }%q: %q", i, form.end, wire)
				}
				p := prDecode(t, wire, form.gbk, s.cfg.Timezone)
				if want := fmt.Sprintf("V%d", i%7+1); p.ID != want || p.WState != stampSlot || p.CState != "ACC开" {
					t.Errorf("frame %d: id %q wstate %q cstate %q, want %s, the slot, ACC开", i, p.ID, p.WState, p.CState, want)
				}
				again := append(s.format(nil, &p), s.lineEnd()...)
				if form.gbk {
					if again, err = gbk.Bytes(again); err != nil {
						t.Fatal(err)
					}
				}
				if !bytes.Equal(again, wire) {
					t.Errorf("frame %d:\n%q\nthe server would send\n%q", i, wire, again)
				}
				if got := string(pr.wire[pr.stamps[i] : pr.stamps[i]+stampWidth]); got != stampSlot {
					t.Errorf("frame %d: stamp offset at %q", i, got)
				}
				times = append(times, p.Time.V)
			}
			for i := 7; i < len(times); i++ {
				if d := times[i].Sub(times[i-7]); d != time.Second {
					t.Errorf("frame %d is %s after its vehicle's frame before, want 1s", i, d)
				}
			}
			if d := time.Since(times[len(times)-1]); d < 0 || d > 5*time.Second {
				t.Errorf("the last lap is %s old, want about now", d)
			}

			const stamp = 1764736000123456789
			b, next := pr.appendFrames([]byte("x"), 19, 5, stamp)
			if next != 3 {
				t.Errorf("after frames 19, 20, 0, 1, 2 the next is %d, want 3", next)
			}
			r := exlive.NewReader(bytes.NewReader(b[1:]), exlive.DefaultMaxFrame, exlive.EncodingAuto)
			for k, i := range []int{19, 20, 0, 1, 2} {
				f, err := r.ReadFrame()
				if err != nil {
					t.Fatalf("copy %d: %v", k, err)
				}
				m, err := exlive.NewDecoder(nil).Decode(f.Data)
				if err != nil {
					t.Fatal(err)
				}
				if p := m.(*exlive.Position); p.ID != fmt.Sprintf("V%d", i%7+1) || p.WState != strconv.Itoa(stamp) {
					t.Errorf("copy %d: id %q wstate %q, want V%d and the stamp", k, p.ID, p.WState, i%7+1)
				}
			}
			if n := bytes.Count(pr.wire, stampKey); n != pr.frames() {
				t.Errorf("%d of %d prepared frames keep their empty slot after a copy", n, pr.frames())
			}
		})
	}
}

func TestPutStamp(t *testing.T) {
	for _, c := range []struct {
		ns   int64
		want string
	}{
		{1764736000123456789, "1764736000123456789"},
		{42, "0000000000000000042"},
		{0, "0000000000000000000"},
		{-5, "0000000000000000000"},
	} {
		var b [stampWidth]byte
		putStamp(b[:], c.ns)
		if string(b[:]) != c.want {
			t.Errorf("putStamp(%d) = %s, want %s", c.ns, b[:], c.want)
		}
		if n, err := strconv.ParseInt(string(b[:]), 10, 64); err != nil || n != max(c.ns, 0) {
			t.Errorf("%s reads back as %d, %v", b[:], n, err)
		}
	}
}

// TestPrerenderOverTheWire: a client that logs in gets nothing while the
// server is paused, then exactly Count positions, round the prepared set
// and on round the fleet, each stamped with when it was written; flat out
// and at a rate, in the dialect and the literal form.
func TestPrerenderOverTheWire(t *testing.T) {
	for _, rate := range []float64{-1, 5000} {
		for _, form := range prForms {
			t.Run(fmt.Sprintf("%s rate %v", form.name, rate), func(t *testing.T) {
				ignore := goleak.IgnoreCurrent()
				cfg := form.cfg
				cfg.Vehicles, cfg.Prerender, cfg.Rate, cfg.Count = 4, 10, rate, 23
				cfg.StampSent, cfg.Paused = true, true
				s := New(cfg)
				if err := s.Start("127.0.0.1:0"); err != nil {
					t.Fatal(err)
				}
				defer goleak.VerifyNone(t, ignore)
				defer s.Close()
				s.SetHeartbeatAnswers(true) // the literal form answers none by default

				c := rpDial(t, s.Addr())
				c.send(&exlive.Login{Name: DefaultUser, Pass: secret.String(DefaultPass), Ver: "4.6936", Type: "json_common"})
				if got, want := c.answer(), exlive.CmdLogin.String()+" "+s.Succeed(); got != want {
					t.Fatalf("login: %q, want %q", got, want)
				}
				c.send(&exlive.Heartbeat{})
				if got, want := c.answer(), exlive.CmdHeartbeat.String()+" "+s.Succeed(); got != want {
					t.Fatalf("paused: %q came before the heartbeat's answer %q", got, want)
				}
				before := time.Now().UnixNano()
				s.SetPaused(false)
				for i := range cfg.Count {
					m, _ := c.next()
					p, ok := m.(*exlive.Position)
					if !ok {
						t.Fatalf("got %T, want position %d", m, i+1)
					}
					sent, err := strconv.ParseInt(p.WState, 10, 64)
					if err != nil || len(p.WState) != stampWidth || sent < before || sent > time.Now().UnixNano() {
						t.Errorf("position %d: wstate %q, want a stamp between %d and now", i+1, p.WState, before)
					}
					if want := fmt.Sprintf("V%d", i%4+1); p.ID != want {
						t.Errorf("position %d is %s's, want %s's", i+1, p.ID, want)
					}
				}
				// Close waits for the positions to end; whatever was
				// written before comes before the end of the stream.
				s.Close()
				for {
					f, err := c.r.ReadFrame()
					if err != nil {
						if !errors.Is(err, io.EOF) {
							t.Errorf("after Count: %v", err)
						}
						break
					}
					t.Errorf("a frame past Count: %s", f.Data)
				}
			})
		}
	}
}

// TestPrerenderRefused: a negative count, and Sequence, which prepared
// frames cannot number, are refused by Listen.
func TestPrerenderRefused(t *testing.T) {
	err := New(Config{Prerender: 10, Sequence: true}).Listen("127.0.0.1:0")
	if !errors.Is(err, ErrPrerenderSequence) {
		t.Errorf("Prerender with Sequence: %v, want ErrPrerenderSequence", err)
	}
	err = New(Config{Prerender: -1}).Listen("127.0.0.1:0")
	if err == nil || !strings.Contains(err.Error(), "Prerender -1") {
		t.Errorf("Prerender -1: %v, want it refused", err)
	}
}
