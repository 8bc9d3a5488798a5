// Command exlive-sim is a simulated EXLIVE platform on a real TCP port, for
// trying exlive2mqtt without an account, for tests and for load.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/exlive2mqtt/exlive2mqtt/exlive"
	"github.com/exlive2mqtt/exlive2mqtt/exlive/exlivesim"
	"github.com/rs/zerolog"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	switch {
	case errors.Is(err, flag.ErrHelp):
	case err != nil:
		fmt.Fprintln(os.Stderr, "exlive-sim:", err)
		os.Exit(2)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("exlive-sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		listen    = fs.String("listen", ":1502", "`address` to listen on")
		vehicles  = fs.Int("vehicles", exlivesim.DefaultVehicles, "number of simulated vehicles")
		groups    = fs.Int("groups", 0, "number of groups the vehicles are spread over (0: one per 50 vehicles)")
		rate      = fs.Float64("rate", exlivesim.DefaultRate, "positions per second over the whole fleet, per connection; 0 none, -1 as fast as possible")
		count     = fs.Int("count", 0, "stop sending positions on a connection after this many (0: never)")
		user      = fs.String("user", exlivesim.DefaultUser, "account name to accept")
		pass      = fs.String("pass", exlivesim.DefaultPass, "account password to accept")
		literal   = fs.Bool("literal", false, "speak the specification's literal form (\"success\", heartbeats unanswered, compact UTF-8 frames one a line) instead of the live dialect")
		encoding  = fs.String("encoding", "", "text encoding of the frames sent: utf-8 or gbk (default: gbk, or utf-8 with -literal)")
		answer    = fs.String("answer", "", "the result 1004 and 1012 are answered with (default: succeed, or success with -literal)")
		uploads   = fs.Bool("answer-uploads", false, "answer 1003, 1005, 1006 and 1007 uploads with 8000 too")
		stamp     = fs.Bool("stamp", false, "put the send time (Unix ns) in each position's wstate, for latency measurement")
		split     = fs.Bool("split", false, "write frames in pieces of 1-7 bytes")
		backlog   = fs.Int("backlog", 0, "write this many positions ahead of every answer to 1008 and 1010, as a busy platform queues its answers")
		exclusive = fs.Bool("exclusive", false, "allow one session per account: a login closes the account's older session")
		idPrefix  = fs.String("id-prefix", "V", "vehicle ids are this prefix and a number")
		seed      = fs.Uint64("seed", 1, "seed of the fleet's routes")
		logFormat = fs.String("log-format", "console", "log format: console or json")
		replay    = fs.String("replay", "", "serve the platform's side of a capture (exlive2mqtt probe -capture `FILE`) instead of a fleet")
		speed     = fs.Float64("speed", 1, "with -replay: how many times faster than captured (0: as fast as possible)")
	)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: exlive-sim [flags]\n\nA simulated EXLIVE platform (TCP JSON, as on port 1502): it accepts the account\ngiven, lists its groups and vehicles, sends moving positions and answers commands.\nIt speaks the dialect live servers are seen to speak (\"succeed\", heartbeats\nanswered, GBK, multi-line frames back to back); -literal speaks the specification.\nWith -replay FILE it plays back the platform's side of a capture instead.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("exlive-sim takes no arguments, got %q", fs.Args())
	}
	log, err := newLogger(*logFormat, stderr)
	if err != nil {
		return err
	}
	if *replay != "" || flagSet(fs, "speed") {
		return serveReplay(ctx, fs, *replay, *listen, *speed, log, stdout)
	}
	enc := exlive.EncodingAuto // the form's
	if *encoding != "" {
		e, err := exlive.ParseEncoding(*encoding)
		if err != nil || e == exlive.EncodingAuto {
			return fmt.Errorf("-encoding %q: want utf-8 or gbk", *encoding)
		}
		enc = e
	}
	srv := exlivesim.New(exlivesim.Config{
		Accounts:      map[string]string{*user: *pass},
		Vehicles:      *vehicles,
		Groups:        *groups,
		IDPrefix:      *idPrefix,
		Rate:          *rate,
		Count:         *count,
		Literal:       *literal,
		Encoding:      enc,
		StampSent:     *stamp,
		AnswerUploads: *uploads,
		Backlog:       *backlog,
		Exclusive:     *exclusive,
		Seed:          *seed,
		Log:           &log,
	})
	srv.SetSplit(*split)
	if *answer != "" {
		srv.SetAnswer(*answer, 0, false)
	}
	if err := srv.Listen(*listen); err != nil {
		return err
	}
	form := "live dialect"
	if *literal {
		form = "specification's literal form"
	}
	log.Info().Str("addr", srv.Addr()).Int("vehicles", *vehicles).Float64("rate", *rate).Str("form", form).Msg("simulated platform listening")
	fmt.Fprintf(stdout, "exlive-sim listening on %s (account %s)\n", srv.Addr(), *user)
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	if err := srv.Serve(); err != nil {
		return err
	}
	return nil
}

// newLogger returns the logger -log-format names.
func newLogger(format string, stderr io.Writer) (zerolog.Logger, error) {
	switch strings.ToLower(format) {
	case "json":
		return zerolog.New(stderr).With().Timestamp().Logger(), nil
	case "console":
		return zerolog.New(zerolog.ConsoleWriter{Out: stderr, TimeFormat: time.TimeOnly}).With().Timestamp().Logger(), nil
	}
	return zerolog.Nop(), fmt.Errorf("-log-format %q: want console or json", format)
}

// flagSet reports whether the flag name was given.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}
