package exlive

import (
	"bytes"
	"strings"
	"testing"

	"github.com/exlive2mqtt/exlive2mqtt/opt"
)

// dialectCase is a frame as it crosses the wire between a live server and
// the public clients written against it (docs/protocol.md names them): kept
// byte for byte under testdata/dialect/, GBK where the server writes text,
// laid out over several lines, and what it decodes to.
type dialectCase struct {
	file string
	gbk  bool // the file holds GBK text
	want Message
}

var dialectCases = []dialectCase{
	{file: "dialect/01_login_json_common.json", want: &Login{Name: "admintest", Pass: "000000", Ver: DefaultLoginVer, Type: DefaultLoginType}},
	{file: "dialect/02_login_succeed.json", want: &Answer{Command: CmdLogin, Result: ResultSucceed}},
	{file: "dialect/03_heartbeat.json", want: &Heartbeat{}},
	{file: "dialect/04_heartbeat_answer.json", want: &Answer{Command: CmdHeartbeat, Result: ResultSucceed}},
	{file: "dialect/05_groups_request.json", want: &GroupsRequest{Client: true}},
	{file: "dialect/06_group_gbk.json", gbk: true, want: &Group{ID: "12", Relation: "3", Customer: "5", Name: "华东车队"}},
	{file: "dialect/07_vehicles_request.json", want: &VehiclesRequest{GroupID: "12"}},
	{file: "dialect/08_vehicle_gbk.json", gbk: true, want: &Vehicle{ID: "10086", Code: "沪A12345", SIM: "13800138000"}},
	// The fields a json_common position is said to carry besides the
	// specification's (lat_bd, lato, p1, temp…) are read past.
	{file: "dialect/09_position_json_common_gbk.json", gbk: true, want: &Position{
		ID: "10086", Code: "沪A12345", Lat: 31.222428, Lng: 121.473707,
		Speed: opt.Some(42.5), Direction: opt.Some(270.0), Time: opt.Some(gpstime20111101),
		Valid: opt.Some(true), Alarm: opt.Some(false), Fuel: opt.Some(35.2), Mileage: opt.Some(123456.7),
		WState: "3", CState: "ACC开,GPS定位", PosInfo: "上海市黄浦区人民大道200号",
	}},
	{file: "dialect/10_command_answer_succeed.json", want: &Answer{Command: CmdVehicleCommand, Result: ResultSucceed}},
	{file: "dialect/11_login_refused_gbk.json", gbk: true, want: &Answer{Command: CmdLogin, Result: "密码错误"}},
}

// TestDialectFrames reads each dialect frame off the wire alone, in the
// modes a session may be in, and decodes it.
func TestDialectFrames(t *testing.T) {
	loc := shanghai(t)
	for _, c := range dialectCases {
		raw := fixture(t, c.file)
		if bytes.Contains(raw, []byte("\r\n")) || !bytes.Contains(raw, []byte("\n")) {
			t.Errorf("%s: want a frame laid out over lines (LF), as the dialect writes them", c.file)
		}
		modes := []Encoding{EncodingAuto, EncodingGBK}
		if !c.gbk {
			modes = append(modes, EncodingUTF8)
		}
		for _, enc := range modes {
			r := NewReader(bytes.NewReader(raw), 0, enc)
			f, err := r.ReadFrame()
			if err != nil {
				t.Errorf("%s (%v): ReadFrame: %v", c.file, enc, err)
				continue
			}
			if f.GBK != c.gbk || f.Repaired || f.Replaced {
				t.Errorf("%s (%v): gbk %v repaired %v replaced %v; want gbk %v only", c.file, enc, f.GBK, f.Repaired, f.Replaced, c.gbk)
			}
			checkDecode(t, NewDecoder(loc), c.file, f.Data, c.want, "", 0)
		}
	}
}

// TestDialectStream sends the dialect frames back to back, with nothing
// between them, as one stream arriving every way it can, and wants every
// frame whole, none repaired or skipped, and the wire bytes of each (kept
// for a capture) to add up to the stream, but for the spaces after the
// last.
func TestDialectStream(t *testing.T) {
	loc := shanghai(t)
	var stream []byte
	for _, c := range dialectCases {
		stream = append(stream, fixture(t, c.file)...)
	}
	for _, enc := range []Encoding{EncodingAuto, EncodingGBK} {
		for _, s := range splits(stream) {
			r := NewReader(s.r, 0, enc)
			r.KeepWire(true)
			dec := NewDecoder(loc)
			var wire []byte
			for _, c := range dialectCases {
				f, err := r.ReadFrame()
				if err != nil {
					t.Fatalf("%v, read %s: %s: %v", enc, s.name, c.file, err)
				}
				if f.Repaired || f.Replaced || f.GBK != c.gbk {
					t.Fatalf("%v, read %s: %s: repaired %v replaced %v gbk %v", enc, s.name, c.file, f.Repaired, f.Replaced, f.GBK)
				}
				// Spaces after a frame go with the next one.
				if !bytes.Equal(bytes.TrimSpace(f.Wire), bytes.TrimSpace(fixture(t, c.file))) {
					t.Fatalf("%v, read %s: %s: wire %q, want the file", enc, s.name, c.file, f.Wire)
				}
				wire = append(wire, f.Wire...)
				got, err := dec.Decode(f.Data)
				if err != nil || !sameMessage(got, c.want) {
					t.Fatalf("%v, read %s: %s: %s, %v; want %s", enc, s.name, c.file, show(got), err, show(c.want))
				}
			}
			if !bytes.Equal(wire, bytes.TrimRight(stream, " ")) {
				t.Fatalf("%v, read %s: the frames' wire bytes do not add up to the stream", enc, s.name)
			}
		}
	}
}

// TestWireKeepsEverySkippedByte: the bytes a Reader keeps for a capture,
// frame after frame, are the stream itself, junk, line ends and broken
// frames included (they go with the frame after them), so a capture can
// play a platform back byte for byte.
func TestWireKeepsEverySkippedByte(t *testing.T) {
	gbkFrame := string(toGBK(t, `{"header":{"cmd":"1003"},"body":{"msg":"中文"}}`))
	stream := "\r\n" + hb + "junk!" + login + "\r\n" +
		`{"header":{"cmd":"1003"},"body":{"msg":"line` + "\n" + `break"}}` + // skipped
		gbkFrame + "\n" +
		`{"header":{"cmd":"1001"},"body":{"data":""}` + // repaired by the next
		pos + "  "
	want := []string{hb, login, gbkFrame, `{"header":{"cmd":"1001"},"body":{"data":""}`, pos}
	for _, enc := range []Encoding{EncodingAuto, EncodingGBK} {
		for _, s := range splits([]byte(stream)) {
			r := NewReader(s.r, 0, enc)
			r.KeepWire(true)
			var wire []byte
			var frames []string
			for {
				f, err := r.ReadFrame()
				if _, skipped := err.(*FrameError); skipped {
					continue
				}
				if err != nil {
					break
				}
				frames = append(frames, strings.TrimLeft(string(f.Wire), " \r\n!junk"))
				wire = append(wire, f.Wire...)
			}
			// Everything but the two spaces after the last frame.
			if string(wire) != strings.TrimSuffix(stream, "  ") {
				t.Fatalf("%v, read %s: wire\n%q\nwant\n%q", enc, s.name, wire, stream)
			}
			if len(frames) != len(want) {
				t.Fatalf("%v, read %s: %d frames, want %d", enc, s.name, len(frames), len(want))
			}
			for i := range want {
				if !strings.HasSuffix(frames[i], want[i]) {
					t.Fatalf("%v, read %s: frame %d wire %q, want it to end in %q", enc, s.name, i, frames[i], want[i])
				}
			}
		}
	}
	// Without KeepWire nothing is kept.
	r := NewReader(strings.NewReader(stream), 0, EncodingAuto)
	if f, err := r.ReadFrame(); err != nil || f.Wire != nil {
		t.Errorf("Wire without KeepWire = %q, %v", f.Wire, err)
	}
}

func TestAnswerOK(t *testing.T) {
	for _, c := range []struct {
		result string
		ok     bool
	}{
		{"succeed", true}, {"success", true}, {"SUCCEED", true}, {" Success ", true}, {"succeed\n", true},
		{"", false}, {"fail", false}, {"密码错误", false}, {"succeeded", false}, {"not success", false},
	} {
		if got := (&Answer{Result: c.result}).OK(); got != c.ok {
			t.Errorf("Answer{Result: %q}.OK() = %v, want %v", c.result, got, c.ok)
		}
	}
}

// TestDefaultsLogInAsWorkingClientsDo: without settings, the login frame
// carries what the public clients of live servers send.
func TestDefaultsLogInAsWorkingClientsDo(t *testing.T) {
	cfg := Defaults()
	login := &Login{Name: "admintest", Pass: "000000", Ver: cfg.LoginVer, Type: cfg.LoginType, Mode: cfg.LoginMode}
	got, err := NewDecoder(nil).Decode(AppendFrame(nil, login))
	if err != nil {
		t.Fatal(err)
	}
	want, _ := NewDecoder(nil).Decode(fixture(t, "dialect/01_login_json_common.json"))
	if !sameMessage(got, want) {
		t.Errorf("default login %s, want the working clients' %s", show(got), show(want))
	}
	if cfg.LoginVer != "4.6936" || cfg.LoginType != "json_common" || cfg.LoginMode != "" {
		t.Errorf("defaults ver %q type %q", cfg.LoginVer, cfg.LoginType)
	}
}
