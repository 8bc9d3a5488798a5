// Command exlive2mqtt bridges an EXLIVE vehicle-tracking platform to MQTT.
// Run it with -h for its settings.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/caarlos0/env/v11"
	"github.com/exlive2mqtt/exlive2mqtt/bridge"
	"github.com/exlive2mqtt/exlive2mqtt/events"
	"github.com/exlive2mqtt/exlive2mqtt/web"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"
	"golang.org/x/sync/errgroup"
)

// version is set at build time: -ldflags "-X main.version=1.2.3".
var version = ""

// stopTimeout bounds a shutdown: SIGTERM to exit in less than 10 s, the
// time docker gives before SIGKILL.
const stopTimeout = 7 * time.Second

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Environ(), os.Stdout, os.Stderr)
	stop()
	var ce *ConfigError
	switch {
	case err == nil:
	case errors.As(err, &ce):
		fmt.Fprintln(os.Stderr, "exlive2mqtt:", err)
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "exlive2mqtt:", err)
		os.Exit(1)
	}
}

// run is the whole program, so tests can run it with their own arguments,
// environment and output.
func run(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error {
	cmd := ""
	if len(args) > 0 {
		cmd = args[0]
	}
	switch cmd {
	case "":
	case "-h", "-help", "--help", "help":
		printHelp(stdout)
		return nil
	case "version", "-version", "--version":
		fmt.Fprintln(stdout, versionString())
		return nil
	case "healthcheck":
		return healthcheck(ctx, environMap(environ), stderr)
	case "demo":
		return demo(ctx, args[1:], environMap(environ), stdout, stderr)
	case "probe":
		return probe(ctx, args[1:], environMap(environ), stdout, stderr)
	default:
		return &ConfigError{[]string{fmt.Sprintf("unknown command %q (want probe, demo, healthcheck, version or nothing)", cmd)}}
	}
	envs := environMap(environ)
	s, err := loadSettings(envs, os.ReadFile, os.Hostname)
	if err != nil {
		return err
	}
	log := newLogger(s.Log, stderr)
	if path := envs[envCPUProfile]; path != "" {
		stop, err := startCPUProfile(path)
		if err != nil {
			return err
		}
		defer stop()
	}
	if path := envs[envMemProfile]; path != "" {
		// Written as the bridge is told to stop, while what it holds is
		// still in use, and waited for before run returns.
		pctx, cancel := context.WithCancel(ctx)
		written := make(chan struct{})
		go func() {
			defer close(written)
			<-pctx.Done()
			writeHeapProfile(path, log)
		}()
		defer func() { cancel(); <-written }()
	}
	hctx, cancel := context.WithCancel(ctx)
	held := make(chan struct{})
	go func() {
		defer close(held)
		holdMemory(hctx, envs)
	}()
	defer func() { cancel(); <-held }()
	for _, k := range unknownVariables(envs) {
		log.Warn().Str("variable", k).Msg("unknown setting ignored (exlive2mqtt -h lists them)")
	}
	// SIGHUP reads GEOFENCES_FILE again. Asked for here, not in main: only
	// the bridge reloads, and probe, demo and healthcheck keep the
	// default of SIGHUP (to end).
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	return serve(ctx, s, log, hup, nil)
}

// envCPUProfile names a file to write a CPU profile of the whole run to, for
// `go tool pprof`: how BENCHMARKS.md profiles the bridge under load. It is
// not a setting (-h does not list it) and costs nothing when unset.
const envCPUProfile = "EXLIVE2MQTT_CPUPROFILE"

func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", envCPUProfile, err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", envCPUProfile, err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

// envMemProfile names a file to write a heap profile to when the bridge is
// told to stop, for `go tool pprof -sample_index=inuse_space` (what is held at the
// end: the registry, the events engine) or alloc_space (everything the run
// allocated): how BENCHMARKS.md looks at the memory of 100 000 vehicles.
// Like envCPUProfile it is not a setting.
const envMemProfile = "EXLIVE2MQTT_MEMPROFILE"

func writeHeapProfile(path string, log zerolog.Logger) {
	f, err := os.Create(path)
	if err == nil {
		runtime.GC() // the profile's in-use figures are as of the last collection
		err = errors.Join(pprof.Lookup("heap").WriteTo(f, 0), f.Close())
	}
	if err != nil {
		log.Error().Err(err).Str("variable", envMemProfile).Msg("heap profile not written")
	}
}

// serve runs the bridge and the HTTP server until ctx is done. Each
// signal on reload (SIGHUP) reads GEOFENCES_FILE again; nil: never.
func serve(ctx context.Context, s *settings, log zerolog.Logger, reload <-chan os.Signal, started func(*bridge.Bridge)) error {
	b, err := bridge.New(bridge.Options{
		Bridge:    s.Bridge,
		Exlive:    s.Exlive,
		MQTT:      s.MQTT,
		Topics:    s.Topics,
		Hass:      s.Hass,
		OwnTracks: s.OwnTracks,
		Events:    s.Events,
		Fences:    s.fences,
		Version:   appVersion(),
		Log:       log,
	})
	if err != nil {
		return err
	}
	log.Info().Str("version", appVersion()).Str("platform", s.Exlive.Addr).Str("user", s.Exlive.User).
		Str("broker", s.MQTT.SafeURL()).Str("prefix", s.MQTT.TopicPrefix).Bool("read_only", s.Bridge.ReadOnly).
		Str("http", s.HTTP.Addr).Int("geofences", s.fences.Len()).Msg("starting")
	if started != nil {
		started(b)
	}
	metrics := promhttp.HandlerFor(b.Gatherer(), promhttp.HandlerOpts{})
	srv := web.New(s.HTTP, newStatusPage(b), metrics, log) // web names its own component
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return srv.Run(gctx) })
	g.Go(func() error { return b.Run(gctx, stopTimeout) })
	g.Go(func() error {
		reloadFences(gctx, s.Events, b, reload, log.With().Str("component", "geofences").Logger())
		return nil
	})
	return g.Wait()
}

// reloadFences reads GEOFENCES_FILE again at each signal on reload, until
// ctx is done. A bad file keeps the fences in force, and says why.
func reloadFences(ctx context.Context, c events.Config, b *bridge.Bridge, reload <-chan os.Signal, log zerolog.Logger) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-reload:
		}
		if c.GeofencesFile == "" {
			log.Info().Msg("SIGHUP: no GEOFENCES_FILE to read again")
			continue
		}
		fences, err := c.LoadFences()
		if err != nil {
			log.Error().Err(err).Int("kept", b.Fences().Len()).Msg("geofences not reloaded; the previous ones stay in force")
			continue
		}
		b.SetFences(fences)
		log.Info().Str("file", c.GeofencesFile).Int("geofences", fences.Len()).Msg("geofences reloaded")
	}
}

// healthcheck reads only the HTTP settings: the container's health check
// runs with the bridge's environment, but needs none of the rest.
func healthcheck(ctx context.Context, envs map[string]string, stderr io.Writer) error {
	var cfg web.Config
	if err := env.ParseWithOptions(&cfg, env.Options{Environment: envs, Prefix: "HTTP_"}); err != nil {
		return &ConfigError{[]string{err.Error()}}
	}
	if v, ok := envs["HTTP_ADDR"]; ok && v == "" {
		cfg.Addr = "" // set but empty: HTTP is off (see loadSettings)
	}
	return web.Healthcheck(ctx, cfg, 3*time.Second)
}

func newLogger(c logConfig, w io.Writer) zerolog.Logger {
	level, err := zerolog.ParseLevel(strings.ToLower(c.Level))
	if err != nil {
		level = zerolog.InfoLevel
	}
	if strings.EqualFold(c.Format, "console") {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.TimeOnly}
	}
	return zerolog.New(w).Level(level).With().Timestamp().Logger()
}

// versionString is the version with the Go release it was built with.
func versionString() string { return appVersion() + " (" + runtime.Version() + ")" }

// appVersion is the version set at build time, or what the module and VCS
// information say.
func appVersion() string {
	v := version
	if v == "" {
		v = "dev"
		if bi, ok := debug.ReadBuildInfo(); ok {
			if bi.Main.Version != "" && bi.Main.Version != "(devel)" {
				v = bi.Main.Version
			}
			for _, s := range bi.Settings {
				if s.Key == "vcs.revision" && len(s.Value) >= 12 {
					v += "+" + s.Value[:12]
				}
			}
		}
	}
	return v
}
