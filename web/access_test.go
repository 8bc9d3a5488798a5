package web

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/crypto/bcrypt"

	"github.com/exlive2mqtt/exlive2mqtt/internal/certtest"
)

// logBuffer collects a server's log lines for the test to read.
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

// serve runs a server for cfg with a ready stubSource until the test ends
// and returns its address and its log.
func serve(t *testing.T, cfg Config) (addr string, logs *logBuffer) {
	t.Helper()
	logs = &logBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	s := New(cfg, stubSource{ready: true}, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "metrics\n")
	}), zerolog.New(io.MultiWriter(logs, zerolog.NewTestWriter(t))))
	addr, done := startRun(t, ctx, s)
	t.Cleanup(func() {
		cancel()
		if err := waitRun(t, done, 5*time.Second); err != nil {
			t.Errorf("Run = %v", err)
		}
	})
	return addr, logs
}

// request sends method url with the given Host header (none: the URL's)
// and basic auth user:pass (none when user is "") and returns the status
// and body.
func request(t *testing.T, client *http.Client, url, host, user, pass string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), resp.Header
}

// writeWebConfig writes a web configuration file with content into a
// temporary directory.
func writeWebConfig(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "web.yml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// bcryptHash hashes pass at bcrypt's lowest cost, which keeps the test
// fast; the toolkit accepts any cost.
func bcryptHash(t *testing.T, pass string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(pass), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

// Everything but the probes: what a login must guard.
var guardedPaths = []string{"/", "/api/vehicles", "/api/status", "/api/config", "/metrics", "/static/app.js", "/healthz/", "/nope"}

// A loopback server answers to loopback names only: a page whose DNS name
// was rebound to 127.0.0.1 is refused, the probes are not.
func TestLoopbackRefusesOtherHostNames(t *testing.T) {
	addr, logs := serve(t, Config{Addr: "127.0.0.1:0"})
	_, port, _ := net.SplitHostPort(addr)
	client := &http.Client{}

	for _, host := range []string{"", "127.0.0.1:" + port, "localhost:" + port, "LOCALHOST", "localhost.", "[::1]:" + port, "127.0.0.2"} {
		if code, body, _ := request(t, client, "http://"+addr+"/api/status", host, "", ""); code != http.StatusOK {
			t.Errorf("Host %q: %d %q, want 200", host, code, body)
		}
	}
	for _, host := range []string{"attacker.example:" + port, "attacker.example", "localhost.attacker.example", "127.0.0.1.nip.io", "192.168.1.5:" + port} {
		for _, path := range []string{"/api/vehicles", "/"} {
			code, body, _ := request(t, client, "http://"+addr+path, host, "", "")
			if code != http.StatusMisdirectedRequest || !strings.Contains(body, "HTTP_ALLOWED_HOSTS") || !strings.Contains(body, host) {
				t.Errorf("Host %q %s: %d %q, want 421 naming the host and HTTP_ALLOWED_HOSTS", host, path, code, body)
			}
		}
		if code, _, _ := request(t, client, "http://"+addr+"/readyz", host, "", ""); code != http.StatusOK {
			t.Errorf("Host %q /readyz: %d, want 200 (probes are open)", host, code)
		}
	}
	if !strings.Contains(logs.String(), `"loopback_only":true`) {
		t.Errorf("the listening line does not say loopback only:\n%s", logs)
	}
	if strings.Contains(logs.String(), `"level":"warn"`) {
		t.Errorf("a loopback server warned:\n%s", logs)
	}
}

func TestAllowedHosts(t *testing.T) {
	cfg := Config{Addr: "127.0.0.1:0", AllowedHosts: []string{"Bridge.Example.", "10.1.2.3"}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	addr, _ := serve(t, cfg)
	client := &http.Client{}
	for _, host := range []string{"bridge.example", "BRIDGE.example:443", "bridge.example.", "10.1.2.3:9883", "localhost"} {
		if code, body, _ := request(t, client, "http://"+addr+"/api/status", host, "", ""); code != http.StatusOK {
			t.Errorf("Host %q: %d %q, want 200", host, code, body)
		}
	}
	for _, host := range []string{"other.example", "sub.bridge.example", "10.1.2.4"} {
		if code, _, _ := request(t, client, "http://"+addr+"/api/status", host, "", ""); code != http.StatusMisdirectedRequest {
			t.Errorf("Host %q: %d, want 421", host, code)
		}
	}
}

// Listening on every interface without a login says, once, what anyone on
// the network can see. The test listens on every interface but connects to
// loopback only.
func TestExposedWithoutAuthWarns(t *testing.T) {
	addr, logs := serve(t, Config{Addr: "0.0.0.0:0"})
	_, port, _ := net.SplitHostPort(addr)
	for _, want := range []string{`"level":"warn"`, "without authentication", "live position", "/api/vehicles", "HTTP_WEB_CONFIG_FILE"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs)
		}
	}
	// Not bound to loopback and no allowed hosts: the names it is reached
	// under are unknown, so none is refused.
	if code, _, _ := request(t, &http.Client{}, "http://127.0.0.1:"+port+"/api/status", "bridge.lan", "", ""); code != http.StatusOK {
		t.Errorf("Host bridge.lan on a server on every interface: %d, want 200", code)
	}

	// With a login, no warning.
	path := writeWebConfig(t, "basic_auth_users:\n  admin: "+bcryptHash(t, "s3cret")+"\n")
	_, logs = serve(t, Config{Addr: "0.0.0.0:0", WebConfigFile: path})
	if strings.Contains(logs.String(), "without authentication") || !strings.Contains(logs.String(), `"auth":"basic"`) {
		t.Errorf("with basic auth:\n%s", logs)
	}
}

func TestWebConfigBasicAuth(t *testing.T) {
	const pass = "correct horse battery staple"
	path := writeWebConfig(t, "basic_auth_users:\n  admin: "+bcryptHash(t, pass)+"\n")
	addr, _ := serve(t, Config{Addr: "127.0.0.1:0", WebConfigFile: path})
	client := &http.Client{}
	base := "http://" + addr

	for _, p := range guardedPaths {
		code, _, h := request(t, client, base+p, "", "", "")
		if code != http.StatusUnauthorized || !strings.HasPrefix(h.Get("WWW-Authenticate"), "Basic") {
			t.Errorf("GET %s without credentials: %d, WWW-Authenticate %q; want 401 Basic", p, code, h.Get("WWW-Authenticate"))
		}
		if h.Get("Content-Security-Policy") == "" {
			t.Errorf("GET %s: the 401 has no security headers", p)
		}
		if code, _, _ := request(t, client, base+p, "", "admin", "wrong"); code != http.StatusUnauthorized {
			t.Errorf("GET %s with a wrong password: %d, want 401", p, code)
		}
		if code, _, _ := request(t, client, base+p, "", "nobody", pass); code != http.StatusUnauthorized {
			t.Errorf("GET %s as an unknown user: %d, want 401", p, code)
		}
	}
	for _, p := range []string{"/api/vehicles", "/api/status", "/metrics", "/", "/static/app.js"} {
		if code, body, _ := request(t, client, base+p, "", "admin", pass); code != http.StatusOK {
			t.Errorf("GET %s with credentials: %d %q, want 200", p, code, body)
		}
	}
	for _, p := range []string{"/healthz", "/readyz"} {
		if code, body, _ := request(t, client, base+p, "", "", ""); code != http.StatusOK {
			t.Errorf("probe %s without credentials: %d %q, want 200", p, code, body)
		}
	}
	// The host check comes first: a rebinding page gets no login prompt.
	if code, _, h := request(t, client, base+"/", "attacker.example", "", ""); code != http.StatusMisdirectedRequest || h.Get("WWW-Authenticate") != "" {
		t.Errorf("foreign Host: %d, WWW-Authenticate %q; want 421 without a prompt", code, h.Get("WWW-Authenticate"))
	}
}

// tlsClient trusts ca only.
func tlsClient(t *testing.T, ca *certtest.CA) *http.Client {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
}

func TestWebConfigTLS(t *testing.T) {
	ca := certtest.NewCA(t, "exlive2mqtt test CA")
	pair := ca.Server(t, "bridge")
	const pass = "s3cret"
	path := writeWebConfig(t, "tls_server_config:\n  cert_file: "+pair.CertFile+"\n  key_file: "+pair.KeyFile+
		"\nbasic_auth_users:\n  admin: "+bcryptHash(t, pass)+"\n")
	cfg := Config{Addr: "127.0.0.1:0", WebConfigFile: path}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	addr, logs := serve(t, cfg)
	client := tlsClient(t, ca)
	base := "https://" + addr

	if code, body, _ := request(t, client, base+"/readyz", "", "", ""); code != http.StatusOK {
		t.Errorf("/readyz over TLS: %d %q", code, body)
	}
	if code, _, _ := request(t, client, base+"/api/vehicles", "", "", ""); code != http.StatusUnauthorized {
		t.Errorf("/api/vehicles over TLS without credentials: %d, want 401", code)
	}
	if code, body, _ := request(t, client, base+"/api/vehicles", "", "admin", pass); code != http.StatusOK || strings.TrimSpace(body) != "[]" {
		t.Errorf("/api/vehicles over TLS with credentials: %d %q", code, body)
	}
	if resp, err := http.Get("http://" + addr + "/readyz"); err == nil {
		if resp.StatusCode == http.StatusOK {
			t.Error("plain HTTP is answered with 200 on the TLS port")
		}
		resp.Body.Close()
	}
	if !strings.Contains(logs.String(), `"tls":true`) {
		t.Errorf("the listening line does not say TLS:\n%s", logs)
	}

	// exlive2mqtt healthcheck: the same settings, over TLS.
	cfg.Addr = addr
	if err := Healthcheck(t.Context(), cfg, 5*time.Second); err != nil {
		t.Errorf("Healthcheck over TLS: %v", err)
	}
	cfg.WebConfigFile = ""
	if err := Healthcheck(t.Context(), cfg, 5*time.Second); err == nil {
		t.Error("Healthcheck over plain HTTP against a TLS server passed")
	}
}

func TestConfigValidate(t *testing.T) {
	good := writeWebConfig(t, "basic_auth_users:\n  admin: "+bcryptHash(t, "x")+"\n")
	tests := []struct {
		name string
		cfg  Config
		want []string // "" entries: want no error
	}{
		{"defaults", Config{Addr: "127.0.0.1:9883"}, nil},
		{"off", Config{}, nil},
		{"good file", Config{Addr: ":9883", WebConfigFile: good}, nil},
		{"bad addr", Config{Addr: "9883"}, []string{`ADDR="9883"`, "host:port"}},
		{"missing file", Config{Addr: ":9883", WebConfigFile: "/nonexistent/web.yml"}, []string{`WEB_CONFIG_FILE="/nonexistent/web.yml"`, "no such file"}},
		{"plain password", Config{Addr: ":9883", WebConfigFile: writeWebConfig(t, "basic_auth_users:\n  admin: secret\n")}, []string{"WEB_CONFIG_FILE=", "bcrypt"}},
		{"unknown key", Config{Addr: ":9883", WebConfigFile: writeWebConfig(t, "basic_auth:\n  admin: x\n")}, []string{"WEB_CONFIG_FILE=", "basic_auth"}},
		{"missing key file", Config{Addr: ":9883", WebConfigFile: writeWebConfig(t, "tls_server_config:\n  cert_file: c.pem\n")}, []string{"WEB_CONFIG_FILE=", "key"}},
		{"host with scheme", Config{Addr: ":9883", AllowedHosts: []string{"ok.example", "https://x.example"}}, []string{"ALLOWED_HOSTS=", `"https://x.example"`}},
		{"wildcard host", Config{Addr: ":9883", AllowedHosts: []string{"*"}}, []string{"ALLOWED_HOSTS=", "wildcard"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate = nil, want an error with %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate = %q, want it to contain %q", err, w)
				}
			}
		})
	}
	// The password never shows in an error, even a wrongly written one.
	cfg := Config{WebConfigFile: writeWebConfig(t, "basic_auth_users:\n  admin: hunter2-plain\n")}
	if err := cfg.Validate(); err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("Validate = %v: want an error without the password", err)
	}
}

func TestHostPolicy(t *testing.T) {
	loop := newHostPolicy(nil, true)
	listed := newHostPolicy([]string{"bridge.example"}, false)
	open := newHostPolicy(nil, false)
	tests := []struct {
		host               string
		loop, listed, open bool
	}{
		{"localhost", true, true, true},
		{"localhost:9883", true, true, true},
		{"127.0.0.1:9883", true, true, true},
		{"127.8.9.10", true, true, true},
		{"[::1]:9883", true, true, true},
		{"[::1]", true, true, true},
		{"::1", true, true, true},
		{"", true, true, true},
		{"bridge.example:9883", false, true, true},
		{"evil.example", false, false, true},
		{"localhost.evil.example", false, false, true},
		{"[::ffff:7f00:1]:1", true, true, true}, // 127.0.0.1 written as IPv6
		{"0.0.0.0:9883", false, false, true},
	}
	for _, tt := range tests {
		if got := loop.allows(tt.host); got != tt.loop {
			t.Errorf("loopback policy allows(%q) = %v", tt.host, got)
		}
		if got := listed.allows(tt.host); got != tt.listed {
			t.Errorf("listed policy allows(%q) = %v", tt.host, got)
		}
		if got := open.allows(tt.host); got != tt.open {
			t.Errorf("open policy allows(%q) = %v", tt.host, got)
		}
	}
}
