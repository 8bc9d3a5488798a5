package exlive

import (
	"hash/maphash"
	"time"
)

// maxInterned is the size of the decoder's table of repeated strings.
const maxInterned = 1 << 13

// Decoder turns frames into typed messages. It is not safe for concurrent
// use; a session owns one.
type Decoder struct {
	loc *time.Location
	pos Position
	// strs shares one string among the frames that repeat it, in sets of
	// two slots picked by the string's hash, the one used last first. It
	// never grows: a value that never repeats (a time stamp in wstate, say)
	// costs what it would cost without a table, and takes the place of
	// the set's older string.
	strs []string
	seed maphash.Seed
	// wide is for frames read in place (Reader.ReadMessage).
	wide wideText
}

// NewDecoder returns a Decoder that reads gpstime in loc (UTC when nil).
func NewDecoder(loc *time.Location) *Decoder {
	if loc == nil {
		loc = time.UTC
	}
	return &Decoder{loc: loc, strs: make([]string, maxInterned), seed: maphash.MakeSeed()}
}

// Decode reads one frame. The *Position it returns is reused by the next
// call to Decode (positions arrive thousands a second); every other message
// is new. A frame with a command this package does not know comes back as
// *Unknown, not as an error. Errors are *FrameError.
func (d *Decoder) Decode(frame []byte) (Message, error) {
	p := parser{data: frame}
	return d.decode(&p, true)
}

// decode reads the frame object at the start of p.data. With whole, the
// object must be all of p.data (Decode); without, it ends where its closing
// brace is (p.pos), and what follows is left alone (Reader.ReadMessage reads
// a frame in place, among the bytes after it). Values handed to a message
// go through p.utf8: in place, a GBK string becomes UTF-8 there, and only
// the strings a message reads are transcoded.
func (d *Decoder) decode(p *parser, whole bool) (Message, error) {
	var (
		cmd     Cmd
		hasCmd  bool
		m       Message
		body    []byte
		hasBody bool
		detail  string
	)
	p.object(func(key []byte, _ bool) {
		switch string(key) {
		case "header":
			if p.pos >= len(p.data) || p.data[p.pos] != '{' {
				p.skip(0)
				detail = "header is not an object"
				return
			}
			p.object(func(key []byte, _ bool) {
				if string(key) != "cmd" {
					p.skip(1)
					return
				}
				if cmd, hasCmd = parseCmd(p.utf8(p.value())); !hasCmd {
					detail = "header cmd is not a command number"
				}
			})
		case "body":
			hasBody = true
			if hasCmd && m == nil && p.pos < len(p.data) && p.data[p.pos] == '{' {
				m = d.message(cmd)
				if u, ok := m.(*Unknown); ok {
					start := p.pos
					p.skip(0)
					u.Body = p.own(p.data[start:p.pos])
					return
				}
				p.object(func(key []byte, _ bool) { m.decodeBody(key, p.utf8(p.value()), d) })
				return
			}
			start := p.pos
			p.skip(0)
			body = p.data[start:p.pos]
		default:
			p.skip(0)
		}
	})
	size := p.pos
	if whole {
		p.end()
		size = len(p.data)
	}
	if p.err != nil {
		if !whole {
			// Read in place: the frame goes the old way, which says what
			// is wrong; a frame cut short by the end of the bytes read so
			// far is common, and costs no error built for nothing.
			return nil, p.err
		}
		return nil, &FrameError{Reason: ReasonInvalidJSON, Size: size, Detail: "at byte " + itoa(p.errPos) + ": " + p.err.Error()}
	}
	if !hasCmd {
		if detail == "" {
			detail = "no header cmd"
		}
		return nil, &FrameError{Reason: ReasonMalformed, Size: size, Detail: detail}
	}
	if m == nil {
		// The body came before the header, or is missing or not an object.
		m = d.message(cmd)
		if hasBody {
			if len(body) == 0 || body[0] != '{' {
				return nil, &FrameError{Reason: ReasonMalformed, Cmd: cmd, Size: size, Detail: "body is not an object"}
			}
			if u, ok := m.(*Unknown); ok {
				u.Body = p.own(body)
			} else {
				bp := p.sub(body)
				bp.object(func(key []byte, _ bool) { m.decodeBody(key, bp.utf8(bp.value()), d) })
			}
		}
	}
	if c, ok := m.(checker); ok {
		if err := c.check(); err != nil {
			err.(*FrameError).Size = size
			return nil, err
		}
	}
	return m, nil
}

// checker is a message that can be unusable once read: a position without
// coordinates, a vehicle whose id is too long to keep. check returns a
// *FrameError.
type checker interface{ check() error }

func (d *Decoder) message(cmd Cmd) Message {
	if cmd == CmdPosition {
		d.pos = Position{}
		return &d.pos
	}
	if m := newMessage(cmd); m != nil {
		return m
	}
	return &Unknown{Command: cmd}
}

// intern returns the text of v, sharing one string among the frames that
// repeat it: ids, codes and states come again with every position.
func (d *Decoder) intern(v value) string {
	if v.kind != kindString || v.esc || len(v.raw) > 64 {
		return v.text()
	}
	set := d.strs[maphash.Bytes(d.seed, v.raw)&(maxInterned-2):][:2]
	switch string(v.raw) {
	case set[0]:
		return set[0]
	case set[1]:
		set[0], set[1] = set[1], set[0]
		return set[0]
	}
	s := string(v.raw)
	set[0], set[1] = s, set[0]
	return s
}

func itoa(n int) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			return string(b[i:])
		}
	}
}
