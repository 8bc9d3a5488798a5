package brokertest

import (
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
)

// TestRunMosquittoErrors: a broker that cannot start is an error to
// return, not a test to fail, so programs can start theirs with it.
func TestRunMosquittoErrors(t *testing.T) {
	if _, err := RunMosquitto(filepath.Join(t.TempDir(), "no-mosquitto"), t.TempDir(), ""); err == nil {
		t.Error("RunMosquitto with no program: no error")
	}
	bin := MosquittoBinary(t)
	m, err := RunMosquitto(bin, t.TempDir(), "no_such_option 1")
	if err == nil {
		m.Kill()
		t.Fatal("RunMosquitto with a bad configuration: no error")
	}
	if !strings.Contains(err.Error(), "mosquitto") {
		t.Errorf("error %q does not name mosquitto", err)
	}
}

// TestRunMosquittoWaitsForEveryListener: once RunMosquitto and Restart
// return, every listener of the configuration accepts connections.
func TestRunMosquittoWaitsForEveryListener(t *testing.T) {
	bin := MosquittoBinary(t)
	second := FreePort(t)
	m, err := RunMosquitto(bin, t.TempDir(), fmt.Sprintf("listener {{port}} 127.0.0.1\nlistener %d 127.0.0.1", second))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Kill()
	dial := func() {
		t.Helper()
		for _, addr := range []string{m.Addr(), fmt.Sprintf("127.0.0.1:%d", second)} {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatalf("%s: %v", addr, err)
			}
			c.Close()
		}
	}
	dial()
	pid := m.PID()
	m.Stop()
	if m.PID() != 0 {
		t.Error("PID of a stopped broker is not 0")
	}
	if err := m.Restart(); err != nil {
		t.Fatal(err)
	}
	dial()
	if m.PID() == 0 || m.PID() == pid {
		t.Errorf("PID after Restart = %d (was %d)", m.PID(), pid)
	}
}
