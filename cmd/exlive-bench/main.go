//go:build linux

// Command exlive-bench measures exlive2mqtt against a bare MQTT publisher,
// side by side, in one run: it starts the simulated platform in-process,
// runs the real bridge binary as its own process between it and a real
// broker, counts every position at a subscriber, then has a plain
// paho.mqtt.golang publisher (exlive-bench publisher, also its own process)
// send the very (topic, payload) pairs the bridge published. It prints both
// rates, both CPU costs per message and their ratios, the latency from the
// platform's write to the subscriber, and peak RSS. BENCHMARKS.md says how
// to run it and what it found.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/exlive2mqtt/exlive2mqtt/exlive/exlivesim"
	"github.com/exlive2mqtt/exlive2mqtt/internal/brokertest"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "publisher" {
		if err := publisher(os.Args[2:], os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "exlive-bench publisher:", err)
			os.Exit(1)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	switch {
	case errors.Is(err, flag.ErrHelp):
	case err != nil:
		fmt.Fprintln(os.Stderr, "exlive-bench:", err)
		os.Exit(1)
	}
}

type options struct {
	broker        string
	privateBroker bool
	bridgeBin     string
	qos           []int
	positions     int
	vehicles      int
	inflight      int
	latencyRate   float64
	latencyCount  int
	memVehicles   int
	duration      time.Duration
	durationRate  float64
	sample        time.Duration
	runs          map[string]bool
	cpuProfileDir string
	memProfileDir string
	waitLoad      float64
	waitMax       time.Duration
	keepTemp      bool
	bridgeEnv     []string
	literal       bool
	prerender     int
}

// bench is what every run shares.
type bench struct {
	o         options
	out       io.Writer
	tmp       string
	self      string // this executable, for the publisher subcommand
	bridgeBin string
	brokerURL string
	brokerPID int
	prefix    string
	sub       *subscriber
	results   []result
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("exlive-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	var qos, runs string
	fs.StringVar(&o.broker, "broker", "tcp://127.0.0.1:1883", "broker `URL` (ignored with -private-broker)")
	fs.BoolVar(&o.privateBroker, "private-broker", false, "start a private mosquitto with max_queued_messages 0 on a free port instead")
	fs.StringVar(&o.bridgeBin, "bridge", "", "exlive2mqtt `binary` to measure (default: go build ./cmd/exlive2mqtt into a temporary directory)")
	fs.StringVar(&qos, "qos", "1,0", "QoS levels to run, in order")
	fs.IntVar(&o.positions, "positions", 100_000, "positions per throughput run")
	fs.IntVar(&o.vehicles, "vehicles", 1000, "vehicles in the throughput and latency runs")
	fs.IntVar(&o.inflight, "inflight", 1000, "in-flight window of both the bridge (MQTT_INFLIGHT) and the bare publisher")
	fs.Float64Var(&o.latencyRate, "latency-rate", 2000, "positions a second in the latency run")
	fs.IntVar(&o.latencyCount, "latency-positions", 20_000, "positions in the latency run")
	fs.IntVar(&o.memVehicles, "mem-vehicles", 100_000, "vehicles (one position each) in the memory run")
	fs.DurationVar(&o.duration, "duration", 0, "also run the bridge this long at -duration-rate, sampling its RSS (e.g. 10m)")
	fs.Float64Var(&o.durationRate, "duration-rate", 2000, "positions a second in the -duration run")
	fs.DurationVar(&o.sample, "sample", 5*time.Second, "RSS sampling interval of the -duration run")
	fs.StringVar(&runs, "runs", "throughput,latency,memory,costs", "runs to do: throughput, latency, memory, costs (and duration when -duration is set)")
	fs.StringVar(&o.cpuProfileDir, "cpuprofile", "", "`dir`ectory for a CPU profile of the bridge in each run (EXLIVE2MQTT_CPUPROFILE)")
	fs.StringVar(&o.memProfileDir, "memprofile", "", "`dir`ectory for a heap profile of the bridge at the end of each run (EXLIVE2MQTT_MEMPROFILE)")
	fs.Float64Var(&o.waitLoad, "wait-load", 0, "before each run, wait until the 1-minute load average is below this (0: do not wait)")
	fs.DurationVar(&o.waitMax, "wait-max", time.Hour, "longest to wait for -wait-load")
	fs.BoolVar(&o.keepTemp, "keep", false, "keep the temporary directory (bridge logs, pairs files)")
	fs.BoolVar(&o.literal, "literal", false, "the platform speaks the specification's literal form (compact UTF-8 frames, one a line) instead of the live dialect (GBK, multi-line frames back to back)")
	fs.IntVar(&o.prerender, "prerender", 20_000, "positions the platform prepares before each throughput, latency and duration run (rounded up to whole laps of the fleet) and sends copies of, only the send time patched in, so that it takes little CPU from the bridge; 0: each position moved and encoded as it is sent, as before (the memory run always does)")
	fs.Func("bridge-env", "`KEY=VALUE` to add to the bridge's environment (repeatable), e.g. GOMEMLIMIT=48MiB", func(kv string) error {
		if !strings.Contains(kv, "=") {
			return errors.New("want KEY=VALUE")
		}
		o.bridgeEnv = append(o.bridgeEnv, kv)
		return nil
	})
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: exlive-bench [flags]\n\nMeasures exlive2mqtt against a bare paho publisher on a real broker. See BENCHMARKS.md.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	for q := range strings.SplitSeq(qos, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(q))
		if err != nil || n < 0 || n > 1 {
			return fmt.Errorf("-qos %q: want a list of 0 and 1", qos)
		}
		o.qos = append(o.qos, n)
	}
	if o.prerender < 0 {
		return fmt.Errorf("-prerender %d: want 0 (off) or a number of positions", o.prerender)
	}
	o.runs = map[string]bool{}
	for r := range strings.SplitSeq(runs, ",") {
		o.runs[strings.TrimSpace(r)] = true
	}
	if o.duration > 0 {
		o.runs["duration"] = true
	}

	b := &bench{o: o, out: stdout, prefix: "exlive-bench"}
	var err error
	if b.tmp, err = os.MkdirTemp("", "exlive-bench-"); err != nil {
		return err
	}
	if o.keepTemp {
		fmt.Fprintln(stdout, "temporary directory:", b.tmp)
	} else {
		defer os.RemoveAll(b.tmp)
	}
	if b.self, err = os.Executable(); err != nil {
		return err
	}
	if b.bridgeBin = o.bridgeBin; b.bridgeBin == "" {
		b.bridgeBin = filepath.Join(b.tmp, "exlive2mqtt")
		build := exec.CommandContext(ctx, "go", "build", "-o", b.bridgeBin, "github.com/exlive2mqtt/exlive2mqtt/cmd/exlive2mqtt")
		build.Stdout, build.Stderr = stderr, stderr
		if err := build.Run(); err != nil {
			return fmt.Errorf("go build exlive2mqtt: %w", err)
		}
	}
	b.brokerURL = o.broker
	if o.privateBroker {
		stopBroker, url, pid, err := startMosquitto(b.tmp, stderr)
		if err != nil {
			return err
		}
		defer stopBroker()
		b.brokerURL, b.brokerPID = url, pid
	} else if u, err := url.Parse(o.broker); err == nil {
		if port, err := strconv.Atoi(u.Port()); err == nil && (u.Hostname() == "127.0.0.1" || u.Hostname() == "localhost") {
			b.brokerPID = listenerPID(port)
		}
	}
	b.header()
	if b.sub, err = newSubscriber(b.brokerURL, b.prefix, fmt.Sprintf("exlive-bench-sub-%d", os.Getpid())); err != nil {
		return err
	}
	defer b.sub.close()

	if o.runs["throughput"] {
		for _, q := range o.qos {
			if err := b.throughput(ctx, q); err != nil {
				return err
			}
		}
	}
	if o.runs["latency"] {
		for _, q := range o.qos {
			if err := b.paced(ctx, "latency", q, o.vehicles, o.latencyRate, o.latencyCount, 0); err != nil {
				return err
			}
		}
	}
	if o.runs["memory"] && o.memVehicles > 0 {
		if err := b.memory(ctx); err != nil {
			return err
		}
	}
	if o.runs["costs"] {
		if err := b.costs(ctx); err != nil {
			return err
		}
	}
	if o.runs["duration"] && o.duration > 0 {
		n := int(o.duration.Seconds() * o.durationRate)
		if err := b.paced(ctx, "duration", o.qos[0], o.vehicles, o.durationRate, n, o.sample); err != nil {
			return err
		}
	}
	b.summary()
	return nil
}

func (b *bench) header() {
	fmt.Fprintf(b.out, "machine: %d CPUs, %s\n", runtime.NumCPU(), cpuModel())
	fmt.Fprintf(b.out, "go: %s; broker: %s (%s, pid %d); bridge: %s\n", runtime.Version(), b.brokerURL, brokerVersion(b.brokerURL), b.brokerPID, b.bridgeBin)
	fmt.Fprintf(b.out, "platform: %s\n", b.platformForm())
	fmt.Fprintf(b.out, "load average at start: %s\n\n", loadAvg())
}

// platformForm says how the simulated platform makes its positions, which
// sets how much CPU the load tool takes from the bridge in its phase.
func (b *bench) platformForm() string {
	if b.o.prerender == 0 {
		return "each position moved and encoded as it is sent (-prerender 0)"
	}
	return fmt.Sprintf("%d positions prerendered (-prerender; throughput, latency and duration runs), copies sent with the send time patched in", b.o.prerender)
}

// waitQuiet waits, when asked to, for the machine to calm down.
func (b *bench) waitQuiet(ctx context.Context) error {
	if b.o.waitLoad <= 0 {
		return nil
	}
	deadline := time.Now().Add(b.o.waitMax)
	for load1() >= b.o.waitLoad {
		if time.Now().After(deadline) {
			fmt.Fprintf(b.out, "load average still %s after %s: measuring anyway\n", loadAvg(), b.o.waitMax)
			return nil
		}
		fmt.Fprintf(b.out, "load average %s: waiting for < %.2f\n", loadAvg(), b.o.waitLoad)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(30 * time.Second):
		}
	}
	return nil
}

// result is one measured phase.
type result struct {
	run      string // throughput, latency, memory, duration
	who      string // bridge or bare
	qos      int
	vehic    int
	want, n  int
	span     time.Duration // first message to last, at the subscriber
	cpu      time.Duration // of the measured process, over the phase
	broker   time.Duration // of the broker, over the phase (0: unknown)
	tool     time.Duration // of this process (the platform and the subscriber), over the phase
	others   float64       // cores used by everything else, on average
	hwmKiB   int64
	readyKiB int64   // peak RSS before the positions (login, inventory)
	lat      []int64 // sorted, ns
	load     string  // load average at the end of the phase
	rss      []rssSample
	missing  int
}

type rssSample struct {
	at  time.Duration
	kib int64
}

func (r *result) rate() float64 {
	if r.n < 2 || r.span <= 0 {
		return 0
	}
	return float64(r.n-1) / r.span.Seconds()
}

func (r *result) usPerMsg() float64 {
	if r.n == 0 {
		return 0
	}
	return float64(r.cpu.Microseconds()) / float64(r.n)
}

func (r *result) pct(p int) time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	return time.Duration(r.lat[min(len(r.lat)*p/100, len(r.lat)-1)])
}

// meter samples the CPU of a process, of the broker, of this process and of
// the whole machine, so a phase can tell its own cost from other load.
type meter struct {
	pid                  int
	brokerPID            int
	at                   time.Time
	cpu, broker, me, all time.Duration
}

func (b *bench) sample(pid int) meter {
	m := meter{pid: pid, brokerPID: b.brokerPID, at: time.Now(), all: busyTime()}
	m.cpu, _ = cpuTime(pid)
	m.me, _ = cpuTime(os.Getpid())
	if b.brokerPID > 0 {
		m.broker, _ = cpuTime(b.brokerPID)
	}
	return m
}

func (b *bench) finish(r *result, m0 meter, ph *phase) {
	m1 := b.sample(m0.pid)
	r.cpu = m1.cpu - m0.cpu
	r.broker = m1.broker - m0.broker
	r.tool = m1.me - m0.me
	others := (m1.all - m0.all) - r.cpu - r.broker - (m1.me - m0.me)
	r.others = max(others.Seconds(), 0) / m1.at.Sub(m0.at).Seconds()
	r.hwmKiB, _ = memKiB(m0.pid, "VmHWM")
	r.load = loadAvg()
	r.n = int(ph.count.Load())
	r.missing = max(r.want-r.n, 0)
	r.span = time.Duration(ph.last.Load() - ph.first.Load())
}

// throughput runs the bridge flat out, then the bare publisher with the
// pairs the bridge published.
func (b *bench) throughput(ctx context.Context, qos int) error {
	if err := b.waitQuiet(ctx); err != nil {
		return err
	}
	rb, ph, err := b.bridgeRun(ctx, "throughput", qos, b.o.vehicles, -1, b.o.positions, 0, true)
	if err != nil {
		return err
	}
	b.report(rb)
	defer clearRetained(b.brokerURL, "exlive-bench-clear", ph.topicList())
	rp, err := b.bareRun(ctx, qos, ph.pairs)
	if err != nil {
		return err
	}
	b.report(rp)
	fmt.Fprintf(b.out, "  => QoS %d: CPU/msg bridge/bare = %.2f×, rate bridge/bare = %.2f×\n\n", qos, rb.usPerMsg()/rp.usPerMsg(), rb.rate()/rp.rate())
	return nil
}

func (b *bench) memory(ctx context.Context) error {
	if err := b.waitQuiet(ctx); err != nil {
		return err
	}
	r, ph, err := b.bridgeRun(ctx, "memory", 1, b.o.memVehicles, -1, b.o.memVehicles, 0, false)
	if err != nil {
		return err
	}
	b.report(r)
	fmt.Fprintln(b.out)
	return clearRetained(b.brokerURL, "exlive-bench-clear", ph.topicList())
}

func (b *bench) paced(ctx context.Context, run string, qos, vehicles int, rate float64, n int, sample time.Duration) error {
	if err := b.waitQuiet(ctx); err != nil {
		return err
	}
	r, ph, err := b.bridgeRun(ctx, run, qos, vehicles, rate, n, sample, false)
	if err != nil {
		return err
	}
	b.report(r)
	fmt.Fprintln(b.out)
	return clearRetained(b.brokerURL, "exlive-bench-clear", ph.topicList())
}

// bridgeRun starts a platform and the bridge, waits until the bridge is
// logged in and has reached the broker, then lets n positions flow and
// measures until the subscriber has them all.
func (b *bench) bridgeRun(ctx context.Context, run string, qos, vehicles int, rate float64, n int, sample time.Duration, keep bool) (*result, *phase, error) {
	prerender := b.o.prerender
	if run == "memory" {
		// One position a vehicle: nothing to send twice, and the memory
		// run's numbers stay comparable with those before prerendering.
		prerender = 0
	}
	sim := exlivesim.New(exlivesim.Config{
		Vehicles: vehicles, Rate: rate, Count: n, StampSent: true, Paused: true, Seed: 1,
		Literal: b.o.literal, Prerender: prerender,
	})
	if err := sim.Start("127.0.0.1:0"); err != nil {
		return nil, nil, err
	}
	defer sim.Close()
	since := b.sub.mark(b.sub.topics.Vehicles())
	name := fmt.Sprintf("%s-qos%d", run, qos)
	p, err := b.startBridge(ctx, name, sim.Addr(), qos)
	if err != nil {
		return nil, nil, err
	}
	defer p.stop()
	// The inventory is published once the session is logged in; it reaches
	// the subscriber once the bridge has connected to the broker.
	if err := b.sub.waitBridge(b.sub.topics.Vehicles(), since, 2*time.Minute); err != nil {
		return nil, nil, fmt.Errorf("%s: bridge not ready: %w\n%s", name, err, p.logTail())
	}
	if sim.Connections() != 1 {
		return nil, nil, fmt.Errorf("%s: %d platform connections, want 1", name, sim.Connections())
	}
	ph := newPhase(n, keep)
	b.sub.start(ph)
	r := &result{run: run, who: "bridge", qos: qos, vehic: vehicles, want: n}
	r.readyKiB, _ = memKiB(p.pid, "VmHWM") // logged in, inventory published
	m0 := b.sample(p.pid)
	sim.SetPaused(false)
	var werr error
	if sample > 0 {
		werr = b.sampleRSS(ctx, r, p.pid, ph, sample)
	} else {
		werr = ph.wait(15 * time.Second)
	}
	time.Sleep(100 * time.Millisecond) // the last acknowledgements
	b.finish(r, m0, ph)
	b.sub.stop()
	slices.Sort(ph.latencies)
	r.lat = ph.latencies
	if werr != nil {
		fmt.Fprintf(b.out, "%s: %v\n%s", name, werr, p.logTail())
	}
	if err := p.stop(); err != nil {
		fmt.Fprintf(b.out, "%s: bridge exit: %v\n%s", name, err, p.logTail())
	}
	return r, ph, nil
}

// sampleRSS waits for a phase, sampling the bridge's RSS.
func (b *bench) sampleRSS(ctx context.Context, r *result, pid int, ph *phase, every time.Duration) error {
	start := time.Now()
	t := time.NewTicker(every)
	defer t.Stop()
	lastCount, lastChange := int64(-1), time.Now()
	for {
		select {
		case <-ph.done:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		kib, _ := memKiB(pid, "VmRSS")
		r.rss = append(r.rss, rssSample{time.Since(start), kib})
		fmt.Fprintf(b.out, "  %6.0fs  RSS %6.1f MiB  %d positions  load %s\n", time.Since(start).Seconds(), float64(kib)/1024, ph.count.Load(), loadAvg())
		if n := ph.count.Load(); n != lastCount {
			lastCount, lastChange = n, time.Now()
		} else if time.Since(lastChange) > 15*time.Second {
			return fmt.Errorf("stalled: %d of %d messages", n, ph.want)
		}
	}
}

// bareRun has the plain publisher send pairs, measured the same way.
func (b *bench) bareRun(ctx context.Context, qos int, pairs []pair) (*result, error) {
	file := filepath.Join(b.tmp, fmt.Sprintf("pairs-qos%d", qos))
	if err := writePairs(file, pairs); err != nil {
		return nil, err
	}
	args := []string{"publisher", "-broker", b.brokerURL, "-qos", strconv.Itoa(qos),
		"-inflight", strconv.Itoa(b.o.inflight), "-pairs", file, "-client-id", "exlive-bench-publisher"}
	if b.o.cpuProfileDir != "" {
		args = append(args, "-cpuprofile", filepath.Join(b.o.cpuProfileDir, fmt.Sprintf("bare-qos%d.pprof", qos)))
	}
	cmd := exec.CommandContext(ctx, b.self, args...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = b.out
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	defer cmd.Wait()
	defer stdin.Close()
	lines := bufio.NewScanner(stdout)
	if !lines.Scan() || lines.Text() != "ready" {
		return nil, fmt.Errorf("publisher did not get ready: %q", lines.Text())
	}
	ph := newPhase(len(pairs), false)
	b.sub.start(ph)
	r := &result{run: "throughput", who: "bare", qos: qos, want: len(pairs)}
	m0 := b.sample(cmd.Process.Pid)
	io.WriteString(stdin, "go\n")
	if !lines.Scan() || !strings.HasPrefix(lines.Text(), "done") {
		return nil, fmt.Errorf("publisher did not finish: %q", lines.Text())
	}
	if f := strings.Fields(lines.Text()); len(f) == 3 && f[2] != "0" {
		fmt.Fprintf(b.out, "publisher: %s tokens failed\n", f[2])
	}
	werr := ph.wait(15 * time.Second)
	time.Sleep(100 * time.Millisecond)
	b.finish(r, m0, ph)
	b.sub.stop()
	slices.Sort(ph.latencies)
	if werr != nil {
		fmt.Fprintf(b.out, "bare publisher: %v\n", werr)
	}
	return r, nil
}

func (b *bench) report(r *result) {
	b.results = append(b.results, *r)
	fmt.Fprintf(b.out, "%-10s %-6s QoS %d  %7d/%d msgs  %8.0f msg/s  CPU %6.2f µs/msg", r.run, r.who, r.qos, r.n, r.want, r.rate(), r.usPerMsg())
	fmt.Fprintf(b.out, " (broker %5.2f, load tool %5.2f)", float64(r.broker.Microseconds())/float64(max(r.n, 1)), float64(r.tool.Microseconds())/float64(max(r.n, 1)))
	fmt.Fprintf(b.out, "  peak RSS %5.1f MiB", float64(r.hwmKiB)/1024)
	if r.readyKiB > 0 {
		fmt.Fprintf(b.out, " (%.1f before positions)", float64(r.readyKiB)/1024)
	}
	if r.who == "bridge" {
		fmt.Fprintf(b.out, "  latency p50 %s p99 %s max %s", ms(r.pct(50)), ms(r.pct(99)), ms(r.pct(100)))
	}
	fmt.Fprintf(b.out, "  others %.2f cores  load %s\n", r.others, r.load)
	if r.missing > 0 {
		fmt.Fprintf(b.out, "  MISSING: %d messages never reached the subscriber\n", r.missing)
	}
	if len(r.rss) > 0 {
		warm, lo, hi, slope := rssTrend(r.rss)
		fmt.Fprintf(b.out, "  RSS after %s: first %.1f MiB, last %.1f MiB, min %.1f, max %.1f, trend %+.3f MiB/min over %d samples\n",
			warm, float64(r.rss[0].kib)/1024, float64(r.rss[len(r.rss)-1].kib)/1024, lo, hi, slope, len(r.rss))
	}
}

// rssTrend returns the least and most RSS after a warm-up (the first
// minute, or the first third of a shorter run), and the slope of a
// least-squares line through them, in MiB a minute.
func rssTrend(s []rssSample) (warm time.Duration, lo, hi, slope float64) {
	warm = min(time.Minute, s[len(s)-1].at/3)
	var xs, ys []float64
	lo = 1e18
	for _, p := range s {
		if p.at < warm {
			continue
		}
		y := float64(p.kib) / 1024
		xs, ys = append(xs, p.at.Minutes()), append(ys, y)
		lo, hi = min(lo, y), max(hi, y)
	}
	if len(xs) < 2 {
		return warm, lo, hi, 0
	}
	var mx, my float64
	for i := range xs {
		mx, my = mx+xs[i], my+ys[i]
	}
	mx, my = mx/float64(len(xs)), my/float64(len(xs))
	var num, den float64
	for i := range xs {
		num += (xs[i] - mx) * (ys[i] - my)
		den += (xs[i] - mx) * (xs[i] - mx)
	}
	return warm, lo, hi, num / den
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d.Microseconds())/1000) }

// summary prints the results as the Markdown table of BENCHMARKS.md.
func (b *bench) summary() {
	fmt.Fprintf(b.out, "\n| run | QoS | who | msgs | msg/s | CPU µs/msg | ratio CPU | ratio rate | p50 | p99 | peak RSS MiB | others (cores) | load avg |\n")
	fmt.Fprintf(b.out, "|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for i, r := range b.results {
		ratioCPU, ratioRate := "", ""
		if r.who == "bare" && i > 0 && b.results[i-1].who == "bridge" {
			br := b.results[i-1]
			ratioCPU = fmt.Sprintf("**%.2f×**", br.usPerMsg()/r.usPerMsg())
			ratioRate = fmt.Sprintf("**%.2f×**", br.rate()/r.rate())
		}
		p50, p99 := "", ""
		if r.who == "bridge" {
			p50, p99 = ms(r.pct(50)), ms(r.pct(99))
		}
		name := r.run
		if r.run == "memory" || r.vehic != b.o.vehicles && r.who == "bridge" {
			name += fmt.Sprintf(" (%d vehicles)", r.vehic)
		}
		fmt.Fprintf(b.out, "| %s | %d | %s | %d/%d | %.0f | %.2f | %s | %s | %s | %s | %.1f | %.2f | %s |\n",
			name, r.qos, r.who, r.n, r.want, r.rate(), r.usPerMsg(), ratioCPU, ratioRate, p50, p99, float64(r.hwmKiB)/1024, r.others, r.load)
	}
	fmt.Fprintf(b.out, "\nplatform: %s\n", b.platformForm())
}

// bridgeProc is a running exlive2mqtt.
type bridgeProc struct {
	cmd     *exec.Cmd
	pid     int
	logPath string
	done    chan error
	stopped bool
	err     error
}

func (b *bench) startBridge(ctx context.Context, name, platform string, qos int) (*bridgeProc, error) {
	env := []string{}
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(k, "EXLIVE") && !strings.HasPrefix(k, "MQTT_") && !strings.HasPrefix(k, "BRIDGE_") &&
			!strings.HasPrefix(k, "HASS_") && !strings.HasPrefix(k, "OWNTRACKS_") && !strings.HasPrefix(k, "HTTP_") && !strings.HasPrefix(k, "LOG_") {
			env = append(env, kv)
		}
	}
	env = append(env,
		"EXLIVE_ADDR="+platform,
		"EXLIVE_USER="+exlivesim.DefaultUser,
		"EXLIVE_PASS="+exlivesim.DefaultPass,
		"EXLIVE_INVENTORY_QUIET=500ms",
		"MQTT_URL="+b.brokerURL,
		"MQTT_CLIENT_ID=exlive-bench-bridge",
		"MQTT_TOPIC_PREFIX="+b.prefix,
		"MQTT_QOS="+strconv.Itoa(qos),
		"MQTT_INFLIGHT="+strconv.Itoa(b.o.inflight),
		"HTTP_ADDR=",
		"LOG_LEVEL=warn",
	)
	env = append(env, b.o.bridgeEnv...)
	if b.o.cpuProfileDir != "" {
		env = append(env, "EXLIVE2MQTT_CPUPROFILE="+filepath.Join(b.o.cpuProfileDir, name+".pprof"))
	}
	if b.o.memProfileDir != "" {
		env = append(env, "EXLIVE2MQTT_MEMPROFILE="+filepath.Join(b.o.memProfileDir, name+".heap.pprof"))
	}
	logPath := filepath.Join(b.tmp, name+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.Command(b.bridgeBin)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", b.bridgeBin, err)
	}
	p := &bridgeProc{cmd: cmd, pid: cmd.Process.Pid, logPath: logPath, done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait() }()
	return p, nil
}

// stop ends the bridge as docker would: SIGTERM, then SIGKILL after 15 s.
func (p *bridgeProc) stop() error {
	if p.stopped {
		return p.err
	}
	p.stopped = true
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case p.err = <-p.done:
	case <-time.After(15 * time.Second):
		p.cmd.Process.Kill()
		p.err = errors.Join(errors.New("killed after 15 s"), <-p.done)
	}
	return p.err
}

func (p *bridgeProc) logTail() string {
	b, _ := os.ReadFile(p.logPath)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// startMosquitto starts a private broker that queues without limit, so a
// slow subscriber can never lose a message to the broker's default cap. Its
// log (errors and warnings) goes to stderr when it stops.
func startMosquitto(dir string, stderr io.Writer) (stop func(), url string, pid int, err error) {
	bin, err := brokertest.LookMosquitto()
	if err != nil {
		return nil, "", 0, err
	}
	m, err := brokertest.RunMosquitto(bin, dir, "persistence false")
	if err != nil {
		return nil, "", 0, fmt.Errorf("private %w", err)
	}
	stop = func() {
		m.Kill()
		io.WriteString(stderr, m.Log())
	}
	return stop, m.URL(), m.PID(), nil
}

// brokerVersion asks the broker ($SYS/broker/version), or the installed
// mosquitto when the broker does not say.
func brokerVersion(url string) string {
	got := make(chan string, 1)
	opts := paho.NewClientOptions().AddBroker(url).SetClientID(fmt.Sprintf("exlive-bench-version-%d", os.Getpid())).SetAutoReconnect(false)
	pc := paho.NewClient(opts)
	if tok := pc.Connect(); tok.WaitTimeout(5*time.Second) && tok.Error() == nil {
		pc.Subscribe("$SYS/broker/version", 0, func(_ paho.Client, m paho.Message) {
			select {
			case got <- string(m.Payload()):
			default:
			}
		})
		defer pc.Disconnect(100)
		select {
		case v := <-got:
			return v
		case <-time.After(2 * time.Second):
		}
	}
	out, _ := exec.Command("mosquitto", "-h").CombinedOutput()
	line, _, _ := strings.Cut(string(out), "\n")
	return strings.TrimSpace(line)
}
