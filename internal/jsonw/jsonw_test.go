package jsonw

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"strconv"
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

// TestFloatFewDecimals: the fast path writes what strconv's shortest
// formatting writes, for numbers of up to seven decimals (all it takes)
// and for arbitrary doubles (all it must refuse or get right), near its
// bounds included.
func TestFloatFewDecimals(t *testing.T) {
	check := func(f float64) {
		t.Helper()
		got := string(Float(nil, f))
		var want string
		if math.IsNaN(f) || math.IsInf(f, 0) {
			want = "null"
		} else if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
			want = string(mustJSON(t, f))
		} else {
			want = strconv.FormatFloat(f, 'f', -1, 64)
		}
		if got != want {
			t.Fatalf("Float(%v) = %s, want %s", f, got, want)
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 200_000 {
		places := r.IntN(8)
		n := r.Int64N(2e15) - 1e15
		f, _ := strconv.ParseFloat(strconv.FormatInt(n, 10)+"e-"+strconv.Itoa(places), 64)
		check(f)
		check(math.Float64frombits(r.Uint64()))
		check(r.Float64() * 400)
	}
	for _, f := range []float64{
		1e8, -1e8, 99999999.9999999, -99999999.9999999, 1e8 - 1, 0.0000001, 0.0000005, 1.0000001,
		121.4737012, 31.2304567, -0.5, 0.1, 0.2, 0.3, 360, 1e-7, math.Copysign(0, -1),
	} {
		check(f)
		check(math.Nextafter(f, 0))
		check(math.Nextafter(f, 1e9))
	}
}

func mustJSON(t *testing.T, f float64) []byte {
	b, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// BenchmarkFloat: a coordinate to the seventh decimal, a speed, and a
// double with no short form (strconv's path).
func BenchmarkFloat(b *testing.B) {
	buf := make([]byte, 0, 64)
	for _, f := range []float64{121.4737012, 65.5, 1.0 / 3} {
		b.Run(strconv.FormatFloat(f, 'f', -1, 64), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				buf = Float(buf[:0], f)
			}
		})
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
