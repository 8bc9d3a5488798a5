package jsonw

import (
	"encoding/json"
	"math"
	"testing"
)

func TestStringRoundTrips(t *testing.T) {
	for _, s := range []string{
		"", "plain", `quote " and \ backslash`, "tab\tnew\nline\rcr", "\x00\x01\x1f",
		"沪A12345 上海市黄浦区", "line\u2028sep\u2029", "emoji 🚚", "<script>&amp;",
	} {
		b := String(nil, s)
		var back string
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("String(%q) = %s: not JSON: %v", s, b, err)
		}
		if back != s {
			t.Errorf("String(%q) read back as %q", s, back)
		}
	}
}

func TestStringReplacesInvalidUTF8(t *testing.T) {
	b := String(nil, "a\xffb\xc3")
	if got, want := string(b), "\"a\ufffdb\ufffd\""; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestFloat(t *testing.T) {
	for f, want := range map[float64]string{
		0: "0", 42.5: "42.5", 121.473701: "121.473701", -0.000001: "-0.000001",
		1e21: "1000000000000000000000", math.NaN(): "null", math.Inf(1): "null",
	} {
		if got := string(Float(nil, f)); got != want {
			t.Errorf("Float(%v) = %s, want %s", f, got, want)
		}
	}
}

func BenchmarkString(b *testing.B) {
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		buf = String(buf[:0], "沪A12345 上海市黄浦区人民大道 \"quoted\"")
	}
}

func TestMember(t *testing.T) {
	b := Member([]byte("{"), "a")
	b = Int(b, 1)
	b = Member(b, "b")
	b = Bool(b, true)
	if got := string(append(b, '}')); got != `{"a":1,"b":true}` {
		t.Fatalf("got %s", got)
	}
}
