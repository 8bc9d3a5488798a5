//go:build linux

package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
)

// costBenchmarks are the Go benchmarks of the work each position (or each
// request) costs beside moving it: what the load tool's CPU figures hold
// but cannot tell apart. Each is run in this module with go test.
var costBenchmarks = []struct{ pkg, bench, what string }{
	{"bridge", "BenchmarkPlatformToQueue", "a position from the socket's bytes into the MQTT client's queue (read, decode, convert, payload, events)"},
	{"bridge", "BenchmarkPositionEvents", "position() of 100 000 vehicles, every EVENT_ and VEHICLE_ setting 0 (the engine still tracks each vehicle) and at their defaults"},
	{"events", "BenchmarkObserve", "the events engine alone, per position (fences=1000: with 1 000 geofences)"},
	{"bridge", "BenchmarkParseRequest", "a request's payload read with its bounded strings (bounded: one past its bound, refused)"},
	{"topic", "BenchmarkLevel", "a vehicle id to its topic level (topic.Layout.Level) under each MQTT_TOPIC_RULES"},
	{"topic", "BenchmarkAppendPosition", "a position's topic built per position (topic.Layout.AppendPosition) under each MQTT_TOPIC_RULES"},
	{"web", "BenchmarkAPIVehicles", "one /api/vehicles request of 100 000 vehicles from the cached list (per request)"},
	{"exlive/exlivesim", "BenchmarkPositions", "the simulated platform's part of the load tool's CPU in the bridge's phase, per position, a client that counts them included (moved: -prerender 0; prerendered: the default)"},
}

var benchLine = regexp.MustCompile(`^(Benchmark\S+?)(?:-\d+)?\s+\d+\s+([\d.]+) ns/op(.*)$`)

// costs runs costBenchmarks and prints what each costs.
func (b *bench) costs(ctx context.Context) error {
	if err := b.waitQuiet(ctx); err != nil {
		return err
	}
	fmt.Fprintf(b.out, "costs (Go benchmarks, -benchmem; cpu-ns/op where the benchmark reports it), load average %s:\n", loadAvg())
	cpu := map[string]float64{}
	for _, c := range costBenchmarks {
		cmd := exec.CommandContext(ctx, "go", "test", "-run", "^$", "-bench", "^"+c.bench+"$", "-benchmem",
			"github.com/exlive2mqtt/exlive2mqtt/"+c.pkg)
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("go test -bench %s: %w\n%s", c.bench, err, out)
		}
		fmt.Fprintf(b.out, "  %s %s: %s\n", c.pkg, c.bench, c.what)
		sc := bufio.NewScanner(bytes.NewReader(out))
		for sc.Scan() {
			m := benchLine.FindStringSubmatch(sc.Text())
			if m == nil {
				continue
			}
			fields := strings.Fields(m[3])
			metrics := []string{m[2] + " ns/op"}
			for i := 0; i+1 < len(fields); i += 2 {
				if fields[i+1] == "MB/s" {
					continue
				}
				metrics = append(metrics, fields[i]+" "+fields[i+1])
				if fields[i+1] == "cpu-ns/op" {
					cpu[m[1]], _ = strconv.ParseFloat(fields[i], 64)
				}
			}
			fmt.Fprintf(b.out, "    %-48s %s\n", m[1], strings.Join(metrics, "  "))
		}
	}
	if off, on := cpu["BenchmarkPositionEvents/off"], cpu["BenchmarkPositionEvents/defaults"]; off > 0 && on > 0 {
		fmt.Fprintf(b.out, "  => the default vehicle events cost %+.0f cpu-ns a position over their zero settings (%.0f against %.0f); the engine itself: events BenchmarkObserve\n", on-off, on, off)
	}
	fmt.Fprintf(b.out, "  load average after: %s\n\n", loadAvg())
	return nil
}
