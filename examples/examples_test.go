package examples

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/exlive2mqtt/exlive2mqtt/bridge"
	"github.com/exlive2mqtt/exlive2mqtt/exlive"
	"github.com/exlive2mqtt/exlive2mqtt/exlive/exlivesim"
	"github.com/exlive2mqtt/exlive2mqtt/internal/brokertest"
	"github.com/exlive2mqtt/exlive2mqtt/mqtt"
	"github.com/exlive2mqtt/exlive2mqtt/opt"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The contract of docs/topics.md, with P = exlive, the default
// MQTT_TOPIC_PREFIX the examples assume, and V as the wildcard +.
var (
	// publishedTopics are the topics the bridge publishes, so the ones an
	// example may subscribe to.
	publishedTopics = []string{
		"exlive/bridge/state", "exlive/bridge/session", "exlive/bridge/groups", "exlive/bridge/vehicles",
		"exlive/bridge/message", "exlive/vehicles/+/position", "exlive/vehicles/+/passthrough",
		"exlive/vehicles/+/command/result", "exlive/vehicles/+/passthrough/result", "exlive/vehicles/+/position/result",
		"exlive/bridge/message/result", "exlive/bridge/groups/result", "exlive/bridge/vehicles/result",
	}
	// requestTopics are the topics the bridge subscribes to, so the ones
	// an example may publish to.
	requestTopics = []string{
		"exlive/vehicles/+/command/set", "exlive/vehicles/+/passthrough/set", "exlive/vehicles/+/position/set",
		"exlive/bridge/message/set", "exlive/bridge/groups/set", "exlive/bridge/vehicles/set",
	}
	// positionKeys are the keys of the position payload and their JSON
	// types.
	positionKeys = map[string]string{
		"id": "string", "code": "string", "lat": "number", "lng": "number", "speed": "number",
		"direction": "number", "time": "string", "valid": "bool", "alarm": "bool", "fuel": "number",
		"mileage": "number", "wstate": "string", "cstate": "string", "posinfo": "string",
	}
	resultKeys  = []string{"request_id", "cmd", "ok", "result", "error"}
	commandKeys = []string{"data", "request_id", "expires"}
)

// payloadKeys returns the keys a payload on a contract topic may have.
func payloadKeys(topic string) []string {
	switch {
	case strings.HasSuffix(topic, "/position"):
		var keys []string
		for k := range positionKeys {
			keys = append(keys, k)
		}
		return keys
	case strings.HasSuffix(topic, "/result"):
		return resultKeys
	case strings.HasSuffix(topic, "/command/set"):
		return commandKeys
	}
	return nil
}

// ---- Node-RED ----

type noderedNode struct {
	ID       string     `json:"id"`
	Type     string     `json:"type"`
	Z        string     `json:"z"`
	Name     string     `json:"name"`
	Topic    string     `json:"topic"`
	Broker   string     `json:"broker"`
	Datatype string     `json:"datatype"`
	Func     string     `json:"func"`
	Outputs  int        `json:"outputs"`
	Wires    [][]string `json:"wires"`
}

// noderedTypes are the node types the flow may use: Node-RED's core nodes
// and the worldmap node of node-red-contrib-web-worldmap, the most used map
// node (docs/integrations.md says which is which).
var noderedTypes = map[string]string{
	"tab": "core", "mqtt-broker": "core", "mqtt in": "core", "mqtt out": "core", "function": "core",
	"inject": "core", "debug": "core", "worldmap": "node-red-contrib-web-worldmap",
}

func readFlow(t *testing.T) ([]noderedNode, []byte) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("node-red", "flow.json"))
	if err != nil {
		t.Fatal(err)
	}
	var nodes []noderedNode
	if err := json.Unmarshal(raw, &nodes); err != nil {
		t.Fatalf("flow.json: %v", err)
	}
	return nodes, raw
}

var (
	payloadAlias  = regexp.MustCompile(`const (\w+) = msg\.payload;`)
	topicTemplate = regexp.MustCompile("msg\\.topic = `([^`]*)`")
	templateExpr  = regexp.MustCompile(`\$\{[^}]*\}`)
	payloadObject = regexp.MustCompile(`msg\.payload = \{([^}]*)\}`)
	objectKey     = regexp.MustCompile(`(?m)(?:^|[{,])\s*(\w+)\s*:`)
)

// TestNodeREDFlow checks the flow's structure, and every topic and payload
// key it uses against the contract.
func TestNodeREDFlow(t *testing.T) {
	nodes, _ := readFlow(t)
	byID := map[string]noderedNode{}
	for _, n := range nodes {
		if n.ID == "" {
			t.Errorf("node %+v has no id", n)
		}
		if _, dup := byID[n.ID]; dup {
			t.Errorf("id %s used twice", n.ID)
		}
		byID[n.ID] = n
		if _, ok := noderedTypes[n.Type]; !ok {
			t.Errorf("%s: node type %q is neither a core node nor worldmap", n.ID, n.Type)
		}
	}
	// Who feeds whom.
	inputs := map[string][]noderedNode{}
	for _, n := range nodes {
		if n.Type != "tab" && n.Type != "mqtt-broker" {
			if tab, ok := byID[n.Z]; !ok || tab.Type != "tab" {
				t.Errorf("%s: not on a tab", n.ID)
			}
		}
		if strings.HasPrefix(n.Type, "mqtt ") {
			if b, ok := byID[n.Broker]; !ok || b.Type != "mqtt-broker" {
				t.Errorf("%s: broker %q is no mqtt-broker node", n.ID, n.Broker)
			}
		}
		for _, port := range n.Wires {
			for _, to := range port {
				target, ok := byID[to]
				if !ok {
					t.Errorf("%s: wired to missing node %s", n.ID, to)
					continue
				}
				inputs[to] = append(inputs[to], n)
				if target.Type == "mqtt in" || target.Type == "inject" {
					t.Errorf("%s: wired to %s, which has no input", n.ID, to)
				}
			}
		}
	}

	var subscribed, published []string
	for _, n := range nodes {
		switch n.Type {
		case "mqtt in":
			if !slices.Contains(publishedTopics, n.Topic) {
				t.Errorf("%s subscribes to %q, which the bridge does not publish (docs/topics.md)", n.ID, n.Topic)
			}
			if n.Datatype != "json" {
				t.Errorf("%s: datatype %q, want json (the payloads are JSON objects)", n.ID, n.Datatype)
			}
			subscribed = append(subscribed, n.Topic)
		case "mqtt out":
			topics := []string{n.Topic}
			if n.Topic == "" {
				// The topic comes with the message: from a function that
				// feeds this node.
				topics = nil
				for _, in := range inputs[n.ID] {
					m := topicTemplate.FindStringSubmatch(in.Func)
					if m == nil {
						t.Errorf("%s: feeds %s without setting msg.topic", in.ID, n.ID)
						continue
					}
					topics = append(topics, templateExpr.ReplaceAllString(m[1], "+"))
				}
			}
			for _, topic := range topics {
				if !slices.Contains(requestTopics, topic) {
					t.Errorf("%s publishes to %q, which the bridge does not read (docs/topics.md)", n.ID, topic)
				}
				published = append(published, topic)
				// The payload the function builds.
				for _, in := range inputs[n.ID] {
					m := payloadObject.FindStringSubmatch(in.Func)
					if m == nil {
						t.Errorf("%s: builds no msg.payload object for %s", in.ID, topic)
						continue
					}
					for _, k := range objectKey.FindAllStringSubmatch(m[1], -1) {
						if !slices.Contains(payloadKeys(topic), k[1]) {
							t.Errorf("%s: key %q is not in a %s request (docs/topics.md)", in.ID, k[1], topic)
						}
					}
				}
			}
		}
	}
	// Every key a function reads of a payload from a topic.
	for _, n := range nodes {
		if n.Type != "function" {
			continue
		}
		for _, in := range inputs[n.ID] {
			if in.Type != "mqtt in" {
				continue
			}
			keys := payloadKeys(in.Topic)
			aliases := payloadAlias.FindAllStringSubmatch(n.Func, -1)
			if len(aliases) == 0 {
				t.Errorf("%s: reads %s's payload without `const p = msg.payload;`, so its keys cannot be checked", n.ID, in.Topic)
			}
			for _, a := range aliases {
				uses := regexp.MustCompile(`\b`+a[1]+`\.(\w+)`).FindAllStringSubmatch(n.Func, -1)
				if len(uses) == 0 {
					t.Errorf("%s: reads no key of %s", n.ID, in.Topic)
				}
				for _, u := range uses {
					if !slices.Contains(keys, u[1]) {
						t.Errorf("%s: reads %q, which a payload on %s does not have (docs/topics.md)", n.ID, u[1], in.Topic)
					}
				}
			}
		}
	}
	for _, want := range []string{"exlive/vehicles/+/position", "exlive/vehicles/+/command/result"} {
		if !slices.Contains(subscribed, want) {
			t.Errorf("the flow does not subscribe to %s", want)
		}
	}
	if !slices.Contains(published, "exlive/vehicles/+/command/set") {
		t.Error("the flow sends no command")
	}
	checkFunctionSyntax(t, nodes)
}

// checkFunctionSyntax has node check the JavaScript of every function node,
// as Node-RED wraps it. Without node it is skipped, except in CI.
func checkFunctionSyntax(t *testing.T, nodes []noderedNode) {
	t.Helper()
	nodeJS, err := exec.LookPath("node")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("node is not installed (examples/install-tools.sh)")
		}
		t.Log("node is not installed: function syntax not checked")
		return
	}
	dir := t.TempDir()
	for _, n := range nodes {
		if n.Type != "function" {
			continue
		}
		file := filepath.Join(dir, n.ID+".js")
		src := "async function f(msg, node, context, flow, global, env, RED) {\n" + n.Func + "\n}\n"
		if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(nodeJS, "--check", file).CombinedOutput(); err != nil {
			t.Errorf("%s: %v\n%s", n.ID, err, out)
		}
	}
}

// ---- Telegraf ----

type telegrafConfig struct {
	Agent struct {
		FlushInterval string `toml:"flush_interval"`
	} `toml:"agent"`
	Inputs struct {
		MQTT []struct {
			Servers      []string `toml:"servers"`
			Topics       []string `toml:"topics"`
			QoS          int      `toml:"qos"`
			DataFormat   string   `toml:"data_format"`
			TopicTag     *string  `toml:"topic_tag"`
			TopicParsing []struct {
				Topic string `toml:"topic"`
				Tags  string `toml:"tags"`
			} `toml:"topic_parsing"`
			JSONv2 []struct {
				Measurement     string `toml:"measurement_name"`
				TimestampPath   string `toml:"timestamp_path"`
				TimestampFormat string `toml:"timestamp_format"`
				Tags            []struct {
					Path     string `toml:"path"`
					Rename   string `toml:"rename"`
					Optional bool   `toml:"optional"`
				} `toml:"tag"`
				Fields []struct {
					Path     string `toml:"path"`
					Type     string `toml:"type"`
					Optional bool   `toml:"optional"`
				} `toml:"field"`
			} `toml:"json_v2"`
		} `toml:"mqtt_consumer"`
	} `toml:"inputs"`
	Outputs struct {
		Influx []struct {
			URLs         []string `toml:"urls"`
			Token        string   `toml:"token"`
			Organization string   `toml:"organization"`
			Bucket       string   `toml:"bucket"`
		} `toml:"influxdb_v2"`
	} `toml:"outputs"`
}

func readTelegraf(t *testing.T) (telegrafConfig, string) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("telegraf", "telegraf.conf"))
	if err != nil {
		t.Fatal(err)
	}
	var c telegrafConfig
	md, err := toml.Decode(string(raw), &c)
	if err != nil {
		t.Fatalf("telegraf.conf: %v", err)
	}
	if u := md.Undecoded(); len(u) > 0 {
		// Keys the test does not know: fine for Telegraf, but say so, so
		// that a new topic or field does not escape the checks below.
		for _, k := range u {
			if s := k.String(); strings.Contains(s, "topic") || strings.Contains(s, "path") {
				t.Errorf("telegraf.conf: %s is not checked by this test", s)
			}
		}
	}
	return c, string(raw)
}

// TestTelegrafConfig checks the Telegraf configuration's topics and JSON
// paths against the contract.
func TestTelegrafConfig(t *testing.T) {
	c, _ := readTelegraf(t)
	if len(c.Inputs.MQTT) != 1 || len(c.Outputs.Influx) != 1 {
		t.Fatalf("want one inputs.mqtt_consumer and one outputs.influxdb_v2, got %d and %d", len(c.Inputs.MQTT), len(c.Outputs.Influx))
	}
	in := c.Inputs.MQTT[0]
	if len(in.Topics) == 0 {
		t.Error("no topics")
	}
	for _, topic := range in.Topics {
		if topic != "exlive/vehicles/+/position" {
			t.Errorf("topic %q: want the positions, exlive/vehicles/+/position (docs/topics.md)", topic)
		}
	}
	if in.QoS != 1 {
		t.Errorf("qos %d, want 1 like the bridge", in.QoS)
	}
	if in.DataFormat != "json_v2" {
		t.Errorf("data_format %q, want json_v2", in.DataFormat)
	}
	if in.TopicTag == nil || *in.TopicTag != "" {
		t.Error(`topic_tag should be "": the vehicle tag replaces it`)
	}
	// The vehicle tag is the level V of the topic.
	if len(in.TopicParsing) != 1 {
		t.Fatalf("%d topic_parsing entries, want 1", len(in.TopicParsing))
	}
	tp := in.TopicParsing[0]
	if !slices.Contains(in.Topics, tp.Topic) {
		t.Errorf("topic_parsing for %q, which is not subscribed", tp.Topic)
	}
	levels, tags := strings.Split(tp.Topic, "/"), strings.Split(tp.Tags, "/")
	if len(tags) != len(levels) {
		t.Errorf("topic_parsing tags %q: %d levels for a topic of %d", tp.Tags, len(tags), len(levels))
	} else if i := slices.Index(tags, "vehicle"); i < 0 || levels[i] != "+" || i != 2 {
		t.Errorf("topic_parsing tags %q do not take V (level 3 of %s) as the vehicle tag", tp.Tags, tp.Topic)
	}
	if len(in.JSONv2) != 1 {
		t.Fatalf("%d json_v2 entries, want 1", len(in.JSONv2))
	}
	j := in.JSONv2[0]
	if j.Measurement == "" {
		t.Error("no measurement_name")
	}
	// time is RFC 3339 from gpstime; telegraf reads it with a Go layout.
	if j.TimestampPath != "time" {
		t.Errorf("timestamp_path %q, want time", j.TimestampPath)
	}
	for _, example := range []string{"2011-11-01T04:38:39Z", "2011-11-01T12:38:39+08:00"} {
		if ts, err := time.Parse(j.TimestampFormat, example); err != nil || ts.Unix() != 1320122319 {
			t.Errorf("timestamp_format %q reads %s as %v, %v", j.TimestampFormat, example, ts, err)
		}
	}
	jsonType := map[string]string{"float": "number", "int": "number", "uint": "number", "bool": "bool", "string": "string"}
	seen := map[string]bool{}
	for _, f := range j.Fields {
		want, ok := positionKeys[f.Path]
		switch {
		case !ok:
			t.Errorf("field path %q is not a key of the position payload (docs/topics.md)", f.Path)
		case jsonType[f.Type] != want:
			t.Errorf("field %s: type %q, but the payload's %s is a %s", f.Path, f.Type, f.Path, want)
		}
		if seen[f.Path] {
			t.Errorf("field %s twice", f.Path)
		}
		seen[f.Path] = true
		// Only lat and lng are always there; the rest is left out when the
		// platform left it empty, and a required path that is missing
		// drops the whole message.
		if f.Optional == (f.Path == "lat" || f.Path == "lng") {
			t.Errorf("field %s: optional = %v", f.Path, f.Optional)
		}
	}
	for _, k := range []string{"lat", "lng", "speed", "direction", "valid", "alarm", "fuel", "mileage"} {
		if !seen[k] {
			t.Errorf("no field %s", k)
		}
	}
	for _, tag := range j.Tags {
		if positionKeys[tag.Path] != "string" {
			t.Errorf("tag path %q is not a text key of the position payload", tag.Path)
		}
		if !tag.Optional {
			t.Errorf("tag %s: not optional, but the payload may leave it out", tag.Path)
		}
	}
	out := c.Outputs.Influx[0]
	if len(out.URLs) == 0 || out.Token == "" || out.Organization == "" || out.Bucket == "" {
		t.Errorf("influxdb_v2 output incomplete: %+v", out)
	}
}

// ---- Running them ----

// tool finds an installed program: the variable env names it, or it is on
// PATH, or where install-tools.sh puts it. Without it the test is skipped,
// except in CI, where it fails.
func tool(t *testing.T, env, name string, installed ...string) string {
	t.Helper()
	if p := os.Getenv(env); p != "" {
		return p
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, p := range installed {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is not installed: run examples/install-tools.sh (or set %s)", name, env)
	}
	t.Skipf("%s is not installed: run examples/install-tools.sh (or set %s)", name, env)
	return ""
}

// toolsDir is where install-tools.sh installs, unless EXLIVE2MQTT_TOOLS says
// otherwise.
func toolsDir() string {
	if d := os.Getenv("EXLIVE2MQTT_TOOLS"); d != "" {
		return d
	}
	return "/opt/exlive2mqtt-tools"
}

// stack is a bridge with prefix exlive between a simulated platform and an
// embedded broker: what the examples talk to.
type stack struct {
	broker string // host:port
	url    string
	sim    *exlivesim.Server
}

func startStack(t *testing.T) *stack {
	t.Helper()
	b := brokertest.Embedded(t)
	sim := exlivesim.New(exlivesim.Config{Vehicles: 2})
	if err := sim.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	ex := exlive.Defaults()
	ex.Addr = sim.Addr()
	ex.User, ex.Pass = exlivesim.DefaultUser, exlivesim.DefaultPass
	ex.RetryMin, ex.RetryMax = 20*time.Millisecond, 200*time.Millisecond
	ex.InventoryQuiet = 50 * time.Millisecond
	mq := mqtt.Defaults()
	mq.URL = b.URL()
	mq.ClientID = brokertest.ClientID(t)
	mq.TopicPrefix = "exlive"
	if err := ex.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := mq.Validate(nil); err != nil {
		t.Fatal(err)
	}
	br, err := bridge.New(bridge.Options{Bridge: bridge.Defaults(), Exlive: ex, MQTT: mq, Version: "test", Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		br.Run(ctx, 5*time.Second)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	sub := brokertest.Subscribe(t, b.URL(), "exlive/bridge/vehicles")
	sub.WaitTopic(10*time.Second, "exlive/bridge/vehicles")
	return &stack{broker: b.Addr(), url: b.URL(), sim: sim}
}

// position sends one position of V1 from the platform and returns it.
func (s *stack) position() *exlive.Position {
	p := &exlive.Position{ID: "V1", Code: "沪A10000", Lat: 31.230416, Lng: 121.473701,
		Speed: opt.Some(42.5), Direction: opt.Some(180.0),
		Time:  opt.Some(time.Date(2011, 11, 1, 12, 38, 39, 0, time.FixedZone("CST", 8*3600))),
		Valid: opt.Some(true), Alarm: opt.Some(false), Fuel: opt.Some(37.2), Mileage: opt.Some(12345.6),
		CState: "ACC开", PosInfo: "上海市黄浦区人民大道"}
	s.sim.Send(p)
	return p
}

// output collects a process's output and lets a test wait for a text in it.
type output struct {
	mu      sync.Mutex
	b       bytes.Buffer
	changed chan struct{}
}

func newOutput() *output { return &output{changed: make(chan struct{})} }

func (o *output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	close(o.changed)
	o.changed = make(chan struct{})
	return o.b.Write(p)
}

func (o *output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.String()
}

// wait waits until cond holds for the output so far.
func (o *output) wait(t *testing.T, timeout time.Duration, what string, cond func(string) bool) string {
	t.Helper()
	deadline := time.After(timeout)
	for {
		o.mu.Lock()
		s, ch := o.b.String(), o.changed
		o.mu.Unlock()
		if cond(s) {
			return s
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("timed out waiting for %s; output:\n%s", what, s)
		}
	}
}

// run starts a program until the test ends: interrupted, then killed.
func run(t *testing.T, out *output, env []string, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		cmd.Wait()
		close(done)
	}()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGINT)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	})
}

// TestNodeREDRuns deploys the flow in a real Node-RED against a real
// bridge: the positions reach the map node, and the inject button sends a
// command whose answer the flow matches by request_id.
func TestNodeREDRuns(t *testing.T) {
	nodeRed := tool(t, "EXLIVE2MQTT_NODE_RED", "node-red", filepath.Join(toolsDir(), "node-red", "node_modules", ".bin", "node-red"))
	s := startStack(t)

	// The flow as shipped, pointed at the test's broker, and with its debug
	// nodes printing to Node-RED's log so the test can read them.
	var flow []map[string]any
	_, raw := readFlow(t)
	if err := json.Unmarshal(raw, &flow); err != nil {
		t.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(s.broker)
	for _, n := range flow {
		switch n["type"] {
		case "mqtt-broker":
			n["broker"], n["port"] = host, port
		case "debug":
			n["console"], n["active"] = true, true
		}
	}
	dir := t.TempDir()
	b, err := json.Marshal(flow)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "flows.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	uiPort := brokertest.FreePort(t)
	settings := fmt.Sprintf(`module.exports = {
	uiHost: "127.0.0.1",
	uiPort: %d,
	flowFile: "flows.json",
	credentialSecret: false,
	logging: { console: { level: "info", metrics: false, audit: false } },
	diagnostics: { enabled: false },
	telemetry: { enabled: false },
	editorTheme: { tours: false },
};
`, uiPort)
	if err := os.WriteFile(filepath.Join(dir, "settings.js"), []byte(settings), 0o644); err != nil {
		t.Fatal(err)
	}
	out := newOutput()
	run(t, out, nil, nodeRed, "--userDir", dir, "--settings", filepath.Join(dir, "settings.js"))
	out.wait(t, 60*time.Second, "Node-RED to start the flow and connect", func(s string) bool {
		return strings.Contains(s, "Started flows") && strings.Contains(s, "Connected to broker")
	})
	if strings.Contains(out.String(), "Waiting for missing types") {
		t.Fatalf("Node-RED lacks a node type:\n%s", out)
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", uiPort)

	// Positions become map points.
	s.position()
	out.wait(t, 20*time.Second, "a map point", func(s string) bool {
		return strings.Contains(s, "[debug:map points]") && strings.Contains(s, "name: '沪A10000'") &&
			strings.Contains(s, "lat: 31.230416") && strings.Contains(s, "lon: 121.473701") &&
			strings.Contains(s, "hdg: 180") && strings.Contains(s, "speed_kmh: 42.5")
	})
	resp, err := http.Get(base + "/worldmap/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /worldmap/: %s", resp.Status)
	}

	// Pressing the inject button sends a command with a request_id, and the
	// bridge's answer is matched to it.
	resp, err = http.Post(base+"/inject/send_command", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /inject/send_command: %s", resp.Status)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err = s.sim.WaitFor(ctx, func(rs []exlivesim.Received) bool {
		return slices.ContainsFunc(rs, func(r exlivesim.Received) bool {
			c, ok := r.Msg.(*exlive.VehicleCommand)
			return ok && c.ID == "V1" && c.Data == "STOP"
		})
	})
	if err != nil {
		t.Fatalf("the platform got no STOP for V1: %v\n%s", err, out)
	}
	out.wait(t, 20*time.Second, "the command's result", func(s string) bool {
		i := strings.Index(s, "[debug:command result]")
		return i >= 0 && strings.Contains(s[i:], "request_id: 'nodered-") && strings.Contains(s[i:], "ok: true") &&
			strings.Contains(s[i:], "result: 'succeed'") && strings.Contains(s[i:], "vehicle: 'V1'")
	})
}

// influx is a fake InfluxDB 2 that keeps what is written to it.
type influx struct {
	t   *testing.T
	srv *httptest.Server
	out *output
}

func newInflux(t *testing.T, token, org, bucket string) *influx {
	f := &influx{t: t, out: newOutput()}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/api/v2/write" {
			w.WriteHeader(http.StatusNoContent) // health checks and the like
			return
		}
		q := r.URL.Query()
		if r.Header.Get("Authorization") != "Token "+token || q.Get("org") != org || q.Get("bucket") != bucket {
			t.Errorf("write with %q to org %q bucket %q", r.Header.Get("Authorization"), q.Get("org"), q.Get("bucket"))
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var body io.Reader = r.Body
		if r.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(r.Body)
			if err != nil {
				w.WriteHeader(http.StatusBadRequest)
				return
			}
			body = zr
		}
		lines, err := io.ReadAll(body)
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		f.out.Write(lines)
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

// TestTelegrafRuns runs Telegraf with the configuration against a real
// bridge and a fake InfluxDB 2: a position becomes one point, tagged with
// the vehicle, timestamped with the fix.
func TestTelegrafRuns(t *testing.T) {
	telegraf := tool(t, "EXLIVE2MQTT_TELEGRAF", "telegraf", filepath.Join(toolsDir(), "bin", "telegraf"))
	s := startStack(t)
	db := newInflux(t, "test-token", "exlive", "exlive")

	// The configuration as shipped, flushing every 200 ms instead of 10 s.
	_, conf := readTelegraf(t)
	fast := strings.ReplaceAll(conf, `interval = "10s"`, `interval = "200ms"`)
	if strings.Count(fast, `"200ms"`) != 2 {
		t.Fatal(`telegraf.conf no longer has interval and flush_interval = "10s"`)
	}
	file := filepath.Join(t.TempDir(), "telegraf.conf")
	if err := os.WriteFile(file, []byte(fast), 0o644); err != nil {
		t.Fatal(err)
	}
	out := newOutput()
	run(t, out, []string{"MQTT_URL=" + s.url, "INFLUX_URL=" + db.srv.URL, "INFLUX_TOKEN=test-token",
		"INFLUX_ORG=exlive", "INFLUX_BUCKET=exlive"}, telegraf, "--config", file)
	out.wait(t, 30*time.Second, "telegraf connected", func(s string) bool {
		return strings.Contains(s, "[inputs.mqtt_consumer] Connected")
	})

	p := s.position()
	lines := db.out.wait(t, 20*time.Second, "the point in InfluxDB", func(s string) bool {
		return strings.Contains(s, "vehicle_position,")
	})
	var line string
	for _, l := range strings.Split(lines, "\n") {
		if strings.HasPrefix(l, "vehicle_position,") {
			line = l
			break
		}
	}
	head, rest, _ := strings.Cut(line, " ")
	fieldsPart := rest[:strings.LastIndex(rest, " ")]
	ts := rest[strings.LastIndex(rest, " ")+1:]
	tags := strings.Split(head, ",")[1:]
	slices.Sort(tags)
	if want := []string{"plate=沪A10000", "vehicle=V1"}; !slices.Equal(tags, want) {
		t.Errorf("tags %q, want %q (line %s)", tags, want, line)
	}
	for _, f := range []string{"lat=31.230416", "lng=121.473701", "speed=42.5", "direction=180", "valid=true",
		"alarm=false", "fuel=37.2", "mileage=12345.6", `cstate="ACC开"`, `posinfo="上海市黄浦区人民大道"`} {
		if !strings.Contains(","+fieldsPart+",", ","+f+",") {
			t.Errorf("no field %s in %s", f, line)
		}
	}
	if want := fmt.Sprint(p.Time.V.UnixNano()); ts != want {
		t.Errorf("timestamp %s, want the fix time %s (line %s)", ts, want, line)
	}
	if strings.Contains(out.String(), "E!") {
		t.Errorf("telegraf logged errors:\n%s", out)
	}
}
