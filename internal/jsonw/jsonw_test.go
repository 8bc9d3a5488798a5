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
		1e12: "1000000000000", 1e20: "100000000000000000000", 1e21: "1e+21",
		1e308: "1e+308", -math.MaxFloat64: "-1.7976931348623157e+308",
		1e-7: "1e-7", 5e-324: "5e-324", -2.5e-10: "-2.5e-10",
		math.NaN(): "null", math.Inf(1): "null",
	} {
		got := Float(nil, f)
		if string(got) != want {
			t.Errorf("Float(%v) = %s, want %s", f, got, want)
		}
		// The same text as encoding/json.
		if !math.IsNaN(f) && !math.IsInf(f, 0) {
			if std, _ := json.Marshal(f); string(std) != string(got) {
				t.Errorf("Float(%v) = %s, encoding/json writes %s", f, got, std)
			}
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
