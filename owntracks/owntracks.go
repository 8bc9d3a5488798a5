// Package owntracks encodes and decodes OwnTracks location messages, the
// JSON objects with "_type":"location" that the OwnTracks apps publish on
// owntracks/<user>/<device> (https://owntracks.org/booklet/tech/json/), and
// encodes the "card" messages that give such a device a display name
// (https://owntracks.org/booklet/features/card/).
//
// The bridge uses it both ways: it publishes every vehicle position as a
// location, retained, so that OwnTracks Recorder and Frontend and Home
// Assistant's OwnTracks integration show the fleet like phones; and it
// accepts locations published by phones as position uploads.
//
// Facts from the OwnTracks JSON documentation this relies on: lat and lon are
// required floats in degrees; tst is the epoch time of the fix in integer
// seconds; acc, alt, vac (metres), vel (km/h), cog (degrees, 0 = north), batt
// (percent) and rad (metres) are optional integers; t is an optional
// one-letter trigger whose absence means an automatic update; tid is a
// two-character tracker id. Apps before Android 0.5.11 and iOS 8.0 sent
// numbers as strings, which Decode still accepts.
//
// One fact from Home Assistant's OwnTracks integration
// (homeassistant/components/owntracks/__init__.py, async_valid_accuracy)
// matters to the bridge: it silently ignores a location without acc, or with
// acc 0. EXLIVE does not report an accuracy, so a Location built from a
// position has none unless the bridge is configured with an assumed one.
package owntracks

import (
	"errors"
	"math"
	"strconv"
	"unicode"

	"github.com/exlive2mqtt/exlive2mqtt/internal/jsonw"
	"github.com/exlive2mqtt/exlive2mqtt/opt"
)

// Location is an OwnTracks location message. Field comments give the JSON
// key, unit and source of each field; fields not listed here are ignored by
// Decode.
type Location struct {
	Lat float64 // "lat", degrees WGS-84, required
	Lon float64 // "lon", degrees WGS-84, required
	// Tst ("tst") is the epoch time of the fix in seconds. 0 means unknown
	// and is left out when encoding.
	Tst int64

	Acc  opt.Opt[int] // "acc", horizontal accuracy, metres
	Alt  opt.Opt[int] // "alt", altitude above sea level, metres
	Vac  opt.Opt[int] // "vac" ("vacc" in older apps), vertical accuracy, metres
	Vel  opt.Opt[int] // "vel", speed, km/h
	Cog  opt.Opt[int] // "cog", course over ground, degrees 0-359, 0 = north
	Batt opt.Opt[int] // "batt", device battery, percent
	BS   opt.Opt[int] // "bs", battery status: 0 unknown, 1 unplugged, 2 charging, 3 full
	Rad  opt.Opt[int] // "rad", radius of the region entered or left, metres

	P opt.Opt[float64] // "p", barometric pressure, kPa
	// Odometer ("odometer") is the total distance in km, an element
	// OwnTracks documents for Queclink vehicle trackers.
	Odometer opt.Opt[float64]

	T    string // "t", trigger; empty (left out) means an automatic update
	Tid  string // "tid", tracker id shown on maps, two characters
	Conn string // "conn", connectivity: "w" WiFi, "o" offline, "m" mobile
	// Addr ("addr") is a street address. OwnTracks Recorder adds it from
	// reverse geocoding; Home Assistant's OwnTracks integration shows it as
	// the tracker's "address" attribute.
	Addr string
	// CreatedAt ("created_at") is the epoch time in seconds at which the
	// message was built, as opposed to the fix time Tst. 0 means unknown.
	CreatedAt int64
}

// ErrNotLocation is wrapped by the error Decode returns for a JSON object
// whose _type is missing or is not "location".
var ErrNotLocation = errors.New("owntracks: not a location message")

// maxEpoch is 9999-12-31T23:59:59Z. Anything later is most likely
// milliseconds sent where OwnTracks wants seconds.
const maxEpoch = 253402300799

// maxInt bounds the integer fields, so that every platform's int holds them
// and absurd values are reported rather than wrapped.
const maxInt = 1 << 30

// Validate reports whether l can be encoded as a meaningful location: finite
// coordinates within range, and a tst that is a plausible epoch in seconds.
func (l Location) Validate() error {
	if err := checkLatLon(l.Lat, l.Lon); err != nil {
		return err
	}
	if l.Tst < 0 || l.Tst > maxEpoch {
		return errors.New("owntracks: tst " + strconv.FormatInt(l.Tst, 10) + " is not an epoch in seconds")
	}
	if l.CreatedAt < 0 || l.CreatedAt > maxEpoch {
		return errors.New("owntracks: created_at " + strconv.FormatInt(l.CreatedAt, 10) + " is not an epoch in seconds")
	}
	return nil
}

func checkLatLon(lat, lon float64) error {
	if math.IsNaN(lat) || lat < -90 || lat > 90 {
		return errors.New("owntracks: lat " + strconv.FormatFloat(lat, 'g', -1, 64) + " is out of range")
	}
	if math.IsNaN(lon) || lon < -180 || lon > 180 {
		return errors.New("owntracks: lon " + strconv.FormatFloat(lon, 'g', -1, 64) + " is out of range")
	}
	return nil
}

// Encode appends l as a JSON location message to dst and returns the
// extended buffer. It allocates nothing when dst has room (about 300 bytes
// is plenty for typical messages). Keys come in a fixed order with _type
// first; absent optional fields are left out. Encode does not validate: a
// non-finite float is written as null, so the output is always valid JSON,
// but call Validate first to avoid publishing such a message.
func Encode(dst []byte, l Location) []byte {
	dst = append(dst, `{"_type":"location"`...)
	dst = appendInt(dst, `,"acc":`, l.Acc)
	dst = appendInt(dst, `,"alt":`, l.Alt)
	dst = appendInt(dst, `,"batt":`, l.Batt)
	dst = appendInt(dst, `,"bs":`, l.BS)
	dst = appendInt(dst, `,"cog":`, l.Cog)
	dst = appendString(dst, `,"conn":`, l.Conn)
	if l.CreatedAt != 0 {
		dst = strconv.AppendInt(append(dst, `,"created_at":`...), l.CreatedAt, 10)
	}
	dst = appendFloat(append(dst, `,"lat":`...), l.Lat)
	dst = appendFloat(append(dst, `,"lon":`...), l.Lon)
	if l.P.Valid {
		dst = appendFloat(append(dst, `,"p":`...), l.P.V)
	}
	dst = appendInt(dst, `,"rad":`, l.Rad)
	dst = appendString(dst, `,"t":`, l.T)
	dst = appendString(dst, `,"tid":`, l.Tid)
	if l.Tst != 0 {
		dst = strconv.AppendInt(append(dst, `,"tst":`...), l.Tst, 10)
	}
	dst = appendInt(dst, `,"vac":`, l.Vac)
	dst = appendInt(dst, `,"vel":`, l.Vel)
	dst = appendString(dst, `,"addr":`, l.Addr)
	if l.Odometer.Valid {
		dst = appendFloat(append(dst, `,"odometer":`...), l.Odometer.V)
	}
	return append(dst, '}')
}

// EncodeCard appends an OwnTracks card message to dst: the display name (the
// plate, for a vehicle) and, when face is not empty, the base64 PNG or JPEG
// avatar. Cards are published retained on the device's topic plus "/info"
// (the bridge's topic.Layout.OwnTracksCard).
func EncodeCard(dst []byte, name, face string) []byte {
	dst = append(dst, `{"_type":"card"`...)
	dst = appendString(dst, `,"name":`, name)
	dst = appendString(dst, `,"face":`, face)
	return append(dst, '}')
}

func appendInt(dst []byte, key string, v opt.Opt[int]) []byte {
	if !v.Valid {
		return dst
	}
	return strconv.AppendInt(append(dst, key...), int64(v.V), 10)
}

func appendFloat(dst []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(dst, "null"...)
	}
	// 'f' with the shortest precision that round-trips: 31.230416, never
	// 3.1230416e+01, which some consumers of OwnTracks data do not expect.
	return strconv.AppendFloat(dst, f, 'f', -1, 64)
}

func appendString(dst []byte, key, s string) []byte {
	if s == "" {
		return dst
	}
	return jsonw.String(append(dst, key...), s)
}

// TrackerID derives the two-character tid shown on OwnTracks maps from a
// vehicle's code (plate) and, failing that, its id. OwnTracks' own default is
// the last two characters of the device's topic, and the end of a plate is
// what tells vehicles apart, so TrackerID takes the last two ASCII letters or
// digits, upper-cased: "沪A12345" gives "45", "粤B-D123挂" gives "23". A code
// with fewer than two such characters falls back to the id, then to the last
// one or two letters or digits of any script. It returns "" when neither has
// any, and Encode then leaves tid out.
func TrackerID(code, id string) string {
	for _, s := range [...]string{code, id} {
		var tid [2]byte
		n := 0
		for i := len(s) - 1; i >= 0 && n < 2; i-- {
			c := s[i]
			switch {
			case c >= 'a' && c <= 'z':
				c -= 'a' - 'A'
			case c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
			default:
				continue
			}
			n++
			tid[2-n] = c
		}
		if n == 2 {
			return string(tid[:])
		}
	}
	for _, s := range [...]string{code, id} {
		var runes []rune
		for _, r := range s {
			if unicode.IsLetter(r) || unicode.IsDigit(r) {
				runes = append(runes, unicode.ToUpper(r))
			}
		}
		if len(runes) > 0 {
			return string(runes[max(0, len(runes)-2):])
		}
	}
	return ""
}

// RoundSpeed converts a speed in km/h to the integer OwnTracks wants in vel.
// Negative or non-finite speeds are not valid speeds and give an absent
// value rather than a made-up one.
func RoundSpeed(kmh float64) opt.Opt[int] {
	if math.IsNaN(kmh) || kmh < 0 || kmh >= maxInt {
		return opt.Opt[int]{}
	}
	return opt.Some(int(math.Round(kmh)))
}

// RoundCourse converts a direction in degrees to the integer 0-359 OwnTracks
// wants in cog, wrapping 359.6 to 0 and -90 to 270. Non-finite directions
// give an absent value.
func RoundCourse(deg float64) opt.Opt[int] {
	if math.IsNaN(deg) || math.IsInf(deg, 0) {
		return opt.Opt[int]{}
	}
	c := math.Mod(math.Round(deg), 360)
	if c < 0 {
		c += 360
	}
	return opt.Some(int(c))
}
