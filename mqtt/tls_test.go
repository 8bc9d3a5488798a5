package mqtt_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/exlive2mqtt/exlive2mqtt/internal/brokertest"
	"github.com/exlive2mqtt/exlive2mqtt/internal/certtest"
	"github.com/exlive2mqtt/exlive2mqtt/mqtt"
	"github.com/rs/zerolog"
)

// Security against a real Mosquitto: TLS listeners with certificates made
// at run time (no key is committed), client certificates, and a password
// file made with mosquitto_passwd.

// attempts is a TCP relay in front of a broker that counts connections, to
// see a client that cannot get in keep trying.
type attempts struct {
	ln     net.Listener
	mu     sync.Mutex
	n      int
	conns  []net.Conn
	wg     sync.WaitGroup
	target string
}

func newAttempts(t *testing.T, target string) *attempts {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := &attempts{ln: ln, target: target}
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			a.mu.Lock()
			a.n++
			a.conns = append(a.conns, c, up)
			a.mu.Unlock()
			a.wg.Add(2)
			pipe := func(dst, src net.Conn) {
				defer a.wg.Done()
				io.Copy(dst, src)
				dst.Close()
				src.Close()
			}
			go pipe(up, c)
			go pipe(c, up)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		a.mu.Lock()
		for _, c := range a.conns {
			c.Close()
		}
		a.mu.Unlock()
		a.wg.Wait()
	})
	return a
}

func (a *attempts) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.n
}

func (a *attempts) addr() string { return a.ln.Addr().String() }

// logBuffer collects the client's log lines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startLogged starts a client that logs at debug level into the returned
// buffer.
func startLogged(t *testing.T, cfg mqtt.Config) (*mqtt.Client, *links, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	l := &links{changed: make(chan struct{})}
	c, err := mqtt.New(cfg, bridgeState(cfg), zerolog.New(logs).Level(zerolog.DebugLevel), l.add)
	if err != nil {
		t.Fatal(err)
	}
	c.Start()
	t.Cleanup(func() {
		// Never connected: nothing to wait for.
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		c.Stop(ctx)
		accountedFor(t, c.Stats())
	})
	return c, l, logs
}

// refused checks that a client that must not get in keeps trying, never
// connects, says why in its log and leaks no secret there.
func refused(t *testing.T, c *mqtt.Client, l *links, logs *logBuffer, a *attempts, why string, secrets ...string) {
	t.Helper()
	waitFor(t, 15*time.Second, "a second connection attempt", func() bool { return a.count() >= 2 })
	if c.Link().Connected {
		t.Fatal("connected")
	}
	l.mu.Lock()
	ups := len(l.all)
	l.mu.Unlock()
	if ups != 0 {
		t.Errorf("%d link changes, want none", ups)
	}
	if !brokertest.Eventually(5*time.Second, func() bool { return strings.Contains(logs.String(), why) }) {
		t.Fatalf("no log line says %q:\n%s", why, logs.String())
	}
	for _, s := range secrets {
		if strings.Contains(logs.String(), s) {
			t.Errorf("log leaks %q:\n%s", s, logs.String())
		}
	}
}

// tlsBroker starts Mosquitto with a TLS listener (server certificate from
// ca for 127.0.0.1, client certificates from ca required) and a plain
// listener for the test's own subscriber. It returns the broker and the
// plain listener's URL.
func tlsBroker(t *testing.T, ca *certtest.CA, server certtest.Pair) (*brokertest.Mosquitto, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	plain := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	m := brokertest.StartMosquitto(t, fmt.Sprintf(
		"listener {{port}} 127.0.0.1\ncafile %s\ncertfile %s\nkeyfile %s\nrequire_certificate true\ntls_version tlsv1.2\n"+
			"listener %d 127.0.0.1\n", ca.File, server.CertFile, server.KeyFile, plain))
	// StartMosquitto waits for the first listener only; the plain one
	// opens after it, a moment later on a busy machine.
	addr := fmt.Sprintf("127.0.0.1:%d", plain)
	if !brokertest.Eventually(10*time.Second, func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	}) {
		t.Fatalf("mosquitto's plain listener on %s did not open:\n%s", addr, m.Log())
	}
	return m, "tcp://" + addr
}

func TestTLS(t *testing.T) {
	ca := certtest.NewCA(t, "exlive2mqtt test CA")
	m, plainURL := tlsBroker(t, ca, ca.Server(t, "broker"))
	client := ca.Client(t, "exlive2mqtt")
	secure := fmt.Sprintf("ssl://127.0.0.1:%d", m.Port)

	t.Run("verified_with_client_certificate", func(t *testing.T) {
		cfg := config(t, secure)
		cfg.CAFile, cfg.CertFile, cfg.KeyFile = ca.File, client.CertFile, client.KeyFile
		sub := brokertest.Subscribe(t, plainURL, cfg.TopicPrefix+"/#")
		c, l := start(t, cfg, nil)
		l.wait(t, true, 1)
		if err := c.Publish(cfg.TopicPrefix+"/secure", []byte("over TLS"), false); err != nil {
			t.Fatal(err)
		}
		if got := sub.WaitTopic(5*time.Second, cfg.TopicPrefix+"/secure"); got.Payload != "over TLS" {
			t.Errorf("payload = %q", got.Payload)
		}
	})

	t.Run("wrong_CA_refused", func(t *testing.T) {
		other := certtest.NewCA(t, "someone else's CA")
		a := newAttempts(t, m.Addr())
		cfg := config(t, "ssl://"+a.addr())
		cfg.CAFile, cfg.CertFile, cfg.KeyFile = other.File, client.CertFile, client.KeyFile
		c, l, logs := startLogged(t, cfg)
		refused(t, c, l, logs, a, "certificate signed by unknown authority")
	})

	t.Run("server_certificate_for_another_host_refused", func(t *testing.T) {
		m2, _ := tlsBroker(t, ca, ca.Server(t, "elsewhere", "broker.example.com"))
		a := newAttempts(t, m2.Addr())
		cfg := config(t, "ssl://"+a.addr())
		cfg.CAFile, cfg.CertFile, cfg.KeyFile = ca.File, client.CertFile, client.KeyFile
		c, l, logs := startLogged(t, cfg)
		refused(t, c, l, logs, a, "cannot validate certificate for 127.0.0.1")
	})

	t.Run("no_client_certificate_refused", func(t *testing.T) {
		a := newAttempts(t, m.Addr())
		cfg := config(t, "ssl://"+a.addr())
		cfg.CAFile = ca.File
		c, l, logs := startLogged(t, cfg)
		refused(t, c, l, logs, a, "certificate required")
	})

	t.Run("client_certificate_from_another_CA_refused", func(t *testing.T) {
		other := certtest.NewCA(t, "someone else's CA")
		stranger := other.Client(t, "stranger")
		a := newAttempts(t, m.Addr())
		cfg := config(t, "ssl://"+a.addr())
		cfg.CAFile, cfg.CertFile, cfg.KeyFile = ca.File, stranger.CertFile, stranger.KeyFile
		c, l, logs := startLogged(t, cfg)
		refused(t, c, l, logs, a, "unknown certificate authority")
	})
}

// TestPasswordAuth runs Mosquitto with a password file made by
// mosquitto_passwd and no anonymous access.
func TestPasswordAuth(t *testing.T) {
	bin, err := exec.LookPath("mosquitto_passwd")
	if err != nil {
		brokertest.MosquittoBinary(t) // skips or fails as for mosquitto itself
		t.Skip("mosquitto_passwd is not installed")
	}
	dir := t.TempDir()
	passwd := filepath.Join(dir, "passwd")
	const user, pass = "bridge", "correct horse battery staple"
	if out, err := exec.Command(bin, "-c", "-b", passwd, user, pass).CombinedOutput(); err != nil {
		t.Fatalf("mosquitto_passwd: %v\n%s", err, out)
	}
	m := brokertest.StartMosquitto(t, "allow_anonymous false\npassword_file "+passwd)
	auth := func(o *paho.ClientOptions) { o.SetUsername(user).SetPassword(pass) }

	t.Run("password_from_file", func(t *testing.T) {
		file := filepath.Join(dir, "mqtt_password")
		if err := os.WriteFile(file, []byte(pass+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg := mqtt.Defaults()
		cfg.URL = m.URL()
		cfg.ClientID = brokertest.ClientID(t)
		cfg.TopicPrefix = brokertest.Prefix(t)
		cfg.RetryMax = 200 * time.Millisecond
		cfg.Username, cfg.PasswordFile = user, file
		if err := errors.Join(cfg.Validate(os.Hostname), cfg.ReadFiles(os.ReadFile)); err != nil {
			t.Fatal(err)
		}
		cnt := brokertest.NewCounter(t, m.URL(), cfg.TopicPrefix+"/#", auth)
		c, l, logs := startLogged(t, cfg)
		l.wait(t, true, 1)
		c.Publish(cfg.TopicPrefix+"/in", []byte("authenticated"), false)
		cnt.Wait(5*time.Second, "the message", func() bool { return cnt.Has(cfg.TopicPrefix+"/in", "authenticated") })
		if strings.Contains(logs.String(), pass) {
			t.Errorf("log leaks the password:\n%s", logs.String())
		}
	})

	t.Run("wrong_password_refused", func(t *testing.T) {
		a := newAttempts(t, m.Addr())
		cfg := config(t, "tcp://"+a.addr())
		cfg.Username, cfg.Password = user, "Tr0ub4dor&3-wrong"
		c, l, logs := startLogged(t, cfg)
		refused(t, c, l, logs, a, "not Authorized", "Tr0ub4dor&3-wrong")
	})

	t.Run("no_credentials_refused", func(t *testing.T) {
		a := newAttempts(t, m.Addr())
		cfg := config(t, "tcp://"+a.addr())
		c, l, logs := startLogged(t, cfg)
		refused(t, c, l, logs, a, "not Authorized")
	})
}
