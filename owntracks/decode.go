package owntracks

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"

	"github.com/exlive2mqtt/exlive2mqtt/opt"
)

// Decode parses an OwnTracks location message, as a phone running OwnTracks
// publishes it.
//
// It returns an error wrapping [ErrNotLocation] when the object's _type is
// missing or is something else ("transition", "lwt", "encrypted", ...), and
// an error for invalid JSON, a missing or out-of-range lat or lon (NaN, ±Inf
// or beyond ±90/±180), a tst or created_at that is not an epoch in seconds,
// and a known field of the wrong type. Unknown fields are ignored. Numbers
// sent as strings, as apps before Android 0.5.11 and iOS 8.0 did, are
// accepted. Integer fields are rounded to the nearest integer. A negative
// acc, vac, vel, cog or batt, which iOS uses for "invalid", counts as absent,
// and so does a null; cog is wrapped into 0-359. When a key appears twice the
// last one wins, as with encoding/json.
func Decode(b []byte) (Location, error) {
	var l Location
	if !json.Valid(b) {
		return l, errors.New("owntracks: invalid JSON")
	}
	i := skipWS(b, 0)
	if b[i] != '{' {
		return l, errors.New("owntracks: payload is not a JSON object")
	}
	var (
		typ           []byte
		hasType       bool
		lat, lon      []byte
		tst, created  []byte
		ints          [8][]byte // acc alt vac vel cog batt bs rad
		pres, odo     []byte
		t, tid        []byte
		conn, addr    []byte
		keyBuf        string
		end, keyStart int
		ok            bool
	)
	i = skipWS(b, i+1)
	for b[i] != '}' {
		keyStart = i
		i, ok = scanString(b, i)
		if !ok {
			return l, errors.New("owntracks: invalid JSON")
		}
		key := b[keyStart+1 : i-1]
		if hasEscape(key) {
			// Rare: a key like "\u005ftype". Decode it so it matches like
			// encoding/json would.
			if json.Unmarshal(b[keyStart:i], &keyBuf) != nil {
				return l, errors.New("owntracks: invalid JSON")
			}
			key = []byte(keyBuf)
		}
		i = skipWS(b, i)
		i = skipWS(b, i+1) // ':'
		end, ok = skipValue(b, i, 0)
		if !ok {
			return l, errors.New("owntracks: invalid JSON")
		}
		v := b[i:end]
		switch string(key) {
		case "_type":
			typ, hasType = v, true
		case "lat":
			lat = v
		case "lon":
			lon = v
		case "tst":
			tst = v
		case "created_at":
			created = v
		case "acc":
			ints[0] = v
		case "alt":
			ints[1] = v
		case "vac", "vacc":
			ints[2] = v
		case "vel":
			ints[3] = v
		case "cog":
			ints[4] = v
		case "batt":
			ints[5] = v
		case "bs":
			ints[6] = v
		case "rad":
			ints[7] = v
		case "p":
			pres = v
		case "odometer":
			odo = v
		case "t":
			t = v
		case "tid":
			tid = v
		case "conn":
			conn = v
		case "addr":
			addr = v
		}
		i = skipWS(b, end)
		if b[i] == ',' {
			i = skipWS(b, i+1)
		}
	}

	if !hasType {
		return l, fmt.Errorf("%w: no _type", ErrNotLocation)
	}
	if !isLocationString(typ) {
		return l, fmt.Errorf("%w: _type is %s", ErrNotLocation, excerpt(typ))
	}

	var err error
	if l.Lat, err = required("lat", lat); err != nil {
		return Location{}, err
	}
	if l.Lon, err = required("lon", lon); err != nil {
		return Location{}, err
	}
	if err := checkLatLon(l.Lat, l.Lon); err != nil {
		return Location{}, err
	}
	if l.Tst, err = epoch("tst", tst); err != nil {
		return Location{}, err
	}
	if l.CreatedAt, err = epoch("created_at", created); err != nil {
		return Location{}, err
	}

	names := [...]string{"acc", "alt", "vac", "vel", "cog", "batt", "bs", "rad"}
	fields := [...]*opt.Opt[int]{&l.Acc, &l.Alt, &l.Vac, &l.Vel, &l.Cog, &l.Batt, &l.BS, &l.Rad}
	for k, raw := range ints {
		f, present, err := number(names[k], raw)
		if err != nil {
			return Location{}, err
		}
		if !present {
			continue
		}
		// Range-check after rounding, so that what Encode writes back
		// decodes again.
		if f = math.Round(f); math.Abs(f) >= maxInt {
			return Location{}, fmt.Errorf("owntracks: %s %s is out of range", names[k], excerpt(raw))
		}
		n := int(f)
		switch names[k] {
		case "acc", "vac", "vel", "batt":
			if n < 0 {
				continue
			}
		case "cog":
			if n < 0 {
				continue
			}
			n %= 360
		}
		*fields[k] = opt.Some(n)
	}
	for _, fl := range [...]struct {
		name string
		raw  []byte
		dst  *opt.Opt[float64]
	}{{"p", pres, &l.P}, {"odometer", odo, &l.Odometer}} {
		f, present, err := number(fl.name, fl.raw)
		if err != nil {
			return Location{}, err
		}
		if present {
			*fl.dst = opt.Some(f)
		}
	}
	for _, s := range [...]struct {
		name string
		raw  []byte
		dst  *string
	}{{"t", t, &l.T}, {"tid", tid, &l.Tid}, {"conn", conn, &l.Conn}, {"addr", addr, &l.Addr}} {
		if s.raw == nil || string(s.raw) == "null" {
			continue
		}
		v, isStr, err := stringValue(s.raw)
		if err != nil || !isStr {
			return Location{}, fmt.Errorf("owntracks: %s is %s, not a string", s.name, excerpt(s.raw))
		}
		*s.dst = v
	}
	return l, nil
}

// IsLocation reports whether b is a JSON object whose _type is "location",
// without decoding the rest: it tells OwnTracks uploads from the bridge's own
// position payloads, which have no _type. A payload IsLocation accepts can
// still fail Decode, for instance without lat; one it rejects always fails
// Decode. It allocates nothing unless a key or the _type value uses escapes.
func IsLocation(b []byte) bool {
	i := skipWS(b, 0)
	if i >= len(b) || b[i] != '{' {
		return false
	}
	is := false
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == '}' {
		return false
	}
	for {
		keyStart := i
		var ok bool
		if i, ok = scanString(b, i); !ok {
			return false
		}
		key := b[keyStart+1 : i-1]
		isType := string(key) == "_type"
		if !isType && hasEscape(key) {
			var k string
			isType = json.Unmarshal(b[keyStart:i], &k) == nil && k == "_type"
		}
		if i = skipWS(b, i); i >= len(b) || b[i] != ':' {
			return false
		}
		i = skipWS(b, i+1)
		end, ok := skipValue(b, i, 0)
		if !ok {
			return false
		}
		if isType {
			is = isLocationString(b[i:end])
		}
		if i = skipWS(b, end); i >= len(b) {
			return false
		}
		switch b[i] {
		case ',':
			i = skipWS(b, i+1)
		case '}':
			return is && skipWS(b, i+1) == len(b)
		default:
			return false
		}
	}
}

// isLocationString reports whether raw is the JSON string "location",
// comparing in place unless it uses escapes.
func isLocationString(raw []byte) bool {
	if string(raw) == `"location"` {
		return true
	}
	if len(raw) < 2 || raw[0] != '"' || !hasEscape(raw) {
		return false
	}
	var s string
	return json.Unmarshal(raw, &s) == nil && s == "location"
}

// required parses a mandatory number.
func required(name string, raw []byte) (float64, error) {
	f, present, err := number(name, raw)
	if err != nil {
		return 0, err
	}
	if !present {
		return 0, errors.New("owntracks: location has no " + name)
	}
	return f, nil
}

// epoch parses an optional epoch time in seconds; 0 means absent.
func epoch(name string, raw []byte) (int64, error) {
	f, present, err := number(name, raw)
	if err != nil || !present {
		return 0, err
	}
	f = math.Round(f)
	if f < 0 || f > maxEpoch {
		return 0, fmt.Errorf("owntracks: %s %s is not an epoch in seconds", name, excerpt(raw))
	}
	return int64(f), nil
}

// number parses a JSON number, or a string holding one. present is false
// for a missing value and for null.
func number(name string, raw []byte) (f float64, present bool, err error) {
	if raw == nil || string(raw) == "null" {
		return 0, false, nil
	}
	tok := raw
	if raw[0] == '"' {
		s, _, err := stringValue(raw)
		if err != nil {
			return 0, false, err
		}
		tok = []byte(s)
	}
	if !isNumber(tok) {
		return 0, false, fmt.Errorf("owntracks: %s is %s, not a number", name, excerpt(raw))
	}
	f, err = strconv.ParseFloat(string(tok), 64)
	if err != nil || math.IsInf(f, 0) {
		return 0, false, fmt.Errorf("owntracks: %s %s is out of range", name, excerpt(raw))
	}
	return f, true, nil
}

// stringValue decodes a JSON string token; isStr is false for other tokens.
// Invalid UTF-8 becomes U+FFFD, as with encoding/json.
func stringValue(raw []byte) (s string, isStr bool, err error) {
	if len(raw) < 2 || raw[0] != '"' {
		return "", false, nil
	}
	body := raw[1 : len(raw)-1]
	if !hasEscape(body) && utf8.Valid(body) {
		return string(body), true, nil
	}
	err = json.Unmarshal(raw, &s)
	return s, true, err
}

// excerpt quotes at most 32 bytes of a raw JSON value for an error message,
// so a hostile payload cannot make error messages (and logs) huge.
func excerpt(raw []byte) string {
	if len(raw) > 32 {
		return strconv.QuoteToASCII(string(raw[:32])) + "..."
	}
	return string(raw)
}

func hasEscape(b []byte) bool {
	for _, c := range b {
		if c == '\\' {
			return true
		}
	}
	return false
}

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// scanString returns the index just past the string starting at b[i].
// It checks the structure only; escapes are validated by whoever decodes.
func scanString(b []byte, i int) (int, bool) {
	if i >= len(b) || b[i] != '"' {
		return i, false
	}
	for i++; i < len(b); i++ {
		switch c := b[i]; {
		case c == '\\':
			i++
		case c == '"':
			return i + 1, true
		case c < 0x20:
			return i, false
		}
	}
	return i, false
}

// maxDepth bounds nesting, so hostile input cannot exhaust the stack.
const maxDepth = 1000

// skipValue returns the index just past the JSON value starting at b[i].
func skipValue(b []byte, i, depth int) (int, bool) {
	if i >= len(b) || depth > maxDepth {
		return i, false
	}
	switch c := b[i]; {
	case c == '"':
		return scanString(b, i)
	case c == '{' || c == '[':
		closing := byte('}')
		if c == '[' {
			closing = ']'
		}
		i = skipWS(b, i+1)
		if i < len(b) && b[i] == closing {
			return i + 1, true
		}
		for {
			var ok bool
			if c == '{' {
				if i, ok = scanString(b, i); !ok {
					return i, false
				}
				if i = skipWS(b, i); i >= len(b) || b[i] != ':' {
					return i, false
				}
				i = skipWS(b, i+1)
			}
			if i, ok = skipValue(b, i, depth+1); !ok {
				return i, false
			}
			if i = skipWS(b, i); i >= len(b) {
				return i, false
			}
			switch b[i] {
			case ',':
				i = skipWS(b, i+1)
			case closing:
				return i + 1, true
			default:
				return i, false
			}
		}
	case c == '-' || c >= '0' && c <= '9':
		j := i
		for j < len(b) && (b[j] == '-' || b[j] == '+' || b[j] == '.' || b[j] == 'e' || b[j] == 'E' || b[j] >= '0' && b[j] <= '9') {
			j++
		}
		return j, isNumber(b[i:j])
	default:
		for _, lit := range [...]string{"true", "false", "null"} {
			if len(b)-i >= len(lit) && string(b[i:i+len(lit)]) == lit {
				return i + len(lit), true
			}
		}
		return i, false
	}
}

// isNumber reports whether b is exactly a JSON number (RFC 8259 §6): no
// leading '+', no leading zeros, no "NaN", "Inf" or hex that
// strconv.ParseFloat would otherwise accept.
func isNumber(b []byte) bool {
	i := 0
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	default:
		return false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			return false
		}
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			return false
		}
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	}
	return i == len(b)
}
