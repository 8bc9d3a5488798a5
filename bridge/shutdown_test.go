package bridge_test

// Shutdown of the real program: the exlive2mqtt binary, built once, run
// against the simulated platform and a broker, and sent SIGTERM.

import (
	"context"
	"net/url"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/exlive2mqtt/exlive2mqtt/exlive"
	"github.com/exlive2mqtt/exlive2mqtt/exlive/exlivesim"
	"github.com/exlive2mqtt/exlive2mqtt/internal/brokertest"
)

// ctExitWithin is the promise of docs/reliability.md ("Stopping"): SIGTERM
// to exit in less than 10 s.
const ctExitWithin = 10 * time.Second

func TestShutdownOnSIGTERM(t *testing.T) {
	bin := buildCommand(t, "github.com/exlive2mqtt/exlive2mqtt/cmd/exlive2mqtt")
	// Every case runs in parallel: one of them waits out most of the stop
	// timeout on purpose.
	for _, target := range brokertest.Targets(t) {
		t.Run(target.Name+"/clean", func(t *testing.T) {
			t.Parallel()
			sim := ctSim(t)
			prefix := brokertest.Prefix(t)
			sub := brokertest.Subscribe(t, target.URL, prefix+"/#")
			p := ctRun(t, bin, ctEnv(sim.Addr(), target.URL, prefix))
			sub.Wait(testWait, "logged_in", func(ms []brokertest.Msg) bool {
				m, ok := last(ms, prefix+"/bridge/session")
				return ok && strings.Contains(m.Payload, `"state":"logged_in"`)
			})
			// A position reaches the bridge, which hands it to its MQTT
			// client (the debug line says so); the signal follows at once.
			sim.SendRaw(rawPosition(map[string]string{"id": "V1", "lat": "31.2", "lng": "121.4", "posinfo": "just before SIGTERM"}))
			p.log.waitText(t, `"message":"position published"`)
			if code, took := p.term(t); code != 0 || took > ctExitWithin {
				t.Errorf("exit status %d after %s, want 0 within %s", code, took, ctExitWithin)
			}
			ctx, cancel := context.WithTimeout(context.Background(), testWait)
			defer cancel()
			if err := sim.WaitCount(ctx, exlive.CmdLogout, 1); err != nil {
				t.Errorf("platform received no 1001 logout: %v", err)
			}
			sub.Wait(testWait, "the position and offline", func(ms []brokertest.Msg) bool {
				m, ok := last(ms, prefix+"/bridge/state")
				pos, _ := last(ms, prefix+"/vehicles/V1/position")
				return ok && m.Payload == "offline" && strings.Contains(pos.Payload, "just before SIGTERM")
			})
			held := retained(t, target.URL, prefix+"/bridge/#")
			if m := held[prefix+"/bridge/state"]; m.Payload != "offline" {
				t.Errorf("retained state %q, want offline", m.Payload)
			}
			if m := held[prefix+"/bridge/session"]; !strings.Contains(m.Payload, `"state":"disconnected"`) {
				t.Errorf("retained session %q, want disconnected", m.Payload)
			}
		})
		t.Run(target.Name+"/broker back during stop", func(t *testing.T) {
			// The broker is away when the signal comes, with a position
			// queued; it is back within the stop timeout, and gets the
			// position and the offline state before the program exits.
			t.Parallel()
			u, err := url.Parse(target.URL)
			if err != nil {
				t.Fatal(err)
			}
			proxy := brokertest.NewProxy(t, u.Host)
			sim := ctSim(t)
			prefix := brokertest.Prefix(t)
			sub := brokertest.Subscribe(t, target.URL, prefix+"/#")
			p := ctRun(t, bin, append(ctEnv(sim.Addr(), proxy.URL(), prefix), "MQTT_RETRY_MAX=200ms"))
			sub.Wait(testWait, "logged_in", func(ms []brokertest.Msg) bool {
				m, ok := last(ms, prefix+"/bridge/session")
				return ok && strings.Contains(m.Payload, `"state":"logged_in"`)
			})
			proxy.SetDown(true)
			p.log.waitText(t, `"message":"broker connection lost"`)
			sim.SendRaw(rawPosition(map[string]string{"id": "V2", "lat": "31.2", "lng": "121.4", "posinfo": "queued at SIGTERM"}))
			p.log.waitText(t, `"message":"position published"`)
			done := make(chan struct{})
			go func() {
				defer close(done)
				p.log.await(`"state":"disconnected"`) // stopping: the session has logged out
				proxy.SetDown(false)
			}()
			if code, took := p.term(t); code != 0 || took > ctExitWithin {
				t.Errorf("exit status %d after %s, want 0 within %s", code, took, ctExitWithin)
			}
			<-done
			sub.Wait(testWait, "the queued position and offline", func(ms []brokertest.Msg) bool {
				m, ok := last(ms, prefix+"/bridge/state")
				pos, _ := last(ms, prefix+"/vehicles/V2/position")
				return ok && m.Payload == "offline" && strings.Contains(pos.Payload, "queued at SIGTERM")
			})
		})
		t.Run(target.Name+"/platform unreachable", func(t *testing.T) {
			t.Parallel()
			prefix := brokertest.Prefix(t)
			sub := brokertest.Subscribe(t, target.URL, prefix+"/#")
			p := ctRun(t, bin, ctEnv(closedAddr(t), target.URL, prefix))
			sub.Wait(testWait, "online, and the session failing", func(ms []brokertest.Msg) bool {
				m, ok := last(ms, prefix+"/bridge/state")
				s, _ := last(ms, prefix+"/bridge/session")
				return ok && m.Payload == "online" && strings.Contains(s.Payload, `"state":"disconnected"`) && strings.Contains(s.Payload, `"error"`)
			})
			if code, took := p.term(t); code != 0 || took > ctExitWithin {
				t.Errorf("exit status %d after %s, want 0 within %s", code, took, ctExitWithin)
			}
			sub.Wait(testWait, "offline", func(ms []brokertest.Msg) bool {
				m, ok := last(ms, prefix+"/bridge/state")
				return ok && m.Payload == "offline"
			})
		})
	}
	t.Run("broker unreachable", func(t *testing.T) {
		t.Parallel()
		sim := ctSim(t)
		p := ctRun(t, bin, ctEnv(sim.Addr(), "tcp://"+closedAddr(t), "exlive"))
		p.log.waitText(t, `"state":"logged_in"`)
		if code, took := p.term(t); code != 0 || took > ctExitWithin {
			t.Errorf("exit status %d after %s, want 0 within %s", code, took, ctExitWithin)
		}
		ctx, cancel := context.WithTimeout(context.Background(), testWait)
		defer cancel()
		if err := sim.WaitCount(ctx, exlive.CmdLogout, 1); err != nil {
			t.Errorf("platform received no 1001 logout: %v", err)
		}
	})
}

// ctSim starts a simulated platform that sends no positions of its own.
func ctSim(t *testing.T) *exlivesim.Server {
	t.Helper()
	sim := exlivesim.New(exlivesim.Config{Vehicles: 3})
	if err := sim.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	return sim
}

// ctEnv is the whole environment of a bridge process: nothing is inherited.
func ctEnv(platform, broker, prefix string) []string {
	return []string{
		"EXLIVE_ADDR=" + platform,
		"EXLIVE_USER=" + exlivesim.DefaultUser,
		"EXLIVE_PASS=" + exlivesim.DefaultPass,
		"EXLIVE_RETRY_MIN=50ms",
		"EXLIVE_RETRY_MAX=200ms",
		"EXLIVE_INVENTORY_QUIET=50ms",
		"MQTT_URL=" + broker,
		"MQTT_TOPIC_PREFIX=" + prefix,
		"MQTT_CLIENT_ID=shutdown-" + strings.ReplaceAll(prefix, "/", "-"),
		"HTTP_ADDR=",
		"LOG_LEVEL=debug",
		"GORACE=halt_on_error=1 atexit_sleep_ms=0",
	}
}

// ctProc is a running bridge process.
type ctProc struct {
	cmd  *exec.Cmd
	log  *testLog // stderr: the JSON log
	done chan struct{}
	err  error
}

// ctRun starts bin with env. The process is killed when the test ends, if
// it is still running.
func ctRun(t *testing.T, bin string, env []string, args ...string) *ctProc {
	t.Helper()
	p := &ctProc{cmd: exec.Command(bin, args...), log: newTestLog(), done: make(chan struct{})}
	p.cmd.Env = env
	p.cmd.Stderr = p.log
	p.cmd.Stdout = p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("bridge log (without positions):\n%s", p.log.brief())
		}
	})
	return p
}

// term sends SIGTERM and returns the exit status and how long the process
// took to exit (-1 if it did not within twice ctExitWithin).
func (p *ctProc) term(t *testing.T) (code int, took time.Duration) {
	t.Helper()
	start := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(2 * ctExitWithin):
		t.Fatalf("no exit %s after SIGTERM", 2*ctExitWithin)
	}
	took = time.Since(start)
	t.Logf("exited %s after SIGTERM: %v", took.Round(time.Millisecond), p.err)
	return p.cmd.ProcessState.ExitCode(), took
}
