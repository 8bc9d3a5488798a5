package exlive

import (
	"bytes"
	"errors"
	"io"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"
)

// checkDecode decodes frame and compares the result with what c expects.
func checkDecode(t *testing.T, d *Decoder, name string, frame []byte, want Message, reason Reason, cmd Cmd) {
	t.Helper()
	got, err := d.Decode(frame)
	if reason != "" {
		var fe *FrameError
		if !errors.As(err, &fe) {
			t.Errorf("%s: Decode = %s, %v; want a *FrameError %s", name, show(got), err, reason)
			return
		}
		if got != nil {
			t.Errorf("%s: Decode returned %s with its error", name, show(got))
		}
		if fe.Reason != reason || fe.Cmd != cmd || fe.Size != len(frame) {
			t.Errorf("%s: error %+v (%v); want reason %s, cmd %d, size %d", name, fe, fe, reason, cmd, len(frame))
		}
		if fe.Detail == "" {
			t.Errorf("%s: error without detail", name)
		}
		return
	}
	if err != nil {
		t.Errorf("%s: Decode: %v", name, err)
		return
	}
	if !sameMessage(got, want) {
		t.Errorf("%s:\n got %s\nwant %s", name, show(got), show(want))
	}
}

func TestDecodeTable(t *testing.T) {
	d := NewDecoder(shanghai(t))
	for _, c := range codecCases {
		checkDecode(t, d, c.file, fixture(t, c.file), c.want, c.reason, c.cmd)
	}
}

// TestDecodeSpecExamplesThroughReader reads the fifteen examples of the
// specification as one stream, as a server would send them, and decodes
// every frame: the two that lack their closing brace are repaired because a
// frame follows them.
func TestDecodeSpecExamplesThroughReader(t *testing.T) {
	var stream bytes.Buffer
	var spec []codecCase
	for _, c := range codecCases {
		if strings.HasPrefix(c.file, "spec/") {
			spec = append(spec, c)
			stream.Write(fixture(t, c.file))
			stream.WriteString("\r\n")
		}
	}
	if len(spec) != 15 {
		t.Fatalf("%d spec examples, want 15", len(spec))
	}
	// The last example, 1013, lacks its brace: a frame must follow it.
	stream.Write(fixture(t, "spec/04_1002.json"))
	spec = append(spec, codecCase{file: "spec/04_1002.json", want: &Heartbeat{}})

	r := NewReader(&stream, 0, EncodingAuto)
	d := NewDecoder(shanghai(t))
	for _, c := range spec {
		f, err := r.ReadFrame()
		if err != nil {
			t.Fatalf("%s: ReadFrame: %v", c.file, err)
		}
		if f.Repaired != (c.repaired != nil) {
			t.Errorf("%s: Repaired = %v", c.file, f.Repaired)
		}
		want, reason := c.want, c.reason
		if c.repaired != nil {
			want, reason = c.repaired, ""
		}
		checkDecode(t, d, c.file, f.Data, want, reason, c.cmd)
	}
	if _, err := r.ReadFrame(); err != io.EOF {
		t.Errorf("after the examples: %v, want io.EOF", err)
	}
}

func TestDecodeRepaired1013(t *testing.T) {
	raw := fixture(t, "spec/15_1013.json")
	d := NewDecoder(nil)

	// Followed by a frame, even with no line break between them, it is
	// closed where the next begins.
	for _, sep := range []string{"", "\n", "\r\n", " \t "} {
		stream := string(raw) + sep + `{"header":{"cmd":"1013"},"body":{"terminalid":"T9","code":"C","data":"7E"}}`
		r := NewReader(strings.NewReader(stream), 0, EncodingAuto)
		f, err := r.ReadFrame()
		if err != nil {
			t.Fatalf("sep %q: %v", sep, err)
		}
		if !f.Repaired || string(f.Data) != string(raw)+"}" {
			t.Errorf("sep %q: frame %q repaired %v", sep, f.Data, f.Repaired)
		}
		checkDecode(t, d, "repaired 1013", f.Data, &PassthroughReply{}, "", 0)
		f, err = r.ReadFrame()
		if err != nil || f.Repaired {
			t.Fatalf("sep %q: second frame: %v, repaired %v", sep, err, f.Repaired)
		}
		checkDecode(t, d, "1013 after it", f.Data, &PassthroughReply{TerminalID: "T9", Code: "C", Data: "7E"}, "", 0)
	}

	// At the end of the stream it is an unexpected EOF, line break or not.
	for _, tail := range []string{"", "\r\n"} {
		r := NewReader(strings.NewReader(string(raw)+tail), 0, EncodingAuto)
		if _, err := r.ReadFrame(); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("tail %q: %v, want io.ErrUnexpectedEOF", tail, err)
		}
	}
}

func TestDecodeCmdForms(t *testing.T) {
	d := NewDecoder(nil)
	for _, c := range []struct {
		frame  string
		want   Message
		reason Reason
	}{
		{frame: `{"header":{"cmd":"1002"},"body":{}}`, want: &Heartbeat{}},
		{frame: `{"header":{"cmd":1002},"body":{}}`, want: &Heartbeat{}},
		{frame: `{"header":{"cmd":"01002"},"body":{}}`, want: &Heartbeat{}},
		{frame: `{"header":{"cmd":"\u0031002"},"body":{}}`, want: &Heartbeat{}},
		{frame: `{"header":{"cmd":" 1002"},"body":{}}`, reason: ReasonMalformed},
		{frame: `{"header":{"cmd":"1002x"},"body":{}}`, reason: ReasonMalformed},
		{frame: `{"header":{"cmd":1e3},"body":{}}`, reason: ReasonMalformed},
		{frame: `{"header":{"cmd":true},"body":{}}`, reason: ReasonMalformed},
		{frame: `{"header":{"cmd":["1002"]},"body":{}}`, reason: ReasonMalformed},
		{frame: `{"header":{"cmd":"65535"},"body":{"a":"b"}}`, want: &Unknown{Command: 65535, Body: []byte(`{"a":"b"}`)}},
		{frame: `{"header":{"cmd":"8000"},"body":{"cmd":"1000","result":"success"}}`, want: &Answer{Command: 1000, Result: "success"}},
		{frame: `{"header":{"cmd":"8000"},"body":{"cmd":1000,"result":"success"}}`, want: &Answer{Command: 1000, Result: "success"}},
		{frame: `{"header":{"cmd":"8000"},"body":{"cmd":"x","result":"success"}}`, want: &Answer{Result: "success"}},
		{frame: `{"header":{"cmd":"8000"},"body":{"result":"fail"}}`, want: &Answer{Result: "fail"}},
	} {
		checkDecode(t, d, c.frame, []byte(c.frame), c.want, c.reason, 0)
	}
	if (&Answer{Result: "success"}).OK() != true || (&Answer{Result: "fail"}).OK() {
		t.Error("Answer.OK is wrong")
	}
}

func TestDecodeGroupName(t *testing.T) {
	d := NewDecoder(nil)
	for frame, want := range map[string]string{
		`{"header":{"cmd":"1009"},"body":{"goupname":"A"}}`:                   "A",
		`{"header":{"cmd":"1009"},"body":{"groupname":"B"}}`:                  "B",
		`{"header":{"cmd":"1009"},"body":{"goupname":"A","groupname":""}}`:    "A",
		`{"header":{"cmd":"1009"},"body":{"goupname":"","groupname":"B"}}`:    "B",
		`{"header":{"cmd":"1009"},"body":{"groupname":"B","goupname":"A"}}`:   "A",
		`{"header":{"cmd":"1009"},"body":{"goupname":null,"groupname":null}}`: "",
	} {
		checkDecode(t, d, frame, []byte(frame), &Group{Name: want}, "", 0)
	}
}

func TestDecodeGroupsRequestFlag(t *testing.T) {
	d := NewDecoder(nil)
	for v, want := range map[string]bool{
		`"true"`: true, `"false"`: false, `"1"`: true, `"0"`: false, `1`: true, `0`: false,
		`true`: true, `false`: false, `"TRUE"`: true, `"yes"`: false, `""`: false, `null`: false,
	} {
		frame := `{"header":{"cmd":"1008"},"body":{"client":` + v + `}}`
		checkDecode(t, d, frame, []byte(frame), &GroupsRequest{Client: want}, "", 0)
	}
}

// position decodes a 1007 frame with the given body members after lat and lng.
func position(t *testing.T, d *Decoder, members string) (*Position, error) {
	t.Helper()
	frame := `{"header":{"cmd":"1007"},"body":{"lat":"1","lng":"2"` + members + `}}`
	m, err := d.Decode([]byte(frame))
	if err != nil {
		return nil, err
	}
	return m.(*Position), nil
}

func TestDecodePositionOptionalFields(t *testing.T) {
	d := NewDecoder(time.UTC)
	type opt struct {
		valid   bool
		v       string
		invalid Field
	}
	read := func(p *Position, key string) (bool, string) {
		switch key {
		case "veo":
			return p.Speed.Valid, strconv.FormatFloat(p.Speed.V, 'g', -1, 64)
		case "dir":
			return p.Direction.Valid, strconv.FormatFloat(p.Direction.V, 'g', -1, 64)
		case "oil":
			return p.Fuel.Valid, strconv.FormatFloat(p.Fuel.V, 'g', -1, 64)
		case "dis":
			return p.Mileage.Valid, strconv.FormatFloat(p.Mileage.V, 'g', -1, 64)
		case "av":
			return p.Valid.Valid, strconv.FormatBool(p.Valid.V)
		case "alarm":
			return p.Alarm.Valid, strconv.FormatBool(p.Alarm.V)
		case "gpstime":
			return p.Time.Valid, p.Time.V.Format(time.RFC3339)
		}
		panic(key)
	}
	for _, c := range []struct {
		key, value string
		want       opt
	}{
		// Empty means absent, never 0, and is not an error.
		{"veo", `""`, opt{}}, {"dir", `""`, opt{}}, {"oil", `""`, opt{}}, {"dis", `""`, opt{}},
		{"av", `""`, opt{}}, {"alarm", `""`, opt{}}, {"gpstime", `""`, opt{}},
		{"veo", `null`, opt{}}, {"av", `null`, opt{}}, {"gpstime", `null`, opt{}},
		// A real 0 is kept.
		{"veo", `"0"`, opt{valid: true, v: "0"}}, {"veo", `0`, opt{valid: true, v: "0"}},
		{"dir", `"0"`, opt{valid: true, v: "0"}}, {"oil", `0.0`, opt{valid: true, v: "0"}},
		{"av", `"0"`, opt{valid: true, v: "false"}}, {"alarm", `0`, opt{valid: true, v: "false"}},
		// Numbers as strings or numbers.
		{"veo", `"60.5"`, opt{valid: true, v: "60.5"}}, {"veo", `60.5`, opt{valid: true, v: "60.5"}},
		{"dir", `"359.9"`, opt{valid: true, v: "359.9"}}, {"dir", `360`, opt{valid: true, v: "360"}},
		{"oil", `"-3"`, opt{valid: true, v: "-3"}}, {"dis", `"1e3"`, opt{valid: true, v: "1000"}},
		{"av", `"1"`, opt{valid: true, v: "true"}}, {"alarm", `true`, opt{valid: true, v: "true"}},
		// Unreadable: left out and listed.
		{"veo", `"-1"`, opt{invalid: FieldSpeed}}, {"veo", `"fast"`, opt{invalid: FieldSpeed}},
		{"veo", `"Inf"`, opt{invalid: FieldSpeed}}, {"veo", `[1]`, opt{invalid: FieldSpeed}},
		{"dir", `"361"`, opt{invalid: FieldDirection}}, {"dir", `-1`, opt{invalid: FieldDirection}},
		{"oil", `"NaN"`, opt{invalid: FieldFuel}}, {"dis", `"1e400"`, opt{invalid: FieldMileage}},
		{"dis", `{"km":1}`, opt{invalid: FieldMileage}}, {"oil", `true`, opt{invalid: FieldFuel}},
		{"av", `"2"`, opt{invalid: FieldValid}}, {"alarm", `"yes"`, opt{invalid: FieldAlarm}},
		{"av", `1.0`, opt{invalid: FieldValid}},
		{"gpstime", `"2011-11-01"`, opt{invalid: FieldTime}}, {"gpstime", `20111101123839`, opt{invalid: FieldTime}},
		{"gpstime", `"2011-02-30 00:00:00"`, opt{invalid: FieldTime}},
		{"gpstime", `"2011-13-01 00:00:00"`, opt{invalid: FieldTime}},
		{"gpstime", `"2011-11-01 24:00:00"`, opt{invalid: FieldTime}},
		{"gpstime", `"2011-11-01 12:60:00"`, opt{invalid: FieldTime}},
		{"gpstime", `"2011-11-0x 12:38:39"`, opt{invalid: FieldTime}},
	} {
		p, err := position(t, d, `,"`+c.key+`":`+c.value)
		if err != nil {
			t.Errorf("%s=%s: %v", c.key, c.value, err)
			continue
		}
		valid, v := read(p, c.key)
		if valid != c.want.valid || (valid && v != c.want.v) || p.Invalid != c.want.invalid {
			t.Errorf("%s=%s: valid %v value %s invalid %v; want %+v", c.key, c.value, valid, v, p.Invalid.Names(), c.want)
		}
	}
}

func TestDecodePositionCoordinates(t *testing.T) {
	d := NewDecoder(nil)
	for _, c := range []struct {
		lat, lng string
		reason   Reason
	}{
		{lat: `"31.2"`, lng: `"121.4"`},
		{lat: `31.2`, lng: `121.4`},
		{lat: `"-90"`, lng: `"-180"`},
		{lat: `90`, lng: `180`},
		{lat: `"0"`, lng: `"0"`},
		{lat: `"-0"`, lng: `0e5`},
		{lat: `""`, lng: `"121.4"`, reason: ReasonBadField},
		{lat: `null`, lng: `"121.4"`, reason: ReasonBadField},
		{lat: `"31.2"`, lng: `""`, reason: ReasonBadField},
		{lat: `"31,2"`, lng: `"121.4"`, reason: ReasonBadField},
		{lat: `"N31.2"`, lng: `"121.4"`, reason: ReasonBadField},
		{lat: `"31.2"`, lng: `"E121.4"`, reason: ReasonBadField},
		{lat: `"Infinity"`, lng: `"121.4"`, reason: ReasonBadField},
		{lat: `"31.2"`, lng: `"-Inf"`, reason: ReasonBadField},
		{lat: `"nan"`, lng: `"1"`, reason: ReasonBadField},
		{lat: `1e999`, lng: `"1"`, reason: ReasonBadField},
		{lat: `false`, lng: `"1"`, reason: ReasonBadField},
		{lat: `{}`, lng: `"1"`, reason: ReasonBadField},
		{lat: `[31.2]`, lng: `"1"`, reason: ReasonBadField},
		{lat: `"  "`, lng: `"1"`, reason: ReasonBadField},
		{lat: `"` + strings.Repeat("1", maxNumberLen+1) + `"`, lng: `"1"`, reason: ReasonBadField},
		{lat: `"90.0000001"`, lng: `"1"`, reason: ReasonOutOfRange},
		{lat: `-91`, lng: `"1"`, reason: ReasonOutOfRange},
		{lat: `"1"`, lng: `"180.0000001"`, reason: ReasonOutOfRange},
		{lat: `"1"`, lng: `-360`, reason: ReasonOutOfRange},
		{lat: `1e300`, lng: `1e300`, reason: ReasonOutOfRange},
	} {
		frame := `{"header":{"cmd":"1007"},"body":{"id":"1","lat":` + c.lat + `,"lng":` + c.lng + `}}`
		m, err := d.Decode([]byte(frame))
		if c.reason == "" {
			if err != nil {
				t.Errorf("lat %s lng %s: %v", c.lat, c.lng, err)
				continue
			}
			p := m.(*Position)
			lat, _ := strconv.ParseFloat(strings.Trim(c.lat, `"`), 64)
			lng, _ := strconv.ParseFloat(strings.Trim(c.lng, `"`), 64)
			if p.Lat != lat || p.Lng != lng {
				t.Errorf("lat %s lng %s: got %v %v", c.lat, c.lng, p.Lat, p.Lng)
			}
			continue
		}
		var fe *FrameError
		if !errors.As(err, &fe) || fe.Reason != c.reason || fe.Cmd != CmdPosition || fe.Size != len(frame) {
			t.Errorf("lat %s lng %s: %v; want %s", c.lat, c.lng, err, c.reason)
		}
	}
}

func TestDecodeGPSTime(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	sh := shanghai(t)
	for _, c := range []struct {
		loc  *time.Location
		text string
		want time.Time
	}{
		{sh, "2011-11-01 12:38:39", time.Date(2011, 11, 1, 4, 38, 39, 0, time.UTC)},
		{nil, "2011-11-01 12:38:39", time.Date(2011, 11, 1, 12, 38, 39, 0, time.UTC)},
		{time.UTC, "2011-11-01 12:38:39", time.Date(2011, 11, 1, 12, 38, 39, 0, time.UTC)},
		{time.FixedZone("UTC+8", 8*3600), "2011-11-01 12:38:39", time.Date(2011, 11, 1, 4, 38, 39, 0, time.UTC)},
		// New York: daylight time in July, standard time in December.
		{ny, "2024-07-01 12:00:00", time.Date(2024, 7, 1, 16, 0, 0, 0, time.UTC)},
		{ny, "2024-12-01 12:00:00", time.Date(2024, 12, 1, 17, 0, 0, 0, time.UTC)},
		{sh, "2011-11-01T12:38:39", time.Date(2011, 11, 1, 4, 38, 39, 0, time.UTC)},
		{sh, "2024-02-29 00:00:00", time.Date(2024, 2, 28, 16, 0, 0, 0, time.UTC)},
		// The other spellings.
		{sh, "2011/11/01 12:38:39", time.Date(2011, 11, 1, 4, 38, 39, 0, time.UTC)},
		{sh, "2011-11-01 12:38:39.250", time.Date(2011, 11, 1, 4, 38, 39, 250e6, time.UTC)},
		{sh, "2011-11-01T12:38:39Z", time.Date(2011, 11, 1, 12, 38, 39, 0, time.UTC)},
		{sh, "2011-11-01T12:38:39+09:00", time.Date(2011, 11, 1, 3, 38, 39, 0, time.UTC)},
	} {
		d := NewDecoder(c.loc)
		p, err := position(t, d, `,"gpstime":"`+c.text+`"`)
		if err != nil {
			t.Errorf("%s: %v", c.text, err)
			continue
		}
		if !p.Time.Valid || !p.Time.V.Equal(c.want) {
			t.Errorf("%s in %v: %v (valid %v), want %v", c.text, c.loc, p.Time.V, p.Time.Valid, c.want)
		}
		want := c.loc
		if want == nil {
			want = time.UTC
		}
		if got := p.Time.V.Location(); got.String() != want.String() {
			t.Errorf("%s in %v: time in %v", c.text, c.loc, got)
		}
	}
}

func TestDecodeEscapes(t *testing.T) {
	d := NewDecoder(nil)
	for esc, want := range map[string]string{
		`plain`:                       "plain",
		`\u4e2d\u6587`:                "中文",
		`\u4E2D`:                      "中",
		`\ud83d\ude9a`:                "🚚",
		`\uD83D\uDE9A`:                "🚚",
		`\ud83d`:                      "\uFFFD",
		`\ude9a`:                      "\uFFFD",
		`\ud83d\u0041`:                "\uFFFDA",
		`\ud83d\ud83d\ude9a`:          "\uFFFD🚚",
		`a\/b`:                        "a/b",
		`\"\\\/\b\f\n\r\t`:            "\"\\/\b\f\n\r\t",
		`\u0000\u001f`:                "\x00\x1f",
		`中文 raw`:                      "中文 raw",
		`\\u4e2d`:                     `\u4e2d`,
		`tail\\`:                      `tail\`,
		`\u00e9\u00C9`:                "éÉ",
		`x\u2028y`:                    "x\u2028y",
		strings.Repeat(`\u0041`, 100): strings.Repeat("A", 100),
	} {
		frame := `{"header":{"cmd":"1003"},"body":{"msg":"` + esc + `"}}`
		checkDecode(t, d, esc, []byte(frame), &TextMessage{Msg: want}, "", 0)
	}
}

func nested(open, close string, depth int) string {
	return strings.Repeat(open, depth) + strings.Repeat(close, depth)
}

// TestDecodeDeepNesting: nesting in any field the decoder skips is bounded,
// so a hostile frame cannot exhaust the stack; moderate nesting is fine.
func TestDecodeDeepNesting(t *testing.T) {
	d := NewDecoder(nil)
	for _, depth := range []int{10, 60, 100, 10000, 1 << 20} {
		for _, shape := range []struct {
			open, close string
			levels      int // nesting levels in one repeat
		}{{"[", "]", 1}, {`{"a":`, "}", 1}, {`[{"a":`, "}]", 2}} {
			v := nested(shape.open, shape.close, depth) // 1 << 20 levels of {"a": is 5 MB: fine
			if shape.open != "[" {
				v = strings.Repeat(shape.open, depth) + "1" + strings.Repeat(shape.close, depth)
			}
			for _, frame := range []string{
				`{"header":{"cmd":"1003"},"body":{"msg":"hi","x":` + v + `}}`,
				`{"header":{"cmd":"1003","x":` + v + `},"body":{"msg":"hi"}}`,
				`{"x":` + v + `,"header":{"cmd":"1003"},"body":{"msg":"hi"}}`,
				`{"header":{"cmd":"1003"},"body":{"msg":` + v + `}}`,
				`{"header":{"cmd":"1014"},"body":{"x":` + v + `}}`,
				`{"body":{"x":` + v + `},"header":{"cmd":"1014"}}`,
			} {
				m, err := d.Decode([]byte(frame))
				if depth*shape.levels <= 60 {
					if err != nil {
						t.Errorf("depth %d %q: %v", depth, shape.open, err)
					}
					continue
				}
				var fe *FrameError
				if !errors.As(err, &fe) || fe.Reason != ReasonInvalidJSON {
					t.Errorf("depth %d %q: %v, %v; want invalid JSON", depth, shape.open, m, err)
				}
			}
		}
	}
}

func TestDecodeErrorDetailSaysWhere(t *testing.T) {
	frame := `{"header":{"cmd":"1003"},"body":{"msg":tru}}`
	_, err := NewDecoder(nil).Decode([]byte(frame))
	var fe *FrameError
	if !errors.As(err, &fe) {
		t.Fatal(err)
	}
	if want := "at byte " + strconv.Itoa(strings.Index(frame, "tru")); !strings.HasPrefix(fe.Detail, want) {
		t.Errorf("Detail = %q, want it to start with %q", fe.Detail, want)
	}
	if got, want := err.Error(), "exlive: skipped 44 bytes: invalid_json: at byte 39: invalid JSON"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	_, err = NewDecoder(nil).Decode([]byte(`{"header":{"cmd":"1007"},"body":{"lat":"x","lng":"1"}}`))
	if got, want := err.Error(), `exlive: skipped 1007 frame (54 bytes): bad_field: lat is not a number: "x"`; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

// TestDecodePositionIsReused documents the contract: the *Position of one
// Decode is overwritten by the next, and nothing in it aliases the frame.
func TestDecodePositionIsReused(t *testing.T) {
	d := NewDecoder(nil)
	frame := []byte(`{"header":{"cmd":"1007"},"body":{"id":"A","code":"c","lat":"1","lng":"2","veo":"3","posinfo":"p","cstate":"s","wstate":"w"}}`)
	m1, err := d.Decode(frame)
	if err != nil {
		t.Fatal(err)
	}
	p1 := *m1.(*Position)
	for i := range frame {
		frame[i] = 'x'
	}
	if p1.ID != "A" || p1.Code != "c" || p1.PosInfo != "p" || p1.CState != "s" || p1.WState != "w" {
		t.Errorf("position aliases the frame: %+v", p1)
	}
	m2, err := d.Decode([]byte(`{"header":{"cmd":"1007"},"body":{"id":"B","lat":"5","lng":"6"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if m1 != m2 {
		t.Errorf("Decode returned a new *Position; the doc says it is reused")
	}
	if p := m2.(*Position); p.ID != "B" || p.Speed.Valid || p.PosInfo != "" {
		t.Errorf("fields of the first position leak into the second: %+v", p)
	}
}

func TestDecodeInternBounded(t *testing.T) {
	d := NewDecoder(nil)
	for i := range maxInterned + 10 {
		frame := `{"header":{"cmd":"1007"},"body":{"id":"` + strconv.Itoa(i) + `","lat":"1","lng":"2"}}`
		if _, err := d.Decode([]byte(frame)); err != nil {
			t.Fatal(err)
		}
	}
	if len(d.strs) > maxInterned {
		t.Errorf("%d interned strings, want at most %d", len(d.strs), maxInterned)
	}
}

func TestNumberReadsWhatAppendFrameWrites(t *testing.T) {
	for _, f := range []float64{
		0, 1, -1, 0.1, 31.230416, 121.473701, 1e21, 1e-7, 5e-324, -5e-324,
		2.2250738585072014e-308, -2.2250738585072014e-308, math.MaxFloat64, -math.MaxFloat64,
		math.SmallestNonzeroFloat64 * 3, 123456789.987654321,
	} {
		s := strconv.FormatFloat(f, 'f', -1, 64)
		if len(s) > maxNumberLen {
			t.Errorf("%v is %d bytes, over maxNumberLen", f, len(s))
		}
		got, ok := number(value{kind: kindString, raw: []byte(s)})
		if !ok || got != f {
			t.Errorf("number(%q) = %v, %v; want %v", s, got, ok, f)
		}
	}
}

func TestFrameErrorIsRecoverable(t *testing.T) {
	_, err := NewDecoder(nil).Decode([]byte(`{`))
	var fe *FrameError
	if !errors.As(err, &fe) || !bytes.Contains([]byte(err.Error()), []byte("invalid_json")) {
		t.Errorf("Decode({) = %v", err)
	}
}

// TestDecimal is the table of what the platform's numbers may look like:
// decimal only, finite, not rounded to zero from a non-zero value, and -0
// read as 0.
func TestDecimal(t *testing.T) {
	for _, c := range []struct {
		in   string
		want float64
		ok   bool
	}{
		{"0", 0, true}, {"-0", 0, true}, {"+0.0", 0, true}, {"0e-400", 0, true}, {"0.000", 0, true},
		{"42", 42, true}, {"-121.5", -121.5, true}, {"+8", 8, true}, {"007", 7, true},
		{".5", 0.5, true}, {"5.", 5, true}, {"1.5e3", 1500, true}, {"1E3", 1000, true}, {"2e-3", 0.002, true},
		{"1e308", 1e308, true}, // a number; the field's range decides
		{"5e-324", 5e-324, true},
		{"0x1p-2", 0, false}, {"0x10", 0, false}, {"1_0", 0, false}, {"1_000.5", 0, false},
		{"1e-400", 0, false}, {"-1e-400", 0, false}, {"1e400", 0, false}, {"-1e309", 0, false},
		{"Inf", 0, false}, {"-Infinity", 0, false}, {"NaN", 0, false}, {"nan", 0, false},
		{"", 0, false}, {"-", 0, false}, {".", 0, false}, {"e5", 0, false}, {"1e", 0, false}, {"1e+", 0, false},
		{"1.5.5", 0, false}, {"--1", 0, false}, {"+-1", 0, false}, {"1,5", 0, false}, {"١٢", 0, false},
		{" 1", 0, false}, // spaces are trimmed by number, not decimal
	} {
		got, ok := decimal([]byte(c.in))
		if ok != c.ok || got != c.want || (ok && got == 0 && math.Signbit(got)) {
			t.Errorf("decimal(%q) = %v, %v; want %v, %v", c.in, got, ok, c.want, c.ok)
		}
	}
}
