package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math"
	"strings"

	"github.com/exlive2mqtt/exlive2mqtt/exlive/exlivesim"
	"github.com/rs/zerolog"
)

// replayFlags are the flags that apply with -replay; the fleet's do not.
var replayFlags = []string{"replay", "speed", "listen", "log-format"}

// serveReplay serves the capture at path until ctx is done.
func serveReplay(ctx context.Context, fs *flag.FlagSet, path, listen string, speed float64, log zerolog.Logger, stdout io.Writer) error {
	if path == "" {
		return fmt.Errorf("-speed applies to -replay FILE only")
	}
	var other []string
	fs.Visit(func(f *flag.Flag) {
		for _, name := range replayFlags {
			if f.Name == name {
				return
			}
		}
		other = append(other, "-"+f.Name)
	})
	if len(other) > 0 {
		return fmt.Errorf("%s: not with -replay, which serves what the capture holds", strings.Join(other, ", "))
	}
	if speed < 0 || math.IsInf(speed, 0) || math.IsNaN(speed) {
		return fmt.Errorf("-speed %g: want 0 (as fast as possible) or more", speed)
	}
	capture, err := exlivesim.LoadCapture(path)
	if err != nil {
		return err
	}
	if capture.ClearPassword {
		log.Warn().Str("capture", path).Msg("the capture holds a password in clear text: mask it before you share the file")
	}
	rp := exlivesim.NewReplay(capture, exlivesim.ReplayConfig{Speed: speed, Log: &log})
	if err := rp.Listen(listen); err != nil {
		return err
	}
	log.Info().Str("addr", rp.Addr()).Str("capture", path).Float64("speed", speed).Msg("replay listening")
	fmt.Fprintf(stdout, "exlive-sim listening on %s, replaying %s (%s)\n", rp.Addr(), path, capture.Describe(speed))
	go func() {
		<-ctx.Done()
		rp.Close()
	}()
	return rp.Serve()
}
