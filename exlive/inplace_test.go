package exlive

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
	"unicode/utf8"

	"golang.org/x/text/encoding/simplifiedchinese"
)

// readResult is one result of ReadMessage, or of ReadFrame then Decode, as
// a line to compare, and the frame's UTF-8 when the reader gave it.
type readResult struct {
	line    string
	data    []byte
	inPlace bool // read in place (ReadMessage only)
}

// readOne reads one message with ReadMessage (inPlace), or with ReadFrame
// then Decode, as the session's read loop did before ReadMessage.
func readOne(r *Reader, d *Decoder, inPlace bool) (Message, Frame, error) {
	if inPlace {
		return r.ReadMessage(d)
	}
	f, err := r.ReadFrame()
	if err != nil {
		return nil, f, err
	}
	m, err := d.Decode(f.Data)
	return m, f, err
}

// readMessages reads a stream to its final error, with ReadMessage
// (inPlace) or with ReadFrame then Decode, as the session's read loop did.
func readMessages(t testing.TB, r *Reader, d *Decoder, inPlace bool, inputLen int) []readResult {
	t.Helper()
	var out []readResult
	for calls := 0; ; calls++ {
		// Every result but the last consumes at least one byte.
		if calls > inputLen+1 {
			t.Fatalf("%d calls for %d bytes: the reader does not stop", calls, inputLen)
		}
		m, f, err := readOne(r, d, inPlace)
		if len(r.buf) > r.max || cap(r.buf) > r.max {
			t.Fatalf("buffer len %d cap %d over the cap %d", len(r.buf), cap(r.buf), r.max)
		}
		line := ""
		if f.GBK {
			line += "[gbk]"
		}
		if f.Repaired {
			line += "[repaired]"
		}
		if f.Replaced {
			line += "[replaced]"
		}
		var fe *FrameError
		switch {
		case err == nil:
			if m == nil {
				t.Fatal("no message and no error")
			}
			line += " " + show(m)
		case errors.As(err, &fe):
			if m != nil {
				t.Fatalf("%s with %v", show(m), err)
			}
			line += " " + err.Error()
		default:
			return append(out, readResult{line: line + " " + err.Error()})
		}
		if f.size > 0 && f.Data == nil && !f.GBK {
			t.Fatalf("%s: a frame read in place without its data, not GBK", line)
		}
		out = append(out, readResult{line: line, data: bytes.Clone(f.Data), inPlace: f.size > 0})
	}
}

// sameResults compares ReadMessage's results with ReadFrame then Decode's:
// the same lines, and the same frame data where ReadMessage gives it.
func sameResults(got, want []readResult) error {
	lines := func(rs []readResult) []string {
		var s []string
		for _, r := range rs {
			s = append(s, r.line)
		}
		return s
	}
	if !slices.Equal(lines(got), lines(want)) {
		return fmt.Errorf("ReadMessage:\n%q\nReadFrame then Decode:\n%q", lines(got), lines(want))
	}
	for i := range got {
		if got[i].data != nil && !bytes.Equal(got[i].data, want[i].data) {
			return fmt.Errorf("result %d: ReadMessage's frame %q, ReadFrame's %q", i, got[i].data, want[i].data)
		}
	}
	return nil
}

// checkSameRead reads data with ReadFrame then Decode, whole, and with
// ReadMessage in every way it can arrive, and wants the same results.
// It returns how many frames ReadMessage read in place when it came whole.
func checkSameRead(t *testing.T, name string, data []byte, max int, enc Encoding, all bool) int {
	t.Helper()
	loc := shanghai(t)
	want := readMessages(t, NewReader(bytes.NewReader(data), max, enc), NewDecoder(loc), false, len(data))
	type way struct {
		name string
		r    io.Reader
	}
	var ways []way
	if all {
		for _, s := range splits(data) {
			ways = append(ways, way{s.name, s.r})
		}
	} else {
		for _, n := range []int{4096, 0, 1, 2, 3, 5, 7, 13, 31, 64, 200, 700} {
			ways = append(ways, way{"chunks of " + strconv.Itoa(n), &chunkReader{data: data, n: n}})
		}
	}
	inPlace := 0
	for i, w := range ways {
		got := readMessages(t, NewReader(w.r, max, enc), NewDecoder(loc), true, len(data))
		if err := sameResults(got, want); err != nil {
			t.Errorf("%s (%v, cap %d, read %s): %v", name, enc, max, w.name, err)
			return 0
		}
		if i == 0 {
			for _, r := range got {
				if r.inPlace {
					inPlace++
				}
			}
		}
	}
	return inPlace
}

var allEncodings = []Encoding{EncodingUTF8, EncodingAuto, EncodingGBK}

// TestReadMessageFixtures: every fixture, alone and in streams, in UTF-8
// and in GBK, read in every mode and every way it can arrive, decodes with
// ReadMessage exactly as with ReadFrame then Decode.
func TestReadMessageFixtures(t *testing.T) {
	var files []string
	for _, c := range codecCases {
		files = append(files, c.file)
	}
	for _, c := range dialectCases {
		files = append(files, c.file)
	}
	var all, dialect []byte
	for _, file := range files {
		raw := fixture(t, file)
		for _, enc := range allEncodings {
			checkSameRead(t, file, raw, 0, enc, true)
			if utf8.Valid(raw) && !isASCII(raw) {
				checkSameRead(t, file+" in GBK", toGBK(t, string(raw)), 0, enc, true)
			}
		}
		if strings.HasPrefix(file, "dialect/") {
			dialect = append(dialect, raw...)
		} else {
			all = append(append(all, raw...), "\r\n"...)
		}
	}
	for _, enc := range allEncodings {
		for _, max := range []int{0, 120, 300, 2047} {
			checkSameRead(t, "all fixtures", all, max, enc, false)
			checkSameRead(t, "all fixtures in GBK", toGBK(t, string(all)), max, enc, false)
			n := checkSameRead(t, "the dialect back to back", dialect, max, enc, false)
			// The eleven frames fit the cap of 0 (DefaultMaxFrame) and
			// 2047, and the utf-8 mode takes the seven that are ASCII.
			if want := map[Encoding]int{EncodingUTF8: 7, EncodingAuto: 11, EncodingGBK: 11}[enc]; (max == 0 || max == 2047) && n != want {
				t.Errorf("the dialect (%v, cap %d): %d frames read in place, want %d", enc, max, n, want)
			}
		}
	}
}

// TestReadMessageEdges: the cases the in-place reader leaves to the old
// way, and those it takes on, in streams.
func TestReadMessageEdges(t *testing.T) {
	bs, lb, rb := gbkChars(t, 0x5C, 3), gbkChars(t, 0x7B, 2), gbkChars(t, 0x7D, 2)
	pair := hiddenBackslash(t)
	text := []string{
		// GBK trails that are '\', '{' and '}', next to escapes.
		`{"header":{"cmd":"1003"},"body":{"msg":"` + bs[0] + `"}}`,
		`{"header":{"cmd":"1007"},"body":{"id":"1","lat":"1","lng":"2","code":"` + lb[0] + rb[0] + `","posinfo":"中文` + bs[1] + bs[2] + `"}}`,
		`{"header":{"cmd":"1003"},"body":{"msg":"` + rb[1] + `} ` + lb[1] + `{ \"` + bs[0] + `\" \\` + bs[1] + `\\"}}`,
		// GB18030's four-byte characters, and the euro sign.
		`{"header":{"cmd":"1003"},"body":{"msg":"€🚚` + bs[0] + `"}}`,
		// UTF-8 that hides a GBK trail '\' (auto mode cannot tell).
		`{"header":{"cmd":"1003"},"body":{"msg":"中` + pair + `"}}`,
		`{"header":{"cmd":"1003"},"body":{"msg":"` + pair + `","x":"中"}}`,
		`{"header":{"cmd":"1003"},"body":{"msg":"` + pair + `"}}`,
		// GBK in keys, in values read past, in escapes, in an unknown
		// command's body, in a body before its header, in a number.
		`{"header":{"cmd":"1003","命令":"中"},"body":{"消息":"中","msg":"\u4e2d文\n"}}`,
		`{"header":{"cmd":"4242"},"body":{"名":"中文` + bs[0] + `","n":[1,"文"]}}`,
		`{"body":{"id":"车1","lat":"31.2","lng":"121.4","cstate":"ACC开"},"header":{"cmd":"1007"}}`,
		`{"body":{"文":"字"},"header":{"cmd":"4243"}}`,
		`{"header":{"cmd":"1007"},"body":{"id":"1","lat":"三十","lng":"121.4"}}`,
		`{"header":{"cmd":"1007"},"body":{"id":"1","lat":"31","lng":"121","veo":"快","gpstime":"二〇一一年十一月一日 十二点"}}`,
		`{"header":{"cmd":"1011"},"body":{"id":"` + strings.Repeat("车", 70) + `","code":"沪A"}}`,
		`{"header":{"cmd":"1007"},"body":{"id":"1","lat":"31","lng":"121","posinfo":"` + strings.Repeat("上海", 200) + `"}}`,
		// Frames the old way handles: errors, repairs, junk, breaks.
		`{"header":{"cmd":"1003"},"body":{"msg":"中",}}`,
		`{"header":{"cmd":"1001"},"body":{"data":"中"}` + pos,
		`junk中{"header":{"cmd":"1003"},"body":{"msg":"a` + "\n" + `b"}}`,
		`{"header":{"cmd":"1007"},"body":{"id":"1","lng":"121.4"}}`,
		`{"header":{"cmd":"abc"},"body":{}}` + `{"header":{"cmd":"1003"},"body":[]}` + `{"x":1}`,
		`{"a":` + nested("[", "]", maxNesting+2) + `}` + hb,
		`{"header":{"cmd":"1003"},"body":{"msg":"中"}}}}` + hb + `中`,
	}
	var stream []byte
	for _, s := range text {
		stream = append(append(stream, s...), '\n')
		for _, enc := range allEncodings {
			checkSameRead(t, s, []byte(s), 0, enc, true)
			checkSameRead(t, s+" in GBK", toGBK(t, s), 0, enc, true)
		}
	}
	// Bytes that are no text: invalid UTF-8, GBK leads before a quote or
	// a line break, 0xFF, a trail 0x7F, GBK's user areas (no character
	// to x/text), a lead that ends the stream.
	raw := []string{
		"{\"header\":{\"cmd\":\"1003\"},\"body\":{\"msg\":\"a\xffb\xe4\xb8 \xc0\xaf\xed\xa0\x80\"}}",
		"{\"header\":{\"cmd\":\"1003\"},\"body\":{\"msg\":\"\x80\xff\x81\"}}",
		"{\"header\":{\"cmd\":\"1003\"},\"body\":{\"msg\":\"\x81\x7f\xaa\xa1\xfe\xfe\xa1\x40\"}}",
		"{\"header\":{\"cmd\":\"1003\"},\"body\":{\"msg\":\"\xb0\xa1\x81\n\"}}",
		"{\"header\":{\"cmd\":\"1003\"},\"body\":{\"msg\":\"\xb0\xa1\x81\x30\x81\"}}",
		"{\"header\":{\"cmd\":\"1003\"},\"body\":{\"msg\":\"\xb0\xa1\"}}\xb0",
		"{\"header\":{\"cmd\":\"1003\"},\"body\":{\"msg\":\"\xb0\xa1\",\"x\":\xb0\xa1}}",
	}
	// And one such sequence a frame, so that no other in the frame hides
	// a difference: in a string a message keeps, in one it reads past, in
	// a key, in an unknown command's body.
	for _, seq := range []string{
		"\x80", "\xff", "\x81", "\x81\x7f", "\x81\xff", "\xaa\xa1", "\xfe\xfe", "\xa1\x40", "\xb0\xa1", "\x81\x5c",
		"\x81\x30", "\x81\x30\x81\x30", "\x84\x31\xa4\x37", "\xe4\xb8\xad", "\xed\xa0\x80", "\xc0\xaf", "\xef\xbf\xbd", "\xe4\xb8",
	} {
		for _, f := range []string{
			`{"header":{"cmd":"1003"},"body":{"msg":"a` + seq + `b"}}`,
			`{"header":{"cmd":"1003"},"body":{"msg":"` + seq + `"}}`,
			`{"header":{"cmd":"1003"},"body":{"x":"a` + seq + `b","msg":"c"}}`,
			`{"header":{"cmd":"1003"},"body":{"m` + seq + `":"a","msg":"c"}}`,
			`{"header":{"cmd":"4242"},"body":{"x":"a` + seq + `b"}}`,
		} {
			raw = append(raw, f)
		}
	}
	for _, s := range raw {
		stream = append(stream, s...)
		for _, enc := range allEncodings {
			checkSameRead(t, s, []byte(s), 0, enc, true)
		}
	}
	for _, enc := range allEncodings {
		for _, max := range []int{0, 64, 500} {
			checkSameRead(t, "every edge", stream, max, enc, false)
			checkSameRead(t, "every edge in GBK", toGBK(t, string(stream)), max, enc, false)
		}
	}
}

// TestReadMessageReadsInPlace: the in-place reading is the one taken for
// the live dialect and the specification's form, whole in the buffer or
// arriving in parts; a capture goes the old way and keeps the wire.
func TestReadMessageReadsInPlace(t *testing.T) {
	dialect := fixture(t, "dialect/09_position_json_common_gbk.json")
	var gbkStream, utf8Stream []byte
	for i := range 20 {
		gbkStream = append(gbkStream, dialect...)
		utf8Stream = append(append(utf8Stream, benchPosition(i)...), "\r\n"...)
	}
	for _, c := range []struct {
		stream []byte
		enc    Encoding
		gbk    bool
	}{
		{gbkStream, EncodingGBK, true},
		{gbkStream, EncodingAuto, true},
		{utf8Stream, EncodingUTF8, false},
		{utf8Stream, EncodingAuto, false},
	} {
		for _, n := range []int{len(c.stream), 0, 100} {
			r := NewReader(&chunkReader{data: c.stream, n: n}, 0, c.enc)
			d := NewDecoder(shanghai(t))
			for i := range 20 {
				m, f, err := r.ReadMessage(d)
				if err != nil {
					t.Fatalf("%v, chunks of %d, frame %d: %v", c.enc, n, i, err)
				}
				if _, ok := m.(*Position); !ok || f.size == 0 || f.GBK != c.gbk || (f.Data == nil) != c.gbk {
					t.Fatalf("%v, chunks of %d, frame %d: %T, size %d gbk %v data %d bytes: want a position read in place",
						c.enc, n, i, m, f.size, f.GBK, len(f.Data))
				}
			}
		}
		r := NewReader(bytes.NewReader(c.stream), 0, c.enc)
		r.KeepWire(true)
		m, f, err := r.ReadMessage(NewDecoder(nil))
		if _, ok := m.(*Position); !ok || err != nil || f.size != 0 || f.Data == nil || !bytes.HasSuffix(c.stream[:len(f.Wire)], bytes.TrimSpace(f.Wire)) {
			t.Errorf("%v with KeepWire: %T, %v, size %d, data %d bytes, wire %q", c.enc, m, err, f.size, len(f.Data), f.Wire)
		}
	}
}

// TestReadMessageLinear: a frame arriving a byte at a time is parsed in
// place once, when the scanner has found its end, not once a byte; the
// scanner keeps its state across reads, as before.
func TestReadMessageLinear(t *testing.T) {
	cjk := `{"header":{"cmd":"1003"},"body":{"msg":"` + strings.Repeat("中文", 5000) + `"}}`
	ascii := `{"header":{"cmd":"1003"},"body":{"msg":"` + strings.Repeat("ab", 5000) + `"}}` + hb
	for _, c := range []struct {
		data []byte
		enc  Encoding
	}{
		{[]byte(cjk), EncodingUTF8}, {[]byte(cjk), EncodingAuto},
		{toGBK(t, cjk), EncodingGBK}, {toGBK(t, cjk), EncodingAuto},
		{[]byte(ascii), EncodingUTF8}, {[]byte(ascii), EncodingAuto}, {[]byte(ascii), EncodingGBK},
	} {
		r := NewReader(iotest.OneByteReader(bytes.NewReader(c.data)), 0, c.enc)
		got := readMessages(t, r, NewDecoder(nil), true, len(c.data))
		if len(got) < 2 || !got[0].inPlace {
			t.Fatalf("%v: %.200q, want the frame read in place", c.enc, got[0].line)
		}
		if r.parsed > 2*len(c.data) {
			t.Errorf("%v: %d bytes parsed in place for a stream of %d arriving a byte at a time", c.enc, r.parsed, len(c.data))
		}
	}
}

// TestGBKTable checks the table of GBK characters against x/text's
// decoder, pair by pair: a character the table has is the decoder's; one
// it lacks is U+FFFD to the decoder (or its trail is 0x7F, no trail).
func TestGBKTable(t *testing.T) {
	w := wideText{pairs: gbkTable()}
	dec := simplifiedchinese.GB18030.NewDecoder()
	have := 0
	for lead := 0x81; lead <= 0xFE; lead++ {
		for trail := 0x40; trail <= 0xFE; trail++ {
			out, err := dec.Bytes([]byte{byte(lead), byte(trail)})
			if err != nil {
				t.Fatal(err)
			}
			c := w.char(byte(lead), byte(trail))
			want, _ := utf8.DecodeRune(out)
			if c != 0 {
				have++
				if c != want {
					t.Fatalf("% x: table %U, decoder %U", []byte{byte(lead), byte(trail)}, c, want)
				}
			} else if trail != 0x7F && want != utf8.RuneError {
				t.Fatalf("% x: not in the table, decoder %U", []byte{byte(lead), byte(trail)}, want)
			}
		}
	}
	if have < 20000 {
		t.Errorf("%d characters in the table", have)
	}
	for _, b := range [][2]byte{{0x80, 0x41}, {0xFF, 0x41}, {0x81, 0x3F}, {0x81, 0xFF}, {0x81, 0x39}} {
		if c := w.char(b[0], b[1]); c != 0 {
			t.Errorf("% x: %U, want none", b, c)
		}
	}
}

// FuzzReadMessage reads arbitrary bytes, with a small cap, in each
// encoding, whole and in chunks, with ReadMessage and with ReadFrame then
// Decode, and wants the same messages and errors. Its seeds are
// FuzzReader's.
func FuzzReadMessage(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "fuzz", "FuzzReader", "*"))
	if err != nil || len(files) == 0 {
		f.Fatalf("FuzzReader's corpus: %v", err)
	}
	for _, file := range files {
		data, capSel, encSel, chunk, err := readerSeed(file)
		if err != nil {
			f.Fatalf("%s: %v", file, err)
		}
		f.Add(data, capSel, encSel, chunk)
	}
	loc := shanghai(f)
	f.Fuzz(func(t *testing.T, data []byte, capSel uint16, encSel uint8, chunk uint8) {
		maxFrame := 1 + int(capSel)%2048
		enc := Encoding(encSel % 3)
		want := readMessages(t, NewReader(bytes.NewReader(data), maxFrame, enc), NewDecoder(loc), false, len(data))
		for _, r := range []io.Reader{bytes.NewReader(data), &chunkReader{data: data, n: int(chunk % 32)}} {
			got := readMessages(t, NewReader(r, maxFrame, enc), NewDecoder(loc), true, len(data))
			if err := sameResults(got, want); err != nil {
				t.Fatalf("cap %d %v, chunks of %d: %v", maxFrame, enc, chunk%32, err)
			}
		}
	})
}

// readerSeed reads one of FuzzReader's corpus files: "go test fuzz v1",
// then []byte("…"), uint16(…), uint8(…), uint8(…).
func readerSeed(file string) (data []byte, capSel uint16, encSel, chunk uint8, err error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, 0, 0, 0, err
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 5 || lines[0] != "go test fuzz v1" {
		return nil, 0, 0, 0, fmt.Errorf("%d lines, want 5", len(lines))
	}
	arg := func(line, typ string) (string, error) {
		if !strings.HasPrefix(line, typ+"(") || !strings.HasSuffix(line, ")") {
			return "", fmt.Errorf("%q is no %s", line, typ)
		}
		return line[len(typ)+1 : len(line)-1], nil
	}
	s, err := arg(lines[1], "[]byte")
	if err == nil {
		s, err = strconv.Unquote(s)
	}
	if err != nil {
		return nil, 0, 0, 0, err
	}
	var n [3]uint64
	for i, typ := range []string{"uint16", "uint8", "uint8"} {
		line := lines[2+i]
		if typ == "uint8" && strings.HasPrefix(line, "byte(") {
			// The fuzzer writes the crashers' bytes as byte('\x00').
			typ, line = "byte", strings.Replace(line, "'", `"`, 2)
		}
		v, err := arg(line, typ)
		if err == nil && typ == "byte" {
			if v, err = strconv.Unquote(v); err == nil && len(v) != 1 {
				err = fmt.Errorf("%q is no byte", lines[2+i])
			}
			v = strconv.Itoa(int(v[0]))
		}
		if err == nil {
			n[i], err = strconv.ParseUint(v, 0, 16)
		}
		if err != nil {
			return nil, 0, 0, 0, err
		}
	}
	return []byte(s), uint16(n[0]), uint8(n[1]), uint8(n[2]), nil
}

// TestReadMessageSurvivesDeadline: a passed read deadline in the middle of
// a frame read in place is returned as ReadFrame returns it, the frame in
// part stays, counts as one for InFrame (the session's idle clock), and is
// whole when the reading goes on.
func TestReadMessageSurvivesDeadline(t *testing.T) {
	timeout := fmt.Errorf("read tcp: %w", os.ErrDeadlineExceeded)
	frame := string(toGBK(t, `{"header":{"cmd":"1003"},"body":{"msg":"半个"}}`))
	cut := strings.Index(frame, "msg") + 7 // between the bytes of 半
	script := func() io.Reader {
		return &stepReader{steps: []step{
			{data: "xx" + frame[:cut]}, {err: timeout}, {data: frame[cut:] + "\r\n{"}, {err: timeout},
			{data: `"a":`}, {err: timeout}, {err: timeout}, {data: "1}" + frame[:10]}, {err: timeout}, {data: frame[10:]},
		}}
	}
	read := func(inPlace bool) []string {
		r := NewReader(script(), 0, EncodingGBK)
		d := NewDecoder(nil)
		var got []string
		for len(got) < 30 {
			m, _, err := readOne(r, d, inPlace)
			line := fmt.Sprintf("in frame %v: ", r.InFrame())
			switch {
			case err == nil:
				line += show(m)
			case errors.Is(err, os.ErrDeadlineExceeded):
				line += "deadline"
			default:
				line += err.Error()
			}
			got = append(got, line)
			if err == io.EOF {
				break
			}
		}
		return got
	}
	want := read(false)
	if got := read(true); !slices.Equal(got, want) {
		t.Errorf("ReadMessage:\n%q\nReadFrame then Decode:\n%q", got, want)
	}
	if len(want) != 10 || want[1] != "in frame true: deadline" {
		t.Errorf("the script reads as %q", want)
	}
}
