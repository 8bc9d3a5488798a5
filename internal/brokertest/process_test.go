package brokertest

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// inGroups returns the ids of the live processes whose process group is
// one of pgids (a Process starts each run as the leader of its own group).
// Zombies are not counted: they are already dead, only not yet reaped by a
// parent outside the test's reach.
func inGroups(t *testing.T, pgids []int) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue // ended meanwhile
		}
		// pid (comm) state ppid pgrp ...: comm may hold spaces and
		// parentheses, so the fields are counted after its last ')'.
		s := string(b)
		fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(fields) < 3 || fields[0] == "Z" {
			continue
		}
		if pgrp, err := strconv.Atoi(fields[2]); err == nil && slices.Contains(pgids, pgrp) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// server is what the tests below need of NATS and RabbitMQ.
type server interface {
	URL() string
	PID() int
	Stop()
	Kill()
	Restart() error
	StartTook() time.Duration
}

// checkServer: the broker takes an MQTT client, keeps a retained message
// across a graceful restart, and when killed leaves no process behind: no
// live process is left in the process groups of its runs. (Counting every
// process of the program's name would also count the machine's own broker
// and those other tests start at the same time.)
func checkServer(t *testing.T, s server, exact bool) {
	t.Helper()
	t.Logf("started in %s", s.StartTook())
	pid := s.PID()
	if pid == 0 || pid == os.Getpid() {
		t.Fatalf("PID %d", pid)
	}
	topic := "brokertest/retained"
	publish(t, s.URL(), topic, "kept")
	s.Stop()
	if s.PID() != 0 {
		t.Error("PID of a stopped broker is not 0")
	}
	if err := s.Restart(); err != nil {
		t.Fatal(err)
	}
	t.Logf("started again in %s", s.StartTook())
	if s.PID() == 0 || s.PID() == pid {
		t.Errorf("PID after Restart = %d (was %d)", s.PID(), pid)
	}
	// RabbitMQ 3.10 sends retained messages to exact subscriptions only.
	filter := "brokertest/#"
	if exact {
		filter = topic
	}
	if got := retained(t, s.URL(), filter); got != "kept" {
		t.Errorf("retained message after a restart = %q, want %q", got, "kept")
	}
	groups := []int{pid, s.PID()}
	if left := inGroups(t, groups); len(left) == 0 {
		t.Errorf("no process in the groups %v of a running broker: the check below could not fail", groups)
	}
	s.Kill()
	// SIGKILL reaches the whole group at once, but members other than
	// the leader Kill waits for may take a moment to die.
	var left []int
	if !Eventually(10*time.Second, func() bool { left = inGroups(t, groups); return len(left) == 0 }) {
		t.Errorf("processes left in the groups %v after Kill: %v", groups, left)
	}
}

func publish(t *testing.T, url, topic, payload string) {
	t.Helper()
	c := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID(ClientID(t)))
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect to %s: %v", url, tok.Error())
	}
	defer c.Disconnect(100)
	if tok := c.Publish(topic, 1, true, payload); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publish: %v", tok.Error())
	}
}

// retained returns the retained message a fresh subscription to filter
// gets.
func retained(t *testing.T, url, filter string) string {
	t.Helper()
	got := make(chan string, 1)
	c := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID(ClientID(t)))
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect to %s: %v", url, tok.Error())
	}
	defer c.Disconnect(100)
	tok := c.Subscribe(filter, 1, func(_ paho.Client, m paho.Message) {
		if m.Retained() {
			select {
			case got <- string(m.Payload()):
			default:
			}
		}
	})
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe %s: %v", filter, tok.Error())
	}
	select {
	case p := <-got:
		return p
	case <-time.After(10 * time.Second):
		return ""
	}
}

func TestNATS(t *testing.T) {
	bin := NATSBinary(t)
	n, err := RunNATS(bin, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer n.Kill()
	checkServer(t, n, false)
}

func TestRabbitMQ(t *testing.T) {
	if testing.Short() {
		t.Skip("a RabbitMQ node takes seconds to start")
	}
	bin := RabbitMQBinary(t)
	r, err := RunRabbitMQ(bin, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		r.Kill()
		if t.Failed() {
			t.Logf("rabbitmq log:\n%s", r.Log())
		}
	}()
	if !strings.HasPrefix(r.Node, "t") || !strings.HasSuffix(r.Node, "@localhost") {
		t.Errorf("node name %q", r.Node)
	}
	checkServer(t, r, true)
}

// TestRunErrors: a broker that cannot start is an error to return, not a
// test to fail, so programs can start theirs with it.
func TestRunErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing")
	if _, err := RunNATS(missing, t.TempDir()); err == nil || !strings.Contains(err.Error(), "nats-server") {
		t.Errorf("RunNATS with no program: %v", err)
	}
	if _, err := RunRabbitMQ(missing, t.TempDir()); err == nil || !strings.Contains(err.Error(), "rabbitmq") {
		t.Errorf("RunRabbitMQ with no program: %v", err)
	}
	// A program that ends at once: the error says so and carries its
	// output.
	script := filepath.Join(t.TempDir(), "broken")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho cannot start >&2\nexit 3\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	_, err := RunNATS(script, t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "exited") || !strings.Contains(err.Error(), "cannot start") {
		t.Errorf("RunNATS with a program that exits: %v", err)
	}
}
