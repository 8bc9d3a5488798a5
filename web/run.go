package web

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"syscall"
	"time"

	toolkit "github.com/prometheus/exporter-toolkit/web"
	"github.com/rs/zerolog"
)

// shutdownTimeout bounds how long Run waits for requests in flight once its
// context is done; the page's requests are small, and a container stop
// must not hang on a stuck client.
const shutdownTimeout = 2 * time.Second

// Run listens on cfg.Addr and serves until ctx is done, then shuts down
// gracefully and returns nil. It returns an error at once if it cannot
// listen, e.g. because the port is taken. With an empty Addr the HTTP server
// is off and Run only waits for ctx, so that callers can run it like any
// other part of the service.
func (s *Server) Run(ctx context.Context) error {
	if s.cfg.Addr == "" {
		s.log.Info().Msg("http server disabled")
		<-ctx.Done()
		return nil
	}

	access, err := readWebAccess(s.cfg.WebConfigFile)
	if err != nil {
		return err
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.cfg.Addr)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return fmt.Errorf("web: listen on %s: port already in use (set HTTP_ADDR to another address, or empty to turn HTTP off): %w", s.cfg.Addr, err)
		}
		return fmt.Errorf("web: listen on %s: %w", s.cfg.Addr, err)
	}
	addr := ln.Addr().String()
	loopback := isLoopback(ln)
	hosts := newHostPolicy(s.cfg.AllowedHosts, loopback)

	srv := &http.Server{
		Handler:           s.app,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          log.New(serverErrorWriter{s}, "", 0),
	}
	served := make(chan error, 1)
	if s.cfg.WebConfigFile == "" {
		srv.Handler = s.chain(s.app, hosts)
		go func() { served <- srv.Serve(ln) }()
	} else {
		// The toolkit's own info lines repeat ours; its warnings and
		// errors (a configuration file that no longer parses) come through.
		tlog := s.log.With().Str("from", "exporter-toolkit").Logger()
		tlog = tlog.Level(max(tlog.GetLevel(), zerolog.WarnLevel))
		flags := &toolkit.FlagConfig{WebConfigFile: &s.cfg.WebConfigFile}
		handoff := &handoffListener{Listener: ln, take: func() { srv.Handler = s.chain(srv.Handler, hosts) }}
		go func() { served <- toolkit.Serve(handoff, srv, flags, slog.New(zerolog.NewSlogHandler(tlog))) }()
	}
	s.log.Info().Str("addr", addr).Bool("tls", access.TLS).Str("auth", cmp.Or(access.Auth, "none")).
		Bool("loopback_only", loopback).Strs("allowed_hosts", s.cfg.AllowedHosts).Msg("http server listening")
	if !loopback && access.Auth == "" {
		s.log.Warn().Str("addr", addr).
			Msg("http server reachable from other machines without authentication: anyone who can connect sees every vehicle's live position " +
				"(/api/vehicles, the status page), the state of both links and the metrics; " +
				"set HTTP_WEB_CONFIG_FILE with basic_auth_users, or HTTP_ADDR=127.0.0.1:9883 (docs/security.md)")
	}
	if s.onListen != nil {
		s.onListen(addr)
	}

	select {
	case err := <-served:
		// Serve only returns early on a listener failure, or when the
		// web configuration file stopped being valid since Validate.
		return fmt.Errorf("web: serve on %s: %w", addr, err)
	case <-ctx.Done():
	}

	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		// Clients that outlive the grace period are cut off: stopping the
		// process matters more than their answers.
		s.log.Warn().Err(err).Dur("timeout", s.shutdownTimeout).Msg("http shutdown timed out, closing connections")
		_ = srv.Close()
	}
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("web: serve on %s: %w", addr, err)
	}
	s.log.Info().Str("addr", addr).Msg("http server stopped")
	return nil
}

// serverErrorWriter turns net/http's own log lines (failed handshakes,
// handler panics) into zerolog events.
type serverErrorWriter struct{ s *Server }

func (w serverErrorWriter) Write(p []byte) (int, error) {
	w.s.log.Warn().Str("error", strings.TrimSpace(string(p))).Msg("http server error")
	return len(p), nil
}

// Healthcheck asks the server that cfg describes whether the bridge is
// ready (GET /readyz on cfg.Addr) and returns nil only for 200 OK. An
// address without a host, or with an unspecified one, such as ":9883" or
// "0.0.0.0:9883", is asked on the loopback address. When cfg's web
// configuration file turns TLS on, it asks over HTTPS. It is meant for
// `exlive2mqtt healthcheck` as a container HEALTHCHECK, where no shell or
// curl exists.
func Healthcheck(ctx context.Context, cfg Config, timeout time.Duration) error {
	if cfg.Addr == "" {
		return errors.New("web: healthcheck: no HTTP address (HTTP_ADDR is empty, so the server is off)")
	}
	target, err := loopbackTarget(cfg.Addr)
	if err != nil {
		return fmt.Errorf("web: healthcheck: %w", err)
	}
	access, err := readWebAccess(cfg.WebConfigFile)
	if err != nil {
		return fmt.Errorf("web: healthcheck: %w", err)
	}
	// A fresh transport: the probe must not reuse anything, nor go through
	// a proxy from the environment.
	transport := &http.Transport{DisableKeepAlives: true}
	url := "http://" + target + "/readyz"
	if access.TLS {
		url = "https://" + target + "/readyz"
		// The certificate names the host clients use, rarely the
		// loopback address asked here, and may come from a private CA.
		// Not checking it costs nothing: the probe sends no credentials
		// and learns only up or down, from a server on this machine.
		transport.TLSClientConfig = &tls.Config{InsecureSkipVerify: true}
	}

	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("web: healthcheck: %w", err)
	}
	resp, err := (&http.Client{Transport: transport}).Do(req)
	if err != nil {
		return fmt.Errorf("web: healthcheck %s: %w", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("web: healthcheck %s: %s: %s", url, resp.Status, strings.TrimSpace(string(body)))
	}
	return nil
}

// loopbackTarget returns addr with an empty or unspecified host replaced by
// the loopback address of the same family.
func loopbackTarget(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("address %q: %w", addr, err)
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	return net.JoinHostPort(host, port), nil
}
