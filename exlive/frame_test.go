package exlive

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
	"unicode/utf8"

	"golang.org/x/text/encoding/simplifiedchinese"
)

// readEvents reads frames until a final error and describes each result as
// a line: "frame DATA [flags]", "skip REASON SIZE", then "EOF",
// "unexpected EOF", "too large" or the error. It checks after every call
// that the reader holds no more than its cap.
func readEvents(t testing.TB, r *Reader) []string {
	t.Helper()
	var events []string
	for range 100000 {
		f, err := r.ReadFrame()
		if len(r.buf) > r.max || cap(r.buf) > r.max {
			t.Fatalf("buffer len %d cap %d over the cap %d", len(r.buf), cap(r.buf), r.max)
		}
		var fe *FrameError
		switch {
		case err == nil:
			events = append(events, frameEvent(f))
			continue
		case errors.As(err, &fe):
			events = append(events, fmt.Sprintf("skip %s %d", fe.Reason, fe.Size))
			continue
		case errors.Is(err, io.ErrUnexpectedEOF):
			events = append(events, "unexpected EOF")
		case err == io.EOF:
			events = append(events, "EOF")
		case errors.Is(err, ErrFrameTooLarge):
			events = append(events, "too large")
		default:
			events = append(events, err.Error())
		}
		return events
	}
	t.Fatal("the reader does not stop")
	return nil
}

func frameEvent(f Frame) string {
	s := "frame " + string(f.Data)
	if f.GBK {
		s += " [gbk]"
	}
	if f.Repaired {
		s += " [repaired]"
	}
	if f.Replaced {
		s += " [replaced]"
	}
	return s
}

// splits returns the ways a stream can arrive: whole, a byte at a time, in
// halves, with io.EOF on the last data, and split in two at every index.
func splits(data []byte) []struct {
	name string
	r    io.Reader
} {
	type named = struct {
		name string
		r    io.Reader
	}
	rs := []named{
		{"whole", bytes.NewReader(data)},
		{"one byte", iotest.OneByteReader(bytes.NewReader(data))},
		{"half", iotest.HalfReader(bytes.NewReader(data))},
		{"data+EOF", iotest.DataErrReader(bytes.NewReader(data))},
	}
	for k := 1; k < len(data); k++ {
		rs = append(rs, named{"split at " + strconv.Itoa(k), io.MultiReader(bytes.NewReader(data[:k]), bytes.NewReader(data[k:]))})
	}
	return rs
}

// checkStream reads data every way it can arrive and wants the same events.
func checkStream(t *testing.T, name string, data []byte, max int, enc Encoding, want []string) {
	t.Helper()
	for _, s := range splits(data) {
		got := readEvents(t, NewReader(s.r, max, enc))
		if !slices.Equal(got, want) {
			t.Errorf("%s (%v, read %s):\n got %q\nwant %q", name, enc, s.name, got, want)
			return // one way of reading is enough to show it
		}
	}
}

const (
	hb    = `{"header":{"cmd":"1002"},"body":{"result":""}}`
	login = `{"header":{"cmd":"1000"},"body":{"name":"exlive","pass":"000000","ver":"","type":"","mode":""}}`
	pos   = `{"header":{"cmd":"1007"},"body":{"id":"1","lat":"31.2","lng":"121.4","posinfo":"上海"}}`
)

func TestReaderStreams(t *testing.T) {
	tricky := `{"header":{"cmd":"1003"},"body":{"msg":"{}{\"}\\{ \\\\\" } \\"}}`
	for _, c := range []struct {
		name string
		in   string
		want []string
	}{
		{"empty", "", []string{"EOF"}},
		{"whitespace only", " \r\n\t\n", []string{"EOF"}},
		{"one frame", hb, []string{"frame " + hb, "EOF"}},
		{"back to back", hb + login + pos, []string{"frame " + hb, "frame " + login, "frame " + pos, "EOF"}},
		{"LF", hb + "\n" + login + "\n", []string{"frame " + hb, "frame " + login, "EOF"}},
		{"CRLF", hb + "\r\n" + login + "\r\n" + pos + "\r\n", []string{"frame " + hb, "frame " + login, "frame " + pos, "EOF"}},
		{"blank lines and tabs", "\r\n\r\n\t " + hb + " \t\r\n\r\n" + hb, []string{"frame " + hb, "frame " + hb, "EOF"}},
		{"whitespace inside a frame", "{ \"a\" :\r\n{ \"b\" : 1 }\t}", []string{"frame { \"a\" :\r\n{ \"b\" : 1 }\t}", "EOF"}},
		{"junk around", "garbage" + hb + "more junk\r\n" + login + "tail",
			[]string{"skip junk 7", "frame " + hb, "skip junk 8", "frame " + login, "skip junk 4", "EOF"}},
		{"junk only", "HTTP/1.1 400 Bad Request\r\n\r\n", []string{"skip junk 21", "EOF"}},
		{"closing braces between frames", hb + "}}]" + hb, []string{"frame " + hb, "skip junk 3", "frame " + hb, "EOF"}},
		{"strings with braces, quotes and backslashes", tricky + tricky, []string{"frame " + tricky, "frame " + tricky, "EOF"}},
		{"escaped backslash before the closing quote", `{"a":"\\"}{"b":"\\\"}"}`, []string{`frame {"a":"\\"}`, `frame {"b":"\\\"}"}`, "EOF"}},
		{"nested objects and arrays", `{"a":{"b":[{"c":{}},{"d":[]}]},"e":[[{}]]}`, []string{`frame {"a":{"b":[{"c":{}},{"d":[]}]},"e":[[{}]]}`, "EOF"}},
		// The Reader does not validate JSON: a balanced frame that is not
		// JSON is a frame, and Decode refuses it (TestReaderThenDecode).
		{"invalid JSON between frames", hb + `{"a":,}` + "\r\n" + `{nope}` + hb, []string{"frame " + hb, `frame {"a":,}`, "frame {nope}", "frame " + hb, "EOF"}},
		// A raw line break cannot be in a string: the frame is dropped and
		// reading resumes after the break.
		{"LF inside a string", `{"a":"x` + "\n" + `y"}` + hb, []string{"skip invalid_json 7", "skip junk 3", "frame " + hb, "EOF"}},
		{"CR inside a string", `{"header":{"cmd":"1003"},"body":{"msg":"line` + "\r\n" + hb, []string{"skip invalid_json 44", "frame " + hb, "EOF"}},
		{"line break in a string after a frame", hb + `{"a":"` + "\n" + hb, []string{"frame " + hb, "skip invalid_json 6", "frame " + hb, "EOF"}},
		// A frame that lacks closing braces ends where the next begins.
		{"missing brace, then a frame", `{"header":{"cmd":"1001"},"body":{"data":""}` + "\r\n" + hb,
			[]string{`frame {"header":{"cmd":"1001"},"body":{"data":""}} [repaired]`, "frame " + hb, "EOF"}},
		{"missing brace, no separator", `{"header":{"cmd":"1001"},"body":{"data":""}` + hb,
			[]string{`frame {"header":{"cmd":"1001"},"body":{"data":""}} [repaired]`, "frame " + hb, "EOF"}},
		{"missing two braces", `{"header":{"cmd":"1003"},"body":{"msg":"a"` + " \r\n" + hb,
			[]string{`frame {"header":{"cmd":"1003"},"body":{"msg":"a"}} [repaired]`, "frame " + hb, "EOF"}},
		{"missing braces after a number and a literal", `{"a":1 {"b":true` + "\n" + `{"c":[1]` + "\n" + hb,
			[]string{`frame {"a":1} [repaired]`, `frame {"b":true} [repaired]`, `frame {"c":[1]} [repaired]`, "frame " + hb, "EOF"}},
		{"a lone brace", `{` + hb, []string{`frame {} [repaired]`, "frame " + hb, "EOF"}},
		// After a comma only an array has room for an object: a frame cut
		// after a comma ends where the next begins, and does not swallow
		// the stream up to the cap.
		{"cut after a comma", `{"header":{"cmd":"1007"},"body":{"id":"1",` + "\r\n" + hb + hb,
			[]string{`frame {"header":{"cmd":"1007"},"body":{"id":"1",}} [repaired]`, "frame " + hb, "frame " + hb, "EOF"}},
		{"objects in arrays", `{"a":[1,{"b":[{},{"c":2}]},[{}]],"d":{}}`, []string{`frame {"a":[1,{"b":[{},{"c":2}]},[{}]],"d":{}}`, "EOF"}},
		{"cut after an object in an array", `{"a":[1,{"b":2}]` + hb, []string{`frame {"a":[1,{"b":2}]} [repaired]`, "frame " + hb, "EOF"}},
		// The limit of the rule: cut after a comma in an array, or after a
		// colon, a frame has room for the next as a value, and swallows it
		// (one frame: the one after that has no room).
		{"cut inside an array", `{"a":[1,{"b":2},` + hb + hb, []string{`frame {"a":[1,{"b":2},` + hb + `} [repaired]`, "frame " + hb, "EOF"}},
		{"cut after a colon", `{"a":` + hb + hb, []string{`frame {"a":` + hb + `} [repaired]`, "frame " + hb, "EOF"}},
		{"array left open in an object", `{"a":[1,2}` + hb, []string{`frame {"a":[1,2}`, "frame " + hb, "EOF"}},
		{"stray closing bracket", `{"a":]1,{"b":2}}`, []string{`frame {"a":]1,} [repaired]`, `frame {"b":2}`, "skip junk 1", "EOF"}},
		{"missing brace at the end", hb + "\r\n" + `{"header":{"cmd":"1001"},"body":{"data":""}` + "\r\n",
			[]string{"frame " + hb, "unexpected EOF"}},
		{"EOF inside a frame", `{"a":{"b":1}`, []string{"unexpected EOF"}},
		{"EOF inside a string", hb + `{"a":"b`, []string{"frame " + hb, "unexpected EOF"}},
		{"EOF after an escape", `{"a":"b\`, []string{"unexpected EOF"}},
		{"junk, then EOF inside a frame", `xx{"a"`, []string{"skip junk 2", "unexpected EOF"}},
	} {
		checkStream(t, c.name, []byte(c.in), 0, EncodingAuto, c.want)
		// ASCII streams read the same in every encoding.
		if isASCII([]byte(c.in)) {
			checkStream(t, c.name, []byte(c.in), 0, EncodingGBK, c.want)
			checkStream(t, c.name, []byte(c.in), 0, EncodingUTF8, c.want)
		}
	}
}

// TestReaderThenDecode: invalid frames between good ones cost only
// themselves.
func TestReaderThenDecode(t *testing.T) {
	stream := hb + "\r\n" + `{"header":{"cmd":"1003"},"body":{"msg":"hi",}}` + "\r\n" +
		"junk" + `{"header":{"cmd":"1003"},"body":{"msg":"a` + "\n" +
		`{"header":{"cmd":"1001"},"body":{"data":""}` + login
	r := NewReader(strings.NewReader(stream), 0, EncodingAuto)
	d := NewDecoder(nil)
	var got []string
	for {
		f, err := r.ReadFrame()
		var fe *FrameError
		if errors.As(err, &fe) {
			got = append(got, "skip "+string(fe.Reason))
			continue
		}
		if err != nil {
			got = append(got, err.Error())
			break
		}
		m, err := d.Decode(f.Data)
		if err != nil {
			got = append(got, "decode "+string(err.(*FrameError).Reason))
			continue
		}
		got = append(got, fmt.Sprintf("%T", m))
	}
	want := []string{"*exlive.Heartbeat", "decode invalid_json", "skip junk", "skip invalid_json", "*exlive.Logout", "*exlive.Login", "EOF"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
}

// sized returns a frame of exactly n bytes (n >= 2).
func sized(n int) string {
	if n < 9 {
		return "{" + strings.Repeat(" ", n-2) + "}"
	}
	return `{"a":"` + strings.Repeat("x", n-8) + `"}`
}

func TestReaderSizeCap(t *testing.T) {
	for _, max := range []int{2, 3, 9, 100, 4095, 4096, 4097, 9000} {
		exact, over := sized(max), sized(max+1)
		if len(exact) != max || len(over) != max+1 {
			t.Fatal("sized is wrong")
		}
		name := func(s string) string { return fmt.Sprintf("max %d: %s", max, s) }
		check := func(what string, in string, want []string) {
			t.Helper()
			if len(in) < 300 {
				checkStream(t, name(what), []byte(in), max, EncodingAuto, want)
				return
			}
			for _, r := range []io.Reader{strings.NewReader(in), iotest.OneByteReader(strings.NewReader(in)), iotest.HalfReader(strings.NewReader(in))} {
				if got := readEvents(t, NewReader(r, max, EncodingAuto)); !slices.Equal(got, want) {
					t.Errorf("%s:\n got %.200q\nwant %.200q", name(what), got, want)
				}
			}
		}
		check("exactly max", exact, []string{"frame " + exact, "EOF"})
		check("max+1", over, []string{"too large"})
		check("max after max", exact+exact+"\r\n"+exact, []string{"frame " + exact, "frame " + exact, "frame " + exact, "EOF"})
		check("max after whitespace", strings.Repeat(" ", 3*max+7)+exact, []string{"frame " + exact, "EOF"})
		check("max after junk", strings.Repeat("j", 3*max+7)+exact, []string{"skip junk " + strconv.Itoa(3*max+7), "frame " + exact, "EOF"})
		check("small frame then max", "{}"+exact, []string{"frame {}", "frame " + exact, "EOF"})
		check("max+1 after a frame", exact+over, []string{"frame " + exact, "too large"})
		if max >= 9 {
			// A frame missing a brace, one byte short of the cap, is
			// repaired to exactly the cap; missing two, it is too large.
			short := exact[:max-1]
			check("repaired to max", short+"{}", []string{"frame " + exact + " [repaired]", "frame {}", "EOF"})
			if max >= 13 {
				two := `{"a":{"b":"` + strings.Repeat("x", max-13) + `"`
				check("repaired past max", two+"{}", []string{"too large"})
			}
		}
	}
}

func TestReaderBufferNeverPassesTheCap(t *testing.T) {
	const max = 64
	// A megabyte of junk, and of a frame that never ends.
	for _, in := range []string{strings.Repeat("junk ", 200000), "{" + strings.Repeat(`"a":"b",`, 100000)} {
		for _, r := range []io.Reader{strings.NewReader(in), iotest.OneByteReader(strings.NewReader(in))} {
			rd := NewReader(r, max, EncodingGBK)
			got := readEvents(t, rd) // checks the buffer on every call
			if len(got) == 0 || (got[len(got)-1] != "too large" && got[len(got)-1] != "EOF") {
				t.Errorf("events %.100q", got)
			}
		}
	}
	if r := NewReader(strings.NewReader(""), 0, EncodingAuto); r.max != DefaultMaxFrame {
		t.Errorf("default cap %d, want %d", r.max, DefaultMaxFrame)
	}
}

// stepReader hands out its steps one Read at a time.
type stepReader struct {
	steps []step
}

type step struct {
	data string
	err  error
}

func (r *stepReader) Read(p []byte) (int, error) {
	if len(r.steps) == 0 {
		return 0, io.EOF
	}
	s := &r.steps[0]
	n := copy(p, s.data)
	s.data = s.data[n:]
	if s.data != "" {
		return n, nil
	}
	err := s.err
	r.steps = r.steps[1:]
	return n, err
}

// TestReaderSurvivesDeadline: a passed read deadline is not the end of the
// stream. The session extends the deadline and reads on, and the frame in
// progress must be whole when it does.
func TestReaderSurvivesDeadline(t *testing.T) {
	timeout := fmt.Errorf("read tcp: %w", os.ErrDeadlineExceeded)
	full := `xx{"header":{"cmd":"1003"},"body":{"msg":"半个"}}` + "\r\n{\"a\":"
	cut := strings.Index(full, "半") + 1 // inside a character
	r := NewReader(&stepReader{steps: []step{
		{data: full[:cut]},
		{err: timeout},
		{data: full[cut:]},
		{err: timeout},
		{err: timeout},
		{data: "1}"},
	}}, 0, EncodingAuto)
	var got []string
	for {
		f, err := r.ReadFrame()
		switch {
		case err == nil:
			got = append(got, string(f.Data))
		case errors.Is(err, os.ErrDeadlineExceeded):
			got = append(got, "deadline")
		default:
			got = append(got, err.Error())
		}
		if err == io.EOF || len(got) > 20 {
			break
		}
	}
	want := []string{"exlive: skipped 2 bytes: junk: bytes outside a frame", "deadline",
		`{"header":{"cmd":"1003"},"body":{"msg":"半个"}}`, "deadline", "deadline", `{"a":1}`, "EOF"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
}

func TestReaderErrors(t *testing.T) {
	boom := errors.New("connection reset")
	// A read error after data: the frames first, then the error, for good.
	r := NewReader(&stepReader{steps: []step{{data: hb + `{"a"`, err: boom}}}, 0, EncodingAuto)
	if f, err := r.ReadFrame(); err != nil || string(f.Data) != hb {
		t.Fatalf("ReadFrame = %q, %v", f.Data, err)
	}
	for range 2 {
		if _, err := r.ReadFrame(); err != boom {
			t.Errorf("ReadFrame = %v, want %v", err, boom)
		}
	}
	// A reader that returns nothing, forever.
	r = NewReader(iotest.ErrReader(nil), 0, EncodingAuto)
	if _, err := r.ReadFrame(); err != io.ErrNoProgress {
		t.Errorf("ReadFrame = %v, want io.ErrNoProgress", err)
	}
	// io.EOF stays io.EOF, and io.ErrUnexpectedEOF is wrapped with what
	// happened.
	r = NewReader(strings.NewReader(`{"a":`), 0, EncodingAuto)
	_, err := r.ReadFrame()
	if !errors.Is(err, io.ErrUnexpectedEOF) || err.Error() != "exlive: stream ended inside a frame: unexpected EOF" {
		t.Errorf("ReadFrame = %v", err)
	}
}

// gbkChars finds n CJK characters (all, when n is 0) whose GBK encoding ends
// in trail, by encoding every character of the CJK block rather than
// trusting a table.
func gbkChars(t testing.TB, trail byte, n int) []string {
	t.Helper()
	enc := simplifiedchinese.GB18030.NewEncoder()
	var found []string
	for r := rune(0x4E00); r <= 0x9FA5 && (n == 0 || len(found) < n); r++ {
		b, err := enc.Bytes([]byte(string(r)))
		if err != nil {
			t.Fatal(err)
		}
		if len(b) == 2 && b[1] == trail {
			found = append(found, string(r))
		}
	}
	if len(found) < max(n, 1) {
		t.Fatalf("found %d characters with GBK trail %#x, want %d", len(found), trail, n)
	}
	return found
}

func toGBK(t testing.TB, s string) []byte {
	t.Helper()
	b, err := simplifiedchinese.GB18030.NewEncoder().Bytes([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestReaderGBK(t *testing.T) {
	bs, lb, rb := gbkChars(t, 0x5C, 3), gbkChars(t, 0x7B, 2), gbkChars(t, 0x7D, 2)
	for _, c := range append(append(slices.Clone(bs), lb...), rb...) {
		if b := toGBK(t, c); len(b) != 2 || b[0] < 0x81 || (b[1] != '\\' && b[1] != '{' && b[1] != '}') {
			t.Fatalf("%s is % x in GBK", c, b)
		}
	}
	// Each such character at the end of a string, where a trail '\' would
	// escape the closing quote, and among other text.
	frames := []string{
		`{"header":{"cmd":"1003"},"body":{"msg":"` + bs[0] + `"}}`,
		`{"header":{"cmd":"1007"},"body":{"id":"1","lat":"1","lng":"2","code":"` + lb[0] + rb[0] + `","posinfo":"中文` + bs[1] + bs[2] + `"}}`,
		`{"header":{"cmd":"1003"},"body":{"msg":"` + rb[1] + `} ` + lb[1] + `{ \"` + bs[0] + `\" \\` + bs[1] + `\\"}}`,
		hb,
	}
	var stream []byte
	var want []string
	for i, f := range frames {
		stream = append(stream, toGBK(t, f)...)
		if i%2 == 0 {
			stream = append(stream, "\r\n"...)
		}
		ev := "frame " + f
		if !isASCII([]byte(f)) {
			ev += " [gbk]"
		}
		want = append(want, ev)
	}
	want = append(want, "EOF")
	checkStream(t, "GBK frames", stream, 0, EncodingGBK, want)
	checkStream(t, "GBK frames", stream, 0, EncodingAuto, want)

	// And the decoded messages are right.
	r := NewReader(bytes.NewReader(stream), 0, EncodingAuto)
	d := NewDecoder(nil)
	f, _ := r.ReadFrame()
	checkDecode(t, d, "GBK 1003", f.Data, &TextMessage{Msg: bs[0]}, "", 0)
	f, _ = r.ReadFrame()
	checkDecode(t, d, "GBK 1007", f.Data, &Position{ID: "1", Lat: 1, Lng: 2, Code: lb[0] + rb[0], PosInfo: "中文" + bs[1] + bs[2]}, "", 0)
	f, _ = r.ReadFrame()
	checkDecode(t, d, "GBK escapes", f.Data, &TextMessage{Msg: rb[1] + "} " + lb[1] + `{ "` + bs[0] + `" \` + bs[1] + `\`}, "", 0)

	// GB18030's four-byte sequences (here U+20AC and U+1F69A) pass too.
	four := `{"header":{"cmd":"1003"},"body":{"msg":"€🚚` + bs[0] + `"}}`
	if b := toGBK(t, "🚚"); len(b) != 4 {
		t.Fatalf("🚚 is % x in GB18030", b)
	}
	checkStream(t, "GB18030 four-byte", toGBK(t, four), 0, EncodingGBK, []string{"frame " + four + " [gbk]", "EOF"})
	checkStream(t, "GB18030 four-byte", toGBK(t, four), 0, EncodingAuto, []string{"frame " + four + " [gbk]", "EOF"})
}

// hiddenBackslash finds two characters whose GBK bytes are valid UTF-8 and
// end in a trail '\': the first, E0-EF then 80-BF, takes the lead byte of
// the second, 80-BF, into a three-byte UTF-8 sequence, leaving its trail
// 0x5C to look like an escape.
func hiddenBackslash(t testing.TB) string {
	t.Helper()
	enc := simplifiedchinese.GB18030.NewEncoder()
	var firsts []string
	for r := rune(0x4E00); r <= 0x9FA5; r++ {
		if b, _ := enc.Bytes([]byte(string(r))); len(b) == 2 && b[0] >= 0xE0 && b[0] <= 0xEF && b[1] >= 0x80 && b[1] <= 0xBF {
			firsts = append(firsts, string(r))
			break
		}
	}
	for _, second := range gbkChars(t, 0x5C, 0) {
		b := toGBK(t, firsts[0]+second)
		if utf8.Valid(b) && b[len(b)-1] == '\\' {
			return firsts[0] + second
		}
	}
	t.Fatal("no such pair")
	return ""
}

// TestReaderAutoRescansAsGBK: in auto mode a frame is scanned as UTF-8 until
// it shows a sequence that is not; it is then scanned again as GBK, so text
// that looked like UTF-8 for a while cannot hide a trail '\'.
func TestReaderAutoRescansAsGBK(t *testing.T) {
	pair := hiddenBackslash(t)
	for _, f := range []string{
		`{"header":{"cmd":"1003"},"body":{"msg":"中` + pair + `"}}`,         // GBK before the pair
		`{"header":{"cmd":"1003"},"body":{"msg":"` + pair + `中"}}`,         // GBK in the same string, after it
		`{"header":{"cmd":"1003"},"body":{"msg":"` + pair + `","x":"中"}}`,  // only in a later string
		`{"header":{"cmd":"1003"},"body":{"msg":"` + pair + `"}}{"x":"中"}`, // only in the next frame
	} {
		first := f[:strings.Index(f, "}}")+2]
		want := []string{"frame " + first + " [gbk]"}
		if rest := f[len(first):]; rest != "" {
			want = append(want, "frame "+rest+" [gbk]")
		}
		want = append(want, "EOF")
		checkStream(t, f, toGBK(t, f), 0, EncodingAuto, want)
		checkStream(t, f, toGBK(t, f), 0, EncodingGBK, want)
	}
}

// TestReaderAutoLimit documents what auto mode cannot do: GBK text whose
// bytes are all valid UTF-8 is UTF-8 as far as any reader can tell, and if
// it hides a trail '\' before the closing quote, the frame is misread. Here
// the line break after it saves the next frame. Set EXLIVE_ENCODING=gbk for
// a platform that speaks GBK; gbk mode reads it right.
func TestReaderAutoLimit(t *testing.T) {
	pair := hiddenBackslash(t)
	f := `{"header":{"cmd":"1003"},"body":{"msg":"` + pair + `"}}`
	stream := append(toGBK(t, f), "\r\n"+hb...)
	if !utf8.Valid(stream) {
		t.Fatal("the stream should be valid UTF-8")
	}
	// The scan takes the trail '\' for an escape, the string runs on to
	// the line break, and the frame is dropped as broken.
	checkStream(t, "auto", stream, 0, EncodingAuto, []string{"skip invalid_json " + strconv.Itoa(len(toGBK(t, f))), "frame " + hb, "EOF"})
	checkStream(t, "gbk", stream, 0, EncodingGBK, []string{"frame " + f + " [gbk]", "frame " + hb, "EOF"})
}

func TestReaderUTF8(t *testing.T) {
	ok := `{"header":{"cmd":"1003"},"body":{"msg":"中文 🚚"}}`
	bad := "{\"header\":{\"cmd\":\"1003\"},\"body\":{\"msg\":\"a\xffb\xe4\xb8 \xc0\xaf\xed\xa0\x80\"}}"
	// A run of invalid bytes becomes one U+FFFD.
	want := `{"header":{"cmd":"1003"},"body":{"msg":"a` + "\uFFFD" + `b` + "\uFFFD" + ` ` + "\uFFFD" + `"}}`
	checkStream(t, "utf-8", []byte(ok+bad+ok), 0, EncodingUTF8,
		[]string{"frame " + ok, "frame " + want + " [replaced]", "frame " + ok, "EOF"})
	// In auto mode valid UTF-8 stays as it is, and a frame that is not
	// UTF-8 is read as GB18030 (into valid UTF-8, whatever it meant).
	checkStream(t, "auto", []byte(ok), 0, EncodingAuto, []string{"frame " + ok, "EOF"})
	r := NewReader(strings.NewReader(bad), 0, EncodingAuto)
	f, err := r.ReadFrame()
	if err != nil || !f.GBK || !utf8.Valid(f.Data) {
		t.Errorf("auto, invalid UTF-8: %q gbk %v, %v", f.Data, f.GBK, err)
	}
	// In gbk mode, bytes that are no GB18030 either become U+FFFD (0x80
	// is the euro sign), and a lead byte before a quote leaves the quote.
	r = NewReader(strings.NewReader("{\"msg\":\"\x80\xff\x81\"}"), 0, EncodingGBK)
	f, err = r.ReadFrame()
	if err != nil || !f.GBK || !f.Replaced || string(f.Data) != "{\"msg\":\"€\uFFFD\uFFFD\"}" {
		t.Errorf("gbk, invalid: %q gbk %v replaced %v, %v", f.Data, f.GBK, f.Replaced, err)
	}
}
