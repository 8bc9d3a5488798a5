package exlive

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/exlive2mqtt/exlive2mqtt/opt"
)

// The seed corpora are files under testdata/fuzz/<FuzzName>/, written from
// the fixtures by
//
//	go test -run=TestFuzzCorpus -update-corpus ./exlive/
//
// and committed with the crashers the fuzzers have found.
var updateCorpus = flag.Bool("update-corpus", false, "rewrite the fuzz seed corpora from the fixtures")

// chunkReader hands out at most n bytes a Read (a byte at a time when n is
// 0), and io.EOF with the last of them.
type chunkReader struct {
	data []byte
	n    int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	n := min(len(p), len(r.data), max(r.n, 1))
	copy(p, r.data[:n])
	r.data = r.data[n:]
	if len(r.data) == 0 {
		return n, io.EOF
	}
	return n, nil
}

// readAll reads frames until a final error, checking what every frame must
// be, and returns the events as readEvents does.
func readAll(t *testing.T, r *Reader, inputLen int) []string {
	var events []string
	for calls := 0; ; calls++ {
		// Every result but the last consumes at least one byte.
		if calls > inputLen+1 {
			t.Fatalf("%d calls for %d bytes: the reader does not stop", calls, inputLen)
		}
		f, err := r.ReadFrame()
		if len(r.buf) > r.max || cap(r.buf) > r.max {
			t.Fatalf("buffer len %d cap %d over the cap %d", len(r.buf), cap(r.buf), r.max)
		}
		var fe *FrameError
		switch {
		case err == nil:
			if !utf8.Valid(f.Data) {
				t.Fatalf("frame %q is not UTF-8", f.Data)
			}
			// Raw frames, repaired ones included, fit the cap; text
			// transcoded into UTF-8 may grow: a GBK character of 2 bytes
			// takes 3, and one invalid byte becomes U+FFFD, 3 bytes.
			limit := r.max
			if f.GBK || f.Replaced {
				limit = 3 * r.max
			}
			if len(f.Data) > limit {
				t.Fatalf("frame of %d bytes, over %d (cap %d)", len(f.Data), limit, r.max)
			}
			// A frame is what lies between braces; but a GBK lead byte
			// outside a string (no JSON) transcodes with the closing
			// brace as its trail.
			if len(f.Data) < 2 || f.Data[0] != '{' || (f.Data[len(f.Data)-1] != '}' && !f.GBK) {
				t.Fatalf("frame %q is not an object", f.Data)
			}
			if f.Replaced && !bytes.Contains(f.Data, []byte("\uFFFD")) {
				t.Fatalf("frame %q: Replaced without U+FFFD", f.Data)
			}
			events = append(events, frameEvent(f))
		case errors.As(err, &fe):
			if fe.Size <= 0 || fe.Size > inputLen {
				t.Fatalf("skipped %d bytes of %d", fe.Size, inputLen)
			}
			events = append(events, fmt.Sprintf("skip %s %d", fe.Reason, fe.Size))
		case errors.Is(err, io.ErrUnexpectedEOF), err == io.EOF, errors.Is(err, ErrFrameTooLarge):
			return append(events, err.Error())
		default:
			t.Fatalf("ReadFrame: unexpected error %v", err)
		}
	}
}

// FuzzReader feeds the frame reader arbitrary bytes, with a small cap, in
// each encoding, in chunks of every size. The reader must not panic, must
// hold no more than the cap, must return valid UTF-8 frames within bounds,
// must stop, and must see the same frames however the bytes are split.
func FuzzReader(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte, capSel uint16, encSel uint8, chunk uint8) {
		maxFrame := 1 + int(capSel)%2048
		enc := Encoding(encSel % 3)
		whole := readAll(t, NewReader(bytes.NewReader(data), maxFrame, enc), len(data))
		split := readAll(t, NewReader(&chunkReader{data: data, n: int(chunk % 32)}, maxFrame, enc), len(data))
		if !slices.Equal(whole, split) {
			t.Fatalf("cap %d %v: read whole\n%q\nin chunks of %d\n%q", maxFrame, enc, whole, chunk%32, split)
		}
	})
}

// maxDepth is how deeply arrays and objects nest in data, strings aside.
func maxDepth(data []byte) int {
	depth, deepest := 0, 0
	inString, escape := false, false
	for _, c := range data {
		switch {
		case escape:
			escape = false
		case inString && c == '\\':
			escape = true
		case c == '"':
			inString = !inString
		case inString:
		case c == '{' || c == '[':
			depth++
			deepest = max(deepest, depth)
		case c == '}' || c == ']':
			depth--
		}
	}
	return deepest
}

// FuzzDecode decodes arbitrary frames, and checks Decode against
// encoding/json:
//
//   - If json.Valid says no, Decode must fail with ReasonInvalidJSON.
//   - If Decode says invalid JSON, json.Valid must say no too, but for two
//     deliberate differences: Decode refuses nesting deeper than maxNesting
//     (encoding/json allows 10000), and a top-level value that is not an
//     object (which the Reader never yields) is invalid to Decode.
//
// Neither checks UTF-8 (encoding/json replaces bad bytes when it unmarshals;
// Decode keeps them, and the Reader has made every frame UTF-8 before), and
// both accept duplicate keys, the last one winning; so those agree.
//
// A message Decode accepts must be sane (a Position has finite coordinates
// in range), must not alias the frame, and must survive AppendFrame and
// Decode again.
func FuzzDecode(f *testing.F) {
	loc, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		d := NewDecoder(loc)
		frame := bytes.Clone(data)
		m, err := d.Decode(frame)
		valid := json.Valid(data)
		if err != nil {
			var fe *FrameError
			if !errors.As(err, &fe) {
				t.Fatalf("Decode error %T %v, want a *FrameError", err, err)
			}
			if m != nil {
				t.Fatalf("Decode returned %s with %v", show(m), err)
			}
			if fe.Size != len(data) {
				t.Fatalf("error size %d for %d bytes", fe.Size, len(data))
			}
			if !valid && fe.Reason != ReasonInvalidJSON {
				t.Fatalf("invalid JSON refused as %s", fe.Reason)
			}
			trimmed := bytes.TrimLeft(data, " \t\r\n")
			if valid && fe.Reason == ReasonInvalidJSON && maxDepth(data) <= maxNesting && len(trimmed) > 0 && trimmed[0] == '{' {
				t.Fatalf("encoding/json says valid, Decode says %v", err)
			}
			return
		}
		if !valid {
			t.Fatalf("Decode accepted invalid JSON as %s", show(m))
		}
		if p, ok := m.(*Position); ok {
			checkPosition(t, p, loc)
		}
		first := AppendFrame(nil, m)
		clear(frame) // nothing decoded may alias the frame
		if again := AppendFrame(nil, m); !bytes.Equal(first, again) {
			t.Fatalf("the message changed with the frame:\n%s\n%s", first, again)
		}
		if !utf8.Valid(data) {
			return // AppendFrame writes U+FFFD for the bad bytes
		}
		want := reencoded(m)
		got, err := NewDecoder(loc).Decode(first)
		if err != nil {
			if p, ok := m.(*Position); ok && p.Time.Valid && (p.Time.V.Year() < 0 || p.Time.V.Year() > 9999) {
				return // gpstime written with a year of five digits or a sign
			}
			t.Fatalf("Decode(AppendFrame(%s)) = %v\nframe %s", show(m), err, first)
		}
		if !sameMessage(reencoded(got), want) {
			t.Fatalf("re-encoded:\n got %s\nwant %s\nframe %s", show(got), show(want), first)
		}
	})
}

// reencoded is what a message looks like after AppendFrame and Decode: a
// Position loses its unreadable fields and fractions of a second, and an
// Unknown without a body gets an empty one.
func reencoded(m Message) Message {
	if u, ok := m.(*Unknown); ok && u.Body == nil {
		return &Unknown{Command: u.Command, Body: []byte("{}")} // a frame without a body
	}
	p, ok := m.(*Position)
	if !ok {
		return m
	}
	c := *normalize(p).(*Position)
	c.Invalid, c.Truncated = 0, 0
	if c.Time.Valid {
		c.Time.V = c.Time.V.Truncate(time.Second)
		if y := c.Time.V.Year(); y < 0 || y > 9999 {
			c.Time = opt.Opt[time.Time]{}
		}
	}
	return &c
}

func checkPosition(t *testing.T, p *Position, loc *time.Location) {
	t.Helper()
	finite := func(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }
	if !finite(p.Lat) || !finite(p.Lng) || p.Lat < -90 || p.Lat > 90 || p.Lng < -180 || p.Lng > 180 {
		t.Fatalf("position at %v, %v", p.Lat, p.Lng)
	}
	for _, o := range []opt.Opt[float64]{p.Speed, p.Direction, p.Fuel, p.Mileage} {
		if o.Valid && !finite(o.V) {
			t.Fatalf("position with %v", o.V)
		}
	}
	if p.Speed.Valid && p.Speed.V < 0 {
		t.Fatalf("speed %v", p.Speed.V)
	}
	if p.Direction.Valid && (p.Direction.V < 0 || p.Direction.V > 360) {
		t.Fatalf("direction %v", p.Direction.V)
	}
	if p.Time.Valid && p.Time.V.Location() != loc {
		t.Fatalf("time %v in %v, want %v", p.Time.V, p.Time.V.Location(), loc)
	}
	if p.Invalid&^(allOptional|FieldCode) != 0 || p.Truncated&^(FieldWState|FieldCState|FieldPosInfo) != 0 {
		t.Fatalf("Invalid %b, Truncated %b", p.Invalid, p.Truncated)
	}
	for _, o := range []struct {
		v     opt.Opt[float64]
		limit float64
	}{{p.Speed, MaxSpeed}, {p.Fuel, MaxFuel}, {p.Mileage, MaxMileage}} {
		if o.v.Valid && math.Abs(o.v.V) > o.limit {
			t.Fatalf("position with %v, over %v", o.v.V, o.limit)
		}
	}
	if len(p.Code) > MaxCodeLen || len(p.WState) > MaxTextLen || len(p.CState) > MaxTextLen || len(p.PosInfo) > MaxTextLen {
		t.Fatalf("position with code of %d bytes, texts of %d, %d, %d", len(p.Code), len(p.WState), len(p.CState), len(p.PosInfo))
	}
}

// corpusSeeds returns the seeds of each fuzzer by name: every fixture, and
// streams made of them.
func corpusSeeds(t *testing.T) map[string]map[string]string {
	t.Helper()
	entry := func(values ...any) string {
		var b strings.Builder
		b.WriteString("go test fuzz v1\n")
		for _, v := range values {
			switch v := v.(type) {
			case []byte:
				fmt.Fprintf(&b, "[]byte(%q)\n", v)
			case uint16:
				fmt.Fprintf(&b, "uint16(%d)\n", v)
			case uint8:
				fmt.Fprintf(&b, "uint8(%d)\n", v)
			}
		}
		return b.String()
	}
	reader, decode := map[string]string{}, map[string]string{}
	var all []byte
	for _, c := range codecCases {
		raw := fixture(t, c.file)
		name := strings.TrimSuffix(strings.ReplaceAll(c.file, "/", "_"), ".json")
		decode[name] = entry(raw)
		reader[name] = entry(raw, uint16(len(raw)), uint8(EncodingAuto), uint8(0))
		all = append(all, raw...)
		all = append(all, "\r\n"...)
	}
	var dialect []byte
	for _, c := range dialectCases {
		raw := fixture(t, c.file)
		name := strings.TrimSuffix(strings.ReplaceAll(c.file, "/", "_"), ".json")
		enc := EncodingAuto
		if c.gbk {
			enc = EncodingGBK
		}
		reader[name] = entry(raw, uint16(len(raw)), uint8(enc), uint8(0))
		dialect = append(dialect, raw...)
	}
	// The dialect as a live server sends it: back to back, nothing between.
	reader["stream_dialect_gbk"] = entry(dialect, uint16(2047), uint8(EncodingGBK), uint8(3))
	reader["stream_dialect_auto"] = entry(dialect, uint16(600), uint8(EncodingAuto), uint8(1))
	gbk := toGBK(t, string(all))
	reader["stream_all_auto"] = entry(all, uint16(2047), uint8(EncodingAuto), uint8(7))
	reader["stream_all_utf8_small_cap"] = entry(all, uint16(120), uint8(EncodingUTF8), uint8(1))
	reader["stream_all_gbk"] = entry(gbk, uint16(2047), uint8(EncodingGBK), uint8(3))
	reader["stream_all_gbk_read_as_auto"] = entry(gbk, uint16(300), uint8(EncodingAuto), uint8(0))
	pair := hiddenBackslash(t)
	limit := toGBK(t, `{"header":{"cmd":"1003"},"body":{"msg":"`+pair+`"}}{"x":"中"}`+"\r\n"+hb)
	reader["gbk_hidden_backslash_auto"] = entry(limit, uint16(200), uint8(EncodingAuto), uint8(5))
	reader["junk_and_line_breaks"] = entry([]byte("junk{\"a\":\"x\ny\"}{\"b\":1{\"c\":[{}]}}}"), uint16(16), uint8(EncodingAuto), uint8(2))
	return map[string]map[string]string{"FuzzReader": reader, "FuzzDecode": decode}
}

// TestFuzzCorpus checks that every fixture seeds the fuzzers, and rewrites
// the seeds with -update-corpus. Crashers the fuzzers add stay.
func TestFuzzCorpus(t *testing.T) {
	for fuzzer, seeds := range corpusSeeds(t) {
		dir := filepath.Join("testdata", "fuzz", fuzzer)
		for name, content := range seeds {
			path := filepath.Join(dir, name)
			if *updateCorpus {
				if err := os.MkdirAll(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			}
			got, err := os.ReadFile(path)
			if err != nil || string(got) != content {
				t.Errorf("%s is missing or stale: run go test -run=TestFuzzCorpus -update-corpus ./exlive/", path)
			}
		}
	}
}
