package exlive

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"unicode/utf8"

	"golang.org/x/text/encoding/simplifiedchinese"
	"golang.org/x/text/transform"
)

// DefaultMaxFrame is the largest frame a Reader accepts unless told otherwise.
const DefaultMaxFrame = 1 << 20

// ErrFrameTooLarge is returned by Reader.ReadFrame when a frame grows past the
// size cap. It ends the session: there is no telling where the frame ends.
var ErrFrameTooLarge = errors.New("exlive: frame too large")

// Reason names why a frame, or bytes between frames, were skipped. Reasons
// are stable strings: they become metric labels.
type Reason string

// The reasons a frame can be skipped.
const (
	// ReasonJunk: bytes between frames that are neither whitespace nor a frame.
	ReasonJunk Reason = "junk"
	// ReasonInvalidJSON: a frame that is not valid JSON.
	ReasonInvalidJSON Reason = "invalid_json"
	// ReasonMalformed: valid JSON that is not {"header":{"cmd":…},"body":{…}}.
	ReasonMalformed Reason = "malformed"
	// ReasonBadField: a field the message cannot do without is missing or
	// unreadable (a position without numeric lat and lng, say).
	ReasonBadField Reason = "bad_field"
	// ReasonOutOfRange: a number the message cannot do without is outside
	// its range (a latitude of 91, say).
	ReasonOutOfRange Reason = "out_of_range"
	// ReasonTooLarge: a frame that grew past the size cap. Unlike the others
	// it ends the session (ErrFrameTooLarge): there is no telling where the
	// frame ends.
	ReasonTooLarge Reason = "too_large"
)

// FrameError reports a frame, or a run of bytes, that was skipped. It is
// recoverable: the Reader and the session go on with the next frame.
type FrameError struct {
	Reason Reason
	Cmd    Cmd    // the frame's command when it could be read, else 0
	Size   int    // bytes skipped
	Detail string // what was wrong, for logs
}

// Error says what was skipped and why.
func (e *FrameError) Error() string {
	if e.Cmd != 0 {
		return fmt.Sprintf("exlive: skipped %s frame (%d bytes): %s: %s", e.Cmd, e.Size, e.Reason, e.Detail)
	}
	return fmt.Sprintf("exlive: skipped %d bytes: %s: %s", e.Size, e.Reason, e.Detail)
}

// Frame is one JSON object read from the platform, always as UTF-8.
type Frame struct {
	// Data is the frame. It is only valid until the next call to ReadFrame.
	// ReadMessage leaves it nil for a GBK frame it decoded in place: there
	// is no UTF-8 copy of the whole frame then.
	Data []byte
	// GBK is set when the frame was decoded from GB18030.
	GBK bool
	// Repaired is set when the frame lacked closing braces and the reader
	// added them (see Reader).
	Repaired bool
	// Replaced is set when bytes that were valid in no encoding were
	// replaced by U+FFFD.
	Replaced bool
	// Wire is set when the Reader keeps the wire (Reader.KeepWire): the
	// frame's bytes exactly as they came, before transcoding or repair,
	// after every byte skipped since the frame before (line ends, junk,
	// frames skipped by the Reader; at most the frame cap of them). It is
	// only valid until the next call to ReadFrame.
	Wire []byte

	// size is the length on the wire of a frame ReadMessage read in place,
	// whose Data is nil when it was GBK (there is no UTF-8 copy of it).
	size int
}

// Reader splits a TCP byte stream into frames. The stream has no delimiters
// of its own: frames may come back to back, on lines of their own, split
// across reads at any byte, or among junk. The Reader tracks brace depth and
// string and escape state, never lines alone.
//
// A frame that lacks its closing braces, as two of the specification's own
// examples do, is closed when the next frame begins: a '{' where JSON allows
// no value cannot belong to the frame before it. The reader adds the missing
// braces and sets Frame.Repaired. A raw line break inside a string cannot be
// JSON either: the frame is skipped and reading goes on after the break, so
// one broken frame never swallows the ones behind it.
//
// In auto mode a frame is scanned as UTF-8 until it shows a byte sequence
// that is not UTF-8; it is then scanned again, and decoded, as GB18030. GBK
// text whose bytes all happen to be valid UTF-8 cannot be told from UTF-8,
// and a GBK trail byte '\' hidden in it can break the frame: a platform
// known to speak GBK should be read in gbk mode.
//
// The Reader's buffer never grows past the size cap. A frame transcoded to
// UTF-8 can be longer than its bytes on the wire, up to three times (one
// invalid byte becomes U+FFFD), so Frame.Data can pass the cap.
type Reader struct {
	r   io.Reader
	enc Encoding
	max int

	buf        []byte
	start, end int // unconsumed bytes are buf[start:end]
	err        error

	// Scanner state for the frame in progress, which starts at buf[start]
	// and has been scanned up to buf[pos]; kept across reads so a frame that
	// arrives a byte at a time costs no more than one that arrives whole.
	inFrame  bool
	pos      int
	depth    int
	inString bool
	escape   bool
	last     byte // the last significant byte outside strings
	// frameGBK is set in auto mode once the frame in progress has shown a
	// byte sequence that is not UTF-8: decode will read the whole frame as
	// GB18030, so the scanner must pair its bytes as GB18030 from the start.
	frameGBK bool
	// open has a bit for each container open in the frame in progress,
	// set for an array: after a ',' only an array has room for a '{'.
	open  []uint64
	nopen int

	scratch  []byte // transcoded frames
	repaired []byte // frames given their missing braces
	gbk      transform.Transformer

	keepWire bool
	lead     []byte // bytes skipped since the last frame, when keepWire
	wire     []byte // Frame.Wire

	// partial is set while ReadMessage reads more of a frame it has begun
	// to read in place (the scanner has not: inFrame is not set).
	partial bool
	// parsed counts the bytes handed to the in-place reader, for a test
	// to hold it to a multiple of the stream however the stream arrives.
	parsed int
}

// KeepWire makes the Reader hand over, in Frame.Wire, the bytes of each
// frame as they came off the wire, for a capture. It costs a copy of every
// frame, so the hot path leaves it off.
func (r *Reader) KeepWire(on bool) {
	r.keepWire = on
	r.lead = r.lead[:0]
}

// skipped notes bytes consumed outside any frame, for the next frame's Wire.
func (r *Reader) skipped(b []byte) {
	if r.keepWire && len(r.lead) < r.max {
		r.lead = append(r.lead, b[:min(len(b), r.max-len(r.lead))]...)
	}
}

// wireOf returns the Wire of a frame whose bytes are raw, and starts the
// next lead.
func (r *Reader) wireOf(raw []byte) []byte {
	if !r.keepWire {
		return nil
	}
	r.wire = append(append(r.wire[:0], r.lead...), raw...)
	r.lead = r.lead[:0]
	return r.wire
}

// NewReader returns a Reader of frames of at most max bytes (DefaultMaxFrame
// when max <= 0) in the given encoding.
func NewReader(r io.Reader, max int, enc Encoding) *Reader {
	if max <= 0 {
		max = DefaultMaxFrame
	}
	return &Reader{r: r, enc: enc, max: max}
}

// InFrame reports whether part of a frame has been read and the rest is
// awaited. A reader that waits for bytes with no frame in part has handed
// out every frame that has arrived.
func (r *Reader) InFrame() bool { return r.inFrame || r.partial }

// ReadFrame returns the next frame. A *FrameError reports skipped bytes and
// can be followed by further calls; ErrFrameTooLarge and read errors (io.EOF
// at the end of the stream, io.ErrUnexpectedEOF inside a frame) are final.
func (r *Reader) ReadFrame() (Frame, error) {
	_, f, err := r.readFrame(nil)
	return f, err
}

// readFrame is ReadFrame. With a decoder, a frame the scanner ends at its
// closing brace is read in place, as ReadMessage reads one whole in the
// buffer, and comes back decoded; a nil Message says it was not (with a
// nil error, the Frame is for Decode).
func (r *Reader) readFrame(d *Decoder) (Message, Frame, error) {
	junk := 0
	for {
		if !r.inFrame {
			// Between frames: skip whitespace, count anything else as junk.
			from := r.start
			for r.start < r.end {
				c := r.buf[r.start]
				if c == '{' {
					r.skipped(r.buf[from:r.start])
					if junk > 0 {
						return nil, Frame{}, &FrameError{Reason: ReasonJunk, Size: junk, Detail: "bytes outside a frame"}
					}
					r.beginFrame()
					break
				}
				if !isSpace(c) {
					junk++
				}
				r.start++
			}
			if !r.inFrame {
				r.skipped(r.buf[from:r.start])
			}
		}
		if r.inFrame {
			f, m, err, done := r.scan(d)
			if done {
				return m, f, err
			}
		}
		if err := r.fill(); err != nil {
			if junk > 0 {
				return nil, Frame{}, &FrameError{Reason: ReasonJunk, Size: junk, Detail: "bytes outside a frame"}
			}
			if err == io.EOF && r.inFrame {
				return nil, Frame{}, fmt.Errorf("exlive: stream ended inside a frame: %w", io.ErrUnexpectedEOF)
			}
			return nil, Frame{}, err
		}
	}
}

func (r *Reader) beginFrame() {
	r.inFrame, r.partial = true, false
	r.pos = r.start + 1
	r.depth = 1
	r.inString, r.escape = false, false
	r.last = '{'
	r.frameGBK = false
	r.nopen = 0
	r.push(false)
}

// push records a container opened in the frame.
func (r *Reader) push(array bool) {
	w, bit := r.nopen/64, uint64(1)<<(r.nopen%64)
	if w == len(r.open) {
		r.open = append(r.open, 0)
	}
	if array {
		r.open[w] |= bit
	} else {
		r.open[w] &^= bit
	}
	r.nopen++
}

// inArray reports whether the innermost open container is an array.
func (r *Reader) inArray() bool {
	i := r.nopen - 1
	return i >= 0 && r.open[i/64]&(1<<(i%64)) != 0
}

// scan advances the frame in progress over the buffered bytes. done is false
// when it needs more bytes. With a decoder, a frame that ends at its closing
// brace is read in place if it can be (m is then set; see readFrame).
func (r *Reader) scan(d *Decoder) (f Frame, m Message, err error, done bool) {
	buf := r.buf[:r.end]
	i := r.pos
	for ; i < len(buf); i++ {
		c := buf[i]
		if r.inString {
			if r.escape {
				r.escape = false
				continue
			}
			switch {
			case c == '"':
				r.inString = false
				r.last = '"'
			case c == '\\':
				r.escape = true
			case c == '\n' || c == '\r':
				// JSON strings cannot hold raw line breaks: the frame is
				// broken. Drop it and go on after the break.
				size := i - r.start
				r.skipped(buf[r.start : i+1])
				r.start = i + 1
				r.inFrame = false
				return Frame{}, nil, &FrameError{Reason: ReasonInvalidJSON, Size: size, Detail: "line break inside a string"}, true
			case c >= 0x80 && r.enc != EncodingUTF8:
				n := r.multibyte(buf[i:])
				if n == 0 {
					r.pos = i
					return Frame{}, nil, nil, false
				}
				if n < 0 {
					i = r.rescanGBK()
					continue
				}
				i += n - 1
			}
			continue
		}
		switch c {
		case '"':
			r.inString = true
		case '{':
			if r.last != ':' && r.last != '[' && (r.last != ',' || !r.inArray()) {
				// A new frame begins where this one has no room for a value.
				f, err := r.repair(i)
				return f, nil, err, true
			}
			r.depth++
			r.push(false)
			r.last = c
		case '[':
			r.push(true)
			r.last = c
		case ']':
			if r.inArray() {
				r.nopen--
			}
			r.last = c
		case '}':
			for r.inArray() {
				r.nopen-- // arrays left open inside the object
			}
			r.nopen = max(r.nopen-1, 0)
			r.depth--
			r.last = c
			if r.depth == 0 {
				data := buf[r.start : i+1]
				r.start = i + 1
				r.inFrame = false
				if d != nil {
					if m, f, res := r.inPlace(d, data); res == inPlaceDecoded && len(data) == f.size {
						return f, m, nil, true
					}
				}
				f, err := r.decode(data)
				if err != nil {
					r.skipped(data)
				} else {
					f.Wire = r.wireOf(data)
				}
				return f, nil, err, true
			}
		case ' ', '\t', '\r', '\n':
		default:
			if c >= 0x80 && r.enc == EncodingAuto && !r.frameGBK {
				// Text outside a string is no JSON, unless a GBK trail
				// '\' hidden in UTF-8 has put the scan out of step with
				// the strings: look at it as the text it may be.
				n := r.multibyte(buf[i:])
				if n == 0 {
					r.pos = i
					return Frame{}, nil, nil, false
				}
				if n < 0 {
					i = r.rescanGBK()
					continue
				}
				i += n - 1
			}
			r.last = c
		}
	}
	r.pos = i
	return Frame{}, nil, nil, false
}

// rescanGBK starts the scan of the frame in progress over, as GB18030, and
// returns the index before the first byte to scan. It is called in auto mode
// when the frame turns out not to be UTF-8: decode will read it as GB18030,
// and the bytes scanned so far were paired as UTF-8, which can swallow a GBK
// lead byte and leave its trail, perhaps a '\', to the scanner.
func (r *Reader) rescanGBK() int {
	r.frameGBK = true
	r.depth, r.inString, r.escape, r.last = 1, false, false, '{'
	r.nopen = 0
	r.push(false)
	return r.start // the loop steps past the opening brace
}

// multibyte returns how many bytes the character at the start of b takes,
// or 0 when b ends before the character does. In GBK mode a lead byte always
// takes the next byte with it: that byte may be '\', '{' or '}' (0x5C, 0x7B,
// 0x7D) and is then text, not syntax. In auto mode a frame is taken as UTF-8
// until a sequence is not UTF-8; multibyte then returns -1 and the frame is
// scanned again as GBK.
func (r *Reader) multibyte(b []byte) int {
	if r.enc == EncodingAuto && !r.frameGBK {
		if !utf8.FullRune(b) {
			return 0
		}
		if c, n := utf8.DecodeRune(b); c != utf8.RuneError || n > 1 {
			return n
		}
		return -1
	}
	if b[0] == 0x80 || b[0] == 0xFF {
		return 1 // not a GBK lead byte
	}
	if len(b) < 2 {
		return 0
	}
	if b[1] == '"' || b[1] < 0x20 {
		// Not a GBK trail byte: a truncated character. Leave the quote or
		// line break to the scanner.
		return 1
	}
	return 2
}

// repair ends the frame in progress before buf[i], where the next frame
// begins, adding the closing braces it lacks.
func (r *Reader) repair(i int) (Frame, error) {
	raw := r.buf[r.start:i]
	data := bytes.TrimRight(raw, " \t\r\n")
	r.repaired = append(r.repaired[:0], data...)
	for range r.depth {
		r.repaired = append(r.repaired, '}')
	}
	r.start = i
	r.inFrame = false
	if len(r.repaired) > r.max {
		return Frame{}, ErrFrameTooLarge
	}
	f, err := r.decode(r.repaired)
	if err != nil {
		r.skipped(raw)
		return f, err
	}
	f.Repaired = true
	f.Wire = r.wireOf(raw)
	return f, nil
}

// decode turns raw frame bytes into UTF-8.
func (r *Reader) decode(raw []byte) (Frame, error) {
	switch r.enc {
	case EncodingUTF8:
		if utf8.Valid(raw) {
			return Frame{Data: raw}, nil
		}
		r.scratch = append(r.scratch[:0], raw...)
		r.scratch = bytes.ToValidUTF8(r.scratch, []byte("\uFFFD"))
		return Frame{Data: r.scratch, Replaced: true}, nil
	case EncodingAuto:
		// A frame scanned as GBK is GBK even where its bytes happen to be
		// valid UTF-8: the scan may have ended it on that reading alone.
		if !r.frameGBK && utf8.Valid(raw) {
			return Frame{Data: raw}, nil
		}
	default:
		if isASCII(raw) {
			return Frame{Data: raw}, nil
		}
	}
	if r.gbk == nil {
		r.gbk = simplifiedchinese.GB18030.NewDecoder()
	}
	r.gbk.Reset()
	out, _, err := transform.Append(r.gbk, r.scratch[:0], raw)
	if err != nil {
		return Frame{}, &FrameError{Reason: ReasonInvalidJSON, Size: len(raw), Detail: "GB18030: " + err.Error()}
	}
	r.scratch = out
	return Frame{Data: out, GBK: true, Replaced: bytes.Contains(out, []byte("\uFFFD"))}, nil
}

// fill reads more bytes, compacting or growing the buffer first. The buffer
// never grows past the frame cap.
func (r *Reader) fill() error {
	if r.inFrame && r.start == 0 && r.end == len(r.buf) && len(r.buf) >= r.max {
		// The frame in progress fills the whole cap: it is too large
		// whether or not the stream ends next, and however it was split.
		return ErrFrameTooLarge
	}
	if r.err != nil {
		return r.err
	}
	if r.start == r.end && !r.inFrame {
		r.start, r.end = 0, 0
	}
	if r.end == len(r.buf) {
		if r.start > 0 {
			n := copy(r.buf, r.buf[r.start:r.end])
			r.pos -= r.start
			r.start, r.end = 0, n
		} else {
			size := min(max(2*len(r.buf), 4096), r.max)
			if size <= len(r.buf) {
				// The frame in progress fills the whole cap.
				return ErrFrameTooLarge
			}
			nb := make([]byte, size)
			copy(nb, r.buf[:r.end])
			r.buf = nb
		}
	}
	for range 100 {
		n, err := r.r.Read(r.buf[r.end:])
		r.end += n
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			// A passed deadline is not final: the caller may extend it
			// and read on, and the frame in progress must survive that.
			r.err = err
		}
		if n > 0 {
			return nil
		}
		if err != nil {
			return err
		}
	}
	r.err = io.ErrNoProgress
	return r.err
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

func isASCII(b []byte) bool {
	for _, c := range b {
		if c >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// Writer writes frames: one compact JSON object followed by "\r\n" each.
type Writer struct {
	w    io.Writer
	enc  Encoding
	end  string // written after each frame
	buf  []byte
	out  []byte
	last []byte // the bytes of the last frame written
	gbk  transform.Transformer
}

// NewWriter returns a Writer that writes text in the given encoding (auto
// writes UTF-8 until SetEncoding says otherwise).
func NewWriter(w io.Writer, enc Encoding) *Writer {
	return &Writer{w: w, enc: enc, end: "\r\n"}
}

// SetLineEnd changes what is written after each frame ("\r\n" unless
// changed; "" writes frames back to back, as live servers do).
func (w *Writer) SetLineEnd(end string) { w.end = end }

// SetEncoding changes the encoding of the frames written from now on. A
// session in auto mode calls it when the platform turns out to speak GBK.
func (w *Writer) SetEncoding(enc Encoding) { w.enc = enc }

// WriteMessage encodes m as one frame and writes it with a single Write.
func (w *Writer) WriteMessage(m Message) error {
	if _, err := w.Encode(m); err != nil {
		return err
	}
	return w.WriteEncoded()
}

// Encode encodes m as the next frame to write and returns its bytes as
// they will be written (valid until the next call); WriteEncoded writes
// them. A session that shows its frames to a Tap does so before they go,
// so that no answer can be seen before its request.
func (w *Writer) Encode(m Message) ([]byte, error) {
	w.buf = AppendFrame(w.buf[:0], m)
	if err := w.encode(); err != nil {
		return nil, err
	}
	return w.last, nil
}

// WriteEncoded writes the frame Encode prepared, with a single Write.
func (w *Writer) WriteEncoded() error {
	_, err := w.w.Write(w.last)
	return err
}

// WriteFrame writes frame, which must be one JSON object in UTF-8, followed
// by the line end, with a single Write.
func (w *Writer) WriteFrame(frame []byte) error {
	w.buf = append(w.buf[:0], frame...)
	if err := w.encode(); err != nil {
		return err
	}
	return w.WriteEncoded()
}

// encode puts w.buf, transcoded and with the line end, in w.last.
func (w *Writer) encode() error {
	if w.enc == EncodingGBK && !isASCII(w.buf) {
		if w.gbk == nil {
			w.gbk = simplifiedchinese.GB18030.NewEncoder()
		}
		w.gbk.Reset()
		var err error
		w.out, _, err = transform.Append(w.gbk, w.out[:0], w.buf)
		if err != nil {
			return fmt.Errorf("exlive: encode GB18030: %w", err)
		}
		w.out = append(w.out, w.end...)
		w.last = w.out
	} else {
		w.buf = append(w.buf, w.end...)
		w.last = w.buf
	}
	return nil
}
