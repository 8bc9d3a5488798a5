package exlive

import (
	"bytes"
	"sync"
	"unicode/utf8"

	"golang.org/x/text/encoding/simplifiedchinese"
)

// Reading a frame in place.
//
// ReadFrame scans every byte of a frame to find its end, a GBK frame is then
// transcoded whole to UTF-8, and Decode parses the result: three passes over
// every position. ReadMessage parses the frame once, straight from the
// Reader's buffer, and transcodes only the GBK strings a message keeps.
//
// It does so only where the result cannot differ from ReadFrame then Decode:
// the frame is well-formed JSON, so the scanner would have ended it at the
// same closing brace with nothing to repair; its strings hold no raw line
// break; and every byte >= 0x80 reads as the scanner and Decode would read
// it (Reader.inPlace has the rules per encoding). Anything else, and every
// frame that fails to decode, goes the old way, ReadFrame then Decode, which
// keeps every edge case as it is (Frame.Repaired and Replaced, the reasons
// and sizes of skipped frames).

// ReadMessage reads the next frame and decodes it with d. It gives what
// ReadFrame and then d.Decode(f.Data) would give, message and errors alike:
// a *FrameError from either is recoverable. The Frame is ReadFrame's, but
// for a GBK frame read in place its Data is nil: there is no UTF-8 copy of
// the frame, only of the strings the message keeps. With the frame's error
// the Frame is empty; with the message's error it is the frame's. A
// *Position is d's, reused by its next decoding, as Decode's is.
func (r *Reader) ReadMessage(d *Decoder) (Message, Frame, error) {
	// The fast path: a frame that starts in the buffer, read in place. A
	// capture (KeepWire) needs the frame's bytes and what came before it,
	// and the scanner, once it has started a frame, holds its state: both
	// go the old way.
	tried := 0 // bytes of the frame in part already tried in place
	for !r.keepWire && !r.inFrame {
		// Between frames ReadFrame skips whitespace without a word.
		for r.start < r.end && isSpace(r.buf[r.start]) {
			r.start++
		}
		if r.start == r.end {
			// As ReadFrame would, with no frame in part.
			if err := r.fill(); err != nil {
				return nil, Frame{}, err
			}
			continue
		}
		if r.buf[r.start] != '{' {
			break // junk: ReadFrame counts it
		}
		have := r.end - r.start
		if tried > 0 && have < 2*tried {
			// The frame arrives in small parts: parsing it from its start
			// again at each would cost the square of its length. The
			// scanner keeps its state across reads; once it has found the
			// end, the frame is read in place (readFrame).
			break
		}
		m, f, res := r.inPlace(d, r.buf[r.start:r.end])
		switch res {
		case inPlaceDecoded:
			r.start += f.size
			r.partial = false
			return m, f, nil
		case inPlaceNot:
			r.partial = false
			return r.readThenDecode(nil, d)
		}
		// The frame goes on past the bytes buffered so far (the 4 KiB
		// a read brings rarely end with a frame): read more, as the
		// scanner would, and try again.
		if have >= r.max {
			break // the scanner says it is too large, as ever
		}
		tried = have
		r.partial = true
		if err := r.fill(); err != nil {
			if r.err == nil {
				// Passing (a deadline): the frame waits in the buffer
				// for the next call, as it would in the scanner.
				return nil, Frame{}, err
			}
			break // final: the scanner says how the stream ended
		}
	}
	r.partial = false
	if r.keepWire {
		return r.readThenDecode(nil, d)
	}
	return r.readThenDecode(d, d)
}

// readThenDecode is ReadFrame then Decode; with inPlace set, the scanner
// hands a frame it has ended to the in-place reader first.
func (r *Reader) readThenDecode(inPlace, d *Decoder) (Message, Frame, error) {
	m, f, err := r.readFrame(inPlace)
	if err != nil || m != nil {
		return m, f, err
	}
	m, err = d.Decode(f.Data)
	return m, f, err
}

// inPlaceResult is what came of reading a frame in place.
type inPlaceResult uint8

const (
	// inPlaceDecoded: the message, as ReadFrame then Decode give it.
	inPlaceDecoded inPlaceResult = iota
	// inPlaceNot: the frame is none the in-place reader takes, or its
	// message does not decode: the old way says what it is.
	inPlaceNot
	// inPlaceShort: every byte is a valid start of a frame, which goes on
	// past them; the scanner would wait for more too.
	inPlaceShort
)

// inPlace decodes the frame at the start of data, in place. Decoded, the
// Frame's size is the frame's length.
//
// The bytes >= 0x80 in strings (nowhere else in JSON) must read as the
// scanner reads them, and transcode as decode would transcode the frame:
//   - utf-8: valid UTF-8; anything else would be replaced by U+FFFD.
//   - auto: valid UTF-8, and the frame is kept as it is; at the first
//     sequence that is not, the scanner starts over as GB18030, and so does
//     inPlace.
//   - gbk: two-byte GBK characters whose trail may be '\', '{' or '}' and
//     is then text, as the scanner pairs them, and 0x80 (the euro sign).
//     Anything else (GB18030's four-byte characters, bytes that would
//     become U+FFFD and set Frame.Replaced) goes the old way.
func (r *Reader) inPlace(d *Decoder, data []byte) (Message, Frame, inPlaceResult) {
	text := textUTF8
	switch r.enc {
	case EncodingAuto:
		text = textAuto
	case EncodingGBK:
		text = textGBK
	}
	for {
		p := parser{data: data, text: text}
		if text == textGBK {
			p.wide = d.wideText()
		}
		m, err := d.decode(&p, false)
		if p.err != nil {
			r.parsed += p.errPos // fail moves pos to the end
		} else {
			r.parsed += p.pos
		}
		switch {
		case p.notUTF8:
			text = textGBK // auto: read it again, as GBK
			continue
		case p.short():
			return nil, Frame{}, inPlaceShort
		case err != nil:
			return nil, Frame{}, inPlaceNot
		}
		// In gbk mode a frame is GBK when it is not ASCII; in auto mode
		// when it is not UTF-8 (it was read again as GBK).
		f := Frame{size: p.pos, GBK: text == textGBK && (r.enc == EncodingAuto || p.high)}
		if !f.GBK {
			f.Data = data[:p.pos]
		}
		return m, f, inPlaceDecoded
	}
}

// wideText holds what a parser needs to read GBK strings in place: the
// table of characters, and a scratch for the UTF-8 of the strings a message
// reads, which stays valid for the frame (see parser.utf8).
type wideText struct {
	pairs *gbkPairs
	buf   []byte
}

// wideText returns the decoder's, emptied for a new frame.
func (d *Decoder) wideText() *wideText {
	if d.wide.pairs == nil {
		d.wide.pairs = gbkTable()
	}
	d.wide.buf = d.wide.buf[:0]
	return &d.wide
}

// gbkPairs maps each two-byte GBK character, lead 0x81–0xFE and trail
// 0x40–0xFE, to its rune; 0 where GB18030's decoder gives U+FFFD, and for
// the trail 0x7F, which is none.
type gbkPairs [126 * 191]uint16

// gbkTable is built once, from x/text's own GB18030 decoder so that reading
// in place cannot disagree with transcoding a frame whole: that decoder
// keeps its table to itself, and calling it per string costs more than the
// string. Built on first use (48 KiB); never written after.
var gbkTable = sync.OnceValue(func() *gbkPairs {
	var all []byte
	for lead := 0x81; lead <= 0xFE; lead++ {
		for trail := 0x40; trail <= 0xFE; trail++ {
			if trail != 0x7F {
				all = append(all, byte(lead), byte(trail))
			}
		}
	}
	// Every one of these pairs is a character to the decoder, valid or
	// U+FFFD: one rune for two bytes, in order.
	out, err := simplifiedchinese.GB18030.NewDecoder().Bytes(all)
	t := new(gbkPairs)
	if err != nil {
		return t // every pair goes the old way
	}
	for i := 0; i < len(all); i += 2 {
		c, n := utf8.DecodeRune(out)
		out = out[n:]
		if c != utf8.RuneError && c <= 0xFFFF {
			t[int(all[i]-0x81)*191+int(all[i+1]-0x40)] = uint16(c)
		}
	}
	return t
})

// char returns the rune of the GBK pair lead, trail, or 0 when it is none
// the in-place reader takes.
func (w *wideText) char(lead, trail byte) rune {
	if lead < 0x81 || lead > 0xFE || trail < 0x40 || trail > 0xFE {
		return 0
	}
	return rune(w.pairs[int(lead-0x81)*191+int(trail-0x40)])
}

// appendUTF8 appends the UTF-8 of GBK text the parser has read in place:
// ASCII, 0x80 and pairs of char.
func (w *wideText) appendUTF8(dst, gbk []byte) []byte {
	for i := 0; i < len(gbk); {
		c := gbk[i]
		switch {
		case c < 0x80:
			dst = append(dst, c)
			i++
		case c == 0x80:
			dst = append(dst, "€"...)
			i++
		case i+1 < len(gbk) && w.char(c, gbk[i+1]) != 0:
			dst = utf8.AppendRune(dst, w.char(c, gbk[i+1]))
			i += 2
		default:
			// Not text the parser took in place; never reached.
			dst = append(dst, "\uFFFD"...)
			i++
		}
	}
	return dst
}

// char returns the length of the character at p.pos, a byte >= 0x80 in a
// string read in place, or 0 when it is none the in-place reader takes.
func (p *parser) char() int {
	b := p.data[p.pos:]
	if p.text == textGBK {
		if b[0] == 0x80 {
			return 1 // the euro sign, alone to the scanner and to GB18030
		}
		if len(b) < 2 {
			p.pos = len(p.data) // the frame goes on past the data: see short
			return 0
		}
		if p.wide.char(b[0], b[1]) == 0 {
			return 0
		}
		return 2
	}
	c, n := utf8.DecodeRune(b)
	if c == utf8.RuneError && n <= 1 {
		if !utf8.FullRune(b) {
			p.pos = len(p.data) // as above
		} else if p.text == textAuto {
			p.notUTF8 = true
		}
		return 0
	}
	return n
}

// short reports whether the parser failed only for want of bytes after its
// data: it read every byte as a valid start of a frame, which the scanner
// would not have ended either.
func (p *parser) short() bool {
	return p.err != nil && p.errPos >= len(p.data) && !p.notUTF8
}

// utf8 returns v with its text in UTF-8: a GBK string read in place is
// transcoded into the frame's scratch, where it stays while the frame is
// decoded (a position keeps a bad latitude's bytes for its error).
func (p *parser) utf8(v value) value {
	if v.gbk { // small enough to inline: Decode calls it for every value
		v = p.transcode(v)
	}
	return v
}

func (p *parser) transcode(v value) value {
	start := len(p.wide.buf)
	p.wide.buf = p.wide.appendUTF8(p.wide.buf, v.raw)
	v.raw, v.gbk = p.wide.buf[start:len(p.wide.buf):len(p.wide.buf)], false
	return v
}

// own returns a copy of raw, JSON of the frame, in UTF-8.
func (p *parser) own(raw []byte) []byte {
	if p.text == textGBK && !isASCII(raw) {
		return p.wide.appendUTF8(nil, raw)
	}
	return bytes.Clone(raw)
}

// sub returns a parser of data, part of p's frame, that reads text as p.
func (p *parser) sub(data []byte) *parser {
	return &parser{data: data, text: p.text, wide: p.wide}
}
