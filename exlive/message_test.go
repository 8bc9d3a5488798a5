package exlive

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // the tests need Asia/Shanghai on machines without a zone database

	"github.com/exlive2mqtt/exlive2mqtt/opt"
	"golang.org/x/text/encoding/simplifiedchinese"
)

// codecCase is one row of the codec's shared table, after mochi-mqtt's
// tpackets: a frame kept verbatim under testdata/ and what Decode makes of
// it. The decode, round-trip, reader and fuzz tests all feed on it.
type codecCase struct {
	file string  // under testdata/
	want Message // nil when Decode refuses the frame
	// reason and cmd are those of the *FrameError when Decode refuses it.
	reason Reason
	cmd    Cmd
	// repaired is what the frame decodes to once the Reader has added its
	// missing closing braces (the specification's 1001 and 1013 examples).
	repaired Message
}

// shanghai is the platform's zone: gpstime has no offset and is Beijing time.
func shanghai(t testing.TB) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// gpstime20111101 is the specification's "2011-11-01 12:38:39", Beijing time.
var gpstime20111101 = time.Date(2011, 11, 1, 4, 38, 39, 0, time.UTC)

const allOptional = FieldSpeed | FieldDirection | FieldFuel | FieldMileage | FieldTime | FieldValid | FieldAlarm

var codecCases = []codecCase{
	// The specification's own examples, verbatim.
	{file: "spec/01_1000.json", want: &Login{Name: "exlive", Pass: "000000"}},
	{file: "spec/02_8000.json", want: &Answer{Command: CmdLogin, Result: ResultSuccess}},
	{file: "spec/03_1001.json", reason: ReasonInvalidJSON, repaired: &Logout{}},
	{file: "spec/04_1002.json", want: &Heartbeat{}},
	{file: "spec/05_1003.json", want: &TextMessage{}},
	{file: "spec/06_1004.json", want: &VehicleCommand{}},
	{file: "spec/07_1005.json", want: &GroupData{}},
	{file: "spec/08_1006.json", want: &VehicleData{}},
	// The example's lat and lng are "": a position without coordinates.
	{file: "spec/09_1007.json", reason: ReasonBadField, cmd: CmdPosition},
	{file: "spec/10_1008.json", want: &GroupsRequest{Client: true}},
	{file: "spec/11_1009.json", want: &Group{}},
	{file: "spec/12_1010.json", want: &VehiclesRequest{GroupID: "1"}},
	{file: "spec/13_1011.json", want: &Vehicle{}},
	{file: "spec/14_1012.json", want: &Passthrough{}},
	{file: "spec/15_1013.json", reason: ReasonInvalidJSON, repaired: &PassthroughReply{}},

	// Positions.
	{file: "frames/position_full.json", want: &Position{
		ID: "10086", Code: "沪A12345", Lat: 31.230416, Lng: 121.473701,
		Speed: opt.Some(42.5), Direction: opt.Some(270.0), Time: opt.Some(gpstime20111101),
		Valid: opt.Some(true), Alarm: opt.Some(false), Fuel: opt.Some(35.2), Mileage: opt.Some(123456.7),
		WState: "00000001", CState: "ACC开 ", PosInfo: "上海市黄浦区人民大道200号",
	}},
	{file: "frames/position_json_numbers.json", want: &Position{
		ID: "10086", Lat: 31.230416, Lng: -121.5,
		Speed: opt.Some(0.0), Direction: opt.Some(359.0), Time: opt.Some(gpstime20111101),
		Valid: opt.Some(true), Alarm: opt.Some(false), Fuel: opt.Some(0.0), Mileage: opt.Some(1500.0),
	}},
	// "" and null mean "not given": absent, never 0, and not invalid.
	{file: "frames/position_empty_optional.json", want: &Position{ID: "7"}},
	{file: "frames/position_bad_optional.json", want: &Position{ID: "7", Lat: 22.5, Lng: 114.1, Invalid: allOptional}},
	{file: "frames/position_spaces_escapes.json", want: &Position{
		ID: "7", Lat: 22.5, Lng: 114.1, Speed: opt.Some(8.0), Valid: opt.Some(true), Alarm: opt.Some(false),
		PosInfo: `深圳 "Nanshan" / \`,
	}},
	{file: "frames/position_body_first.json", want: &Position{ID: "8", Lat: 39.9, Lng: 116.4, Time: opt.Some(gpstime20111101)}},
	{file: "frames/position_duplicate_lat.json", want: &Position{ID: "7", Lat: 30, Lng: 120, Time: opt.Some(gpstime20111101)}},
	{file: "frames/position_lat_missing.json", reason: ReasonBadField, cmd: CmdPosition},
	{file: "frames/position_no_lng.json", reason: ReasonBadField, cmd: CmdPosition},
	{file: "frames/position_lat_not_number.json", reason: ReasonBadField, cmd: CmdPosition},
	{file: "frames/position_lng_bool.json", reason: ReasonBadField, cmd: CmdPosition},
	{file: "frames/position_lat_nan.json", reason: ReasonBadField, cmd: CmdPosition},
	{file: "frames/position_lat_out_of_range.json", reason: ReasonOutOfRange, cmd: CmdPosition},
	{file: "frames/position_lng_out_of_range.json", reason: ReasonOutOfRange, cmd: CmdPosition},
	// Numbers are decimal: no hex, no underscores, nothing that rounds to
	// zero from a non-zero value or overflows, nothing out of its range.
	{file: "frames/position_numbers_not_decimal.json", want: &Position{ID: "7", Lat: 22.5, Lng: 114.1,
		Invalid: FieldSpeed | FieldDirection | FieldFuel | FieldMileage}},
	{file: "frames/position_json_numbers_absurd.json", want: &Position{ID: "7", Lat: 22.5, Lng: 114.1,
		Invalid: FieldSpeed | FieldDirection | FieldFuel | FieldMileage}},
	{file: "frames/position_numbers_decimal.json", want: &Position{ID: "7", Lat: 22.5, Lng: 114.1,
		Speed: opt.Some(8.0), Direction: opt.Some(0.5), Fuel: opt.Some(0.0), Mileage: opt.Some(1500.0)}},
	{file: "frames/position_lat_hex.json", reason: ReasonBadField, cmd: CmdPosition},
	{file: "frames/position_lng_underscore.json", reason: ReasonBadField, cmd: CmdPosition},
	{file: "frames/position_lat_underflow.json", reason: ReasonBadField, cmd: CmdPosition},
	{file: "frames/position_lat_infinity.json", reason: ReasonBadField, cmd: CmdPosition},
	// Bounded strings: a code over MaxCodeLen is left out, text over
	// MaxTextLen cut at a character boundary; a position's id is kept,
	// whatever its length, for the program to judge.
	{file: "frames/position_long_texts.json", want: &Position{ID: "7", Lat: 22.5, Lng: 114.1,
		WState: strings.Repeat("x", 1024), CState: "ACC", PosInfo: strings.Repeat("上", 341),
		Invalid: FieldCode, Truncated: FieldWState | FieldPosInfo}},
	{file: "frames/position_long_id.json", want: &Position{ID: strings.Repeat("9", 200), Lat: 22.5, Lng: 114.1}},

	// Other messages, in the forms a server may choose.
	{file: "frames/answer_numeric_cmd.json", want: &Answer{Command: CmdLogin, Result: ResultSuccess}},
	{file: "frames/answer_failure.json", want: &Answer{Command: CmdLogin, Result: "用户名或密码错误"}},
	{file: "frames/group_groupname.json", want: &Group{ID: "12", Relation: "0", Customer: "3", Name: "华东车队"}},
	{file: "frames/group_both_names.json", want: &Group{ID: "12", Name: "华东车队"}},
	{file: "frames/vehicle.json", want: &Vehicle{ID: "10086", Code: "粤B·D12345", SIM: "13800138000"}},
	{file: "frames/vehicle_long_id.json", reason: ReasonBadField, cmd: CmdVehicle},
	{file: "frames/vehicle_long_code_sim.json", want: &Vehicle{ID: strings.Repeat("9", MaxIDLen)}},
	{file: "frames/group_long_id.json", reason: ReasonBadField, cmd: CmdGroup},
	{file: "frames/answer_long_result.json", want: &Answer{Command: CmdVehicleCommand, Result: strings.Repeat("失败", 170) + "失"}},
	{file: "frames/groups_request_numeric.json", want: &GroupsRequest{Client: true}},
	{file: "frames/passthrough_reply.json", want: &PassthroughReply{TerminalID: "T1", Code: "粤B12345", Data: "7E0200001C7E"}},
	{file: "frames/text_escapes.json", want: &TextMessage{Msg: "中文 \"q\" \\ / \n\t 🚚 \uFFFD! \uFFFD \x00"}},
	{file: "frames/escaped_keys.json", want: &TextMessage{Msg: "hi"}},
	{file: "frames/login_extra_fields.json", want: &Login{Name: "exlive", Pass: `p@ss"w0rd`, Ver: "1.0", Type: "2", Mode: "3"}},
	{file: "frames/unknown_1014.json", want: &Unknown{Command: 1014, Body: []byte(`{"x":[1,{"y":null}],"z":"中 文"}`)}},
	{file: "frames/unknown_body_first.json", want: &Unknown{Command: 9001, Body: []byte(`{"z" : 1}`)}},
	// A header without a body is taken as an empty body.
	{file: "frames/no_body.json", want: &Heartbeat{}},

	// Valid JSON that is not a protocol frame.
	{file: "frames/malformed_no_header.json", reason: ReasonMalformed},
	{file: "frames/malformed_header_string.json", reason: ReasonMalformed},
	{file: "frames/malformed_header_no_cmd.json", reason: ReasonMalformed},
	{file: "frames/malformed_cmd_word.json", reason: ReasonMalformed},
	{file: "frames/malformed_cmd_float.json", reason: ReasonMalformed},
	{file: "frames/malformed_cmd_negative.json", reason: ReasonMalformed},
	{file: "frames/malformed_cmd_zero.json", reason: ReasonMalformed},
	{file: "frames/malformed_cmd_too_big.json", reason: ReasonMalformed},
	{file: "frames/malformed_cmd_null.json", reason: ReasonMalformed},
	{file: "frames/malformed_body_array.json", reason: ReasonMalformed, cmd: CmdText},
	{file: "frames/malformed_body_first_string.json", reason: ReasonMalformed, cmd: CmdText},

	// Not JSON.
	{file: "frames/invalid_trailing_comma.json", reason: ReasonInvalidJSON},
	{file: "frames/invalid_unquoted_key.json", reason: ReasonInvalidJSON},
	{file: "frames/invalid_single_quotes.json", reason: ReasonInvalidJSON},
	{file: "frames/invalid_bad_escape.json", reason: ReasonInvalidJSON},
	{file: "frames/invalid_short_unicode_escape.json", reason: ReasonInvalidJSON},
	{file: "frames/invalid_control_char.json", reason: ReasonInvalidJSON},
	{file: "frames/invalid_trailing_garbage.json", reason: ReasonInvalidJSON},
	{file: "frames/invalid_leading_zero.json", reason: ReasonInvalidJSON},
	{file: "frames/invalid_bare_word.json", reason: ReasonInvalidJSON},
	{file: "frames/invalid_missing_brace.json", reason: ReasonInvalidJSON},
	{file: "frames/invalid_number_in_ignored.json", reason: ReasonInvalidJSON},
}

func fixture(t testing.TB, file string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", filepath.FromSlash(file)))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestFixturesAreInTheTable keeps testdata/ and the table in step: a fixture
// nobody checks is a fixture that lies.
func TestFixturesAreInTheTable(t *testing.T) {
	inTable := map[string]bool{}
	for _, c := range codecCases {
		if inTable[c.file] {
			t.Errorf("%s is in the table twice", c.file)
		}
		inTable[c.file] = true
		if (c.want == nil) == (c.reason == "") {
			t.Errorf("%s: want exactly one of a message and a reason", c.file)
		}
	}
	for _, c := range dialectCases {
		if inTable[c.file] {
			t.Errorf("%s is in the tables twice", c.file)
		}
		inTable[c.file] = true
	}
	for _, dir := range []string{"spec", "frames", "dialect"} {
		files, err := filepath.Glob(filepath.Join("testdata", dir, "*.json"))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			if name := dir + "/" + filepath.Base(f); !inTable[name] {
				t.Errorf("testdata/%s is in neither codecCases nor dialectCases", name)
			}
		}
	}
}

// normalize makes messages comparable with reflect.DeepEqual: it drops the
// decoder's bookkeeping in a Position and puts its time in UTC.
func normalize(m Message) Message {
	p, ok := m.(*Position)
	if !ok {
		return m
	}
	c := *p
	c.hasLat, c.hasLng, c.badLat, c.badLng = false, false, nil, nil
	if c.Time.Valid {
		c.Time.V = c.Time.V.UTC()
	}
	return &c
}

func sameMessage(a, b Message) bool {
	return reflect.DeepEqual(normalize(a), normalize(b))
}

// show prints a message for a failure, Login's password included: the test
// must be able to say which password it got.
func show(m Message) string {
	if l, ok := m.(*Login); ok {
		return fmt.Sprintf("&Login{Name:%q Pass:%q Ver:%q Type:%q Mode:%q}", l.Name, l.Pass.Reveal(), l.Ver, l.Type, l.Mode)
	}
	if u, ok := m.(*Unknown); ok {
		return fmt.Sprintf("&Unknown{Command:%d Body:%s}", u.Command, u.Body)
	}
	return fmt.Sprintf("%T%+v", m, normalize(m))
}

// roundTripMessages has every message type, with text that needs escaping
// and numbers at the edges.
func roundTripMessages(loc *time.Location) []Message {
	return []Message{
		&Login{Name: "exlive", Pass: "s3cr\"et\\", Ver: "1.0", Type: "1", Mode: "2"},
		&Login{},
		&Answer{Command: CmdLogin, Result: ResultSuccess},
		&Answer{Command: CmdPosition, Result: "失败"},
		&Logout{},
		&Logout{Data: "bye"},
		&Heartbeat{},
		&TextMessage{Msg: "你好\n\"world\"\t\\ \u2028 🚚 \x01"},
		&VehicleCommand{ID: "10086", Data: "#RESET#"},
		&GroupData{Data: `[{"id":1}]`},
		&VehicleData{Data: "{}"},
		&Position{
			ID: "10086", Code: "沪A12345", Lat: 31.230416, Lng: 121.473701,
			Speed: opt.Some(42.5), Direction: opt.Some(0.0), Time: opt.Some(time.Date(2011, 11, 1, 12, 38, 39, 0, loc)),
			Valid: opt.Some(true), Alarm: opt.Some(false), Fuel: opt.Some(-0.5), Mileage: opt.Some(123456.7),
			WState: "00000001", CState: "ACC开", PosInfo: "上海市黄浦区人民大道200号",
		},
		&Position{Lat: -90, Lng: 180},
		// The longest numbers AppendFrame writes (it never uses exponents),
		// and the ends of the ranges.
		&Position{Lat: 5e-324, Lng: -2.2250738585072014e-308, Speed: opt.Some(float64(MaxSpeed)), Mileage: opt.Some(-MaxMileage), Fuel: opt.Some(MaxFuel)},
		&GroupsRequest{Client: true},
		&GroupsRequest{},
		&Group{ID: "12", Relation: "0", Customer: "3", Name: "华东车队"},
		&VehiclesRequest{GroupID: "1"},
		&Vehicle{ID: "10086", Code: "粤B·D12345", SIM: "13800138000"},
		&Passthrough{TerminalID: "T1", Code: "粤B12345", Data: "7E8001"},
		&PassthroughReply{TerminalID: "T1", Code: "粤B12345", Data: "7E0200"},
		&Unknown{Command: 1014, Body: []byte(`{"a":[1,2,{"b":null}],"c":"中"}`)},
		&Unknown{Command: 9999},
	}
}

func TestRoundTrip(t *testing.T) {
	loc := shanghai(t)
	for _, m := range roundTripMessages(loc) {
		frame := AppendFrame(nil, m)
		if !json.Valid(frame) {
			t.Errorf("AppendFrame(%s) = %s: not JSON", show(m), frame)
			continue
		}
		var compact bytes.Buffer
		if err := json.Compact(&compact, frame); err != nil || !bytes.Equal(compact.Bytes(), frame) {
			t.Errorf("AppendFrame(%s) = %s: not compact", show(m), frame)
		}
		got, err := NewDecoder(loc).Decode(frame)
		if err != nil {
			t.Errorf("Decode(AppendFrame(%s)) = %v\nframe %s", show(m), err, frame)
			continue
		}
		want := m
		if u, ok := m.(*Unknown); ok && u.Body == nil {
			want = &Unknown{Command: u.Command, Body: []byte("{}")}
		}
		if !sameMessage(got, want) {
			t.Errorf("round trip:\n got %s\nwant %s\nframe %s", show(got), show(want), frame)
		}
		// Encoding what was decoded gives the same bytes again.
		if again := AppendFrame(nil, got); !bytes.Equal(again, frame) {
			t.Errorf("re-encoded:\n got %s\nwant %s", again, frame)
		}
	}
}

func TestRoundTripKeepsTimeZone(t *testing.T) {
	loc := shanghai(t)
	p := &Position{Lat: 1, Lng: 2, Time: opt.Some(time.Date(2024, 2, 29, 23, 59, 59, 0, loc))}
	frame := AppendFrame(nil, p)
	if !bytes.Contains(frame, []byte(`"gpstime":"2024-02-29 23:59:59"`)) {
		t.Errorf("frame %s: want gpstime as the platform writes it", frame)
	}
	got, err := NewDecoder(loc).Decode(frame)
	if err != nil {
		t.Fatal(err)
	}
	if tm := got.(*Position).Time.V; !tm.Equal(p.Time.V) || tm.Location() != loc {
		t.Errorf("time %v (%v), want %v in %v", tm, tm.Location(), p.Time.V, loc)
	}
}

// TestAppendFrameMatchesSpec encodes each example of the specification as
// decoded and gets the example back, compacted (and closed, for the two that
// lack a brace). The 1007 example has no coordinates, so no Position holds it.
func TestAppendFrameMatchesSpec(t *testing.T) {
	for _, c := range codecCases {
		if !strings.HasPrefix(c.file, "spec/") {
			continue
		}
		m := c.want
		if m == nil {
			m = c.repaired
		}
		if m == nil {
			continue
		}
		raw := fixture(t, c.file)
		if c.repaired != nil {
			raw = append(raw, '}')
		}
		var want bytes.Buffer
		if err := json.Compact(&want, raw); err != nil {
			t.Fatalf("%s: %v", c.file, err)
		}
		if got := AppendFrame(nil, m); !bytes.Equal(got, want.Bytes()) {
			t.Errorf("%s:\n got %s\nwant %s", c.file, got, want.Bytes())
		}
	}
}

func TestAppendFrameAppends(t *testing.T) {
	dst := []byte("prefix|")
	got := AppendFrame(dst, &Heartbeat{})
	if want := `prefix|{"header":{"cmd":"1002"},"body":{"result":""}}`; string(got) != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

func TestLoginPasswordRoundTripsButNeverPrints(t *testing.T) {
	const pass = "hunter2-秘密"
	login := &Login{Name: "exlive", Pass: pass}
	frame := AppendFrame(nil, login)
	if !bytes.Contains(frame, []byte(`"pass":"`+pass+`"`)) {
		t.Fatalf("frame %s: the platform must get the password", frame)
	}
	m, err := NewDecoder(nil).Decode(frame)
	if err != nil {
		t.Fatal(err)
	}
	got := m.(*Login)
	if got.Pass.Reveal() != pass {
		t.Errorf("Pass = %q, want %q", got.Pass.Reveal(), pass)
	}
	for _, out := range []string{
		fmt.Sprint(login), fmt.Sprint(got), fmt.Sprint(*got),
		fmt.Sprintf("%v %+v %#v %s", got, got, got, got),
		fmt.Sprintf("%v %+v %#v", *got, *got, *got),
		got.String(),
	} {
		if strings.Contains(out, pass) || strings.Contains(out, "hunter2") {
			t.Errorf("printed login holds the password: %s", out)
		}
	}
	if s := fmt.Sprint(login); !strings.Contains(s, "exlive") {
		t.Errorf("fmt.Sprint(login) = %s: want the name", s)
	}
}

func TestCmdAndFieldNames(t *testing.T) {
	if got := CmdPosition.String(); got != "1007" {
		t.Errorf("CmdPosition.String() = %q", got)
	}
	if got := fmt.Sprint(allOptional.Names()); got != "[veo dir oil dis gpstime av alarm]" {
		t.Errorf("Names() = %s", got)
	}
	if got := Field(0).Names(); got != nil {
		t.Errorf("Field(0).Names() = %v", got)
	}
	for _, m := range roundTripMessages(time.UTC) {
		if u, ok := m.(*Unknown); ok {
			if u.Cmd() != u.Command {
				t.Errorf("Unknown.Cmd() = %v, want %v", u.Cmd(), u.Command)
			}
			continue
		}
		if m.Cmd() == CmdPosition {
			continue // the Decoder reuses its own
		}
		if newMessage(m.Cmd()) == nil {
			t.Errorf("newMessage(%v) = nil", m.Cmd())
		}
		if reflect.TypeOf(newMessage(m.Cmd())) != reflect.TypeOf(m) {
			t.Errorf("newMessage(%v) is %T, want %T", m.Cmd(), newMessage(m.Cmd()), m)
		}
	}
}

// writes records every Write it is given.
type writes struct{ calls [][]byte }

func (w *writes) Write(p []byte) (int, error) {
	w.calls = append(w.calls, bytes.Clone(p))
	return len(p), nil
}

func TestWriterWritesCompactFramesWithCRLF(t *testing.T) {
	var out writes
	w := NewWriter(&out, EncodingAuto)
	msgs := []Message{
		&Login{Name: "exlive", Pass: "000000"},
		&Heartbeat{},
		&TextMessage{Msg: "你好"},
	}
	for _, m := range msgs {
		if err := w.WriteMessage(m); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.WriteFrame([]byte(`{"header":{"cmd":"1002"},"body":{"result":""}}`)); err != nil {
		t.Fatal(err)
	}
	want := []string{
		`{"header":{"cmd":"1000"},"body":{"name":"exlive","pass":"000000","ver":"","type":"","mode":""}}` + "\r\n",
		`{"header":{"cmd":"1002"},"body":{"result":""}}` + "\r\n",
		`{"header":{"cmd":"1003"},"body":{"msg":"你好"}}` + "\r\n",
		`{"header":{"cmd":"1002"},"body":{"result":""}}` + "\r\n",
	}
	if len(out.calls) != len(want) {
		t.Fatalf("%d writes, want one a frame (%d)", len(out.calls), len(want))
	}
	for i := range want {
		if string(out.calls[i]) != want[i] {
			t.Errorf("write %d = %q, want %q", i, out.calls[i], want[i])
		}
	}
}

func TestWriterGBK(t *testing.T) {
	loc := shanghai(t)
	msgs := roundTripMessages(loc)
	var out bytes.Buffer
	w := NewWriter(&out, EncodingGBK)
	var utf8Frames []string
	for _, m := range msgs {
		if err := w.WriteMessage(m); err != nil {
			t.Fatal(err)
		}
		utf8Frames = append(utf8Frames, string(AppendFrame(nil, m)))
	}
	// The bytes are the UTF-8 frames transcoded, and ASCII frames unchanged.
	wantBytes, err := simplifiedchinese.GB18030.NewEncoder().String(strings.Join(utf8Frames, "\r\n") + "\r\n")
	if err != nil {
		t.Fatal(err)
	}
	if out.String() != wantBytes {
		t.Errorf("GBK stream differs from the transcoded UTF-8 stream")
	}
	if !bytes.Contains(out.Bytes(), []byte{0xC4, 0xE3, 0xBA, 0xC3}) { // 你好
		t.Errorf("no GBK 你好 in %q", out.Bytes())
	}
	// Read back in gbk mode, every frame is the original.
	r := NewReader(bytes.NewReader(out.Bytes()), 0, EncodingGBK)
	dec := NewDecoder(loc)
	for i, m := range msgs {
		f, err := r.ReadFrame()
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if string(f.Data) != utf8Frames[i] {
			t.Errorf("frame %d:\n got %s\nwant %s", i, f.Data, utf8Frames[i])
		}
		if f.GBK != !isASCII(f.Data) {
			t.Errorf("frame %d: GBK = %v for %s", i, f.GBK, f.Data)
		}
		got, err := dec.Decode(f.Data)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		want := m
		if u, ok := m.(*Unknown); ok && u.Body == nil {
			want = &Unknown{Command: u.Command, Body: []byte("{}")}
		}
		if !sameMessage(got, want) {
			t.Errorf("frame %d:\n got %s\nwant %s", i, show(got), show(want))
		}
	}
	if _, err := r.ReadFrame(); err != io.EOF {
		t.Errorf("after the last frame: %v, want io.EOF", err)
	}
}

func TestWriterSetEncoding(t *testing.T) {
	var out bytes.Buffer
	w := NewWriter(&out, EncodingAuto)
	m := &TextMessage{Msg: "中"}
	if err := w.WriteMessage(m); err != nil {
		t.Fatal(err)
	}
	w.SetEncoding(EncodingGBK)
	if err := w.WriteMessage(m); err != nil {
		t.Fatal(err)
	}
	want := `{"header":{"cmd":"1003"},"body":{"msg":"中"}}` + "\r\n" +
		`{"header":{"cmd":"1003"},"body":{"msg":"` + "\xd6\xd0" + `"}}` + "\r\n"
	if out.String() != want {
		t.Errorf("got %q, want %q", out.String(), want)
	}
}

type failingWriter struct{ err error }

func (w failingWriter) Write([]byte) (int, error) { return 0, w.err }

func TestWriterReturnsWriteError(t *testing.T) {
	boom := errors.New("boom")
	for _, enc := range []Encoding{EncodingAuto, EncodingUTF8, EncodingGBK} {
		w := NewWriter(failingWriter{boom}, enc)
		if err := w.WriteMessage(&TextMessage{Msg: "中"}); !errors.Is(err, boom) {
			t.Errorf("%v: WriteMessage = %v, want %v", enc, err, boom)
		}
	}
}

func TestParseEncoding(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Encoding
		err  string
	}{
		{in: "", want: EncodingAuto},
		{in: "auto", want: EncodingAuto},
		{in: " AUTO ", want: EncodingAuto},
		{in: "utf-8", want: EncodingUTF8},
		{in: "UTF8", want: EncodingUTF8},
		{in: "gbk", want: EncodingGBK},
		{in: "GB18030", want: EncodingGBK},
		{in: "gb2312", want: EncodingGBK},
		{in: "latin1", err: `exlive: unknown encoding "latin1" (want auto, utf-8 or gbk)`},
	} {
		got, err := ParseEncoding(c.in)
		if c.err != "" {
			if err == nil || err.Error() != c.err {
				t.Errorf("ParseEncoding(%q) = %v, %v; want error %q", c.in, got, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("ParseEncoding(%q) = %v, %v; want %v", c.in, got, err, c.want)
		}
		// The name reads back.
		text, _ := got.MarshalText()
		var back Encoding
		if err := back.UnmarshalText(text); err != nil || back != got {
			t.Errorf("UnmarshalText(%s) = %v, %v; want %v", text, back, err, got)
		}
	}
	var e Encoding
	if err := e.UnmarshalText([]byte("ebcdic")); err == nil {
		t.Error("UnmarshalText(ebcdic) succeeded")
	}
}
