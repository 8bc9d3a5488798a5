package brokertest

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// RabbitMQ is a private RabbitMQ node with the MQTT plugin, which a test
// can stop and start again with the same database (retained messages and
// persistent sessions survive). It is a node of its own (its own name,
// ports, cookie and directories), so the machine's RabbitMQ is never
// touched; only epmd, the Erlang port mapper on 4369, is shared, as it is
// by every Erlang node on a machine. The node is stopped with signals,
// never with rabbitmqctl, so no command can reach another node.
type RabbitMQ struct {
	*Process
	Port     int    // MQTT
	AMQPPort int    // AMQP 0-9-1
	Node     string // the Erlang node name, t<random>@localhost
	dir      string
}

// LookRabbitMQ returns the path of the rabbitmq-server script that runs a
// node in the foreground as the calling user. Debian's
// /usr/sbin/rabbitmq-server is not it: that wrapper switches to the
// rabbitmq user and writes to /var/log/rabbitmq.
func LookRabbitMQ() (string, error) {
	const missing = "rabbitmq-server is not installed (apt-get install rabbitmq-server)"
	if path, err := lookProgram(missing, "/usr/lib/rabbitmq/bin/rabbitmq-server"); err == nil {
		return path, nil
	}
	path, err := lookProgram(missing, "rabbitmq-server")
	if err != nil {
		return "", err
	}
	if real, err := filepath.EvalSymlinks(path); err == nil && strings.HasSuffix(real, "rabbitmq-script-wrapper") {
		return "", fmt.Errorf("%s is the system wrapper, not a script that runs a private node", path)
	}
	return path, nil
}

// RabbitMQBinary returns the path of rabbitmq-server (see LookRabbitMQ).
// Without one the test is skipped, unless CI=true, where it fails.
func RabbitMQBinary(t testing.TB) string {
	t.Helper()
	path, err := LookRabbitMQ()
	if err == nil {
		return path
	}
	if os.Getenv("CI") == "true" {
		t.Fatal(err)
	}
	t.Skip(err)
	return ""
}

// StartRabbitMQ starts a private RabbitMQ node for a test and kills it
// when the test ends, printing its log if the test failed. A node takes
// seconds to start (8 s warm, up to 30 s for a first start on a busy
// machine): tests share one where they can.
func StartRabbitMQ(t testing.TB) *RabbitMQ {
	t.Helper()
	r, err := RunRabbitMQ(RabbitMQBinary(t), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		r.Kill()
		if t.Failed() {
			t.Logf("rabbitmq log:\n%s", r.Log())
		}
	})
	return r
}

// RunRabbitMQ starts a RabbitMQ node with the rabbitmq_mqtt plugin (and no
// other) through the rabbitmq-server script bin, with its configuration,
// database and cookie in dir, its AMQP, MQTT and distribution listeners on
// free loopback ports, and waits until it accepts an MQTT session (as
// guest, which RabbitMQ allows from loopback). It returns an error rather
// than failing a test. Stop or Kill it when done.
func RunRabbitMQ(bin, dir string) (*RabbitMQ, error) {
	ports, err := freePorts(3)
	if err != nil {
		return nil, fmt.Errorf("rabbitmq: %w", err)
	}
	var b [4]byte
	rand.Read(b[:])
	r := &RabbitMQ{Port: ports[0], AMQPPort: ports[1], Node: "t" + hex.EncodeToString(b[:]) + "@localhost", dir: dir}
	files := map[string]string{
		"rabbitmq.conf": fmt.Sprintf("mqtt.listeners.tcp.default = 127.0.0.1:%d\n"+
			"log.file = false\nlog.console = true\nlog.console.level = notice\n", r.Port),
		"enabled_plugins": "[rabbitmq_mqtt].\n",
		// Read instead of /etc/rabbitmq/rabbitmq-env.conf, which names the
		// machine's node.
		"rabbitmq-env.conf": "",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			return nil, fmt.Errorf("rabbitmq: %w", err)
		}
	}
	env := append(environ("RABBITMQ_", "ERL_", "HOME="),
		"HOME="+dir, // the Erlang cookie
		// As under systemd, the script then runs the VM in its own place
		// instead of as a child, so the VM is the process we started: our
		// signals and the kernel's reach it, and we reap it. Nothing
		// listens on the socket; RabbitMQ's notices to it go nowhere.
		"NOTIFY_SOCKET="+filepath.Join(dir, "notify"),
		"RABBITMQ_CONF_ENV_FILE="+filepath.Join(dir, "rabbitmq-env.conf"),
		"RABBITMQ_NODENAME="+r.Node,
		"RABBITMQ_NODE_IP_ADDRESS=127.0.0.1",
		"RABBITMQ_NODE_PORT="+strconv.Itoa(r.AMQPPort),
		"RABBITMQ_DIST_PORT="+strconv.Itoa(ports[2]),
		"RABBITMQ_CONFIG_FILE="+filepath.Join(dir, "rabbitmq.conf"),
		"RABBITMQ_ENABLED_PLUGINS_FILE="+filepath.Join(dir, "enabled_plugins"),
		"RABBITMQ_MNESIA_BASE="+filepath.Join(dir, "mnesia"),
		"RABBITMQ_LOG_BASE="+filepath.Join(dir, "log"),
		"ERL_EPMD_ADDRESS=127.0.0.1",
		"ERL_FLAGS=-kernel inet_dist_use_interface {127,0,0,1}",
	)
	r.Process = &Process{
		name: "rabbitmq",
		command: func() *exec.Cmd {
			cmd := exec.Command(bin)
			cmd.Dir, cmd.Env = dir, env
			return cmd
		},
		mqtt:     r.Addr(),
		start:    2 * time.Minute,
		stopSig:  syscall.SIGTERM, // the VM stops RabbitMQ gracefully
		deathSig: syscall.SIGKILL,
	}
	return r, r.Restart()
}

// Dir returns the node's directory (configuration, database, cookie).
func (r *RabbitMQ) Dir() string { return r.dir }

// URL returns the MQTT listener's URL.
func (r *RabbitMQ) URL() string { return fmt.Sprintf("tcp://127.0.0.1:%d", r.Port) }

// Addr returns the MQTT listener's host:port.
func (r *RabbitMQ) Addr() string { return fmt.Sprintf("127.0.0.1:%d", r.Port) }
