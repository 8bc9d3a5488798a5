// Package jsonw appends JSON tokens to byte slices without reflection. The
// protocol codec and the MQTT payloads share it, so both escape text the same
// way and neither allocates on the hot path.
package jsonw

import (
	"math"
	"strconv"
	"unicode/utf8"
)

const hex = "0123456789abcdef"

// String appends s as a JSON string. Invalid UTF-8 becomes U+FFFD, and the
// characters JSON requires to be escaped are escaped; other text, Chinese
// included, is kept as it is so payloads stay readable and short.
func String(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, "\ufffd"...)
			i++
			start = i
			continue
		}
		// U+2028 and U+2029 are valid JSON but break JavaScript consumers
		// that eval payloads (old Node-RED function nodes among them).
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// Member appends the key of an object member, "key":, after a comma unless
// it is the object's first (dst ends in its opening brace). key needs no
// escaping (callers pass constants).
func Member(dst []byte, key string) []byte {
	if len(dst) > 0 && dst[len(dst)-1] != '{' {
		dst = append(dst, ',')
	}
	return Key(dst, key)
}

// Key appends "key": for a key that needs no escaping (callers pass
// constants).
func Key(dst []byte, key string) []byte {
	dst = append(dst, '"')
	dst = append(dst, key...)
	return append(dst, '"', ':')
}

// Float appends f in the shortest form that reads back to the same value,
// as encoding/json and JavaScript write numbers: plain digits, but an
// exponent below 1e-6 and from 1e21 up, so that no value takes hundreds of
// digits (1e308 is "1e+308"). JSON has no NaN or infinity: those become
// null, and callers are expected to have left such values out before.
func Float(dst []byte, f float64) []byte {
	if d, ok := fewDecimals(dst, f); ok {
		return d
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(dst, "null"...)
	}
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		dst = strconv.AppendFloat(dst, f, 'e', -1, 64)
		// e-07 to e-7, as encoding/json does.
		if n := len(dst); n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
		return dst
	}
	return strconv.AppendFloat(dst, f, 'f', -1, 64)
}

// Bool appends true or false.
func Bool(dst []byte, b bool) []byte {
	return strconv.AppendBool(dst, b)
}

// Int appends i.
func Int(dst []byte, i int64) []byte {
	return strconv.AppendInt(dst, i, 10)
}

// fewDecimals appends f as Float would when it is a number of at most seven
// decimals from 1e-6 to 1e8 in magnitude: what the platform sends
// (coordinates to the seventh decimal, speeds, courses, mileages) and what
// the bridge rounds coordinates to. strconv's shortest formatting costs most
// of a position's payload; this costs a multiplication and a division.
//
// Why it is the same text: n/1e7 in float64 is the double nearest to the
// decimal n·10⁻⁷, and so is f, when n/1e7 == f, the double that parsing the
// decimal gives; below 1e8 doubles are closer than 10⁻⁷ to each other, so
// no other decimal of at most seven places parses to f, and the shortest
// form that does (strconv's) is this one with its trailing zeros dropped.
func fewDecimals(dst []byte, f float64) ([]byte, bool) {
	const scale = 1e7
	if abs := math.Abs(f); !(abs >= 1e-6 && abs < 1e8) {
		return dst, false // NaN, infinities, large numbers, ±0, and what Float writes with an exponent
	}
	n := math.Round(f * scale)
	if n/scale != f {
		return dst, false
	}
	if n < 0 {
		dst = append(dst, '-')
		n = -n
	}
	u := uint64(n) // below 1e15
	whole, frac := u/scale, u%scale
	dst = strconv.AppendUint(dst, whole, 10)
	if frac == 0 {
		return dst, true
	}
	digits := 7
	for frac%10 == 0 {
		frac /= 10
		digits--
	}
	dst = append(dst, '.')
	for p := pow10(digits - 1); p > frac && p > 1; p /= 10 {
		dst = append(dst, '0')
	}
	return strconv.AppendUint(dst, frac, 10), true
}

func pow10(n int) uint64 {
	p := uint64(1)
	for range n {
		p *= 10
	}
	return p
}
