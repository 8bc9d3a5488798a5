package brokertest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// NATS is a private nats-server with JetStream and its MQTT listener,
// which a test can stop and start again with the same storage (retained
// messages and persistent sessions live in JetStream).
type NATS struct {
	*Process
	Port       int // MQTT
	ClientPort int // NATS protocol
	dir        string
}

// NATSAckWait is how long the private server waits for a client to
// acknowledge a QoS 1 message before it sends it again (mqtt { ack_wait },
// 30s by default). nats-server 2.9.10 hands a message published moments
// after a persistent session disconnected to the closing connection (5 of
// 40 tries here, none of 40 published 500 ms later), so the client gets it
// only when it is sent again, 30 s after, although it is back at once. The
// tests of persistent sessions would wait that long.
const NATSAckWait = 2 * time.Second

// LookNATS returns the path of the nats-server program, which Debian
// installs outside a user's PATH.
func LookNATS() (string, error) {
	return lookProgram("nats-server is not installed (apt-get install nats-server)",
		"nats-server", "/usr/sbin/nats-server", "/usr/local/bin/nats-server")
}

// NATSBinary returns the path of nats-server. Without one the test is
// skipped, unless CI=true, where it fails.
func NATSBinary(t testing.TB) string {
	t.Helper()
	path, err := LookNATS()
	if err == nil {
		return path
	}
	if os.Getenv("CI") == "true" {
		t.Fatal(err)
	}
	t.Skip(err)
	return ""
}

// StartNATS starts a private nats-server for a test and kills it when the
// test ends, printing its log if the test failed.
func StartNATS(t testing.TB) *NATS {
	t.Helper()
	n, err := RunNATS(NATSBinary(t), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		n.Kill()
		if t.Failed() {
			t.Logf("nats-server log:\n%s", n.Log())
		}
	})
	return n
}

// RunNATS starts the nats-server program bin with its configuration and
// JetStream storage in dir, its NATS and MQTT listeners on free loopback
// ports, and waits until it accepts an MQTT session. It returns an error
// rather than failing a test. Stop or Kill it when done.
func RunNATS(bin, dir string) (*NATS, error) {
	ports, err := freePorts(2)
	if err != nil {
		return nil, fmt.Errorf("nats-server: %w", err)
	}
	n := &NATS{Port: ports[0], ClientPort: ports[1], dir: dir}
	// MQTT needs JetStream, and JetStream a server name. ack_wait is
	// NATSAckWait, not the default 30s: see there.
	conf := fmt.Sprintf("server_name: brokertest\nlisten: 127.0.0.1:%d\njetstream {\n  store_dir: %q\n}\nmqtt {\n  listen: 127.0.0.1:%d\n  ack_wait: %q\n}\n",
		n.ClientPort, filepath.Join(dir, "jetstream"), n.Port, NATSAckWait.String())
	path := filepath.Join(dir, "nats.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		return nil, fmt.Errorf("nats-server: %w", err)
	}
	n.Process = &Process{
		name:     "nats-server",
		command:  func() *exec.Cmd { return exec.Command(bin, "-c", path) },
		mqtt:     n.Addr(),
		start:    30 * time.Second,
		stopSig:  syscall.SIGTERM,
		deathSig: syscall.SIGKILL,
	}
	return n, n.Restart()
}

// Dir returns the server's directory (its configuration and storage).
func (n *NATS) Dir() string { return n.dir }

// URL returns the MQTT listener's URL.
func (n *NATS) URL() string { return fmt.Sprintf("tcp://127.0.0.1:%d", n.Port) }

// Addr returns the MQTT listener's host:port.
func (n *NATS) Addr() string { return fmt.Sprintf("127.0.0.1:%d", n.Port) }
