package owntracks

import (
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"testing"
)

// FuzzDecode checks that Decode and IsLocation never panic, agree with each
// other, and that whatever Decode accepts is valid, encodes to valid JSON
// and decodes back to the same Location.
func FuzzDecode(f *testing.F) {
	for _, tc := range realPayloads {
		f.Add([]byte(tc.payload))
	}
	for _, s := range []string{
		`{"_type":"location","lat":"48.85","lon":"2.29","tst":"1497476456"}`,
		`{"\u005ftype":"loc\u0061tion","lat":1,"lon":2,"tid":"\u6caaA"}`,
		`{"_type":"location","lat":1,"lon":2,"x":[[[{}]]],"cog":-1}`,
		`{"_type":"transition","lat":1,"lon":2}`,
		`{"_type":"location","lat":1e999,"lon":2}`,
		`{"_type":"location","lat":1,"lon":2,"lat":3}`,
		`{"_type":"location","lat":1,"lon":2,"acc":1073741823.5,"tst":253402300799.4}`,
		`[1,2]`, `{"_type":"location"`, ``, `{}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := Decode(b)
		is := IsLocation(b)
		if err != nil {
			if l != (Location{}) {
				t.Fatalf("Decode returned %+v with error %v", l, err)
			}
			// A valid JSON object that IsLocation accepts can only fail on
			// its fields, never as "not a location".
			if is && errors.Is(err, ErrNotLocation) {
				t.Fatalf("IsLocation(%q) = true but Decode: %v", b, err)
			}
			return
		}
		if !is {
			t.Fatalf("Decode(%q) succeeded but IsLocation is false", b)
		}
		if err := l.Validate(); err != nil {
			t.Fatalf("Decode(%q) = %+v, which fails Validate: %v", b, l, err)
		}
		if math.IsNaN(l.P.V) || math.IsInf(l.P.V, 0) || math.IsNaN(l.Odometer.V) || math.IsInf(l.Odometer.V, 0) {
			t.Fatalf("Decode(%q) returned a non-finite float: %+v", b, l)
		}
		if l.Cog.Valid && (l.Cog.V < 0 || l.Cog.V > 359) {
			t.Fatalf("Decode(%q) returned cog %d", b, l.Cog.V)
		}
		enc := Encode(nil, l)
		if !json.Valid(enc) {
			t.Fatalf("Encode(Decode(%q)) is not valid JSON: %s", b, enc)
		}
		back, err := Decode(enc)
		if err != nil {
			t.Fatalf("Decode(Encode(Decode(%q))) = %v; encoded %s", b, err, enc)
		}
		if !reflect.DeepEqual(back, l) {
			t.Fatalf("round trip of %q changed it:\n%+v\n%+v", b, l, back)
		}
	})
}

// FuzzIsLocation feeds arbitrary bytes to IsLocation alone, which runs
// without the json.Valid check Decode does first.
func FuzzIsLocation(f *testing.F) {
	f.Add([]byte(`{"_type":"location"}`))
	f.Add([]byte(`{"a":[1,{"b":"\""}],"_type":"location"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if IsLocation(b) && !json.Valid(b) {
			// Allowed (IsLocation only checks structure), but it must at
			// least be an object that ends where it should.
			if b[len(b)-1] != '}' && b[len(b)-1] != ' ' && b[len(b)-1] != '\n' && b[len(b)-1] != '\t' && b[len(b)-1] != '\r' {
				t.Fatalf("IsLocation(%q) = true", b)
			}
		}
	})
}
