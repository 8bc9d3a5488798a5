package brokertest

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Process is a broker program a test started (NATS, RabbitMQ): it can be
// stopped, killed and started again with the same command, so on the same
// ports and with the same storage. It runs in a process group of its own,
// so Kill takes every process it started with it, and it is killed by the
// kernel if the test binary dies first (no broker outlives a test run).
type Process struct {
	name    string           // the program, for errors
	command func() *exec.Cmd // builds the command for each start
	mqtt    string           // host:port of its MQTT listener
	start   time.Duration    // how long a start may take
	// stopSig ends the program gracefully; deathSig is what the kernel
	// sends it when the test binary dies.
	stopSig, deathSig syscall.Signal

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has ended
	log    bytes.Buffer
	took   time.Duration // the last start
}

// Restart starts the program again after Stop or Kill (RunNATS and
// RunRabbitMQ start it the first time) and waits until its MQTT listener
// accepts a session.
func (p *Process) Restart() error {
	p.mu.Lock()
	if p.cmd != nil {
		p.mu.Unlock()
		return fmt.Errorf("%s: already running", p.name)
	}
	cmd := p.command()
	cmd.Stdout = &lockedWriter{m: &p.mu, w: &p.log}
	cmd.Stderr = cmd.Stdout
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: p.deathSig}
	began := time.Now()
	if err := cmd.Start(); err != nil {
		p.mu.Unlock()
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	exited := make(chan struct{})
	p.cmd, p.exited = cmd, exited
	p.mu.Unlock()
	go func() {
		cmd.Wait()
		close(exited)
	}()

	deadline := time.After(p.start)
	for {
		err := mqttConnect(p.mqtt)
		if err == nil {
			break
		}
		select {
		case <-exited:
			p.Kill()
			return fmt.Errorf("%s exited (%v):\n%s", p.name, cmd.ProcessState, p.Log())
		case <-deadline:
			p.Kill()
			return fmt.Errorf("%s: no MQTT session on %s after %s (%v):\n%s", p.name, p.mqtt, p.start, err, p.Log())
		case <-time.After(50 * time.Millisecond):
		}
	}
	p.mu.Lock()
	p.took = time.Since(began)
	p.mu.Unlock()
	return nil
}

// StartTook returns how long the last start took, until the broker
// accepted an MQTT session.
func (p *Process) StartTook() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.took
}

// PID returns the program's process id, 0 while it is stopped.
func (p *Process) PID() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// Stop ends the program gracefully (it saves its state) and waits; after
// 30 s it is killed.
func (p *Process) Stop() {
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Signal(p.stopSig)
	select {
	case <-exited:
		p.mu.Lock()
		p.cmd = nil
		p.mu.Unlock()
	case <-time.After(30 * time.Second):
		fmt.Fprintf(&lockedWriter{m: &p.mu, w: &p.log}, "brokertest: %s did not stop in 30s: killed\n", p.name)
		p.Kill()
	}
}

// Kill ends the program and every process it started with SIGKILL, and
// waits.
func (p *Process) Kill() {
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.cmd = nil
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	// The whole group: the Erlang VM has helper processes. The kernel
	// gives no process the group's id while one of its members lives, so
	// this reaches no stranger even if the leader has ended.
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	<-exited
}

// Log returns what the program has written to its output.
func (p *Process) Log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}

// mqttConnect opens an MQTT 3.1.1 session on addr and closes it again: a
// broker that answers CONNECT with an accepting CONNACK takes clients. A
// listening port alone says less: RabbitMQ opens its MQTT port before it
// can authenticate anyone.
func mqttConnect(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	var b [6]byte
	rand.Read(b[:])
	id := "brokertest-probe-" + hex.EncodeToString(b[:])
	var pkt []byte
	pkt = append(pkt, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x02, 0x00, 0x0a) // MQTT 3.1.1, clean session, keep alive 10 s
	pkt = append(pkt, 0x00, byte(len(id)))
	pkt = append(pkt, id...)
	pkt = append([]byte{0x10, byte(len(pkt))}, pkt...)
	if _, err := c.Write(pkt); err != nil {
		return err
	}
	var ack [4]byte
	if _, err := io.ReadFull(c, ack[:]); err != nil {
		return err
	}
	if ack[0] != 0x20 || ack[1] != 0x02 {
		return fmt.Errorf("not a CONNACK: % x", ack)
	}
	if ack[3] != 0 {
		return fmt.Errorf("CONNACK refuses the session: return code %d", ack[3])
	}
	c.Write([]byte{0xe0, 0x00}) // DISCONNECT
	return nil
}

// freePorts returns n distinct loopback ports that were free a moment ago.
func freePorts(n int) ([]int, error) {
	var ports []int
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("a free port: %w", err)
		}
		defer ln.Close()
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// environ returns the test's environment without the variables whose names
// start with one of prefixes, so a program run with it reads no settings
// meant for another instance.
func environ(prefixes ...string) []string {
	var env []string
next:
	for _, kv := range os.Environ() {
		for _, p := range prefixes {
			if strings.HasPrefix(kv, p) {
				continue next
			}
		}
		env = append(env, kv)
	}
	return env
}

// lookProgram returns the first of paths that is an executable program.
func lookProgram(what string, paths ...string) (string, error) {
	for _, p := range paths {
		if path, err := exec.LookPath(p); err == nil {
			return path, nil
		}
	}
	return "", errors.New(what)
}
