package web

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"

	toolkit "github.com/prometheus/exporter-toolkit/web"
	"go.yaml.in/yaml/v2"
)

// Validate checks the settings that can be checked before listening: the
// address, the web configuration file (read and checked by the
// exporter-toolkit itself: YAML keys, bcrypt hashes, certificate files) and
// the allowed host names, which it normalises. Each error names its
// variable without the HTTP_ prefix.
func (c *Config) Validate() error {
	var errs []error
	if c.Addr != "" {
		if _, _, err := net.SplitHostPort(c.Addr); err != nil {
			errs = append(errs, fmt.Errorf("ADDR=%q: want host:port, such as 127.0.0.1:9883 or :9883: %w", c.Addr, err))
		}
	}
	if c.WebConfigFile != "" {
		if err := toolkit.Validate(c.WebConfigFile); err != nil {
			errs = append(errs, fmt.Errorf("WEB_CONFIG_FILE=%q: %w", c.WebConfigFile, err))
		}
	}
	var hosts, bad []string
	for _, h := range c.AllowedHosts {
		h = normalHost(strings.Trim(strings.TrimSpace(h), "[]"))
		switch {
		case h == "":
		case net.ParseIP(h) != nil:
			hosts = append(hosts, h)
		case strings.ContainsAny(h, "/:@* "):
			bad = append(bad, h)
		default:
			hosts = append(hosts, h)
		}
	}
	if len(bad) > 0 {
		errs = append(errs, fmt.Errorf("ALLOWED_HOSTS=%q: %q: want host names or addresses such as status.example.org, without scheme, port or wildcard", strings.Join(c.AllowedHosts, ","), bad))
	}
	c.AllowedHosts = hosts
	return errors.Join(errs...)
}

// webAccess is what the server tells about the web configuration file at
// start: whether it serves TLS and whether it asks who is there. The
// exporter-toolkit reads the file again on every request and every TLS
// handshake, so later changes apply without a restart; the start-up log
// tells what was in force then.
type webAccess struct {
	TLS  bool
	Auth string // how clients authenticate: "basic", "client certificate", or "" for nobody asked
}

// readWebAccess reads path the way the exporter-toolkit does (relative
// certificate paths are relative to the file). An empty path is plain HTTP
// for everybody.
func readWebAccess(path string) (webAccess, error) {
	if path == "" {
		return webAccess{}, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return webAccess{}, fmt.Errorf("web: web configuration file: %w", err)
	}
	var c toolkit.Config
	if err := yaml.Unmarshal(b, &c); err != nil {
		return webAccess{}, fmt.Errorf("web: web configuration file %s: %w", path, err)
	}
	c.TLSConfig.SetDirectory(filepath.Dir(path))
	a := webAccess{TLS: c.TLSConfig.IsEnabled()}
	switch {
	case len(c.Users) > 0:
		a.Auth = "basic"
	case c.TLSConfig.ClientAuth == "RequireAndVerifyClientCert":
		a.Auth = "client certificate"
	}
	return a, nil
}

// hostPolicy decides which Host headers a request may carry. A browser
// sends the name it resolved, so a page at attacker.example that rebinds
// its name to 127.0.0.1 reaches a loopback server with
// "Host: attacker.example": refusing names the server does not know closes
// that door, which the same-origin policy leaves open.
type hostPolicy struct {
	// allowed are the names accepted besides the loopback ones; nil
	// accepts every Host.
	allowed map[string]bool
}

// newHostPolicy checks hosts when there are any, or when the server
// listens on loopback only; otherwise it accepts every Host, since the
// names a server on a network is reached under are not known.
func newHostPolicy(hosts []string, loopback bool) hostPolicy {
	if len(hosts) == 0 && !loopback {
		return hostPolicy{}
	}
	p := hostPolicy{allowed: make(map[string]bool, len(hosts))}
	for _, h := range hosts {
		p.allowed[normalHost(h)] = true
	}
	return p
}

// allows reports whether a request with this Host header may be served:
// localhost and loopback addresses always, with any port, and the allowed
// names. An empty Host (HTTP/1.0) is allowed: no browser sends one.
func (p hostPolicy) allows(hostport string) bool {
	if p.allowed == nil || hostport == "" {
		return true
	}
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = normalHost(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"))
	if host == "localhost" {
		return true
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return true
	}
	return p.allowed[host]
}

func normalHost(h string) string { return strings.TrimSuffix(strings.ToLower(h), ".") }

// guard refuses requests whose Host the policy does not allow with 421
// Misdirected Request, before any authentication: a login prompt on a
// rebinding page would only invite the user to type a password into it.
func (p hostPolicy) guard(next http.Handler) http.Handler {
	if p.allowed == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !p.allows(r.Host) {
			http.Error(w, fmt.Sprintf("exlive2mqtt: this server does not answer to the host name %q: "+
				"it answers to localhost and the names in HTTP_ALLOWED_HOSTS (docs/security.md)", r.Host),
				http.StatusMisdirectedRequest)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// isLoopback reports whether ln accepts connections from this machine only.
func isLoopback(ln net.Listener) bool {
	a, ok := ln.Addr().(*net.TCPAddr)
	return ok && a.IP.IsLoopback()
}

// handoffListener calls take once, at its first Accept, before any
// connection is served.
//
// It is how the probes stay open while the exporter-toolkit guards the
// rest. toolkit.Serve wraps the whole http.Server's handler in its
// authentication, which it neither exports nor lets skip a path (upstream
// exporter-toolkit#111 and #151 are open about it). It installs that
// wrapper before it starts accepting, as any Serve must, and net/http
// reads Server.Handler per request; so the first Accept is the moment to
// put the probe split in front of the toolkit's handler. The toolkit stays
// in charge of everything else it does: TLS and certificate reloads, the
// file read again per request, bcrypt with its cache, its rate limit and
// headers. TestWebConfigBasicAuth fails if a new toolkit version serves
// differently.
type handoffListener struct {
	net.Listener
	once sync.Once
	take func()
}

func (l *handoffListener) Accept() (net.Conn, error) {
	l.once.Do(l.take)
	return l.Listener.Accept()
}
