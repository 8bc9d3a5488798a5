package web

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strings"
	"syscall"
	"time"
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

	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.cfg.Addr)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return fmt.Errorf("web: listen on %s: port already in use (set HTTP_ADDR to another address, or empty to turn HTTP off): %w", s.cfg.Addr, err)
		}
		return fmt.Errorf("web: listen on %s: %w", s.cfg.Addr, err)
	}
	addr := ln.Addr().String()

	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          log.New(serverErrorWriter{s}, "", 0),
	}

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	s.log.Info().Str("addr", addr).Msg("http server listening")
	if s.onListen != nil {
		s.onListen(addr)
	}

	select {
	case err := <-served:
		// Serve only returns early on a listener failure.
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

// Healthcheck asks the server listening on addr whether the bridge is ready
// (GET http://addr/readyz) and returns nil only for 200 OK. An addr without
// a host, or with an unspecified one, such as ":9883" or "0.0.0.0:9883", is
// asked on the loopback address. It is meant for `exlive2mqtt healthcheck`
// as a container HEALTHCHECK, where no shell or curl exists.
func Healthcheck(ctx context.Context, addr string, timeout time.Duration) error {
	if addr == "" {
		return errors.New("web: healthcheck: no HTTP address (HTTP_ADDR is empty, so the server is off)")
	}
	target, err := loopbackTarget(addr)
	if err != nil {
		return fmt.Errorf("web: healthcheck: %w", err)
	}
	url := "http://" + target + "/readyz"

	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("web: healthcheck: %w", err)
	}
	// A fresh transport: the probe must not reuse anything, nor go through
	// a proxy from the environment.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Do(req)
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
