// Command exlive-soak runs the bridge for a long time under load and faults
// and checks that it loses nothing and grows nothing. In one process it
// starts the simulated platform, sending positions at a steady rate, each
// numbered per vehicle; a private Mosquitto (the mosquitto program, with its
// own port, directory and persistence); the real bridge between them; and a
// counting subscriber with a persistent session. The platform speaks the
// live dialect (GBK, multi-line frames, heartbeats answered). Every
// -fault-every it injects a fault, in turn: the platform drops the
// connection, the broker restarts (SIGTERM, or SIGKILL with -kill), or the
// platform link dies without a word (the connection stays open and silent,
// which the bridge notices when its heartbeats, every -heartbeat, go
// unanswered). At the end it stops the
// positions, lets the bridge deliver what it holds, and reports positions
// sent, read by the bridge and delivered, where any were lost, and the
// process's resident memory and goroutines at the start and the end.
//
//	go run ./cmd/exlive-soak -duration 10m -rate 2000
//
// It exits 1 when the bridge lost a position it had read (with -kill, when it
// dropped one: Mosquitto's own losses cannot be told apart), or when memory
// or goroutines grew.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/exlive2mqtt/exlive2mqtt/bridge"
	"github.com/exlive2mqtt/exlive2mqtt/exlive"
	"github.com/exlive2mqtt/exlive2mqtt/exlive/exlivesim"
	"github.com/exlive2mqtt/exlive2mqtt/internal/brokertest"
	"github.com/exlive2mqtt/exlive2mqtt/mqtt"
	"github.com/exlive2mqtt/exlive2mqtt/topic"
	"github.com/rs/zerolog"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	switch {
	case errors.Is(err, flag.ErrHelp):
	case err != nil:
		fmt.Fprintln(os.Stderr, "exlive-soak:", err)
		os.Exit(1)
	}
}

type options struct {
	duration   time.Duration
	rate       float64
	vehicles   int
	faultEvery time.Duration
	brokerDown time.Duration
	kill       bool
	mosquitto  string
	sample     time.Duration
	warmup     time.Duration
	keep       bool
	heartbeat  time.Duration
}

func run(ctx context.Context, args []string, out io.Writer) error {
	var o options
	fs := flag.NewFlagSet("exlive-soak", flag.ContinueOnError)
	fs.DurationVar(&o.duration, "duration", 10*time.Minute, "how long positions flow")
	fs.Float64Var(&o.rate, "rate", 2000, "positions a second over the whole fleet")
	fs.IntVar(&o.vehicles, "vehicles", 200, "fleet size")
	fs.DurationVar(&o.faultEvery, "fault-every", 30*time.Second, "how often a fault comes: a platform drop, a broker restart or a dead platform link, in turn, a third of a period apart")
	fs.DurationVar(&o.heartbeat, "heartbeat", 2*time.Second, "the bridge's EXLIVE_HEARTBEAT: a dead link is noticed after three unanswered")
	fs.DurationVar(&o.brokerDown, "broker-down", 2*time.Second, "how long the broker stays down at each restart")
	fs.BoolVar(&o.kill, "kill", false, "restart the broker with SIGKILL, not SIGTERM (Mosquitto then loses what it had not saved: expect broker-side loss)")
	fs.StringVar(&o.mosquitto, "mosquitto", "mosquitto", "the mosquitto program")
	fs.DurationVar(&o.sample, "sample", 10*time.Second, "how often to print a sample")
	fs.DurationVar(&o.warmup, "warmup", time.Minute, "when to take the starting memory and goroutine counts")
	fs.BoolVar(&o.keep, "keep", false, "keep the working directory (broker and bridge logs)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.rate <= 0 || o.vehicles < 1 || o.duration <= 0 || o.faultEvery <= 0 || o.heartbeat <= 0 {
		return errors.New("-rate, -vehicles, -duration, -fault-every and -heartbeat must be more than 0")
	}
	if o.faultEvery/3 <= 4*o.heartbeat {
		// Else the next fault comes before a dead link is noticed.
		return fmt.Errorf("-fault-every %s: want more than 12 heartbeats (-heartbeat %s)", o.faultEvery, o.heartbeat)
	}
	bin, err := exec.LookPath(o.mosquitto)
	if err != nil {
		return fmt.Errorf("mosquitto: %w (apt-get install mosquitto, or -mosquitto PATH)", err)
	}
	dir, err := os.MkdirTemp("", "exlive-soak-")
	if err != nil {
		return err
	}
	s := &soak{o: o, out: out, dir: dir}
	err = s.run(ctx, bin)
	if err != nil || o.keep {
		fmt.Fprintf(out, "logs kept in %s\n", dir)
	} else {
		os.RemoveAll(dir)
	}
	return err
}

type soak struct {
	o      options
	out    io.Writer
	dir    string
	broker *brokertest.Mosquitto
	sim    *exlivesim.Server
	bridge *bridge.Bridge
	sub    *counter
	begin  time.Time

	drops, restarts, stalls int
	reconnects              []time.Duration // broker link back after each broker start
}

// sample is one look at the run.
type sample struct {
	at                                time.Duration
	sent, read, delivered, dupes      uint64
	queued, inflight                  float64
	rssKiB, heapKiB                   int64
	goroutines                        int
	sessionDisconnects, mqttReconnect float64
}

func (s *soak) run(ctx context.Context, bin string) error {
	o := s.o
	var err error
	// A private Mosquitto on its own port and directory, saving often, and
	// logging to the directory the run keeps when it fails.
	s.broker, err = brokertest.RunMosquitto(bin, s.dir, "persistence true\npersistence_location {{dir}}/\n"+
		"autosave_interval 10\nlog_dest file {{dir}}/mosquitto.log\nlog_type notice")
	if err != nil {
		return err
	}
	defer s.broker.Kill()

	s.sim = exlivesim.New(exlivesim.Config{Vehicles: o.vehicles, Rate: o.rate, Sequence: true, Paused: true, Seed: 1})
	if err := s.sim.Start("127.0.0.1:0"); err != nil {
		return err
	}
	defer s.sim.Close()

	prefix := fmt.Sprintf("soak-%d", rand.Uint32())
	if s.sub, err = newCounter(s.broker.URL(), topic.Layout{Prefix: prefix}.PositionFilter()); err != nil {
		return err
	}
	defer s.sub.close()

	logFile, err := os.Create(filepath.Join(s.dir, "bridge.log"))
	if err != nil {
		return err
	}
	defer logFile.Close()
	ex := exlive.Defaults()
	ex.Addr, ex.User, ex.Pass = s.sim.Addr(), exlivesim.DefaultUser, exlivesim.DefaultPass
	ex.RetryMax = 5 * time.Second
	ex.Heartbeat = s.o.heartbeat
	mq := mqtt.Defaults()
	mq.URL, mq.ClientID, mq.TopicPrefix = s.broker.URL(), "exlive-soak-bridge", prefix
	if err := ex.Validate(); err != nil {
		return err
	}
	if err := mq.Validate(nil); err != nil {
		return err
	}
	s.bridge, err = bridge.New(bridge.Options{
		Bridge: bridge.Defaults(), Exlive: ex, MQTT: mq,
		Hass:      bridge.HassConfig{Prefix: "homeassistant"},
		OwnTracks: bridge.OwnTracksConfig{User: "exlive"},
		Version:   "soak",
		Log:       zerolog.New(logFile).Level(zerolog.WarnLevel).With().Timestamp().Logger(),
	})
	if err != nil {
		return err
	}
	bctx, stopBridge := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.bridge.Run(bctx, 8*time.Second) }()
	defer func() {
		stopBridge()
		<-done
	}()
	if err := waitUntil(ctx, 30*time.Second, func() bool { ok, _ := s.bridge.Ready(); return ok }); err != nil {
		return fmt.Errorf("bridge not ready: %w", err)
	}

	fmt.Fprintf(s.out, "soak: %s at %.0f positions/s over %d vehicles; a platform drop, a broker restart (%s, down %s) and a dead platform link (heartbeat %s) every %s\n",
		o.duration, o.rate, o.vehicles, s.signalName(), o.brokerDown, o.heartbeat, o.faultEvery)
	fmt.Fprintf(s.out, "%8s %9s %9s %9s %6s %7s %8s %8s %8s %5s\n", "t", "sent", "read", "delivered", "dupes", "queued", "inflight", "rss_MiB", "heap_MiB", "gor")
	s.sim.SetPaused(false)
	s.begin = time.Now()

	var first, warm sample
	var samples []sample
	sampleT := time.NewTicker(o.sample)
	defer sampleT.Stop()
	faultT := time.NewTicker(o.faultEvery / 3)
	defer faultT.Stop()
	end := time.NewTimer(o.duration)
	defer end.Stop()
	warmT := time.NewTimer(o.warmup)
	defer warmT.Stop()
	fault := 0
	lastFault := time.Now()
	wantWarm := false
loop:
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-end.C:
			break loop
		case <-warmT.C:
			wantWarm = true
		case <-sampleT.C:
			sm := s.look(false)
			if len(samples) == 0 {
				first = sm
			}
			samples = append(samples, sm)
			s.print(sm)
			// The starting point is taken between faults, with both links
			// up, as the end is.
			if ok, _ := s.bridge.Ready(); wantWarm && ok && time.Since(lastFault) > o.faultEvery/4 {
				wantWarm = false
				warm = s.look(true)
				fmt.Fprintf(s.out, "warm-up over: rss %.1f MiB, heap %.1f MiB, %d goroutines (after GC)\n", mib(warm.rssKiB), mib(warm.heapKiB), warm.goroutines)
			}
		case <-faultT.C:
			lastFault = time.Now()
			fault++
			switch fault % 3 {
			case 1:
				s.sim.DropAll()
				s.drops++
			case 2:
				if err := s.restartBroker(ctx); err != nil {
					return err
				}
			case 0:
				s.sim.Stall()
				s.stalls++
			}
		}
	}

	// Stop the positions and let everything read be delivered.
	s.sim.SetPaused(true)
	stopped := time.Now()
	if err := s.drain(ctx); err != nil {
		fmt.Fprintln(s.out, "drain:", err)
	}
	last := s.look(true)
	s.print(last)
	return s.report(first, warm, last, samples, time.Since(stopped))
}

func (s *soak) signalName() string {
	if s.o.kill {
		return "SIGKILL"
	}
	return "SIGTERM"
}

// restartBroker stops the broker, keeps it down a while, starts it again
// and notes how long the bridge took to come back.
func (s *soak) restartBroker(ctx context.Context) error {
	if s.o.kill {
		s.broker.Kill()
	} else {
		s.broker.Stop()
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(s.o.brokerDown):
	}
	up := time.Now()
	if err := s.broker.Restart(); err != nil {
		return err
	}
	s.restarts++
	go func() {
		if waitUntil(context.Background(), time.Minute, func() bool {
			st := s.bridge.Status().Broker
			return st.State == "connected" && !st.Since.Before(up)
		}) == nil {
			s.sub.mu.Lock()
			s.reconnects = append(s.reconnects, s.bridge.Status().Broker.Since.Sub(up))
			s.sub.mu.Unlock()
		}
	}()
	return nil
}

// drain waits until the bridge holds nothing more and the subscriber has
// stopped receiving.
func (s *soak) drain(ctx context.Context) error {
	quiet := time.Now()
	prev := uint64(0)
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
		m := s.metrics()
		delivered, _ := s.sub.counts()
		read := uint64(m["exlive_positions_received_total"])
		if delivered != prev {
			prev, quiet = delivered, time.Now()
		}
		if m["mqtt_queue_depth"] == 0 && m["mqtt_inflight"] == 0 && (delivered >= read || time.Since(quiet) > 5*time.Second) {
			// The bridge holds nothing more, and the broker has given the
			// subscriber all it will (after SIGKILL it has lost some).
			return nil
		}
		if time.Since(quiet) > 30*time.Second {
			return fmt.Errorf("nothing delivered for 30 s: %d of %d", delivered, read)
		}
	}
}

func (s *soak) look(settle bool) sample {
	if settle {
		runtime.GC()
		debug.FreeOSMemory()
	}
	m := s.metrics()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	delivered, dupes := s.sub.counts()
	var sent uint64
	for _, n := range s.sim.SequenceSent() {
		sent += n
	}
	return sample{
		at:   time.Since(s.begin).Round(time.Second),
		sent: sent, read: uint64(m["exlive_positions_received_total"]), delivered: delivered, dupes: dupes,
		queued: m["mqtt_queue_depth"], inflight: m["mqtt_inflight"],
		rssKiB: rssKiB(), heapKiB: int64(ms.HeapInuse / 1024), goroutines: runtime.NumGoroutine(),
		sessionDisconnects: m["exlive_disconnects_total"], mqttReconnect: m["mqtt_reconnects_total"],
	}
}

func (s *soak) print(sm sample) {
	fmt.Fprintf(s.out, "%8s %9d %9d %9d %6d %7.0f %8.0f %8.1f %8.1f %5d\n",
		sm.at, sm.sent, sm.read, sm.delivered, sm.dupes, sm.queued, sm.inflight, mib(sm.rssKiB), mib(sm.heapKiB), sm.goroutines)
}

// report prints the result and says whether the run passed.
func (s *soak) report(first, warm, last sample, samples []sample, drained time.Duration) error {
	m := s.metrics()
	missing, beyond := s.sub.missing(s.sim.SequenceSent())
	platformLoss := int64(last.sent) - int64(last.read)
	bridgeLoss := int64(last.read) - int64(last.delivered)
	var maxRSS int64
	maxG := 0
	for _, sm := range samples {
		maxRSS = max(maxRSS, sm.rssKiB)
		maxG = max(maxG, sm.goroutines)
	}
	var worstReconnect time.Duration
	s.sub.mu.Lock()
	for _, d := range s.reconnects {
		worstReconnect = max(worstReconnect, d)
	}
	nReconnects := len(s.reconnects)
	s.sub.mu.Unlock()

	w := s.out
	fmt.Fprintf(w, "\nresult after %s of positions (drained in %s):\n", s.o.duration, drained.Round(time.Millisecond))
	fmt.Fprintf(w, "  faults: %d platform drops, %d broker restarts (%s), %d dead platform links; platform sessions lost %.0f, broker reconnects %.0f\n",
		s.drops, s.restarts, s.signalName(), s.stalls, m["exlive_disconnects_total"], m["mqtt_reconnects_total"])
	fmt.Fprintf(w, "  broker link back after a restart: at most %s (%d measured)\n", worstReconnect.Round(time.Millisecond), nReconnects)
	fmt.Fprintf(w, "  positions sent by the platform:   %d\n", last.sent)
	fmt.Fprintf(w, "  read by the bridge:               %d (platform-side loss, written into connections as they dropped or died: %d)\n", last.read, platformLoss)
	fmt.Fprintf(w, "  delivered to the subscriber:      %d distinct, %d duplicates\n", last.delivered, last.dupes)
	if s.o.kill {
		fmt.Fprintf(w, "  lost after the bridge read them:  %d (with -kill this includes what Mosquitto acknowledged and lost unsaved)\n", bridgeLoss)
	} else {
		fmt.Fprintf(w, "  lost after the bridge read them:  %d\n", bridgeLoss)
	}
	fmt.Fprintf(w, "  missing sequence numbers:         %d (sent, never delivered); %d delivered beyond what was sent\n", missing, beyond)
	fmt.Fprintf(w, "  bridge counters: dropped %.0f, positions dropped %.0f, publish errors %.0f, late acks %.0f, skipped frames %.0f\n",
		m["mqtt_messages_dropped_total"], m["bridge_positions_dropped_total"], m["mqtt_publish_errors_total"], m["mqtt_acks_late_total"], m["exlive_frames_skipped_total"])
	fmt.Fprintf(w, "  RSS:        first sample %.1f MiB, after warm-up %.1f MiB, end %.1f MiB (after GC), peak %.1f MiB\n",
		mib(first.rssKiB), mib(warm.rssKiB), mib(last.rssKiB), mib(maxRSS))
	fmt.Fprintf(w, "  heap:       after warm-up %.1f MiB, end %.1f MiB (after GC)\n", mib(warm.heapKiB), mib(last.heapKiB))
	fmt.Fprintf(w, "  goroutines: first sample %d, after warm-up %d, end %d, peak %d\n", first.goroutines, warm.goroutines, last.goroutines, maxG)

	var problems []string
	if (bridgeLoss > 0 && !s.o.kill) || m["bridge_positions_dropped_total"] > 0 || m["mqtt_messages_dropped_total"] > 0 {
		problems = append(problems, fmt.Sprintf("%d positions lost after the bridge read them", max(bridgeLoss, 0)))
	}
	if warm.goroutines > 0 && last.goroutines > warm.goroutines+20 {
		problems = append(problems, fmt.Sprintf("goroutines grew from %d to %d", warm.goroutines, last.goroutines))
	}
	if warm.rssKiB > 0 && last.rssKiB > warm.rssKiB*3/2 {
		problems = append(problems, fmt.Sprintf("RSS grew from %.1f to %.1f MiB", mib(warm.rssKiB), mib(last.rssKiB)))
	}
	if len(problems) > 0 {
		return errors.New("FAIL: " + strings.Join(problems, "; "))
	}
	fmt.Fprintln(w, "PASS")
	return nil
}

// metrics returns the bridge's metrics, each family summed over its series,
// read from its registry.
func (s *soak) metrics() map[string]float64 {
	out := make(map[string]float64)
	families, err := s.bridge.Gatherer().Gather()
	if err != nil {
		return out
	}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			out[f.GetName()] += m.GetCounter().GetValue() + m.GetGauge().GetValue() + m.GetUntyped().GetValue()
		}
	}
	return out
}

func waitUntil(ctx context.Context, timeout time.Duration, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return errors.New("timed out")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil
}

func mib(kib int64) float64 { return float64(kib) / 1024 }

// rssKiB returns this process's resident set size.
func rssKiB() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

// counter is a subscriber with a persistent session (its messages wait for
// it in the broker, which saves them on SIGTERM) that records which
// sequence numbers of each vehicle arrived.
type counter struct {
	c paho.Client

	mu        sync.Mutex
	seen      map[string]*bitset
	delivered uint64
	dupes     uint64
}

func newCounter(url, filter string) (*counter, error) {
	cnt := &counter{seen: make(map[string]*bitset)}
	subscribed := make(chan error, 1)
	opts := paho.NewClientOptions().AddBroker(url).SetClientID(fmt.Sprintf("exlive-soak-counter-%d", rand.Uint32())).
		SetCleanSession(false).SetAutoReconnect(true).SetConnectRetry(true).
		SetConnectRetryInterval(200 * time.Millisecond).SetMaxReconnectInterval(time.Second).
		SetOrderMatters(false).
		SetDefaultPublishHandler(cnt.record).
		SetOnConnectHandler(func(c paho.Client) {
			tok := c.Subscribe(filter, 1, nil)
			tok.WaitTimeout(10 * time.Second)
			select {
			case subscribed <- tok.Error():
			default:
			}
		})
	cnt.c = paho.NewClient(opts)
	cnt.c.Connect()
	select {
	case err := <-subscribed:
		if err != nil {
			return nil, fmt.Errorf("counter: %w", err)
		}
	case <-time.After(10 * time.Second):
		return nil, errors.New("counter: not subscribed")
	}
	return cnt, nil
}

func (c *counter) close() { c.c.Disconnect(250) }

func (c *counter) record(_ paho.Client, m paho.Message) {
	var p struct {
		ID     string `json:"id"`
		WState string `json:"wstate"`
	}
	if json.Unmarshal(m.Payload(), &p) != nil {
		return
	}
	seqText, _, _ := strings.Cut(p.WState, " ")
	seq, err := strconv.ParseUint(seqText, 10, 64)
	if err != nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	bs := c.seen[p.ID]
	if bs == nil {
		bs = &bitset{}
		c.seen[p.ID] = bs
	}
	if bs.set(seq) {
		c.delivered++
	} else {
		c.dupes++
	}
}

func (c *counter) counts() (delivered, dupes uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.delivered, c.dupes
}

// missing counts the sequence numbers sent and not delivered, and those
// delivered beyond what was sent (which would be a bug in the count).
func (c *counter) missing(sent map[string]uint64) (missing, beyond uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, n := range sent {
		bs := c.seen[id]
		for seq := uint64(1); seq <= n; seq++ {
			if bs == nil || !bs.has(seq) {
				missing++
			}
		}
	}
	for id, bs := range c.seen {
		beyond += bs.countAbove(sent[id])
	}
	return missing, beyond
}

// bitset is a growing set of sequence numbers.
type bitset struct{ w []uint64 }

// set adds n and reports whether it is new.
func (b *bitset) set(n uint64) bool {
	i := int(n / 64)
	for i >= len(b.w) {
		b.w = append(b.w, 0)
	}
	bit := uint64(1) << (n % 64)
	if b.w[i]&bit != 0 {
		return false
	}
	b.w[i] |= bit
	return true
}

func (b *bitset) has(n uint64) bool {
	i := int(n / 64)
	return i < len(b.w) && b.w[i]&(1<<(n%64)) != 0
}

func (b *bitset) countAbove(n uint64) uint64 {
	var c uint64
	for i, w := range b.w {
		for j := range 64 {
			if w&(1<<j) != 0 && uint64(i*64+j) > n {
				c++
			}
		}
	}
	return c
}
