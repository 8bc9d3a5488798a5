package exlivesim

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/exlive2mqtt/exlive2mqtt/exlive"
)

// CaptureFormat is the version of the capture format that ReadCapture
// reads: the "format" of a capture's first line.
const CaptureFormat = 1

// CaptureMask is what a capture shows in place of the password.
const CaptureMask = "********"

// maxCaptureLine bounds one line of a capture: a frame as large as
// exlive.DefaultMaxFrame, in base64 and as text, with room to spare.
const maxCaptureLine = 8 << 20

// Capture is one recorded connection, as `exlive2mqtt probe -capture FILE`
// writes it (docs/protocol.md, "Capturing a session"), read and made into a
// script a Replay plays back.
type Capture struct {
	Platform string    // host:port the capture was made against
	User     string    // the account that logged in
	Started  time.Time // when the capture began
	Encoding string    // the probe's EXLIVE_ENCODING
	// ClearPassword is set when the login's pass is neither masked nor
	// empty: a capture made or edited by hand, not to be shared as it is.
	ClearPassword bool

	frames []CapturedFrame
	end    time.Duration // of the last event
	script script
}

// CapturedFrame is one frame the platform sent, as a capture shows it.
type CapturedFrame struct {
	Line int           // of the capture, counting from 1
	At   time.Duration // since the connection was made
	Cmd  exlive.Cmd    // 0 when the capture does not say
	Text []byte        // the frame as UTF-8 JSON; nil for bytes that were no frame
	Wire []byte        // the bytes on the wire, those skipped before it first
}

// PlatformFrames returns what the platform sent, in order.
func (c *Capture) PlatformFrames() []CapturedFrame { return c.frames }

// Duration returns the time from the connection to the capture's last event.
func (c *Capture) Duration() time.Duration { return c.end }

// FirstVehicle returns the id of the first vehicle the capture shows a
// position of, or lists, or "".
func (c *Capture) FirstVehicle() string {
	dec := exlive.NewDecoder(nil)
	listed := ""
	for _, f := range c.frames {
		if f.Text == nil {
			continue
		}
		switch m, _ := dec.Decode(f.Text); m := m.(type) {
		case *exlive.Position:
			return m.ID
		case *exlive.Vehicle:
			if listed == "" {
				listed = m.ID
			}
		}
	}
	return listed
}

// Answers reports whether the capture holds an answer to a frame of cmd
// from the client, which a replay can give.
func (c *Capture) Answers(cmd exlive.Cmd) bool {
	for t := range c.script.fallback {
		if t.cmd == cmd {
			return true
		}
	}
	return false
}

// Describe says in a few words what the capture holds and how long a
// replay of it at speed takes.
func (c *Capture) Describe(speed float64) string {
	positions, vehicles := 0, map[string]bool{}
	dec := exlive.NewDecoder(nil)
	for _, f := range c.frames {
		if f.Text == nil {
			continue
		}
		if m, _ := dec.Decode(f.Text); m != nil {
			if p, ok := m.(*exlive.Position); ok {
				positions++
				vehicles[p.ID] = true
			}
		}
	}
	s := fmt.Sprintf("%d frames from the platform, %d positions of %d vehicles, over %s", len(c.frames), positions, len(vehicles), c.end.Round(time.Millisecond))
	if speed > 0 && speed != 1 {
		s += fmt.Sprintf(", played in %s at speed %g", time.Duration(float64(c.end)/speed).Round(time.Millisecond), speed)
	} else if speed == 0 {
		s += ", played as fast as possible"
	}
	return s
}

// CaptureError is a capture that cannot be read: which line, and why.
type CaptureError struct {
	Path string // empty when read from a reader
	Line int    // counting from 1; 0 for the file as a whole
	Err  error
}

// Error names the place as path:line, as compilers do.
func (e *CaptureError) Error() string {
	where := e.Path
	if where == "" {
		where = "capture"
	}
	if e.Line > 0 {
		where += ":" + strconv.Itoa(e.Line)
	}
	return "exlivesim: " + where + ": " + e.Err.Error()
}

// Unwrap returns the reason.
func (e *CaptureError) Unwrap() error { return e.Err }

// LoadCapture reads the capture in the file at path.
func LoadCapture(path string) (*Capture, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("exlivesim: capture: %w", err)
	}
	defer f.Close()
	c, err := ReadCapture(f)
	var ce *CaptureError
	if errors.As(err, &ce) {
		ce.Path = path
	}
	return c, err
}

// captureHeader is the first line of a capture.
type captureHeader struct {
	Capture  *string `json:"capture"`
	Format   *int    `json:"format"`
	Platform string  `json:"platform"`
	User     string  `json:"user"`
	Started  string  `json:"started"`
	Encoding string  `json:"encoding"`
}

// captureLine is every other line. Fields the replay does not need
// (t, enc, repaired, size, detail, masked, dial_ms) are left out.
type captureLine struct {
	MS      *float64 `json:"ms"`
	Event   string   `json:"event"`
	Dir     string   `json:"dir"`
	Cmd     string   `json:"cmd"`
	Text    *string  `json:"text"`
	Wire    *string  `json:"wire"`
	WireB64 *string  `json:"wire_b64"`
	Skipped string   `json:"skipped"`
	Error   string   `json:"error"`
}

// ReadCapture reads a capture. Every line must be one JSON object: the
// first describes the capture and names its format, every other one is an
// event with its time. Errors are *CaptureError, with the line.
func ReadCapture(r io.Reader) (*Capture, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxCaptureLine)
	c := &Capture{}
	b := newScriptBuilder()
	n, last := 0, 0.0
	fail := func(format string, args ...any) error {
		return &CaptureError{Line: n, Err: fmt.Errorf(format, args...)}
	}
	for sc.Scan() {
		n++
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue // a blank line an editor left
		}
		if n == 1 {
			if err := c.header(line); err != nil {
				return nil, &CaptureError{Line: n, Err: err}
			}
			continue
		}
		var l captureLine
		if err := strictJSON(line, &l); err != nil {
			return nil, fail("%w", err)
		}
		if l.MS == nil {
			return nil, fail(`no "ms"`)
		}
		ms := *l.MS
		if ms < 0 || ms < last {
			return nil, fail(`"ms" %g comes before %g, the time of the event before`, ms, last)
		}
		last = ms
		at := time.Duration(math.Round(ms * float64(time.Millisecond)))
		c.end = at
		switch l.Dir {
		case "out":
			if l.Text == nil {
				return nil, fail(`a frame from the client with no "text"`)
			}
			m, err := exlive.NewDecoder(nil).Decode([]byte(*l.Text))
			if err != nil {
				return nil, fail("the client's frame: %w", err)
			}
			if lg, ok := m.(*exlive.Login); ok {
				if p := lg.Pass.Reveal(); p != "" && p != CaptureMask {
					c.ClearPassword = true
				}
			}
			b.sent(at, m)
		case "in":
			wire, err := lineWire(l)
			if err != nil {
				return nil, fail("%w", err)
			}
			if wire == nil {
				if l.Skipped == "" {
					return nil, fail(`a frame from the platform with neither "wire" nor "wire_b64"`)
				}
				continue // skipped bytes: they lead the next line's wire
			}
			f := CapturedFrame{Line: n, At: at, Wire: wire}
			if l.Cmd != "" {
				cmd, err := strconv.ParseUint(l.Cmd, 10, 16)
				if err != nil || cmd == 0 {
					return nil, fail(`"cmd" %q is not a command number`, l.Cmd)
				}
				f.Cmd = exlive.Cmd(cmd)
			}
			var m exlive.Message
			if l.Text != nil {
				f.Text = []byte(*l.Text)
				// A frame the client's decoder refused (skipped) is
				// replayed as it came, tied to nothing.
				if l.Skipped == "" {
					m, _ = exlive.NewDecoder(nil).Decode(f.Text)
				}
			}
			c.frames = append(c.frames, f)
			b.received(reply{at: at, line: n, wire: wire}, m)
		case "":
			switch l.Event {
			case "":
				return nil, fail(`neither "dir" nor "event"`)
			case "closed":
				if platformClosed(l.Error) {
					b.received(reply{at: at, line: n, close: true}, nil)
				}
			}
			// "connected", and events of later versions of format 1:
			// nothing to replay.
		default:
			return nil, fail(`"dir" %q: want in or out`, l.Dir)
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, &CaptureError{Line: n + 1, Err: fmt.Errorf("line longer than %d MiB", maxCaptureLine>>20)}
		}
		return nil, &CaptureError{Err: err}
	}
	if n == 0 {
		return nil, &CaptureError{Err: errors.New("empty: no header line")}
	}
	if !b.login {
		return nil, &CaptureError{Err: errors.New("no login (1000) from the client: nothing to replay")}
	}
	c.script = b.script()
	return c, nil
}

func (c *Capture) header(line []byte) error {
	var h captureHeader
	if err := strictJSON(line, &h); err != nil {
		return err
	}
	if h.Capture == nil || h.Format == nil {
		return errors.New(`not a capture: the first line has no "capture" and "format" (write one with exlive2mqtt probe -capture FILE)`)
	}
	if *h.Format != CaptureFormat {
		return fmt.Errorf("format %d: this version reads format %d", *h.Format, CaptureFormat)
	}
	c.Platform, c.User, c.Encoding = h.Platform, h.User, h.Encoding
	if h.Started != "" {
		t, err := time.Parse(time.RFC3339Nano, h.Started)
		if err != nil {
			return fmt.Errorf(`"started" %q is not an RFC 3339 time`, h.Started)
		}
		c.Started = t
	}
	return nil
}

// strictJSON reads line as one JSON object into v, and nothing after it.
func strictJSON(line []byte, v any) error {
	if line[0] != '{' {
		return errors.New("not a JSON object")
	}
	d := json.NewDecoder(bytes.NewReader(line))
	if err := d.Decode(v); err != nil {
		return fmt.Errorf("invalid JSON: %w", err)
	}
	if d.More() {
		return errors.New("invalid JSON: more than one value on the line")
	}
	return nil
}

// lineWire returns the wire bytes of an "in" line, nil when it has none.
func lineWire(l captureLine) ([]byte, error) {
	switch {
	case l.Wire != nil && l.WireB64 != nil:
		return nil, errors.New(`both "wire" and "wire_b64"`)
	case l.Wire != nil:
		return []byte(*l.Wire), nil
	case l.WireB64 != nil:
		b, err := base64.StdEncoding.DecodeString(*l.WireB64)
		if err != nil {
			return nil, fmt.Errorf(`"wire_b64": %w`, err)
		}
		return b, nil
	}
	return nil, nil
}

// platformClosed tells, from the error a capture's "closed" event gives,
// whether it was the platform that closed the connection (the client read
// the end of the stream, or had it reset), rather than the client that
// ended it (its wait over, a timeout of its own, a refused login).
func platformClosed(err string) bool {
	return strings.HasSuffix(err, "EOF") || strings.Contains(err, "connection reset") || strings.Contains(err, "broken pipe")
}
