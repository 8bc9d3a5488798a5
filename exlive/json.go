package exlive

import (
	"errors"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// A small validating JSON reader for flat protocol objects. encoding/json
// would do, but it builds through reflection and allocates for every field,
// and positions arrive thousands a second: this reads a frame in place and
// allocates only for the strings it keeps.

var errSyntax = errors.New("invalid JSON")

// maxNesting bounds how deep skip descends, so hostile input cannot exhaust
// the stack.
const maxNesting = 64

// value kinds
const (
	kindString = 's'
	kindNumber = 'n'
	kindTrue   = 't'
	kindFalse  = 'f'
	kindNull   = 'z'
	kindObject = 'o'
	kindArray  = 'a'
)

// value is one JSON value as it appears in the frame.
type value struct {
	kind byte
	raw  []byte // a string's bytes without quotes, still escaped; other kinds verbatim
	esc  bool   // raw holds backslash escapes
	// gbk is set for a string read in place (inplace.go) whose raw bytes are
	// GBK text, not yet UTF-8: parser.utf8 transcodes it.
	gbk bool
}

// text returns the value as the protocol means it: a string's content, a
// number's or literal's spelling, or nested JSON verbatim; null is "".
func (v value) text() string {
	switch v.kind {
	case kindNull:
		return ""
	case kindString:
		if v.esc {
			return unescape(v.raw)
		}
	}
	return string(v.raw)
}

// bytes is text without the copy where no unescaping is needed. The result
// aliases the frame.
func (v value) bytes() []byte {
	switch v.kind {
	case kindNull:
		return nil
	case kindString:
		if v.esc {
			return []byte(unescape(v.raw))
		}
	}
	return v.raw
}

// parser reads one JSON text held in data.
type parser struct {
	data   []byte
	pos    int
	err    error
	errPos int // where the first error was found: fail moves pos to the end

	// text says how the bytes >= 0x80 in strings are read: as they are in
	// a frame the Reader has made UTF-8 (Decode), or checked and paired
	// as the Reader's scanner would when the frame is read in place, off
	// the wire (inplace.go).
	text textMode
	// wide is the table of GBK characters and the scratch their UTF-8
	// goes into, in textGBK.
	wide *wideText
	// high is set once a string held a byte >= 0x80; notUTF8 when, in
	// textAuto, one was not UTF-8, and the frame must be read as GBK.
	high, notUTF8 bool
}

// textMode is how a parser reads the bytes >= 0x80 in strings.
type textMode uint8

const (
	textAsIs textMode = iota // already UTF-8: the Reader has checked or transcoded the frame
	textUTF8                 // must be UTF-8; anything else fails (the Reader replaces it)
	textAuto                 // UTF-8, and notUTF8 when it is not
	textGBK                  // GBK characters the Reader's scanner would pair alike, and no U+FFFD
)

func (p *parser) fail() {
	if p.err == nil {
		p.err = errSyntax
		p.errPos = p.pos
	}
	p.pos = len(p.data)
}

func (p *parser) ws() {
	for p.pos < len(p.data) {
		switch p.data[p.pos] {
		case ' ', '\t', '\r', '\n':
			p.pos++
		default:
			return
		}
	}
}

// object calls member for each member of the object at the current position;
// member must consume the value, with p.value or p.skip.
func (p *parser) object(member func(key []byte, esc bool)) {
	p.ws()
	if p.pos >= len(p.data) || p.data[p.pos] != '{' {
		p.fail()
		return
	}
	p.pos++
	p.ws()
	if p.pos < len(p.data) && p.data[p.pos] == '}' {
		p.pos++
		return
	}
	for p.err == nil {
		p.ws()
		if p.pos >= len(p.data) || p.data[p.pos] != '"' {
			p.fail()
			return
		}
		key, esc, _ := p.str()
		p.ws()
		if p.pos >= len(p.data) || p.data[p.pos] != ':' {
			p.fail()
			return
		}
		p.pos++
		p.ws()
		if esc {
			key, esc = []byte(unescape(key)), false
		}
		member(key, esc)
		p.ws()
		if p.pos >= len(p.data) {
			p.fail()
			return
		}
		switch p.data[p.pos] {
		case ',':
			p.pos++
		case '}':
			p.pos++
			return
		default:
			p.fail()
			return
		}
	}
}

// str reads a string at the current position (on its opening quote) and
// returns its raw content, and whether it holds escapes and bytes >= 0x80.
func (p *parser) str() (raw []byte, esc, high bool) {
	p.pos++ // opening quote
	start := p.pos
	check := p.text != textAsIs // in a register: Decode pays nothing per byte for it
	for p.pos < len(p.data) {
		c := p.data[p.pos]
		switch {
		case c == '"':
			raw = p.data[start:p.pos]
			p.pos++
			return raw, esc, high
		case c == '\\':
			esc = true
			if p.pos+1 >= len(p.data) {
				p.fail()
				return nil, false, false
			}
			switch p.data[p.pos+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				p.pos += 2
			case 'u':
				if p.pos+6 > len(p.data) || !isHex4(p.data[p.pos+2:p.pos+6]) {
					p.fail()
					return nil, false, false
				}
				p.pos += 6
			default:
				p.fail()
				return nil, false, false
			}
		case c < 0x20:
			p.fail()
			return nil, false, false
		case c >= 0x80 && check:
			n := p.char()
			if n == 0 {
				p.fail()
				return nil, false, false
			}
			high, p.high = true, true
			p.pos += n
		default:
			p.pos++
		}
	}
	p.fail()
	return nil, false, false
}

// value reads any value. Objects and arrays come back verbatim (validated).
func (p *parser) value() value {
	p.ws()
	if p.pos >= len(p.data) {
		p.fail()
		return value{}
	}
	start := p.pos
	switch c := p.data[p.pos]; {
	case c == '"':
		raw, esc, high := p.str()
		return value{kind: kindString, raw: raw, esc: esc, gbk: high && p.text == textGBK}
	case c == '{' || c == '[':
		p.skip(0)
		kind := byte(kindObject)
		if c == '[' {
			kind = kindArray
		}
		return value{kind: kind, raw: p.data[start:p.pos]}
	case c == '-' || (c >= '0' && c <= '9'):
		p.number()
		return value{kind: kindNumber, raw: p.data[start:p.pos]}
	case c == 't':
		p.literal("true")
		return value{kind: kindTrue, raw: p.data[start:p.pos]}
	case c == 'f':
		p.literal("false")
		return value{kind: kindFalse, raw: p.data[start:p.pos]}
	case c == 'n':
		p.literal("null")
		return value{kind: kindNull}
	}
	p.fail()
	return value{}
}

// skip reads and validates any value.
func (p *parser) skip(depth int) {
	if depth > maxNesting {
		p.fail()
		return
	}
	p.ws()
	if p.pos >= len(p.data) {
		p.fail()
		return
	}
	switch p.data[p.pos] {
	case '{':
		p.object(func([]byte, bool) { p.skip(depth + 1) })
	case '[':
		p.pos++
		p.ws()
		if p.pos < len(p.data) && p.data[p.pos] == ']' {
			p.pos++
			return
		}
		for p.err == nil {
			p.skip(depth + 1)
			p.ws()
			if p.pos >= len(p.data) {
				p.fail()
				return
			}
			if p.data[p.pos] == ']' {
				p.pos++
				return
			}
			if p.data[p.pos] != ',' {
				p.fail()
				return
			}
			p.pos++
		}
	default:
		p.value()
	}
}

func (p *parser) number() {
	d := p.data
	i := p.pos
	if i < len(d) && d[i] == '-' {
		i++
	}
	switch {
	case i < len(d) && d[i] == '0':
		i++
	case i < len(d) && d[i] >= '1' && d[i] <= '9':
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
	default:
		p.fail()
		return
	}
	if i < len(d) && d[i] == '.' {
		i++
		if i >= len(d) || d[i] < '0' || d[i] > '9' {
			p.fail()
			return
		}
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		if i >= len(d) || d[i] < '0' || d[i] > '9' {
			p.fail()
			return
		}
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
	}
	p.pos = i
}

func (p *parser) literal(word string) {
	if len(p.data)-p.pos < len(word) || string(p.data[p.pos:p.pos+len(word)]) != word {
		p.fail()
		return
	}
	p.pos += len(word)
}

// end checks that nothing but whitespace follows the value just read.
func (p *parser) end() {
	p.ws()
	if p.pos != len(p.data) {
		p.fail()
	}
}

func isHex4(b []byte) bool {
	for _, c := range b[:4] {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// unescape decodes the escapes of a string the parser has validated.
// Unpaired surrogates become U+FFFD, as encoding/json does.
func unescape(raw []byte) string {
	out := make([]byte, 0, len(raw))
	for i := 0; i < len(raw); {
		c := raw[i]
		if c != '\\' {
			out = append(out, c)
			i++
			continue
		}
		switch raw[i+1] {
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r := rune(hex4(raw[i+2:]))
			i += 6
			if utf16.IsSurrogate(r) {
				if i+6 <= len(raw) && raw[i] == '\\' && raw[i+1] == 'u' {
					if r2 := utf16.DecodeRune(r, rune(hex4(raw[i+2:]))); r2 != utf8.RuneError {
						out = utf8.AppendRune(out, r2)
						i += 6
						continue
					}
				}
				r = utf8.RuneError
			}
			out = utf8.AppendRune(out, r)
			continue
		default: // " \ /
			out = append(out, raw[i+1])
		}
		i += 2
	}
	return string(out)
}

func hex4(b []byte) uint16 {
	n, _ := strconv.ParseUint(string(b[:4]), 16, 16)
	return uint16(n)
}
