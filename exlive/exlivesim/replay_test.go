package exlivesim

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/exlive2mqtt/exlive2mqtt/exlive"
	"github.com/exlive2mqtt/exlive2mqtt/secret"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"
)

// rpFixture is a capture of the simulator's dialect made by exlive2mqtt
// probe: six vehicles in two groups, heartbeats answered, a few dozen
// positions (cmd/exlive2mqtt/replay_test.go made it, and checks it).
const rpFixture = "testdata/sim-dialect.capture.jsonl"

// rpHeader is a capture's first line.
const rpHeader = `{"capture":"exlive2mqtt probe","format":1,"platform":"192.0.2.1:1502","user":"acct","started":"2026-01-02T03:04:05Z","encoding":"auto"}`

// rpLine is one event of a hand-made capture: a frame of the client's
// (out) or the platform's (in), in the compact form, or raw bytes from the
// platform.
func rpLine(ms float64, dir string, m exlive.Message) string {
	text := string(exlive.AppendFrame(nil, m))
	l := map[string]any{"ms": ms, "dir": dir, "cmd": m.Cmd().String(), "text": text, "wire": text + "\r\n"}
	b, _ := json.Marshal(l)
	return string(b)
}

func rpRaw(ms float64, wire string) string {
	b, _ := json.Marshal(map[string]any{"ms": ms, "dir": "in", "skipped": "junk", "wire": wire})
	return string(b)
}

func rpCapture(t *testing.T, lines ...string) *Capture {
	t.Helper()
	c, err := ReadCapture(strings.NewReader(rpHeader + "\n" + strings.Join(lines, "\n") + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func rpLoad(t *testing.T) *Capture {
	t.Helper()
	c, err := LoadCapture(rpFixture)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// rpStart serves c at speed until the test ends, and checks then that no
// goroutine is left.
func rpStart(t *testing.T, c *Capture, speed float64, log *zerolog.Logger) *Replay {
	t.Helper()
	ignore := goleak.IgnoreCurrent()
	rp := NewReplay(c, ReplayConfig{Speed: speed, Log: log})
	if err := rp.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		rp.Close()
		goleak.VerifyNone(t, ignore)
	})
	return rp
}

// rpClient is a bare client: it writes frames and reads what comes back.
type rpClient struct {
	t   *testing.T
	nc  net.Conn
	w   *exlive.Writer
	r   *exlive.Reader
	dec *exlive.Decoder
}

func rpDial(t *testing.T, addr string) *rpClient {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &rpClient{t: t, nc: nc, w: exlive.NewWriter(nc, exlive.EncodingUTF8), dec: exlive.NewDecoder(nil)}
}

func (c *rpClient) send(ms ...exlive.Message) time.Time {
	c.t.Helper()
	at := time.Now()
	for _, m := range ms {
		if err := c.w.WriteMessage(m); err != nil {
			c.t.Fatal(err)
		}
	}
	return at
}

// raw reads the next n bytes.
func (c *rpClient) raw(n int) []byte {
	c.t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	b := make([]byte, n)
	if _, err := io.ReadFull(c.nc, b); err != nil {
		c.t.Fatalf("read %d bytes: %v", n, err)
	}
	return b
}

// next reads the next frame, and returns it decoded and when it came.
func (c *rpClient) next() (exlive.Message, time.Time) {
	c.t.Helper()
	if c.r == nil {
		c.r = exlive.NewReader(c.nc, exlive.DefaultMaxFrame, exlive.EncodingAuto)
	}
	c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	f, err := c.r.ReadFrame()
	if err != nil {
		c.t.Fatalf("read a frame: %v", err)
	}
	m, err := c.dec.Decode(f.Data)
	if err != nil {
		c.t.Fatalf("decode %s: %v", f.Data, err)
	}
	if p, ok := m.(*exlive.Position); ok {
		cp := *p
		m = &cp
	}
	return m, time.Now()
}

// answer reads the next frame, which must be an 8000, and returns its
// command and result.
func (c *rpClient) answer() string {
	c.t.Helper()
	m, _ := c.next()
	a, ok := m.(*exlive.Answer)
	if !ok {
		c.t.Fatalf("got %T %+v, want an answer", m, m)
	}
	return a.Command.String() + " " + a.Result
}

// closed waits for the replay to close the connection, past the frames
// still on their way.
func (c *rpClient) closed() {
	c.t.Helper()
	if c.r == nil {
		c.r = exlive.NewReader(c.nc, exlive.DefaultMaxFrame, exlive.EncodingAuto)
	}
	c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		if _, err := c.r.ReadFrame(); err != nil {
			if !errors.Is(err, io.EOF) {
				c.t.Fatalf("read: %v; want the connection closed", err)
			}
			return
		}
	}
}

func rpLogin(pass string) *exlive.Login {
	return &exlive.Login{Name: "anyone", Pass: secret.String(pass), Ver: "4.6936", Type: "json_common"}
}

// TestReplayIsTheCapturedStream: at speed 0, a client that logs in gets the
// capture's login answer and then every position, byte for byte as the
// platform sent them (GBK, laid out over lines, back to back); its
// requests get the captured answers, byte for byte too.
func TestReplayIsTheCapturedStream(t *testing.T) {
	c := rpLoad(t)
	var answer []byte
	var positions, heartbeats [][]byte
	vehicles := map[string][]byte{}
	var groups [][]byte
	dec := exlive.NewDecoder(nil)
	for _, f := range c.PlatformFrames() {
		m, err := dec.Decode(f.Text)
		if err != nil {
			t.Fatalf("line %d: %v", f.Line, err)
		}
		switch m := m.(type) {
		case *exlive.Answer:
			if m.Command == exlive.CmdLogin {
				answer = f.Wire
			} else {
				heartbeats = append(heartbeats, f.Wire)
			}
		case *exlive.Position:
			positions = append(positions, f.Wire)
		case *exlive.Group:
			groups = append(groups, f.Wire)
		case *exlive.Vehicle:
			vehicles[m.ID] = f.Wire
		}
	}
	if answer == nil || len(positions) == 0 || len(groups) != 2 || len(vehicles) != 6 || len(heartbeats) == 0 {
		t.Fatalf("fixture: login answer %q, %d positions, %d groups, %d vehicles, %d heartbeat answers", answer, len(positions), len(groups), len(vehicles), len(heartbeats))
	}

	rp := rpStart(t, c, 0, nil)
	cl := rpDial(t, rp.Addr())
	cl.send(rpLogin("whatever"))
	want := append(bytes.Clone(answer), bytes.Join(positions, nil)...)
	if got := cl.raw(len(want)); !bytes.Equal(got, want) {
		t.Fatalf("after the login, the replay sent\n%q\nwant\n%q", got, want)
	}
	// The groups, then the vehicles of group 2 (the simulator puts the
	// even ones there), byte for byte.
	cl.send(&exlive.GroupsRequest{Client: true})
	if want := bytes.Join(groups, nil); !bytes.Equal(cl.raw(len(want)), want) {
		t.Error("1008 was not answered with the captured groups")
	}
	cl.send(&exlive.VehiclesRequest{GroupID: "2"})
	if want := bytes.Join([][]byte{vehicles["V2"], vehicles["V4"], vehicles["V6"]}, nil); !bytes.Equal(cl.raw(len(want)), want) {
		t.Error("1010 for group 2 was not answered with its captured vehicles")
	}
	// A group the capture never asked about has no vehicles: what comes
	// next is the answer to the heartbeat after it.
	cl.send(&exlive.VehiclesRequest{GroupID: "99"}, &exlive.Heartbeat{})
	if !bytes.Equal(cl.raw(len(heartbeats[0])), heartbeats[0]) {
		t.Error("the heartbeat was not answered with the captured answer")
	}
	// More heartbeats than the capture holds are answered still.
	for range len(heartbeats) + 2 {
		cl.send(&exlive.Heartbeat{})
		if got := cl.answer(); got != "1002 succeed" {
			t.Errorf("heartbeat answered %q", got)
		}
	}
	cl.send(&exlive.Logout{})
	cl.closed()
	if rp.Logins() != 1 {
		t.Errorf("Logins = %d", rp.Logins())
	}
}

// TestReplayTiming: at speed 4 a position is sent no sooner than a quarter
// of its time after the login in the capture, counted from the client's
// login; the whole capture takes about a quarter of its time.
func TestReplayTiming(t *testing.T) {
	c := rpLoad(t)
	const speed = 4
	rp := rpStart(t, c, speed, nil)
	cl := rpDial(t, rp.Addr())
	sent := cl.send(rpLogin("x"))
	if got := cl.answer(); got != "1000 succeed" {
		t.Fatalf("login answered %q", got)
	}
	var last time.Time
	for i, r := range c.script.timeline {
		m, at := cl.next()
		if _, ok := m.(*exlive.Position); !ok {
			t.Fatalf("frame %d of the timeline: %T, want a position", i, m)
		}
		if early := sent.Add(r.at / speed).Sub(at); early > 0 {
			t.Errorf("position %d (line %d) came %v before its time, %v after the login in the capture", i, r.line, early, r.at)
		}
		last = at
	}
	whole := c.script.timeline[len(c.script.timeline)-1].at / speed
	t.Logf("%d positions in %v; the capture's %v at speed %d is %v", len(c.script.timeline), last.Sub(sent), c.script.timeline[len(c.script.timeline)-1].at, speed, whole)
	if took := last.Sub(sent); took > whole+5*time.Second {
		t.Errorf("the replay took %v, the capture at speed %d %v", took, speed, whole)
	}
}

// TestReplayRules: what a replay does when its client does not do what the
// capture's did.
func TestReplayRules(t *testing.T) {
	ok := func(cmd exlive.Cmd, result string) *exlive.Answer {
		return &exlive.Answer{Command: cmd, Result: result}
	}
	pos := func(id string) *exlive.Position {
		return &exlive.Position{ID: id, Lat: 31.2, Lng: 121.4}
	}

	t.Run("heartbeats are answered as the capture's of the same rank", func(t *testing.T) {
		c := rpCapture(t,
			rpLine(1, "out", rpLogin(CaptureMask)),
			rpLine(2, "in", ok(exlive.CmdLogin, "succeed")),
			rpLine(3, "out", &exlive.Heartbeat{}),
			rpLine(4, "in", ok(exlive.CmdHeartbeat, "first")),
			rpLine(5, "out", &exlive.Heartbeat{}),
			rpLine(6, "in", ok(exlive.CmdHeartbeat, "second")),
			rpLine(7, "out", &exlive.Heartbeat{}), // the capture ended before its answer
		)
		cl := rpDial(t, rpStart(t, c, 0, nil).Addr())
		cl.send(rpLogin("x"))
		if got := cl.answer(); got != "1000 succeed" {
			t.Errorf("login: %q", got)
		}
		for i, want := range []string{"first", "second", "second", "second"} {
			cl.send(&exlive.Heartbeat{})
			if got := cl.answer(); got != "1002 "+want {
				t.Errorf("heartbeat %d answered %q, want %q", i+1, got, want)
			}
		}
	})

	t.Run("a command is answered only when the capture answered one", func(t *testing.T) {
		c := rpCapture(t,
			rpLine(1, "out", rpLogin(CaptureMask)),
			rpLine(2, "in", ok(exlive.CmdLogin, "succeed")),
			rpLine(10, "out", &exlive.Passthrough{TerminalID: "T1", Code: "c", Data: "ping"}),
			rpLine(11, "in", &exlive.PassthroughReply{TerminalID: "T2", Code: "c", Data: "not asked for"}),
			rpLine(12, "in", ok(exlive.CmdPassthrough, "succeed")),
			rpLine(13, "in", &exlive.PassthroughReply{TerminalID: "T1", Code: "c", Data: "pong"}),
			rpLine(20, "out", &exlive.Heartbeat{}),
			rpLine(21, "in", ok(exlive.CmdHeartbeat, "succeed")),
		)
		cl := rpDial(t, rpStart(t, c, 0, nil).Addr())
		cl.send(rpLogin("x"))
		cl.answer()
		// The 1013 for T2 answered no 1012: it keeps its time from the login.
		if m, _ := cl.next(); m.(*exlive.PassthroughReply).Data != "not asked for" {
			t.Errorf("got %+v, want the 1013 nothing asked for", m)
		}
		// No 1004 in the capture: no answer; the heartbeat's comes next.
		cl.send(&exlive.VehicleCommand{ID: "V1", Data: "STOP"}, &exlive.Heartbeat{})
		if got := cl.answer(); got != "1002 succeed" {
			t.Errorf("after a 1004 the capture has no answer for: %q", got)
		}
		cl.send(&exlive.Passthrough{TerminalID: "T1", Code: "c", Data: "ping"})
		if got := cl.answer(); got != "1012 succeed" {
			t.Errorf("1012 answered %q", got)
		}
		if m, _ := cl.next(); m.(*exlive.PassthroughReply).Data != "pong" {
			t.Errorf("got %+v, want the 1013 that answered the 1012", m)
		}
	})

	t.Run("a refused login is followed by the end of the connection", func(t *testing.T) {
		c := rpCapture(t,
			rpLine(1, "out", rpLogin(CaptureMask)),
			rpLine(30, "in", ok(exlive.CmdLogin, LoginRefused)),
			`{"ms":31,"event":"closed","error":"exlive: login rejected: `+LoginRefused+`"}`,
		)
		cl := rpDial(t, rpStart(t, c, 0, nil).Addr())
		cl.send(rpLogin(DefaultPass))
		if got := cl.answer(); got != "1000 "+LoginRefused {
			t.Errorf("login answered %q", got)
		}
		cl.closed()
	})

	t.Run("frames before the login come on connecting; the platform's close comes at its time", func(t *testing.T) {
		c := rpCapture(t,
			rpRaw(0.5, "junk "),
			rpLine(0.6, "in", &exlive.TextMessage{Msg: "welcome"}),
			rpLine(1, "out", rpLogin(CaptureMask)),
			rpLine(2, "in", ok(exlive.CmdLogin, "succeed")),
			rpLine(3, "in", pos("V1")),
			rpLine(5, "in", pos("V2")),
			`{"ms":40,"event":"closed","error":"exlive: read: EOF"}`,
		)
		cl := rpDial(t, rpStart(t, c, 1, nil).Addr())
		if got := string(cl.raw(5)); got != "junk " {
			t.Errorf("first bytes %q, want the junk", got)
		}
		if m, _ := cl.next(); m.(*exlive.TextMessage).Msg != "welcome" {
			t.Errorf("got %+v before the login, want the 1003", m)
		}
		sent := cl.send(rpLogin("x"))
		cl.answer()
		for _, id := range []string{"V1", "V2"} {
			if m, _ := cl.next(); m.(*exlive.Position).ID != id {
				t.Errorf("got %+v, want %s's position", m, id)
			}
		}
		cl.closed()
		if took := time.Since(sent); took < 39*time.Millisecond {
			t.Errorf("closed %v after the login, the capture 39 ms after it", took)
		}
	})

	t.Run("at speed 0 the login answer still comes first", func(t *testing.T) {
		c := rpCapture(t,
			rpLine(1, "out", rpLogin(CaptureMask)),
			rpLine(900, "in", ok(exlive.CmdLogin, "succeed")),
			rpLine(900, "in", pos("V1")),
		)
		cl := rpDial(t, rpStart(t, c, 0, nil).Addr())
		cl.send(rpLogin("x"))
		if got := cl.answer(); got != "1000 succeed" {
			t.Errorf("first frame %q", got)
		}
		if m, _ := cl.next(); m.Cmd() != exlive.CmdPosition {
			t.Errorf("second frame %T", m)
		}
	})
}

// syncBuffer is a log both the replay's goroutines and the test use.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestReplayPasswords: a capture holds no password, so a replay accepts
// any (the capture's answer, accepted, is what every login gets) and never
// logs the one it is given; a capture that holds one in clear says so.
func TestReplayPasswords(t *testing.T) {
	const secretPass = "Replay-Secret-b0a7"
	var logs syncBuffer
	log := zerolog.New(&logs)
	rp := rpStart(t, rpLoad(t), 0, &log)
	for _, pass := range []string{secretPass, CaptureMask, ""} {
		cl := rpDial(t, rp.Addr())
		cl.send(rpLogin(pass))
		if got := cl.answer(); got != "1000 succeed" {
			t.Errorf("login with %q answered %q", pass, got)
		}
		cl.send(&exlive.Logout{})
		cl.closed()
	}
	rp.Close()
	if out := logs.String(); strings.Contains(out, secretPass) || !strings.Contains(out, `"user":"anyone"`) {
		t.Errorf("the replay's log holds the password, or not the user:\n%s", out)
	}
	if rpLoad(t).ClearPassword {
		t.Error("the fixture is taken for holding a password")
	}
	clear := rpCapture(t, rpLine(1, "out", rpLogin("hunter22")))
	if !clear.ClearPassword {
		t.Error("a capture with a password in clear is not flagged")
	}
}

// TestReadCaptureErrors: a capture that cannot be replayed is an error that
// names its line and says what is wrong.
func TestReadCaptureErrors(t *testing.T) {
	login := rpLine(1, "out", rpLogin(CaptureMask))
	for _, tc := range []struct {
		name, text string
		line       int
		want       string
	}{
		{"empty", "", 0, "empty: no header line"},
		{"header not JSON", "capture\n", 1, "not a JSON object"},
		{"header broken", `{"capture":` + "\n", 1, "invalid JSON"},
		{"not a capture", `{"hello":1}` + "\n" + login, 1, `not a capture: the first line has no "capture" and "format"`},
		{"later format", `{"capture":"x","format":2}` + "\n" + login, 1, "format 2: this version reads format 1"},
		{"bad start", `{"capture":"x","format":1,"started":"yesterday"}`, 1, `"started" "yesterday" is not an RFC 3339 time`},
		{"truncated line", rpHeader + "\n" + login + "\n" + `{"ms":2,"dir":"in","wire":"{`, 3, "invalid JSON"},
		{"two values", rpHeader + "\n" + login + ` {}`, 2, "more than one value on the line"},
		{"no time", rpHeader + "\n" + `{"dir":"in","wire":"x"}`, 2, `no "ms"`},
		{"time backwards", rpHeader + "\n" + login + "\n" + rpRaw(0.5, "x"), 3, `"ms" 0.5 comes before 1`},
		{"neither", rpHeader + "\n" + `{"ms":1}`, 2, `neither "dir" nor "event"`},
		{"bad dir", rpHeader + "\n" + `{"ms":1,"dir":"sideways"}`, 2, `"dir" "sideways": want in or out`},
		{"both wires", rpHeader + "\n" + `{"ms":1,"dir":"in","wire":"x","wire_b64":"eA=="}`, 2, `both "wire" and "wire_b64"`},
		{"bad base64", rpHeader + "\n" + `{"ms":1,"dir":"in","wire_b64":"%%%"}`, 2, `"wire_b64": illegal base64 data`},
		{"no wire", rpHeader + "\n" + `{"ms":1,"dir":"in","cmd":"1007","text":"{}"}`, 2, `neither "wire" nor "wire_b64"`},
		{"bad cmd", rpHeader + "\n" + `{"ms":1,"dir":"in","cmd":"10x7","wire":"x"}`, 2, `"cmd" "10x7" is not a command number`},
		{"out without text", rpHeader + "\n" + `{"ms":1,"dir":"out","cmd":"1000"}`, 2, `a frame from the client with no "text"`},
		{"out undecodable", rpHeader + "\n" + `{"ms":1,"dir":"out","text":"{\"header\":"}`, 2, "the client's frame: "},
		{"no login", rpHeader + "\n" + rpRaw(1, "x"), 0, "no login (1000) from the client: nothing to replay"},
		{"huge line", rpHeader + "\n" + login + "\n" + `{"ms":2,"dir":"in","wire":"` + strings.Repeat("x", maxCaptureLine) + `"}`, 3, "line longer than 8 MiB"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadCapture(strings.NewReader(tc.text))
			var ce *CaptureError
			if !errors.As(err, &ce) || ce.Line != tc.line || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ReadCapture = %v, want line %d and %q", err, tc.line, tc.want)
			}
			if tc.line > 0 && !strings.HasPrefix(err.Error(), fmt.Sprintf("exlivesim: capture:%d: ", tc.line)) {
				t.Errorf("error %q does not start with the line", err)
			}
		})
	}
	// From a file, the error names it as compilers do.
	path := filepath.Join(t.TempDir(), "bad.jsonl")
	if err := os.WriteFile(path, []byte(rpHeader+"\n"+login+"\n{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadCapture(path); err == nil || !strings.HasPrefix(err.Error(), "exlivesim: "+path+":3: invalid JSON") {
		t.Errorf("LoadCapture = %v", err)
	}
}
