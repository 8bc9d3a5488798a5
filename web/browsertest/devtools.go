package browsertest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"
)

// Session is a headless Chromium driven over the DevTools protocol, for
// what a DOM dump cannot tell: typing into the page, clicking, and how long
// the page takes to answer. It talks to Chromium over the pipe that
// --remote-debugging-pipe opens on file descriptors 3 and 4 (JSON messages
// ended by a NUL byte), so it needs no WebSocket client and no port.
type Session struct {
	t       testing.TB
	cmd     *exec.Cmd
	cancel  context.CancelFunc // kills Chromium's process group
	toChrom *os.File
	stderr  lockedBuffer

	mu      sync.Mutex
	nextID  int
	waiting map[int]chan reply
	closed  chan struct{} // closed when Chromium's end of the pipe is

	session string // the DevTools session of the page
}

type reply struct {
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Message string `json:"message"`
	} `json:"error"`
}

// callTimeout bounds one DevTools call; a page busy for longer than this
// is broken for any person too.
const callTimeout = 90 * time.Second

// Open starts Chromium with a blank page and returns a session on it. The
// browser is stopped when the test ends.
func Open(t testing.TB) *Session {
	t.Helper()
	bin := Chromium(t)
	cmdR, cmdW, err := os.Pipe() // we write commands, Chromium reads fd 3
	if err != nil {
		t.Fatal(err)
	}
	outR, outW, err := os.Pipe() // Chromium writes fd 4, we read
	if err != nil {
		t.Fatal(err)
	}
	s := &Session{t: t, toChrom: cmdW, waiting: map[int]chan reply{}, closed: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.cmd = exec.CommandContext(ctx, bin, append(flags(t.TempDir()), "--remote-debugging-pipe", "about:blank")...)
	s.cmd.ExtraFiles = []*os.File{cmdR, outW}
	s.cmd.Stderr = &s.stderr
	s.cmd.WaitDelay = 5 * time.Second
	setProcessGroup(s.cmd)
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("browsertest: start %s: %v", bin, err)
	}
	cmdR.Close()
	outW.Close()
	go s.read(outR)
	t.Cleanup(s.close)

	var target struct {
		TargetID string `json:"targetId"`
	}
	s.callIn("", "Target.createTarget", map[string]any{"url": "about:blank"}, &target)
	var attached struct {
		SessionID string `json:"sessionId"`
	}
	s.callIn("", "Target.attachToTarget", map[string]any{"targetId": target.TargetID, "flatten": true}, &attached)
	s.session = attached.SessionID
	return s
}

// read hands every reply to its caller; events are not used.
func (s *Session) read(r *os.File) {
	defer close(s.closed)
	defer r.Close()
	br := bufio.NewReaderSize(r, 1<<20)
	for {
		msg, err := br.ReadBytes(0)
		if err != nil {
			return
		}
		var m struct {
			ID int `json:"id"`
			reply
		}
		if json.Unmarshal(msg[:len(msg)-1], &m) != nil || m.ID == 0 {
			continue
		}
		s.mu.Lock()
		ch := s.waiting[m.ID]
		delete(s.waiting, m.ID)
		s.mu.Unlock()
		if ch != nil {
			ch <- m.reply
		}
	}
}

func (s *Session) close() {
	_ = s.toChrom.Close() // Chromium exits when its command pipe closes
	done := make(chan error, 1)
	go func() { done <- s.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		s.cancel()
		<-done
	}
	s.cancel()
	killProcessGroup(s.cmd)
}

// call sends a command to the page and decodes its result into result
// (nil: ignore it). It fails the test on an error.
func (s *Session) call(method string, params, result any) {
	s.t.Helper()
	s.callIn(s.session, method, params, result)
}

func (s *Session) callIn(session, method string, params, result any) {
	s.t.Helper()
	s.mu.Lock()
	s.nextID++
	id := s.nextID
	ch := make(chan reply, 1)
	s.waiting[id] = ch
	s.mu.Unlock()
	msg := map[string]any{"id": id, "method": method, "params": params}
	if session != "" {
		msg["sessionId"] = session
	}
	b, err := json.Marshal(msg)
	if err != nil {
		s.t.Fatal(err)
	}
	if _, err := s.toChrom.Write(append(b, 0)); err != nil {
		s.t.Fatalf("browsertest: %s: %v\nstderr (end):\n%s", method, err, tail(s.stderr.String(), 3000))
	}
	select {
	case r := <-ch:
		if r.Error != nil {
			s.t.Fatalf("browsertest: %s: %s", method, r.Error.Message)
		}
		if result != nil {
			if err := json.Unmarshal(r.Result, result); err != nil {
				s.t.Fatalf("browsertest: %s: result %.300s: %v", method, r.Result, err)
			}
		}
	case <-s.closed:
		s.t.Fatalf("browsertest: %s: Chromium went away\nstderr (end):\n%s", method, tail(s.stderr.String(), 3000))
	case <-time.After(callTimeout):
		s.t.Fatalf("browsertest: %s: no answer after %v", method, callTimeout)
	}
}

// Navigate loads url in the page; it returns once the navigation has
// started, not when the page is done.
func (s *Session) Navigate(url string) {
	s.t.Helper()
	var r struct {
		ErrorText string `json:"errorText"`
	}
	s.call("Page.navigate", map[string]any{"url": url}, &r)
	if r.ErrorText != "" {
		s.t.Fatalf("browsertest: navigate to %s: %s", url, r.ErrorText)
	}
}

// Eval evaluates a JavaScript expression in the page, awaiting it if it
// is a promise, and decodes its value, which must be JSON, into out (nil:
// ignore it). A thrown exception fails the test.
func (s *Session) Eval(expr string, out any) {
	s.t.Helper()
	var r struct {
		Result struct {
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		Exception *struct {
			Text      string `json:"text"`
			Exception struct {
				Description string `json:"description"`
			} `json:"exception"`
		} `json:"exceptionDetails"`
	}
	s.call("Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true, "awaitPromise": true}, &r)
	if r.Exception != nil {
		s.t.Fatalf("browsertest: %s: %s %s", expr, r.Exception.Text, r.Exception.Exception.Description)
	}
	if out != nil && len(r.Result.Value) > 0 {
		if err := json.Unmarshal(r.Result.Value, out); err != nil {
			s.t.Fatalf("browsertest: %s: value %.300s: %v", expr, r.Result.Value, err)
		}
	}
}

// WaitFor evaluates the boolean expression cond every 50 ms until it is
// true, and fails the test if it is not within timeout. A cond that throws
// (an element not there yet) counts as false.
func (s *Session) WaitFor(cond string, timeout time.Duration) {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		var ok bool
		s.Eval("(() => { try { return !!("+cond+"); } catch (e) { return false; } })()", &ok)
		if ok {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("browsertest: %s not true after %v", cond, timeout)
		}
		<-tick.C
	}
}

// Timing is how a page behaved while it loaded, read from the page's own
// clock (since the navigation started) and its long tasks: stretches of
// 50 ms or more in which its main thread could answer nothing, not a click,
// not a key.
type Timing struct {
	// Ready is when the ready condition first held: the page shows what
	// it is for.
	Ready time.Duration
	// Interactive is the time to interactive: Ready, or the end of the
	// last long task after it, whichever is later, once the page then ran
	// for the quiet period without another.
	Interactive time.Duration
	// LongTasks counts the long tasks until then; LongestTask is the
	// longest, and Blocking the total blocking time (each long task's time
	// beyond 50 ms).
	LongTasks   int
	LongestTask time.Duration
	Blocking    time.Duration
	// Marks holds when each of the marks passed to Measure first held.
	Marks map[string]time.Duration
}

func (t Timing) String() string {
	ms := func(d time.Duration) string { return fmt.Sprintf("%.1f s", d.Seconds()) }
	marks := ""
	for name, at := range t.Marks {
		marks += fmt.Sprintf("%s %s, ", name, ms(at))
	}
	return fmt.Sprintf("%sready %s, interactive %s; %d long tasks, longest %s, total blocking %s",
		marks, ms(t.Ready), ms(t.Interactive), t.LongTasks, ms(t.LongestTask), ms(t.Blocking))
}

// observeLongTasks runs in the page before its own scripts and keeps every
// long task the browser reports.
const observeLongTasks = `window.__longTasks = [];
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) window.__longTasks.push([e.startTime, e.duration]);
}).observe({ type: 'longtask', buffered: true });`

// Measure loads url and waits until the expression ready is true and the
// page has then run for quiet without a long task, or fails the test after
// limit. It returns the page's timing, with when each expression of marks
// first held (each must before ready does).
func (s *Session) Measure(url, ready string, marks map[string]string, quiet, limit time.Duration) Timing {
	s.t.Helper()
	s.call("Page.enable", map[string]any{}, nil)
	s.call("Page.addScriptToEvaluateOnNewDocument", map[string]any{"source": observeLongTasks}, nil)
	s.Navigate(url)
	deadline := time.Now().Add(limit)
	ms := func(f float64) time.Duration { return time.Duration(f * float64(time.Millisecond)) }
	var timing Timing
	seen := map[string]time.Duration{}
	readyAt := -1.0
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		var state struct {
			Now   float64         `json:"now"`
			Ready bool            `json:"ready"`
			Marks map[string]bool `json:"marks"`
			Tasks [][2]float64    `json:"tasks"`
		}
		js := `(() => { const held = (f) => { try { return !!f(); } catch (e) { return false; } }; return {now: performance.now(), ` +
			`ready: held(() => (` + ready + `)), tasks: window.__longTasks || [], marks: {`
		for name, cond := range marks {
			js += fmt.Sprintf("%q: held(() => (%s)), ", name, cond)
		}
		s.Eval(js+`}}; })()`, &state)
		for name, ok := range state.Marks {
			if _, done := seen[name]; ok && !done {
				seen[name] = ms(state.Now)
			}
		}
		if state.Ready && readyAt < 0 {
			readyAt = state.Now
		}
		if readyAt >= 0 {
			end := readyAt
			timing = Timing{Ready: ms(readyAt), LongTasks: len(state.Tasks), Marks: seen}
			for _, task := range state.Tasks {
				end = max(end, task[0]+task[1])
				timing.LongestTask = max(timing.LongestTask, ms(task[1]))
				timing.Blocking += ms(max(task[1]-50, 0))
			}
			timing.Interactive = ms(end)
			if state.Now-end >= float64(quiet.Milliseconds()) {
				return timing
			}
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("browsertest: %s: not ready and quiet after %v (ready at %v ms): %v", url, limit, readyAt, timing)
		}
		<-tick.C
	}
}

// lockedBuffer is Chromium's stderr, written by exec's copying goroutine
// while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// ConsoleProblems returns the uncaught errors and Content Security Policy
// violations the browser logged so far (see Page.Problems).
func (s *Session) ConsoleProblems() []string {
	return Page{Console: consoleMessages([]byte(s.stderr.String()))}.Problems()
}
