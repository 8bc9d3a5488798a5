package brokertest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Mosquitto is a private Mosquitto process a test controls: it can be
// stopped, killed and started again on the same port, and configured (TLS
// listeners, queue limits) without touching the machine's own broker.
type Mosquitto struct {
	t    testing.TB
	bin  string
	dir  string
	conf string
	Port int

	mu  sync.Mutex
	cmd *exec.Cmd
	log bytes.Buffer
}

// MosquittoBinary returns the path of the mosquitto program. Without one,
// the test is skipped, unless CI=true, where it fails: CI must test against
// the real broker.
func MosquittoBinary(t testing.TB) string {
	t.Helper()
	for _, p := range []string{"mosquitto", "/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("mosquitto is not installed (apt-get install mosquitto)")
	}
	t.Skip("mosquitto is not installed")
	return ""
}

// StartMosquitto starts a private broker on a free loopback port. Its
// configuration is a plain listener with anonymous access, persistence in a
// temporary directory and no limit on queued messages, followed by extra
// (which may replace the listener: use {{port}} and {{dir}} in it). It is
// stopped when the test ends.
func StartMosquitto(t testing.TB, extra string) *Mosquitto {
	t.Helper()
	bin := MosquittoBinary(t)
	dir := t.TempDir()
	port := FreePort(t)
	conf := "allow_anonymous true\npersistence true\npersistence_location {{dir}}/\n" +
		"max_queued_messages 0\nlog_dest stderr\nlog_type error\nlog_type warning\nlog_type notice\nuser root\n"
	if !strings.Contains(extra, "listener") {
		conf = "listener {{port}} 127.0.0.1\n" + conf
	}
	conf += extra + "\n"
	conf = strings.ReplaceAll(conf, "{{port}}", strconv.Itoa(port))
	conf = strings.ReplaceAll(conf, "{{dir}}", dir)
	path := filepath.Join(dir, "mosquitto.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	m := &Mosquitto{t: t, bin: bin, dir: dir, conf: path, Port: port}
	m.Start()
	t.Cleanup(func() {
		m.Kill()
		if t.Failed() {
			t.Logf("mosquitto log:\n%s", m.Log())
		}
	})
	return m
}

// Dir returns the broker's directory (its configuration and persistence).
func (m *Mosquitto) Dir() string { return m.dir }

// URL returns the broker's plain TCP URL.
func (m *Mosquitto) URL() string { return fmt.Sprintf("tcp://127.0.0.1:%d", m.Port) }

// Addr returns host:port.
func (m *Mosquitto) Addr() string { return fmt.Sprintf("127.0.0.1:%d", m.Port) }

// Start starts the broker (again) and waits until it accepts connections.
func (m *Mosquitto) Start() {
	m.t.Helper()
	m.mu.Lock()
	cmd := exec.Command(m.bin, "-c", m.conf)
	cmd.Stdout = &lockedWriter{m: &m.mu, w: &m.log}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		m.mu.Unlock()
		m.t.Fatalf("start mosquitto: %v", err)
	}
	m.cmd = cmd
	m.mu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", m.Addr(), 200*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	m.t.Fatalf("mosquitto did not start listening on %d:\n%s", m.Port, m.Log())
}

// Stop ends the broker with SIGTERM (it saves its state) and waits.
func (m *Mosquitto) Stop() { m.signal(syscall.SIGTERM) }

// Kill ends the broker with SIGKILL and waits.
func (m *Mosquitto) Kill() { m.signal(syscall.SIGKILL) }

// Pause freezes the broker with SIGSTOP: connections stay open but nothing
// moves, like a broker stuck on a full disk. Resume undoes it.
func (m *Mosquitto) Pause() { m.mu.Lock(); m.cmd.Process.Signal(syscall.SIGSTOP); m.mu.Unlock() }

// Resume undoes Pause.
func (m *Mosquitto) Resume() { m.mu.Lock(); m.cmd.Process.Signal(syscall.SIGCONT); m.mu.Unlock() }

func (m *Mosquitto) signal(sig syscall.Signal) {
	m.mu.Lock()
	cmd := m.cmd
	m.cmd = nil
	m.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Signal(syscall.SIGCONT)
	cmd.Process.Signal(sig)
	cmd.Wait()
}

// Log returns what the broker has logged.
func (m *Mosquitto) Log() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.log.String()
}

type lockedWriter struct {
	m *sync.Mutex
	w *bytes.Buffer
}

func (w *lockedWriter) Write(b []byte) (int, error) {
	w.m.Lock()
	defer w.m.Unlock()
	return w.w.Write(b)
}

// FreePort returns a loopback port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// Eventually reports whether cond comes to hold within timeout, checking it
// every few milliseconds: for states that signal no change.
func Eventually(timeout time.Duration, cond func() bool) bool {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(timeout)
	for !cond() {
		select {
		case <-tick.C:
		case <-deadline:
			return false
		}
	}
	return true
}
