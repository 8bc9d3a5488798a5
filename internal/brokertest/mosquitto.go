package brokertest

import (
	"bytes"
	"errors"
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

// Mosquitto is a private Mosquitto process a test or a program controls:
// it can be stopped, killed and started again on the same port, and
// configured (TLS listeners, queue limits, persistence) without touching the
// machine's own broker.
type Mosquitto struct {
	bin   string
	dir   string
	conf  string
	ports []int // of every listener, the first being Port's
	Port  int

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has ended
	log    bytes.Buffer
}

// MosquittoBinary returns the path of the mosquitto program. Without one,
// the test is skipped, unless CI=true, where it fails: CI must test against
// the real broker.
func MosquittoBinary(t testing.TB) string {
	t.Helper()
	if path, err := LookMosquitto(); err == nil {
		return path
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("mosquitto is not installed (apt-get install mosquitto)")
	}
	t.Skip("mosquitto is not installed")
	return ""
}

// LookMosquitto returns the path of the mosquitto program, which Debian
// installs outside a user's PATH.
func LookMosquitto() (string, error) {
	for _, p := range []string{"mosquitto", "/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"} {
		if path, err := exec.LookPath(p); err == nil {
			return path, nil
		}
	}
	return "", errors.New("mosquitto is not installed (apt-get install mosquitto)")
}

// StartMosquitto starts a private broker for a test, in a temporary
// directory with persistence and notices (connections) in its log, and
// kills it when the test ends (printing its log if the test failed). extra
// is as for RunMosquitto.
func StartMosquitto(t testing.TB, extra string) *Mosquitto {
	t.Helper()
	m, err := RunMosquitto(MosquittoBinary(t), t.TempDir(), "persistence true\npersistence_location {{dir}}/\nlog_type notice\n"+extra)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		m.Kill()
		if t.Failed() {
			t.Logf("mosquitto log:\n%s", m.Log())
		}
	})
	return m
}

// RunMosquitto starts the mosquitto program bin with its configuration in
// dir, on a free loopback port, and waits until every listener of the
// configuration accepts connections. It returns an error rather than
// failing a test: the soak run and the load tool start their brokers with
// it too. The configuration is a plain listener with anonymous access, no
// limit on queued messages (the default drops messages for a subscriber that
// falls behind) and a log of errors and warnings that Log returns, followed
// by extra, which may
// replace the listener or the log destination (use {{port}} and {{dir}} in
// it). Stop or Kill it when done.
func RunMosquitto(bin, dir, extra string) (*Mosquitto, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("mosquitto: a free port: %w", err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	conf := "allow_anonymous true\nmax_queued_messages 0\n"
	if !strings.Contains(extra, "listener") {
		conf = "listener {{port}} 127.0.0.1\n" + conf
	}
	if !strings.Contains(extra, "log_dest") {
		conf += "log_dest stderr\n"
	}
	conf += "log_type error\nlog_type warning\n"
	if os.Geteuid() == 0 {
		conf += "user root\n" // else Mosquitto drops to a user that cannot write dir
	}
	conf += extra + "\n"
	conf = strings.ReplaceAll(conf, "{{port}}", strconv.Itoa(port))
	conf = strings.ReplaceAll(conf, "{{dir}}", dir)
	path := filepath.Join(dir, "mosquitto.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		return nil, fmt.Errorf("mosquitto: %w", err)
	}
	m := &Mosquitto{bin: bin, dir: dir, conf: path, Port: port}
	for _, line := range strings.Split(conf, "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "listener" {
			if p, err := strconv.Atoi(f[1]); err == nil {
				m.ports = append(m.ports, p)
			}
		}
	}
	return m, m.Restart()
}

// Dir returns the broker's directory (its configuration and persistence).
func (m *Mosquitto) Dir() string { return m.dir }

// URL returns the broker's plain TCP URL.
func (m *Mosquitto) URL() string { return fmt.Sprintf("tcp://127.0.0.1:%d", m.Port) }

// Addr returns host:port.
func (m *Mosquitto) Addr() string { return fmt.Sprintf("127.0.0.1:%d", m.Port) }

// Restart starts the broker again after Stop or Kill, on the same ports
// and with the same persistence, and waits until every listener accepts
// connections.
func (m *Mosquitto) Restart() error {
	m.mu.Lock()
	cmd := exec.Command(m.bin, "-c", m.conf)
	cmd.Stdout = &lockedWriter{m: &m.mu, w: &m.log}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		m.mu.Unlock()
		return fmt.Errorf("start mosquitto: %w", err)
	}
	exited := make(chan struct{})
	m.cmd, m.exited = cmd, exited
	m.mu.Unlock()
	go func() {
		cmd.Wait()
		close(exited)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for _, port := range m.ports {
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		for {
			c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
			if err == nil {
				c.Close()
				break
			}
			select {
			case <-exited:
				m.Kill()
				return fmt.Errorf("mosquitto exited (%v):\n%s", cmd.ProcessState, m.Log())
			default:
			}
			if time.Now().After(deadline) {
				m.Kill()
				return fmt.Errorf("mosquitto did not start listening on %d:\n%s", port, m.Log())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return nil
}

// PID returns the broker's process id, 0 while it is stopped.
func (m *Mosquitto) PID() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd == nil {
		return 0
	}
	return m.cmd.Process.Pid
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
	cmd, exited := m.cmd, m.exited
	m.cmd = nil
	m.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Signal(syscall.SIGCONT)
	cmd.Process.Signal(sig)
	<-exited
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
