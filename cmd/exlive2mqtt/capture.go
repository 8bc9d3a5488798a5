package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/exlive2mqtt/exlive2mqtt/exlive"
	"github.com/exlive2mqtt/exlive2mqtt/exlive/exlivesim"
	"github.com/exlive2mqtt/exlive2mqtt/internal/jsonw"
	"golang.org/x/text/encoding/simplifiedchinese"
)

// captureFormat is the version of the capture format, in its first line:
// the one exlive-sim -replay reads, so that the two change together.
const captureFormat = exlivesim.CaptureFormat

// A capture (exlive2mqtt probe -capture FILE) holds every frame of one
// connection, both ways, as JSON lines, so that a user can attach it to a
// bug report and a simulator can play the platform's side back with its
// timing. The first line describes the capture:
//
//	{"capture":"exlive2mqtt probe","format":1,"platform":"host:1502","user":"acct","started":"…","encoding":"auto"}
//
// Each further line is one event, in the order they happened:
//
//	{"ms":0,"t":"…","event":"connected","dial_ms":1.2}
//	{"ms":0.4,"t":"…","dir":"out","cmd":"1000","text":"{…\"pass\":\"********\"…}","wire":"…\r\n","masked":true}
//	{"ms":3.1,"t":"…","dir":"in","cmd":"8000","enc":"gbk","text":"{…}","wire_b64":"…"}
//	{"ms":9.9,"t":"…","dir":"in","skipped":"junk","size":9,"detail":"bytes outside a frame"}
//	{"ms":30001,"t":"…","event":"closed","error":"…"}
//
// ms counts milliseconds from the connection (the replay clock); t is the
// wall time. dir "in" is the platform's, "out" the client's. text is the
// frame as UTF-8 JSON, decoded from GBK and given its missing braces where
// the reader did so (enc, repaired). wire is every byte exactly as it
// crossed the socket: for "in", the bytes skipped since the frame before
// (line ends, junk, broken frames) come first, so the wire of all "in"
// lines, in order, is the platform's stream; it is a JSON string when the
// bytes are UTF-8 and wire_b64 (standard base64) when they are not. An "in"
// line with skipped and no wire reports bytes the reader skipped; they are
// at the start of the next line's wire. A frame read whole but refused by
// the decoder has its wire and skipped both.
//
// The password is replaced by ******** in the login's pass field and, when
// it is four characters or more, wherever else it appears; a line so
// changed says masked:true.
type capture struct {
	mu    sync.Mutex
	w     *bufio.Writer
	start time.Time // of the connection
	mask  *masker
	err   error // the first write error
	line  []byte
}

// captureEvent is one line of a capture.
type captureEvent struct {
	MS       float64 `json:"ms"`
	T        string  `json:"t"`
	Event    string  `json:"event,omitempty"`
	Dir      string  `json:"dir,omitempty"`
	Cmd      string  `json:"cmd,omitempty"`
	Enc      string  `json:"enc,omitempty"`
	Text     string  `json:"text,omitempty"`
	Wire     *string `json:"wire,omitempty"`
	WireB64  string  `json:"wire_b64,omitempty"`
	Repaired bool    `json:"repaired,omitempty"`
	Replaced bool    `json:"replaced,omitempty"`
	Skipped  string  `json:"skipped,omitempty"`
	Size     int     `json:"size,omitempty"`
	Detail   string  `json:"detail,omitempty"`
	Masked   bool    `json:"masked,omitempty"`
	DialMS   float64 `json:"dial_ms,omitempty"`
	Error    string  `json:"error,omitempty"`
}

func newCapture(w io.Writer, mask *masker, platform, user string, encoding exlive.Encoding, started time.Time) *capture {
	c := &capture{w: bufio.NewWriterSize(w, 64<<10), mask: mask, start: started}
	head, _ := json.Marshal(struct {
		Capture  string `json:"capture"`
		Format   int    `json:"format"`
		Platform string `json:"platform"`
		User     string `json:"user"`
		Started  string `json:"started"`
		Encoding string `json:"encoding"`
	}{"exlive2mqtt probe", captureFormat, platform, user, started.UTC().Format(time.RFC3339Nano), encoding.String()})
	c.writeLine(mask.String(string(head)))
	return c
}

// connected starts the replay clock.
func (c *capture) connected(at time.Time, dial time.Duration) {
	c.mu.Lock()
	c.start = at
	c.mu.Unlock()
	c.write(at, captureEvent{Event: "connected", DialMS: millis(dial)})
}

func (c *capture) closed(at time.Time, err error) {
	e := captureEvent{Event: "closed"}
	if err != nil {
		e.Error = err.Error()
	}
	c.write(at, e)
}

// Sent records a frame the client wrote.
func (c *capture) Sent(at time.Time, m exlive.Message, wire []byte) {
	e := captureEvent{Dir: "out", Cmd: m.Cmd().String()}
	text := exlive.AppendFrame(nil, m)
	if l, ok := m.(*exlive.Login); ok {
		text, wire, e.Masked = c.mask.login(l, text, wire)
	}
	if !bytes.HasPrefix(wire, text) {
		e.Enc = "gbk" // transcoded: the writer speaks GBK to this platform
	}
	e.Text = string(text)
	c.setWire(&e, wire)
	c.write(at, e)
}

// Received records a frame, or bytes, the client read.
func (c *capture) Received(at time.Time, f exlive.Frame, m exlive.Message, err error) {
	e := captureEvent{Dir: "in", Repaired: f.Repaired, Replaced: f.Replaced}
	var fe *exlive.FrameError
	if errors.As(err, &fe) {
		e.Skipped, e.Size, e.Detail = string(fe.Reason), fe.Size, fe.Detail
		if fe.Cmd != 0 {
			e.Cmd = fe.Cmd.String()
		}
	}
	if m != nil {
		e.Cmd = m.Cmd().String()
	}
	if f.Data != nil {
		e.Text = string(f.Data)
		if f.GBK {
			e.Enc = "gbk"
		}
		c.setWire(&e, f.Wire)
	}
	c.write(at, e)
}

// setWire puts wire in e as text when it is UTF-8, else as base64.
func (c *capture) setWire(e *captureEvent, wire []byte) {
	if utf8.Valid(wire) {
		s := string(wire)
		e.Wire = &s
		return
	}
	e.WireB64 = base64.StdEncoding.EncodeToString(wire)
}

// write writes one event. Its time is taken here, under the lock, rather
// than where the event happened, so that the lines are in time order even
// when the reader and a writer record at once.
func (c *capture) write(_ time.Time, e captureEvent) {
	c.mu.Lock()
	defer c.mu.Unlock()
	at := time.Now()
	e.MS = millis(at.Sub(c.start))
	e.T = at.UTC().Format(time.RFC3339Nano)
	var masked bool
	e.Text, masked = c.mask.text(e.Text)
	e.Masked = e.Masked || masked
	if e.Wire != nil {
		w, m := c.mask.text(*e.Wire)
		e.Wire, e.Masked = &w, e.Masked || m
	}
	if e.WireB64 != "" {
		raw, _ := base64.StdEncoding.DecodeString(e.WireB64)
		if out, m := c.mask.bytes(raw); m {
			e.WireB64, e.Masked = base64.StdEncoding.EncodeToString(out), true
		}
	}
	e.Detail, _ = c.mask.text(e.Detail)
	e.Error, _ = c.mask.text(e.Error)
	b, err := json.Marshal(e)
	if err != nil {
		c.fail(err)
		return
	}
	c.writeLocked(b)
}

func (c *capture) writeLine(s string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writeLocked([]byte(s))
}

func (c *capture) writeLocked(b []byte) {
	if c.err != nil {
		return
	}
	c.line = append(append(c.line[:0], b...), '\n')
	if _, err := c.w.Write(c.line); err != nil {
		c.fail(err)
	}
}

func (c *capture) fail(err error) {
	if c.err == nil {
		c.err = err
	}
}

// flush writes what is buffered and returns the first error.
func (c *capture) flush() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.w.Flush(); err != nil {
		c.fail(err)
	}
	return c.err
}

func millis(d time.Duration) float64 {
	return float64(d.Round(time.Microsecond)) / float64(time.Millisecond)
}

// maskText replaces a password in output (and a replay of a capture
// knows it for a masked password).
const maskText = exlivesim.CaptureMask

// masker keeps a password out of everything the probe writes: its report,
// its errors and its capture.
type masker struct {
	pass  string
	forms [][]byte // how the password can appear: as is, JSON-escaped, in GB18030
	short bool     // too short to look for outside the login
}

func newMasker(pass string) *masker {
	m := &masker{pass: pass, short: utf8.RuneCountInString(pass) < 4}
	if pass == "" {
		return m
	}
	esc := jsonw.String(nil, pass)
	esc = esc[1 : len(esc)-1]
	for _, f := range [][]byte{[]byte(pass), esc} {
		m.add(f)
		if g, err := simplifiedchinese.GB18030.NewEncoder().Bytes(f); err == nil {
			m.add(g)
		}
	}
	return m
}

func (m *masker) add(f []byte) {
	for _, have := range m.forms {
		if bytes.Equal(have, f) {
			return
		}
	}
	m.forms = append(m.forms, f)
}

// bytes replaces every form of the password in b.
func (m *masker) bytes(b []byte) ([]byte, bool) {
	if m.short {
		return b, false
	}
	masked := false
	for _, f := range m.forms {
		if bytes.Contains(b, f) {
			b = bytes.ReplaceAll(b, f, []byte(maskText))
			masked = true
		}
	}
	return b, masked
}

func (m *masker) text(s string) (string, bool) {
	b, masked := m.bytes([]byte(s))
	if !masked {
		return s, false
	}
	return string(b), true
}

// String returns s with the password masked.
func (m *masker) String(s string) string {
	out, _ := m.text(s)
	return out
}

// login masks the pass field of a login frame, in its text and on the
// wire, however short the password.
func (m *masker) login(l *exlive.Login, text, wire []byte) ([]byte, []byte, bool) {
	if l.Pass == "" {
		return text, wire, false
	}
	field := jsonw.String([]byte(`"pass":`), l.Pass.Reveal())
	masked := jsonw.String([]byte(`"pass":`), maskText)
	text = bytes.Replace(text, field, masked, 1)
	out := bytes.Replace(wire, field, masked, 1)
	if bytes.Equal(out, wire) {
		// Written in GB18030.
		if g, err := simplifiedchinese.GB18030.NewEncoder().Bytes(field); err == nil {
			out = bytes.Replace(wire, g, masked, 1)
		}
	}
	return text, out, true
}
