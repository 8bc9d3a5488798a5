package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"strings"

	"github.com/exlive2mqtt/exlive2mqtt/bridge"
	"github.com/exlive2mqtt/exlive2mqtt/exlive"
	"github.com/exlive2mqtt/exlive2mqtt/exlive/exlivesim"
	"github.com/exlive2mqtt/exlive2mqtt/internal/broker"
	"github.com/exlive2mqtt/exlive2mqtt/topic"
	"github.com/rs/zerolog"
)

const defaultDemoListen = "127.0.0.1:1883"

// demo runs an embedded broker, the simulated platform and the bridge
// between them: data flowing with no account and no broker installed.
func demo(ctx context.Context, args []string, envs map[string]string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("exlive2mqtt demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", defaultDemoListen, "`address` of the embedded MQTT broker")
	vehicles := fs.Int("vehicles", 20, "number of simulated vehicles")
	rate := fs.Float64("rate", 0, "positions per second over the fleet (0: one per vehicle every 2 s)")
	httpAddr := fs.String("http", "127.0.0.1:9883", "`address` of the status page, health and metrics (empty: off)")
	replay := fs.String("replay", "", "play back the platform's side of a capture (exlive2mqtt probe -capture `FILE`) instead of simulating a fleet")
	speed := fs.Float64("speed", 1, "with -replay: how many times faster than captured (0: as fast as possible)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: exlive2mqtt demo [flags]\n\nRuns an embedded MQTT broker, a simulated EXLIVE platform and the bridge between\nthem, so you can see the topics with no account and no broker installed.\nWith -replay FILE the platform plays back a capture instead.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return &ConfigError{[]string{err.Error()}}
	}
	if fs.NArg() > 0 {
		return &ConfigError{[]string{fmt.Sprintf("demo takes no arguments, got %q", fs.Args())}}
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	explicit := set["listen"]
	if *replay != "" && (set["vehicles"] || set["rate"]) {
		return &ConfigError{[]string{"-vehicles and -rate: not with -replay, which plays the vehicles of the capture"}}
	}
	if *replay == "" && set["speed"] {
		return &ConfigError{[]string{"-speed applies to -replay FILE only"}}
	}
	if *speed < 0 || math.IsInf(*speed, 0) || math.IsNaN(*speed) {
		return &ConfigError{[]string{fmt.Sprintf("-speed %g: want 0 (as fast as possible) or more", *speed)}}
	}
	var capture *exlivesim.Capture
	if *replay != "" {
		c, err := exlivesim.LoadCapture(*replay)
		if err != nil {
			return &ConfigError{[]string{"-replay: " + err.Error()}}
		}
		capture = c
	}
	if *vehicles < 1 || *vehicles > 1_000_000 {
		return &ConfigError{[]string{fmt.Sprintf("-vehicles %d: want 1 to 1000000", *vehicles)}}
	}
	if *rate <= 0 {
		*rate = float64(*vehicles) / 2
	}

	lc := logConfig{Level: "info", Format: "console"}
	if v, ok := envs["LOG_LEVEL"]; ok {
		lc.Level = v
	}
	if v, ok := envs["LOG_FORMAT"]; ok {
		lc.Format = v
	}
	if err := lc.validate(); err != nil {
		return &ConfigError{[]string{"LOG_" + err.Error()}}
	}
	log := newLogger(lc, stderr)

	brk, err := broker.Start(*listen, nil)
	if errors.Is(err, broker.ErrAddrInUse) {
		if explicit {
			return fmt.Errorf("demo: %s is taken; pick another address with -listen, e.g. -listen 127.0.0.1:11883", *listen)
		}
		fmt.Fprintf(stdout, "Port %s is taken (a Mosquitto already running?); using a free port instead.\nPick one yourself with -listen, e.g. -listen 127.0.0.1:11883.\n\n", *listen)
		brk, err = broker.Start("127.0.0.1:0", nil)
	}
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	defer brk.Close()

	simLog := log.With().Str("component", "sim").Logger().Level(zerolog.WarnLevel)
	platform := fmt.Sprintf("simulated EXLIVE platform with %d vehicles", *vehicles)
	var simAddr string
	user, pass, vehicle := exlivesim.DefaultUser, exlivesim.DefaultPass, "V1"
	if capture != nil {
		// The replay takes any password: the capture holds none.
		rp := exlivesim.NewReplay(capture, exlivesim.ReplayConfig{Speed: *speed, Log: &simLog})
		if err := rp.Start("127.0.0.1:0"); err != nil {
			return fmt.Errorf("demo: %w", err)
		}
		defer rp.Close()
		simAddr, pass = rp.Addr(), "replay"
		if capture.ClearPassword {
			log.Warn().Str("capture", *replay).Msg("the capture holds a password in clear text: mask it before you share the file")
		}
		if capture.User != "" {
			user = capture.User
		}
		if id := capture.FirstVehicle(); id != "" {
			vehicle = id
		}
		platform = fmt.Sprintf("replay of %s: %s", *replay, capture.Describe(*speed))
	} else {
		sim := exlivesim.New(exlivesim.Config{Vehicles: *vehicles, Rate: *rate, Log: &simLog})
		if err := sim.Start("127.0.0.1:0"); err != nil {
			return fmt.Errorf("demo: %w", err)
		}
		defer sim.Close()
		simAddr = sim.Addr()
	}

	environ := map[string]string{
		"EXLIVE_ADDR":               simAddr,
		"EXLIVE_USER":               user,
		"EXLIVE_PASS":               pass,
		"EXLIVE_INVENTORY_QUIET":    "200ms",
		"MQTT_URL":                  "tcp://" + brk.Addr(),
		"MQTT_CLIENT_ID":            "exlive2mqtt-demo",
		"HTTP_ADDR":                 *httpAddr,
		"LOG_LEVEL":                 lc.Level,
		"LOG_FORMAT":                lc.Format,
		"EXLIVE_INVENTORY_INTERVAL": "10m",
	}
	// The demo takes the topic prefix and the integrations from the
	// environment too, to try them.
	for _, k := range []string{"MQTT_TOPIC_PREFIX", "MQTT_QOS", "MQTT_RETAIN", "HASS_DISCOVERY", "HASS_PREFIX", "OWNTRACKS_ENABLE", "OWNTRACKS_USER", "OWNTRACKS_ACC", "BRIDGE_READ_ONLY", "HTTP_TILE_URL"} {
		if v, ok := envs[k]; ok {
			environ[k] = v
		}
	}
	s, err := loadSettings(environ, nil, func() (string, error) { return "demo", nil })
	if err != nil {
		return err
	}
	if s.HTTP.Addr != "" {
		if ln, err := net.Listen("tcp", s.HTTP.Addr); err != nil {
			fmt.Fprintf(stdout, "Status page port %s is taken; the demo runs without it (pick one with -http).\n\n", s.HTTP.Addr)
			s.HTTP.Addr = ""
		} else {
			ln.Close()
		}
	}
	host, port, _ := net.SplitHostPort(brk.Addr())
	sub := "mosquitto_sub -h " + host
	pub := "mosquitto_pub -h " + host
	if port != "1883" {
		sub += " -p " + port
		pub += " -p " + port
	}
	topics := topic.Layout{Prefix: s.MQTT.TopicPrefix}
	var b strings.Builder
	fmt.Fprintf(&b, "exlive2mqtt demo: embedded MQTT broker on %s, %s.\n\n", brk.Addr(), platform)
	fmt.Fprintf(&b, "See the data:\n  %s -t '%s' -v\n\n", sub, topics.All())
	fmt.Fprintf(&b, "Send a command to a vehicle and see its answer:\n  %s -t '%s' -m '{\"data\":\"STOP\",\"request_id\":\"42\"}'\n", pub, topics.Set(topic.KindCommand, topics.Level(vehicle)))
	if capture != nil && !capture.Answers(exlive.CmdVehicleCommand) {
		b.WriteString("  (the capture holds no answer to a command, so the replay gives none: the result says so after EXLIVE_COMMAND_TIMEOUT)\n")
	}
	b.WriteString("\n")
	if s.HTTP.Addr != "" {
		fmt.Fprintf(&b, "Status page with a live map: http://%s/\n\n", s.HTTP.Addr)
	}
	b.WriteString("Stop with Ctrl-C.\n\n")
	fmt.Fprint(stdout, b.String())
	return serve(ctx, s, log, nil, func(*bridge.Bridge) {})
}
