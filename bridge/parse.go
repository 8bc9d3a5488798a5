package bridge

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/exlive2mqtt/exlive2mqtt/exlive"
	"github.com/exlive2mqtt/exlive2mqtt/opt"
	"github.com/exlive2mqtt/exlive2mqtt/owntracks"
	"github.com/exlive2mqtt/exlive2mqtt/topic"
)

// parsed is a request payload read.
type parsed struct {
	requestID  string
	expires    time.Time
	data       string // command, passthrough, message, groups, vehicles
	code       string // passthrough
	terminalID string // passthrough
	pos        exlive.Position
}

// parseRequest reads a request payload. A JSON object is read for its
// fields; for commands, passthrough and messages any other payload is the
// data itself. It never panics, whatever the bytes.
func parseRequest(k topic.Kind, payload []byte) (parsed, error) {
	var p parsed
	if !utf8.Valid(payload) {
		return p, errors.New("payload is not valid UTF-8")
	}
	switch k {
	case topic.KindGroups, topic.KindVehicles:
		// The payload is the data, JSON or not, as docs/topics.md says.
		if len(payload) == 0 {
			return p, errors.New("empty payload")
		}
		p.data = string(payload)
		return p, nil
	case topic.KindPosition:
		return parsePosition(payload)
	}
	obj, isObject := object(payload)
	if !isObject {
		if len(bytes.TrimSpace(payload)) == 0 {
			return p, errors.New("empty payload")
		}
		p.data = string(payload)
		return p, nil
	}
	if err := p.common(obj); err != nil {
		return p, err
	}
	key := "data"
	if k == topic.KindMessage {
		key = "msg"
	}
	data, ok, err := text(obj, key)
	switch {
	case err != nil:
		return p, err
	case !ok:
		return p, fmt.Errorf("missing %q", key)
	}
	p.data = data
	if k == topic.KindPassthrough {
		if p.code, _, err = text(obj, "code"); err != nil {
			return p, err
		}
		if p.terminalID, _, err = text(obj, "terminalid"); err != nil {
			return p, err
		}
	}
	return p, nil
}

// maxRequestID is the longest request_id, in bytes.
const maxRequestID = 256

// requestIDOf returns the request_id parseRequest would read from payload
// ("" for none, or for a payload it would refuse before reading one), for
// the answer to a request refused before it is parsed.
func requestIDOf(k topic.Kind, payload []byte) string {
	if k == topic.KindGroups || k == topic.KindVehicles || !utf8.Valid(payload) {
		return "" // their payload is the data: it has no request_id
	}
	obj, ok := object(payload)
	if !ok {
		return ""
	}
	id, _, err := text(obj, "request_id")
	if err != nil || len(id) > maxRequestID {
		return ""
	}
	return id
}

// object reads payload as a JSON object, if it is one.
func object(payload []byte) (map[string]json.RawMessage, bool) {
	t := bytes.TrimSpace(payload)
	if len(t) == 0 || t[0] != '{' {
		return nil, false
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(t, &obj) != nil {
		return nil, false
	}
	return obj, true
}

// common reads the fields every JSON request may carry.
func (p *parsed) common(obj map[string]json.RawMessage) error {
	id, _, err := text(obj, "request_id")
	if err != nil {
		return err
	}
	if len(id) > maxRequestID {
		return errors.New("request_id longer than 256 bytes")
	}
	p.requestID = id
	if raw, ok := obj["expires"]; ok && string(raw) != "null" {
		t, err := timestamp(raw)
		if err != nil {
			return fmt.Errorf("expires: %w", err)
		}
		p.expires = t
	}
	return nil
}

// text reads a member as text: a string as it is, a number or boolean as
// spelled, an object or array as compact JSON. ok is false when the member
// is absent or null.
func text(obj map[string]json.RawMessage, key string) (s string, ok bool, err error) {
	raw, present := obj[key]
	if !present || string(raw) == "null" {
		return "", false, nil
	}
	switch raw[0] {
	case '"':
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", false, fmt.Errorf("%s: %w", key, err)
		}
		return s, true, nil
	case '{', '[':
		var b bytes.Buffer
		if err := json.Compact(&b, raw); err != nil {
			return "", false, fmt.Errorf("%s: %w", key, err)
		}
		return b.String(), true, nil
	}
	return string(raw), true, nil
}

// timestamp reads an RFC 3339 string or a number of seconds since 1970.
func timestamp(raw json.RawMessage) (time.Time, error) {
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return time.Time{}, err
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil || t.Year() < 1970 {
			// Before 1970 as the epoch form: a year 0 position time
			// would reach the platform as gpstime 0000-01-01.
			return time.Time{}, errors.New("want RFC 3339 or seconds since 1970")
		}
		return t, nil
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil || math.IsNaN(f) || f < 0 || f > 253402300799 {
		return time.Time{}, errors.New("want RFC 3339 or seconds since 1970")
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), nil
}

// positionUpload is the position payload of docs/topics.md, as a request.
type positionUpload struct {
	ID        *string         `json:"id"`
	Code      *string         `json:"code"`
	Lat       *float64        `json:"lat"`
	Lng       *float64        `json:"lng"`
	Speed     *float64        `json:"speed"`
	Direction *float64        `json:"direction"`
	Time      json.RawMessage `json:"time"`
	Valid     *bool           `json:"valid"`
	Alarm     *bool           `json:"alarm"`
	Fuel      *float64        `json:"fuel"`
	Mileage   *float64        `json:"mileage"`
	WState    *string         `json:"wstate"`
	CState    *string         `json:"cstate"`
	PosInfo   *string         `json:"posinfo"`
}

// parsePosition reads a position upload: the bridge's own position payload,
// or an OwnTracks location as a phone running OwnTracks publishes it.
// Coordinates are WGS-84.
func parsePosition(payload []byte) (parsed, error) {
	var p parsed
	obj, ok := object(payload)
	if !ok {
		return p, errors.New("want a JSON object: a position or an OwnTracks location")
	}
	if err := p.common(obj); err != nil {
		return p, err
	}
	if _, isOwnTracks := obj["_type"]; isOwnTracks {
		l, err := owntracks.Decode(payload)
		if err != nil {
			// Its excerpt of a short value is the raw JSON, which may
			// hold a control character: the answer is one clean line.
			return p, errors.New(printable(err.Error()))
		}
		p.pos = exlive.Position{Lat: l.Lat, Lng: l.Lon}
		if l.Tst > 0 {
			p.pos.Time = opt.Some(time.Unix(l.Tst, 0))
		}
		if l.Vel.Valid {
			p.pos.Speed = opt.Some(float64(l.Vel.V))
		}
		if l.Cog.Valid {
			p.pos.Direction = opt.Some(float64(l.Cog.V))
		}
		if l.Odometer.Valid {
			p.pos.Mileage = opt.Some(l.Odometer.V)
		}
		p.pos.Valid = opt.Some(true)
		p.pos.PosInfo = l.Addr
		return p, nil
	}
	var u positionUpload
	if err := json.Unmarshal(payload, &u); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			// In JSON's words, not Go's: "want a number", not "float64".
			want := map[reflect.Kind]string{reflect.Float64: "number", reflect.Bool: "boolean", reflect.String: "string"}[te.Type.Kind()]
			if want == "" {
				want = te.Type.String()
			}
			return p, fmt.Errorf("%s: want a %s", te.Field, want)
		}
		return p, err
	}
	switch {
	case u.Lat == nil || u.Lng == nil:
		return p, errors.New("lat and lng are required")
	case *u.Lat < -90 || *u.Lat > 90 || *u.Lng < -180 || *u.Lng > 180:
		return p, fmt.Errorf("lat %v, lng %v: out of range", *u.Lat, *u.Lng)
	}
	pos := exlive.Position{Lat: *u.Lat, Lng: *u.Lng}
	pos.ID = deref(u.ID)
	pos.Code = deref(u.Code)
	pos.WState, pos.CState, pos.PosInfo = deref(u.WState), deref(u.CState), deref(u.PosInfo)
	// The bounds the bridge holds the platform's positions to.
	for _, s := range []struct {
		name, v string
		max     int
	}{
		{"id", pos.ID, exlive.MaxIDLen}, {"code", pos.Code, exlive.MaxCodeLen},
		{"wstate", pos.WState, exlive.MaxTextLen}, {"cstate", pos.CState, exlive.MaxTextLen}, {"posinfo", pos.PosInfo, exlive.MaxTextLen},
	} {
		if len(s.v) > s.max {
			return p, fmt.Errorf("%s longer than %d bytes", s.name, s.max)
		}
	}
	for _, f := range []struct {
		v    *float64
		to   *opt.Opt[float64]
		name string
		lo   float64
		hi   float64
	}{
		{u.Speed, &pos.Speed, "speed", 0, exlive.MaxSpeed},
		{u.Direction, &pos.Direction, "direction", 0, 360},
		{u.Fuel, &pos.Fuel, "fuel", -exlive.MaxFuel, exlive.MaxFuel},
		{u.Mileage, &pos.Mileage, "mileage", -exlive.MaxMileage, exlive.MaxMileage},
	} {
		if f.v == nil {
			continue
		}
		if *f.v < f.lo || *f.v > f.hi {
			return p, fmt.Errorf("%s %v: out of range", f.name, *f.v)
		}
		*f.to = opt.Some(*f.v)
	}
	if u.Valid != nil {
		pos.Valid = opt.Some(*u.Valid)
	}
	if u.Alarm != nil {
		pos.Alarm = opt.Some(*u.Alarm)
	}
	if len(u.Time) > 0 && string(u.Time) != "null" {
		t, err := timestamp(u.Time)
		if err != nil {
			return p, fmt.Errorf("time: %w", err)
		}
		pos.Time = opt.Some(t)
	}
	p.pos = pos
	return p, nil
}

// printable escapes what is not printable in s, as Go quotes it.
func printable(s string) string {
	if !strings.ContainsFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) {
		return s
	}
	q := strconv.QuoteToGraphic(s)
	return q[1 : len(q)-1]
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return strings.TrimSpace(*s)
}
