package exlive

import (
	"strconv"
	"time"
	"unsafe"

	"github.com/exlive2mqtt/exlive2mqtt/internal/jsonw"
	"github.com/exlive2mqtt/exlive2mqtt/opt"
)

// Field names a field of a position, for Position.Invalid.
type Field uint16

// The fields of a position that can be unreadable (FieldSpeed to
// FieldCode, in Position.Invalid) or too long (FieldWState to
// FieldPosInfo, in Position.Truncated).
const (
	FieldSpeed Field = 1 << iota
	FieldDirection
	FieldFuel
	FieldMileage
	FieldTime
	FieldValid
	FieldAlarm
	FieldCode // longer than MaxCodeLen
	FieldWState
	FieldCState
	FieldPosInfo
)

var fieldNames = [...]string{"veo", "dir", "oil", "dis", "gpstime", "av", "alarm", "code", "wstate", "cstate", "posinfo"}

// Names returns the protocol names of the fields in f.
func (f Field) Names() []string {
	var names []string
	for i, name := range fieldNames {
		if f&(1<<i) != 0 {
			names = append(names, name)
		}
	}
	return names
}

// Position is command 1007, one vehicle position, in either direction.
// Coordinates are in the platform's datum, as sent.
type Position struct {
	ID        string
	Code      string
	Lat, Lng  float64            // degrees; a position without both is not a position
	Speed     opt.Opt[float64]   // veo, km/h
	Direction opt.Opt[float64]   // dir, degrees from north
	Time      opt.Opt[time.Time] // gpstime
	Valid     opt.Opt[bool]      // av: a valid fix
	Alarm     opt.Opt[bool]
	Fuel      opt.Opt[float64] // oil, litres
	Mileage   opt.Opt[float64] // dis, km
	WState    string
	CState    string
	PosInfo   string

	// Invalid lists the optional fields that were present but unreadable,
	// out of range or too long, and were left out.
	Invalid Field
	// Truncated lists the text fields (wstate, cstate, posinfo) that were
	// longer than MaxTextLen and were cut to it.
	Truncated Field

	hasLat, hasLng bool
	badLat, badLng []byte
}

// Cmd returns CmdPosition.
func (*Position) Cmd() Cmd { return CmdPosition }

func (p *Position) decodeBody(key []byte, v value, d *Decoder) {
	switch string(key) {
	case "id":
		p.ID = d.intern(v)
	case "code":
		p.Invalid &^= FieldCode
		p.Code = d.intern(v)
		if len(p.Code) > MaxCodeLen {
			p.Code = ""
			p.Invalid |= FieldCode
		}
	case "lat":
		p.Lat, p.hasLat = number(v)
		p.badLat = nil // a repeated key wins, as in encoding/json
		if !p.hasLat && !empty(v) {
			p.badLat = v.raw
		}
	case "lng":
		p.Lng, p.hasLng = number(v)
		p.badLng = nil // a repeated key wins, as in encoding/json
		if !p.hasLng && !empty(v) {
			p.badLng = v.raw
		}
	case "veo":
		p.Speed = optNumber(v, &p.Invalid, FieldSpeed, 0, MaxSpeed)
	case "dir":
		p.Direction = optNumber(v, &p.Invalid, FieldDirection, 0, 360)
	case "oil":
		p.Fuel = optNumber(v, &p.Invalid, FieldFuel, -MaxFuel, MaxFuel)
	case "dis":
		p.Mileage = optNumber(v, &p.Invalid, FieldMileage, -MaxMileage, MaxMileage)
	case "gpstime":
		p.Time = opt.Opt[time.Time]{}
		p.Invalid &^= FieldTime
		if !empty(v) {
			if t, ok := parseTime(v.bytes(), d.loc); ok {
				p.Time = opt.Some(t)
			} else {
				p.Invalid |= FieldTime
			}
		}
	case "av":
		p.Valid = optBool(v, &p.Invalid, FieldValid)
	case "alarm":
		p.Alarm = optBool(v, &p.Invalid, FieldAlarm)
	case "wstate":
		p.WState = p.text(d.intern(v), FieldWState)
	case "cstate":
		p.CState = p.text(d.intern(v), FieldCState)
	case "posinfo":
		p.PosInfo = p.text(v.text(), FieldPosInfo)
	}
}

// text returns s cut to MaxTextLen, noting in Truncated whether it was.
func (p *Position) text(s string, f Field) string {
	s, cut := cut(s, MaxTextLen)
	if cut {
		p.Truncated |= f
	} else {
		p.Truncated &^= f
	}
	return s
}

// check enforces what a position cannot do without.
func (p *Position) check() error {
	switch {
	case p.badLat != nil:
		return &FrameError{Reason: ReasonBadField, Cmd: CmdPosition, Detail: "lat is not a number: " + quoteShort(p.badLat)}
	case p.badLng != nil:
		return &FrameError{Reason: ReasonBadField, Cmd: CmdPosition, Detail: "lng is not a number: " + quoteShort(p.badLng)}
	case !p.hasLat || !p.hasLng:
		return &FrameError{Reason: ReasonBadField, Cmd: CmdPosition, Detail: "lat or lng missing"}
	case p.Lat < -90 || p.Lat > 90 || p.Lng < -180 || p.Lng > 180:
		return &FrameError{Reason: ReasonOutOfRange, Cmd: CmdPosition,
			Detail: "lat " + strconv.FormatFloat(p.Lat, 'g', -1, 64) + " lng " + strconv.FormatFloat(p.Lng, 'g', -1, 64)}
	}
	return nil
}

// appendBody writes the position as the platform does: every value a string,
// every key present, "" for what is absent.
func (p *Position) appendBody(dst []byte) []byte {
	dst = append(dst, '{')
	dst = field(dst, "code", p.Code)
	dst = field(dst, "id", p.ID)
	dst = numField(dst, "lat", opt.Some(p.Lat))
	dst = numField(dst, "lng", opt.Some(p.Lng))
	dst = numField(dst, "veo", p.Speed)
	dst = numField(dst, "dir", p.Direction)
	ts := ""
	if p.Time.Valid {
		ts = p.Time.V.Format(TimeLayout)
	}
	dst = field(dst, "gpstime", ts)
	dst = boolField(dst, "av", p.Valid)
	dst = boolField(dst, "alarm", p.Alarm)
	dst = numField(dst, "oil", p.Fuel)
	dst = numField(dst, "dis", p.Mileage)
	dst = field(dst, "wstate", p.WState)
	dst = field(dst, "cstate", p.CState)
	dst = field(dst, "posinfo", p.PosInfo)
	return append(dst, '}')
}

// TimeLayout is the layout of gpstime.
const TimeLayout = "2006-01-02 15:04:05"

func numField(dst []byte, key string, v opt.Opt[float64]) []byte {
	dst = append(dst, ',')
	dst = jsonw.Key(dst, key)
	dst = append(dst, '"')
	if v.Valid {
		dst = strconv.AppendFloat(dst, v.V, 'f', -1, 64)
	}
	return append(dst, '"')
}

func boolField(dst []byte, key string, v opt.Opt[bool]) []byte {
	dst = append(dst, ',')
	dst = jsonw.Key(dst, key)
	switch {
	case !v.Valid:
		return append(dst, `""`...)
	case v.V:
		return append(dst, `"1"`...)
	}
	return append(dst, `"0"`...)
}

// empty reports a value that means "not given".
func empty(v value) bool {
	return v.kind == kindNull || (v.kind == kindString && len(v.raw) == 0)
}

// maxNumberLen bounds the text of a number, spaces included.
const maxNumberLen = 400

// number reads a finite number from a JSON number or a string holding one.
func number(v value) (float64, bool) {
	if v.kind != kindNumber && v.kind != kindString {
		return 0, false
	}
	b := v.raw
	if v.esc {
		b = []byte(unescape(b))
	}
	// AppendFrame writes numbers without exponents, as the platform does:
	// that takes up to 327 bytes for a float64 (5e-324 is "0.000…5"), and
	// the decoder must read back what the encoder writes.
	if len(b) == 0 || len(b) > maxNumberLen {
		return 0, false
	}
	// Spaces around a number in a string are common enough on hand-built
	// platforms to forgive.
	for len(b) > 0 && b[0] == ' ' {
		b = b[1:]
	}
	for len(b) > 0 && b[len(b)-1] == ' ' {
		b = b[:len(b)-1]
	}
	return decimal(b)
}

// decimal reads a number written in decimal: an optional sign, digits with
// an optional fraction (5, 5.25, .5, 5.), an optional exponent (1e3).
// ParseFloat reads more, all of it unlike anything a platform means: hex
// (0x1p-2 is 0.25), underscores (1_0 is 10), Inf and NaN. A value too
// large for a float64, or that rounds to zero from a non-zero one (1e-400),
// is no number either.
func decimal(b []byte) (float64, bool) {
	i := 0
	if i < len(b) && (b[i] == '-' || b[i] == '+') {
		i++
	}
	digits, nonZero := 0, false
	mantissa := func() {
		for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
			digits++
			nonZero = nonZero || b[i] != '0'
		}
	}
	mantissa()
	if i < len(b) && b[i] == '.' {
		i++
		mantissa()
	}
	if digits == 0 {
		return 0, false
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		start := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == start {
			return 0, false
		}
	}
	if i != len(b) {
		return 0, false
	}
	// ParseFloat keeps its argument only in the error, which is dropped, so
	// the string may alias the frame without a copy. It returns ±Inf and
	// an error for a value out of range.
	f, err := strconv.ParseFloat(unsafe.String(&b[0], len(b)), 64)
	switch {
	case err != nil || (f == 0 && nonZero):
		return 0, false
	case f == 0:
		return 0, true // not -0, which would be published as such
	}
	return f, true
}

func optNumber(v value, invalid *Field, f Field, lo, hi float64) opt.Opt[float64] {
	*invalid &^= f
	if empty(v) {
		return opt.Opt[float64]{}
	}
	n, ok := number(v)
	if !ok || n < lo || n > hi {
		*invalid |= f
		return opt.Opt[float64]{}
	}
	return opt.Some(n)
}

func optBool(v value, invalid *Field, f Field) opt.Opt[bool] {
	*invalid &^= f
	if empty(v) {
		return opt.Opt[bool]{}
	}
	b, ok := parseBool(v)
	if !ok {
		*invalid |= f
		return opt.Opt[bool]{}
	}
	return opt.Some(b)
}

// parseTime reads gpstime in loc. The common layout is parsed by hand (it is
// on every position); RFC 3339 and a few other spellings seen on Chinese
// platforms go through time.Parse.
func parseTime(b []byte, loc *time.Location) (time.Time, bool) {
	if len(b) == 19 && b[4] == '-' && b[7] == '-' && (b[10] == ' ' || b[10] == 'T') && b[13] == ':' && b[16] == ':' {
		y, ok1 := digits(b[0:4])
		mo, ok2 := digits(b[5:7])
		d, ok3 := digits(b[8:10])
		h, ok4 := digits(b[11:13])
		mi, ok5 := digits(b[14:16])
		s, ok6 := digits(b[17:19])
		if ok1 && ok2 && ok3 && ok4 && ok5 && ok6 && mo >= 1 && mo <= 12 && d >= 1 && d <= 31 && h < 24 && mi < 60 && s < 61 {
			t := time.Date(y, time.Month(mo), d, h, mi, s, 0, loc)
			if t.Day() == d { // reject 2011-02-30
				return t, true
			}
		}
		return time.Time{}, false
	}
	s := string(b)
	for _, layout := range []string{"2006/01/02 15:04:05", "2006-01-02 15:04:05.999999999", time.RFC3339Nano} {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			// A time with its own offset is shown in loc like the others,
			// so that AppendFrame, which formats a time in its location,
			// writes back the same instant.
			return t.In(loc), true
		}
	}
	return time.Time{}, false
}

func digits(b []byte) (int, bool) {
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

func quoteShort(b []byte) string {
	if len(b) > 32 {
		b = b[:32]
	}
	return strconv.Quote(string(b))
}
