package bridge_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/exlive2mqtt/exlive2mqtt/bridge"
	"github.com/exlive2mqtt/exlive2mqtt/exlive"
	"github.com/exlive2mqtt/exlive2mqtt/exlive/exlivesim"
	"github.com/exlive2mqtt/exlive2mqtt/internal/brokertest"
	"github.com/exlive2mqtt/exlive2mqtt/internal/certtest"
	"github.com/exlive2mqtt/exlive2mqtt/mqtt"
	"github.com/exlive2mqtt/exlive2mqtt/secret"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"
)

// Security against a real Mosquitto: TLS with certificates made at run time
// (no key is committed), client certificates, a password file made with
// mosquitto_passwd, passwords read from files, secrets kept out of every
// output, read-only mode, and the audit log.

// Distinctive secrets, to look for in every output.
const (
	scExlivePass = "exlive-Pa55-9f3b2c"
	scMQTTPass   = "mqtt-Pa55-7e1d4a"
)

// scPasswd writes a Mosquitto password file with one user.
func scPasswd(t *testing.T, user, pass string) string {
	t.Helper()
	bin, err := exec.LookPath("mosquitto_passwd")
	if err != nil {
		brokertest.MosquittoBinary(t) // skips or fails as for mosquitto itself
		t.Skip("mosquitto_passwd is not installed")
	}
	path := filepath.Join(t.TempDir(), "passwd")
	if out, err := exec.Command(bin, "-c", "-b", path, user, pass).CombinedOutput(); err != nil {
		t.Fatalf("mosquitto_passwd: %v\n%s", err, out)
	}
	return path
}

// scSecretFile writes a secret into a file, as Docker secrets are mounted.
func scSecretFile(t *testing.T, name, value string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(value+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// scOutputs gathers everything the bridge shows: its log, its metrics, what
// the status page shows (its status, its vehicles, its readiness) and its
// settings printed every way. (cmd/exlive2mqtt's TestNoSecretInOutput reads
// the HTTP endpoints the program serves them on.)
func scOutputs(t *testing.T, f *fixture) map[string]string {
	t.Helper()
	out := map[string]string{"log": f.log.String()}
	text, err := testutil.GatherAndFormat(f.bridge.Gatherer(), expfmt.TypeTextPlain)
	if err != nil {
		t.Fatal(err)
	}
	out["metrics"] = string(text)
	status, _ := json.Marshal(f.bridge.Status())
	out["Status"] = string(status)
	vehicles, _ := json.Marshal(slices.Collect(f.bridge.Vehicles()))
	out["Vehicles"] = string(vehicles)
	ready, why := f.bridge.Ready()
	out["Ready"] = fmt.Sprint(ready, why)
	out["%v"] = fmt.Sprintf("%v", f.opts)
	out["%+v"] = fmt.Sprintf("%+v", f.opts)
	out["%#v"] = fmt.Sprintf("%#v", f.opts)
	for name, v := range map[string]any{"exlive": f.opts.Exlive, "mqtt": f.opts.MQTT, "bridge": f.opts.Bridge} {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("json %s: %v", name, err)
		}
		out["json "+name] = string(b)
	}
	return out
}

func scCheckNoSecret(t *testing.T, outputs map[string]string, secrets ...string) {
	t.Helper()
	for where, s := range outputs {
		for _, secret := range secrets {
			if strings.Contains(s, secret) {
				t.Errorf("%s shows a secret:\n%.2000s", where, s)
			}
		}
	}
}

// TestBridgeOverTLSWithSecretsFromFiles runs the bridge against Mosquitto's
// TLS listener, verified against a CA the test makes, with a client
// certificate the broker requires, a user name and password from
// MQTT_PASSWORD_FILE, and the platform password from EXLIVE_PASS_FILE.
// Positions flow, and no secret shows anywhere.
func TestBridgeOverTLSWithSecretsFromFiles(t *testing.T) {
	ca := certtest.NewCA(t, "exlive2mqtt test CA")
	server := ca.Server(t, "broker")
	client := ca.Client(t, "bridge")
	passwd := scPasswd(t, "bridge", scMQTTPass)
	plain := brokertest.FreePort(t)
	m := brokertest.StartMosquitto(t, fmt.Sprintf("allow_anonymous false\npassword_file %s\n"+
		"listener {{port}} 127.0.0.1\ncafile %s\ncertfile %s\nkeyfile %s\nrequire_certificate true\n"+
		"listener %d 127.0.0.1\n", passwd, ca.File, server.CertFile, server.KeyFile, plain))
	plainURL := fmt.Sprintf("tcp://127.0.0.1:%d", plain)
	secure := fmt.Sprintf("ssl://127.0.0.1:%d", m.Port)

	f := newFixture(t, brokertest.Target{Name: "embedded", URL: brokertest.Targets(t)[0].URL}, setup{noStart: true,
		sim: exlivesim.Config{Rate: 20, Accounts: map[string]string{"fleet": scExlivePass}}})
	ex := exlive.Defaults()
	ex.Addr, ex.User, ex.PassFile = f.sim.Addr(), "fleet", scSecretFile(t, "exlive_pass", scExlivePass)
	ex.RetryMin, ex.RetryMax, ex.InventoryQuiet = f.opts.Exlive.RetryMin, f.opts.Exlive.RetryMax, f.opts.Exlive.InventoryQuiet
	if err := errors.Join(ex.Validate(), ex.ReadFiles(os.ReadFile)); err != nil {
		t.Fatal(err)
	}
	mq := mqtt.Defaults()
	mq.URL, mq.ClientID, mq.TopicPrefix = secure, f.opts.MQTT.ClientID, f.prefix
	mq.Username, mq.PasswordFile = "bridge", scSecretFile(t, "mqtt_password", scMQTTPass)
	mq.CAFile, mq.CertFile, mq.KeyFile = ca.File, client.CertFile, client.KeyFile
	mq.RetryMax = f.opts.MQTT.RetryMax
	if err := errors.Join(mq.Validate(os.Hostname), mq.ReadFiles(os.ReadFile)); err != nil {
		t.Fatal(err)
	}
	if ex.Pass.Reveal() != scExlivePass || mq.Password.Reveal() != scMQTTPass {
		t.Fatal("passwords not read from their files")
	}
	f.opts.Exlive, f.opts.MQTT = ex, mq

	cnt := brokertest.NewCounter(t, plainURL, f.prefix+"/#", func(o *paho.ClientOptions) { o.SetUsername("bridge").SetPassword(scMQTTPass) })
	f.start()
	cnt.WaitCount(testWait, "/vehicles/V1/position", 1)
	cnt.WaitCount(testWait, "/bridge/vehicles", 1)
	scCheckNoSecret(t, scOutputs(t, f), scExlivePass, scMQTTPass)
}

// TestSecretsNeverLeak makes both links fail on their passwords (the
// platform rejects the login, the broker the credentials), with debug logs,
// and looks for the passwords in every output: log lines, errors, metrics,
// the status page and its API, the settings printed every way, and the
// output of a panic.
func TestSecretsNeverLeak(t *testing.T) {
	if os.Getenv("EXLIVE2MQTT_PANIC_CHILD") == "1" {
		scPanic()
	}
	passwd := scPasswd(t, "bridge", "the right one")
	m := brokertest.StartMosquitto(t, "allow_anonymous false\npassword_file "+passwd)
	f := newFixture(t, brokertest.Targets(t)[0], setup{noStart: true})
	f.opts.Exlive.Pass = secret.String(scExlivePass)
	f.opts.MQTT.URL = m.URL()
	f.opts.MQTT.Username, f.opts.MQTT.Password = "bridge", secret.String(scMQTTPass)
	// Never connected, the bridge would wait its whole stop timeout for
	// the broker.
	f.bridge, _ = runBridge(t, f.opts, 200*time.Millisecond)
	waitFor(t, testWait, "the login to be rejected and the broker to refuse", func() bool {
		logs := f.log.String()
		return strings.Contains(logs, "login rejected") && strings.Contains(logs, "not Authorized")
	})
	outputs := scOutputs(t, f)
	if !strings.Contains(outputs["Status"], "login rejected") {
		t.Errorf("the status does not say why: %s", outputs["Status"])
	}

	// Settings errors name the variable, never the secret.
	ex := f.opts.Exlive
	ex.PassFile = "/run/secrets/x"
	outputs["exlive Validate"] = fmt.Sprint(errors.Join(ex.Validate(), ex.ReadFiles(os.ReadFile)))
	mq := f.opts.MQTT
	mq.URL = "tcp://bridge:" + scMQTTPass + "@127.0.0.1:1883"
	mq.PasswordFile = "/run/secrets/y"
	outputs["mqtt Validate"] = fmt.Sprint(errors.Join(mq.Validate(os.Hostname), mq.ReadFiles(os.ReadFile)))
	if _, err := mqtt.New(mq, mqtt.State{}, f.opts.Log, nil); err != nil {
		outputs["mqtt New"] = err.Error()
	}

	// A panic prints its value and every goroutine's stack: run one in a
	// child process and read what it printed.
	cmd := exec.Command(os.Args[0], "-test.run=^TestSecretsNeverLeak$")
	cmd.Env = append(os.Environ(), "EXLIVE2MQTT_PANIC_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "panic: ") {
		t.Fatalf("the child did not panic: %v\n%s", err, out)
	}
	outputs["panic"] = string(out)
	scCheckNoSecret(t, outputs, scExlivePass, scMQTTPass)
}

// scPanic panics with the settings, in the child process of
// TestSecretsNeverLeak.
func scPanic() {
	ex := exlive.Defaults()
	ex.Pass = secret.String(scExlivePass)
	mq := mqtt.Defaults()
	mq.Password = secret.String(scMQTTPass)
	o := bridge.Options{Exlive: ex, MQTT: mq}
	go func() { panic(fmt.Errorf("settings %+v %v", o, o.MQTT.Password)) }()
	select {}
}

// TestReadOnly: with BRIDGE_READ_ONLY the bridge subscribes to no /set
// topic, also when an earlier run under the same client id left /set
// subscriptions in its persistent session, and sends the platform nothing
// but session frames. Requests published meanwhile are not carried out
// later by surprise.
func TestReadOnly(t *testing.T) {
	m := brokertest.StartMosquitto(t, "log_type all")
	f := newFixture(t, brokertest.Target{Name: "mosquitto", URL: m.URL()}, setup{sim: exlivesim.Config{Rate: 20}})
	f.waitLoggedIn()
	f.sub.WaitTopic(testWait, f.topic("bridge/vehicles"))
	f.stop() // leaves /set subscriptions in the persistent session
	// The broker keeps this one for the session.
	f.sub.Publish(f.topic("vehicles/V1/command/set"), []byte(`{"data":"QUEUED","request_id":"queued"}`), false)

	n0, log0 := len(f.sim.Received()), len(m.Log())
	f.opts.Bridge.ReadOnly = true
	b, stop := runBridge(t, f.opts, 2*time.Second)
	f.bridge = b
	// Delivered at connect, it is answered, not carried out.
	if r := f.resultAfter(0, "vehicles/V1/command", "queued"); r["ok"] != false || !strings.Contains(fmt.Sprint(r["error"]), "read-only") {
		t.Errorf("request kept for the session: %v, want refused as read-only", r)
	}
	waitFor(t, testWait, "the read-only bridge on both links", func() bool { ok, _ := b.Ready(); return ok })
	log1 := len(m.Log())
	f.sub.WaitTopic(testWait, f.topic("vehicles/V1/position"))
	for _, rest := range []string{"vehicles/V1/command", "vehicles/V1/passthrough", "vehicles/V1/position", "bridge/message", "bridge/groups", "bridge/vehicles"} {
		// Acknowledged by the broker once it has routed it: to the
		// bridge too, were it subscribed.
		f.sub.Publish(f.topic(rest+"/set"), []byte(`{"data":"RO","msg":"RO","lat":31.2,"lng":121.4,"request_id":"ro"}`), false)
	}
	stop()
	log := m.Log()
	for _, line := range strings.Split(log[log0:], "\n") {
		if strings.Contains(line, "Received SUBSCRIBE from "+f.opts.MQTT.ClientID) {
			t.Errorf("the read-only bridge subscribed: %s", line)
		}
	}
	for _, line := range strings.Split(log[log1:], "\n") {
		if strings.Contains(line, "Sending PUBLISH to "+f.opts.MQTT.ClientID) && strings.Contains(line, "/set'") {
			t.Errorf("the broker sent a request to the read-only bridge: %s", line)
		}
	}
	for _, m := range requests(f.sim.Received()[n0:]) {
		t.Errorf("the read-only bridge sent %s to the platform", m.Cmd())
	}

	// Back to read-write under the same client id: the requests published
	// while read-only were not kept for it, to be carried out by surprise.
	f.opts.Bridge.ReadOnly = false
	f.start()
	// Subscribed once its broker link is up.
	waitFor(t, testWait, "the read-write bridge on both links", func() bool { ok, _ := f.bridge.Ready(); return ok })
	if r := f.request("vehicles/V1/command", `{"data":"RW","request_id":"rw"}`); r["ok"] != true {
		t.Fatalf("read-write request: %v", r)
	}
	for _, msg := range requests(f.sim.Received()) {
		if c, ok := msg.(*exlive.VehicleCommand); !ok || c.Data != "RW" {
			t.Errorf("the platform received %s %+v: a request from the read-only time carried out later", msg.Cmd(), msg)
		}
	}
}

// TestAuditLogForEveryRequest: every request carried out or refused leaves
// one info line with component=audit saying the vehicle, the command, the
// request id and the outcome.
func TestAuditLogForEveryRequest(t *testing.T) {
	f := newFixture(t, brokertest.Targets(t)[0], setup{edit: func(o *bridge.Options) { o.Bridge.MaxRequest = 1024 }})
	f.waitLoggedIn()
	f.sub.WaitTopic(testWait, f.topic("bridge/vehicles"))
	past := time.Now().Add(-time.Hour).Format(time.RFC3339)
	for _, r := range []struct{ rest, payload string }{
		{"vehicles/V1/command", `{"data":"GO","request_id":"a-ok"}`},
		{"vehicles/V999/command", `{"data":"GO","request_id":"a-unknown"}`},
		{"vehicles/V1/passthrough", `{"data":"x","request_id":"a-expired","expires":"` + past + `"}`},
		{"vehicles/V1/position", `{"lat":95,"lng":1,"request_id":"a-invalid"}`},
	} {
		f.request(r.rest, r.payload)
	}
	// Delivered again (QoS 1 is at least once): not carried out twice, and
	// not answered twice.
	f.sub.Publish(f.topic("vehicles/V1/command/set"), []byte(`{"data":"GO","request_id":"a-ok"}`), false)
	f.sub.Publish(f.topic("bridge/message/set"), []byte(`{"msg":"hi","request_id":"a-msg"}`), false)
	f.log.wait(t, "the audit lines of the repeated request and the message", func(as []audit) bool {
		n := map[string]int{}
		for _, a := range as {
			n[a.RequestID]++
		}
		return n["a-msg"] > 0 && n["a-ok"] > 1
	})

	audits := f.log.byRequest()
	for id, want := range map[string][]string{
		"a-ok":      {"1004", "V1", "ok", "repeated"},
		"a-unknown": {"1004", "", "refused"},
		"a-expired": {"1012", "V1", "expired"},
		"a-invalid": {"1007", "V1", "invalid"},
		"a-msg":     {"1003", "-", "sent"},
	} {
		lines := audits[id]
		outcomes := want[2:]
		if len(lines) != len(outcomes) {
			t.Errorf("%s: %d audit lines %+v, want %d", id, len(lines), lines, len(outcomes))
			continue
		}
		for i, a := range lines {
			if a.Level != "info" || a.Message != "request" || a.Cmd != want[0] || a.Outcome != outcomes[i] {
				t.Errorf("%s: audit line %+v, want info, cmd %s, outcome %s", id, a, want[0], outcomes[i])
			}
			if want[1] != "-" && (!a.HasVehicle || (want[1] != "" && a.Vehicle != want[1])) {
				t.Errorf("%s: audit line without the vehicle %q: %+v", id, want[1], a)
			}
		}
	}
}

// TestBrokerLimitsOfTheComposeStack runs Mosquitto with the bounds of the
// compose stack's configuration (deploy/mosquitto/mosquitto.conf): a
// request of 40 MB, which paho would read whole into the bridge's memory
// before BRIDGE_MAX_REQUEST could refuse it, never reaches the bridge (the
// broker disconnects its publisher), while the bridge's own messages and
// ordinary requests go through.
func TestBrokerLimitsOfTheComposeStack(t *testing.T) {
	conf, err := os.ReadFile("../deploy/mosquitto/mosquitto.conf")
	if err != nil {
		t.Fatal(err)
	}
	var limits []string
	for _, line := range strings.Split(string(conf), "\n") {
		if strings.HasPrefix(line, "max_packet_size ") || strings.HasPrefix(line, "max_queued_messages ") {
			limits = append(limits, line)
		}
	}
	if len(limits) != 2 {
		t.Fatalf("mosquitto.conf sets %q, want max_packet_size and max_queued_messages", limits)
	}
	m := brokertest.StartMosquitto(t, strings.Join(limits, "\n"))
	f := newFixture(t, brokertest.Target{Name: "mosquitto", URL: m.URL()}, setup{})
	f.ready()
	received := metric(t, f.bridge, "mqtt_messages_received_total")

	attacker := paho.NewClient(paho.NewClientOptions().AddBroker(m.URL()).SetClientID(brokertest.ClientID(t)).SetAutoReconnect(false))
	if tok := attacker.Connect(); !tok.WaitTimeout(testWait) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	big := `{"data":"` + strings.Repeat("x", 40<<20) + `","request_id":"big"}`
	attacker.Publish(f.topic("vehicles/V1/command/set"), 1, false, big).WaitTimeout(testWait)
	waitFor(t, testWait, "the broker to disconnect the publisher", func() bool { return !attacker.IsConnectionOpen() })
	attacker.Disconnect(0)

	if r := f.request("vehicles/V1/command", `{"data":"SMALL","request_id":"small"}`); r["ok"] != true || r["request_id"] != "small" {
		t.Errorf("an ordinary request: %v", r)
	}
	if got := metric(t, f.bridge, "mqtt_messages_received_total"); got != received+1 {
		t.Errorf("the bridge received %v messages, want 1 (the ordinary request)", got-received)
	}
	if n := metric(t, f.bridge, "mqtt_reconnects_total"); n != 0 {
		t.Errorf("mqtt_reconnects_total = %v: the broker's limit disconnected the bridge", n)
	}
	if !strings.Contains(m.Log(), "disconnected") {
		t.Errorf("mosquitto did not log the disconnection:\n%s", m.Log())
	}
}
