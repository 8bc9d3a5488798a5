package owntracks

import (
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/exlive2mqtt/exlive2mqtt/opt"
)

// Real location messages, as published by OwnTracks apps.
var realPayloads = []struct {
	name, source, payload string
	want                  Location
}{
	{
		name:    "ha-docs",
		source:  "home-assistant.io, source/_integrations/sensor.mqtt.markdown, \"Owntracks battery level sensor\"",
		payload: `{"_type":"location","lon":7.21,"t":"u","batt":92,"tst":144995643,"tid":"ta","acc":27,"lat":46.12}`,
		want:    Location{Lat: 46.12, Lon: 7.21, Tst: 144995643, Acc: opt.Some(27), Batt: opt.Some(92), T: "u", Tid: "ta"},
	},
	{
		name:    "android",
		source:  "owntracks/android, e2e test ContactsAndMapTests.kt (the app's own fixture; \"al\" is unknown and ignored)",
		payload: `{"_type":"location","acc":20,"al":0,"batt":100,"bs":0,"conn":"w","created_at":1610748273,"lat":51.2,"lon":-4,"tid":"aa","tst":1610799026,"vac":40,"vel":7}`,
		want: Location{Lat: 51.2, Lon: -4, Tst: 1610799026, CreatedAt: 1610748273, Acc: opt.Some(20), Batt: opt.Some(100),
			BS: opt.Some(0), Conn: "w", Tid: "aa", Vac: opt.Some(40), Vel: opt.Some(7)},
	},
	{
		name:    "ios-extended",
		source:  "an iOS capture quoted in a public stream-processing example (BSSID, SSID and m are ignored)",
		payload: `{"_type":"location","acc":5,"alt":120,"batt":33,"bs":1,"BSSID":"dc:ef:9:e5:78:36","cog":31,"conn":"w","lat":41.702987,"lon":-74.082472,"m":2,"p":100.138,"SSID":"lon3r-5G","t":"u","tid":"0E","tst":1657840848,"vac":3,"vel":0}`,
		want: Location{Lat: 41.702987, Lon: -74.082472, Tst: 1657840848, Acc: opt.Some(5), Alt: opt.Some(120), Batt: opt.Some(33),
			BS: opt.Some(1), Cog: opt.Some(31), Conn: "w", P: opt.Some(100.138), T: "u", Tid: "0E", Vac: opt.Some(3), Vel: opt.Some(0)},
	},
	{
		name:    "inregions",
		source:  "an Android message logged in a public MQTT bridge's README (inregions is ignored)",
		payload: `{"_type":"location","acc":78,"alt":0,"batt":86,"conn":"w","inregions":["Casa"],"lat":44.2792575,"lon":11.9055914,"tid":"ic","tst":1546871086,"vac":0,"vel":0}`,
		want: Location{Lat: 44.2792575, Lon: 11.9055914, Tst: 1546871086, Acc: opt.Some(78), Alt: opt.Some(0), Batt: opt.Some(86),
			Conn: "w", Tid: "ic", Vac: opt.Some(0), Vel: opt.Some(0)},
	},
	{
		// The booklet's Greenwich example has placeholders for lat/lon;
		// these are made up, the rest is as documented.
		name:    "greenwich",
		source:  "owntracks/booklet docs/tech/json.md, \"Greenwich\"",
		payload: `{"_type":"location","alt":160,"cog":0,"dist":189,"trip":279122,"lat":52.0343,"lon":8.4765,"vel":12,"t":"t","tst":1406803894}`,
		want:    Location{Lat: 52.0343, Lon: 8.4765, Tst: 1406803894, Alt: opt.Some(160), Cog: opt.Some(0), Vel: opt.Some(12), T: "t"},
	},
}

func TestDecodeRealPayloads(t *testing.T) {
	for _, tc := range realPayloads {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Decode([]byte(tc.payload))
			if err != nil {
				t.Fatalf("Decode(%s): %v (from %s)", tc.payload, err, tc.source)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Decode(%s)\n got %+v\nwant %+v", tc.payload, got, tc.want)
			}
			if !IsLocation([]byte(tc.payload)) {
				t.Errorf("IsLocation(%s) = false", tc.payload)
			}
		})
	}
}

func TestDecode(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     Location
	}{
		{"minimal", `{"_type":"location","lat":1,"lon":2}`, Location{Lat: 1, Lon: 2}},
		{"whitespace and order", " \n{ \"lon\" : 2 ,\t\"lat\":1, \"_type\" : \"location\" }\r\n", Location{Lat: 1, Lon: 2}},
		{"legacy strings", `{"_type":"location","lat":"48.85833","lon":"2.29513","tst":"1497476456","acc":"10","vel":"5"}`,
			Location{Lat: 48.85833, Lon: 2.29513, Tst: 1497476456, Acc: opt.Some(10), Vel: opt.Some(5)}},
		{"legacy vacc", `{"_type":"location","lat":1,"lon":2,"vacc":7}`, Location{Lat: 1, Lon: 2, Vac: opt.Some(7)}},
		{"rounding", `{"_type":"location","lat":1,"lon":2,"acc":14.5,"vel":12.4,"alt":-3.6,"tst":1e9}`,
			Location{Lat: 1, Lon: 2, Tst: 1000000000, Acc: opt.Some(15), Vel: opt.Some(12), Alt: opt.Some(-4)}},
		{"iOS invalid values", `{"_type":"location","lat":1,"lon":2,"acc":-1,"vel":-1,"cog":-1,"vac":-1,"batt":-1,"alt":-20}`,
			Location{Lat: 1, Lon: 2, Alt: opt.Some(-20)}},
		{"cog wraps", `{"_type":"location","lat":1,"lon":2,"cog":359.6}`, Location{Lat: 1, Lon: 2, Cog: opt.Some(0)}},
		{"cog 360", `{"_type":"location","lat":1,"lon":2,"cog":725}`, Location{Lat: 1, Lon: 2, Cog: opt.Some(5)}},
		{"nulls", `{"_type":"location","lat":1,"lon":2,"acc":null,"tid":null,"tst":null,"p":null}`, Location{Lat: 1, Lon: 2}},
		{"edges", `{"_type":"location","lat":-90,"lon":180,"tst":0}`, Location{Lat: -90, Lon: 180}},
		{"unknown nested", `{"_type":"location","x":{"a":[1,{"b":null}],"c":"\"}"},"lat":1,"lon":2,"inregions":[]}`, Location{Lat: 1, Lon: 2}},
		{"duplicates: last wins", `{"_type":"location","lat":1,"lon":2,"lat":3}`, Location{Lat: 3, Lon: 2}},
		{"escaped key and value", `{"\u005ftype":"loc\u0061tion","lat":1,"lon":2,"tid":"\u6caaA"}`, Location{Lat: 1, Lon: 2, Tid: "沪A"}},
		{"extensions", `{"_type":"location","lat":1,"lon":2,"odometer":12345.6,"addr":"上海市黄浦区","rad":50,"conn":"m"}`,
			Location{Lat: 1, Lon: 2, Odometer: opt.Some(12345.6), Addr: "上海市黄浦区", Rad: opt.Some(50), Conn: "m"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Decode([]byte(tc.in))
			if err != nil {
				t.Fatalf("Decode(%s): %v", tc.in, err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Decode(%s)\n got %+v\nwant %+v", tc.in, got, tc.want)
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
		notLocation    bool
	}{
		{"empty", ``, "owntracks: invalid JSON", false},
		{"garbage", `{"_type":"location",`, "owntracks: invalid JSON", false},
		{"array", `[{"_type":"location"}]`, "owntracks: payload is not a JSON object", false},
		{"no type", `{"lat":1,"lon":2}`, "owntracks: not a location message: no _type", true},
		{"transition", `{"_type":"transition","lat":1,"lon":2,"event":"enter"}`, `owntracks: not a location message: _type is "transition"`, true},
		{"lwt", `{"_type":"lwt","tst":1380738247}`, `owntracks: not a location message: _type is "lwt"`, true},
		{"encrypted", `{"_type":"encrypted","data":"abc"}`, `owntracks: not a location message: _type is "encrypted"`, true},
		{"type not string", `{"_type":1,"lat":1,"lon":2}`, `owntracks: not a location message: _type is 1`, true},
		{"type case", `{"_type":"Location","lat":1,"lon":2}`, `owntracks: not a location message: _type is "Location"`, true},
		{"long type", `{"_type":"` + strings.Repeat("x", 100) + `"}`, `owntracks: not a location message: _type is "\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"...`, true},
		{"no lat", `{"_type":"location","lon":2}`, "owntracks: location has no lat", false},
		{"null lon", `{"_type":"location","lat":1,"lon":null}`, "owntracks: location has no lon", false},
		{"lat range", `{"_type":"location","lat":90.5,"lon":2}`, "owntracks: lat 90.5 is out of range", false},
		{"lon range", `{"_type":"location","lat":1,"lon":-180.01}`, "owntracks: lon -180.01 is out of range", false},
		{"lat NaN string", `{"_type":"location","lat":"NaN","lon":2}`, `owntracks: lat is "NaN", not a number`, false},
		{"lon Inf string", `{"_type":"location","lat":1,"lon":"+Inf"}`, `owntracks: lon is "+Inf", not a number`, false},
		{"lat hex string", `{"_type":"location","lat":"0x1p3","lon":2}`, `owntracks: lat is "0x1p3", not a number`, false},
		{"lat overflow", `{"_type":"location","lat":1e999,"lon":2}`, "owntracks: lat 1e999 is out of range", false},
		{"lat bool", `{"_type":"location","lat":true,"lon":2}`, "owntracks: lat is true, not a number", false},
		{"tst ms", `{"_type":"location","lat":1,"lon":2,"tst":1610799026000000}`, "owntracks: tst 1610799026000000 is not an epoch in seconds", false},
		{"tst negative", `{"_type":"location","lat":1,"lon":2,"tst":-5}`, "owntracks: tst -5 is not an epoch in seconds", false},
		{"acc huge", `{"_type":"location","lat":1,"lon":2,"acc":1e12}`, "owntracks: acc 1e12 is out of range", false},
		{"vel object", `{"_type":"location","lat":1,"lon":2,"vel":{}}`, "owntracks: vel is {}, not a number", false},
		{"tid number", `{"_type":"location","lat":1,"lon":2,"tid":12}`, "owntracks: tid is 12, not a string", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := Decode([]byte(tc.in))
			if err == nil {
				t.Fatalf("Decode(%s) = %+v, want error %q", tc.in, l, tc.want)
			}
			if err.Error() != tc.want {
				t.Errorf("Decode(%s) error %q, want %q", tc.in, err, tc.want)
			}
			if errors.Is(err, ErrNotLocation) != tc.notLocation {
				t.Errorf("errors.Is(%q, ErrNotLocation) = %v", err, !tc.notLocation)
			}
			if l != (Location{}) {
				t.Errorf("Decode returned %+v with an error", l)
			}
		})
	}
}

func TestIsLocation(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want bool
	}{
		{`{"_type":"location"}`, true},
		{` {"a":[1,{"_type":"x"}],"_type" : "location"} `, true},
		{`{"\u005ftype":"location"}`, true},
		{`{"_type":"loc\u0061tion"}`, true},
		{`{"_type":"transition","x":"location"}`, false},
		{`{"_type":"location","_type":"lwt"}`, false},
		{`{"id":"V1","lat":31.2,"lng":121.4}`, false},
		{`{"_type":"location"`, false},
		{`{"_type":"location"} x`, false},
		{`{"_type":location}`, false},
		{`[]`, false},
		{``, false},
		{`{}`, false},
		{`{"a":"location"}`, false},
		{`{"_type":["location"]}`, false},
	} {
		if got := IsLocation([]byte(tc.in)); got != tc.want {
			t.Errorf("IsLocation(%s) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestEncode(t *testing.T) {
	for _, tc := range []struct {
		name string
		l    Location
		want string
	}{
		{"minimal", Location{Lat: 1, Lon: 2}, `{"_type":"location","lat":1,"lon":2}`},
		{"vehicle", Location{Lat: 31.230416, Lon: 121.473701, Tst: 1320122319, Vel: opt.Some(43), Cog: opt.Some(180), Tid: "45"},
			`{"_type":"location","cog":180,"lat":31.230416,"lon":121.473701,"tid":"45","tst":1320122319,"vel":43}`},
		{"zeros are values", Location{Lat: 0, Lon: -0.5, Vel: opt.Some(0), Cog: opt.Some(0), Alt: opt.Some(-3)},
			`{"_type":"location","alt":-3,"cog":0,"lat":0,"lon":-0.5,"vel":0}`},
		{"all", Location{Lat: -33.8688, Lon: 151.2093, Tst: 1700000000, CreatedAt: 1700000001, Acc: opt.Some(10), Alt: opt.Some(58),
			Vac: opt.Some(3), Vel: opt.Some(60), Cog: opt.Some(359), Batt: opt.Some(80), BS: opt.Some(2), Rad: opt.Some(100), P: opt.Some(101.325),
			Odometer: opt.Some(12345.6), T: "u", Tid: "AB", Conn: "m", Addr: "上海市黄浦区人民大道"},
			`{"_type":"location","acc":10,"alt":58,"batt":80,"bs":2,"cog":359,"conn":"m","created_at":1700000001,` +
				`"lat":-33.8688,"lon":151.2093,"p":101.325,"rad":100,"t":"u","tid":"AB","tst":1700000000,"vac":3,"vel":60,` +
				`"addr":"上海市黄浦区人民大道","odometer":12345.6}`},
		{"small and large floats", Location{Lat: 1e-7, Lon: 179.99999999999997, P: opt.Some(1e21)},
			`{"_type":"location","lat":0.0000001,"lon":179.99999999999997,"p":1000000000000000000000}`},
		{"escapes", Location{Lat: 1, Lon: 2, Tid: "\"\\", Addr: "a\x00b\nc\u2028d\xffe</script>"},
			`{"_type":"location","lat":1,"lon":2,"tid":"\"\\","addr":"a\u0000b\nc\u2028d` + "\ufffd" + `e</script>"}`},
		{"non-finite", Location{Lat: math.NaN(), Lon: math.Inf(1)}, `{"_type":"location","lat":null,"lon":null}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := string(Encode(nil, tc.l))
			if got != tc.want {
				t.Errorf("Encode(%+v)\n got %s\nwant %s", tc.l, got, tc.want)
			}
			if !json.Valid([]byte(got)) {
				t.Errorf("Encode produced invalid JSON: %s", got)
			}
		})
	}
}

// TestEncodeMatchesEncodingJSON checks string escaping against
// encoding/json's, byte for byte, HTML escaping aside.
func TestEncodeMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{"plain", "沪A12345", "\x00\x01\x1f\x7f", "\"\\/", "\xff\xfe", "\u2028\u2029", "\t\r\n\b\f", "a\xc3"} {
		got := Encode(nil, Location{Addr: s})
		var l struct{ Addr string }
		if err := json.Unmarshal(got, &l); err != nil {
			t.Errorf("Encode(addr %q) = %s, invalid: %v", s, got, err)
			continue
		}
		back := l.Addr
		want, _ := json.Marshal(s)
		var wantBack string
		_ = json.Unmarshal(want, &wantBack)
		if back != wantBack {
			t.Errorf("Encode(addr %q) decodes to %q, encoding/json's to %q", s, back, wantBack)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	ls := []Location{
		{Lat: 31.230416, Lon: 121.473701, Tst: 1320122319, Vel: opt.Some(43), Cog: opt.Some(180), Tid: "45", Addr: "人民大道"},
		{Lat: -90, Lon: -180},
		{Lat: 0.1, Lon: 0.2, Acc: opt.Some(0), Alt: opt.Some(-400), Batt: opt.Some(0), BS: opt.Some(0), Rad: opt.Some(0), Vac: opt.Some(0), P: opt.Some(0.0), Odometer: opt.Some(0.0)},
	}
	for _, tc := range realPayloads {
		ls = append(ls, tc.want)
	}
	for _, l := range ls {
		b := Encode(nil, l)
		got, err := Decode(b)
		if err != nil {
			t.Errorf("Decode(Encode(%+v)) = %v; encoded %s", l, err, b)
			continue
		}
		if !reflect.DeepEqual(got, l) {
			t.Errorf("round trip of %s\n got %+v\nwant %+v", b, got, l)
		}
		if !IsLocation(b) {
			t.Errorf("IsLocation(%s) = false", b)
		}
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		l    Location
		want string
	}{
		{Location{Lat: 1, Lon: 2, Tst: 1}, ""},
		{Location{Lat: math.NaN(), Lon: 2}, "owntracks: lat NaN is out of range"},
		{Location{Lat: 1, Lon: math.Inf(-1)}, "owntracks: lon -Inf is out of range"},
		{Location{Lat: 91, Lon: 2}, "owntracks: lat 91 is out of range"},
		{Location{Lat: 1, Lon: 2, Tst: 1700000000000}, "owntracks: tst 1700000000000 is not an epoch in seconds"},
		{Location{Lat: 1, Lon: 2, CreatedAt: -1}, "owntracks: created_at -1 is not an epoch in seconds"},
	} {
		err := tc.l.Validate()
		if got := ""; err != nil {
			got = err.Error()
			if got != tc.want {
				t.Errorf("%+v.Validate() = %q, want %q", tc.l, got, tc.want)
			}
		} else if tc.want != "" {
			t.Errorf("%+v.Validate() = nil, want %q", tc.l, tc.want)
		}
	}
}

func TestEncodeCard(t *testing.T) {
	if got := string(EncodeCard(nil, "沪A12345", "")); got != `{"_type":"card","name":"沪A12345"}` {
		t.Errorf("EncodeCard = %s", got)
	}
	if got := string(EncodeCard(nil, "Jane Jolie", "iV1CFEVk==")); got != `{"_type":"card","name":"Jane Jolie","face":"iV1CFEVk=="}` {
		t.Errorf("EncodeCard = %s", got)
	}
}

func TestTrackerID(t *testing.T) {
	for _, tc := range []struct{ code, id, want string }{
		{"沪A12345", "V1", "45"},
		{"粤B-D123挂", "V1", "23"},
		{"京a·bc", "", "BC"},
		{"", "v1", "V1"},
		{"沪A", "123", "23"},
		{"沪A", "", "沪A"},
		{"", "车", "车"},
		{"", "", ""},
		{"--", "..", ""},
		{"x", "y", "X"},
	} {
		if got := TrackerID(tc.code, tc.id); got != tc.want {
			t.Errorf("TrackerID(%q, %q) = %q, want %q", tc.code, tc.id, got, tc.want)
		}
	}
}

func TestRound(t *testing.T) {
	for _, tc := range []struct {
		kmh  float64
		want opt.Opt[int]
	}{
		{42.5, opt.Some(43)}, {0, opt.Some(0)}, {0.4, opt.Some(0)}, {-1, opt.Opt[int]{}}, {math.NaN(), opt.Opt[int]{}}, {math.Inf(1), opt.Opt[int]{}},
	} {
		if got := RoundSpeed(tc.kmh); got != tc.want {
			t.Errorf("RoundSpeed(%v) = %+v, want %+v", tc.kmh, got, tc.want)
		}
	}
	for _, tc := range []struct {
		deg  float64
		want opt.Opt[int]
	}{
		{180, opt.Some(180)}, {359.4, opt.Some(359)}, {359.6, opt.Some(0)}, {360, opt.Some(0)}, {-90, opt.Some(270)}, {-0.2, opt.Some(0)}, {725, opt.Some(5)},
		{math.NaN(), opt.Opt[int]{}}, {math.Inf(-1), opt.Opt[int]{}},
	} {
		if got := RoundCourse(tc.deg); got != tc.want {
			t.Errorf("RoundCourse(%v) = %+v, want %+v", tc.deg, got, tc.want)
		}
	}
}

func TestEncodeAllocs(t *testing.T) {
	l := benchLocation
	buf := make([]byte, 0, 512)
	if n := testing.AllocsPerRun(100, func() { buf = Encode(buf[:0], l) }); n != 0 {
		t.Errorf("Encode allocates %v times per call with a large enough buffer", n)
	}
	b := Encode(nil, l)
	if n := testing.AllocsPerRun(100, func() { _ = IsLocation(b) }); n != 0 {
		t.Errorf("IsLocation allocates %v times per call", n)
	}
}

var benchLocation = Location{Lat: 31.230416, Lon: 121.473701, Tst: 1320122319, Acc: opt.Some(10), Vel: opt.Some(43),
	Cog: opt.Some(180), Tid: "45", Addr: "上海市黄浦区人民大道", Odometer: opt.Some(12345.6)}

func BenchmarkEncode(b *testing.B) {
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		buf = Encode(buf[:0], benchLocation)
	}
	b.SetBytes(int64(len(buf)))
}

func BenchmarkEncodingJSON(b *testing.B) {
	// The same message through encoding/json with a map, for comparison.
	m := map[string]any{"_type": "location", "lat": 31.230416, "lon": 121.473701, "tst": 1320122319, "acc": 10,
		"vel": 43, "cog": 180, "tid": "45", "addr": "上海市黄浦区人民大道", "odometer": 12345.6}
	b.ReportAllocs()
	for b.Loop() {
		_, _ = json.Marshal(m)
	}
}

func BenchmarkDecode(b *testing.B) {
	p := []byte(realPayloads[2].payload)
	b.ReportAllocs()
	b.SetBytes(int64(len(p)))
	for b.Loop() {
		_, _ = Decode(p)
	}
}

func BenchmarkIsLocation(b *testing.B) {
	p := []byte(realPayloads[2].payload)
	b.ReportAllocs()
	b.SetBytes(int64(len(p)))
	for b.Loop() {
		_ = IsLocation(p)
	}
}
