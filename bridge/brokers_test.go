package bridge_test

// The broker compatibility matrix of docs/scaling.md: the bridge's contract
// (positions, retained state, last will, a request and its answer, the
// persistent session across a restart) against every broker the page
// names, each started for the test on a free loopback port and stopped
// after, with the topic rules for that broker and a vehicle id that needs
// them.

import (
	"net/url"
	"strings"
	"testing"

	"github.com/exlive2mqtt/exlive2mqtt/bridge"
	"github.com/exlive2mqtt/exlive2mqtt/exlive"
	"github.com/exlive2mqtt/exlive2mqtt/exlive/exlivesim"
	"github.com/exlive2mqtt/exlive2mqtt/internal/brokertest"
	"github.com/exlive2mqtt/exlive2mqtt/topic"
)

// matrixBroker is a row of the matrix.
type matrixBroker struct {
	name  string
	rules topic.Rules
	// slow brokers run only when brokertest.EnvBrokers names them.
	slow  bool
	start func(t *testing.T) string // starts the broker; returns its URL
	// exactRetained: retained messages reach exact-topic subscriptions
	// only, never a wildcard's (RabbitMQ 3.10).
	exactRetained bool
}

var matrixBrokers = []matrixBroker{
	{name: "embedded", rules: topic.RulesMQTT, start: func(t *testing.T) string { return brokertest.Embedded(t).URL() }},
	{name: "mosquitto", rules: topic.RulesMQTT, start: func(t *testing.T) string { return brokertest.StartMosquitto(t, "").URL() }},
	{name: "nats", rules: topic.RulesNATS, slow: true, start: func(t *testing.T) string { return brokertest.StartNATS(t).URL() }},
	{name: "rabbitmq", rules: topic.RulesRabbitMQ, slow: true, exactRetained: true,
		start: func(t *testing.T) string { return brokertest.StartRabbitMQ(t).URL() }},
}

// matrixID is a vehicle id with what NATS and RabbitMQ refuse: '.' and a
// space. The simulated fleet's ids are it and matrixID2.
const (
	matrixID  = "fleet.a b1"
	matrixID2 = "fleet.a b2"
)

// TestBrokerMatrix runs the contract against each broker: the embedded one
// and a private Mosquitto always, NATS and RabbitMQ when
// EXLIVE2MQTT_TEST_BROKERS names them (.ci/run's broker matrix step).
func TestBrokerMatrix(t *testing.T) {
	for _, b := range matrixBrokers {
		t.Run(b.name, func(t *testing.T) {
			if b.slow && !brokertest.Wanted(b.name) {
				t.Skipf("%s=all (or %s) runs it", brokertest.EnvBrokers, b.name)
			}
			brokerContract(t, b, b.start(t))
		})
	}
}

func brokerContract(t *testing.T, b matrixBroker, brokerURL string) {
	u, err := url.Parse(brokerURL)
	if err != nil {
		t.Fatal(err)
	}
	// The bridge reaches the broker through a proxy that can cut the link
	// without a goodbye, for the last will; the test's subscriber does not.
	proxy := brokertest.NewProxy(t, u.Host)
	f := newFixture(t, brokertest.Target{Name: b.name, URL: brokerURL}, setup{
		sim: exlivesim.Config{Vehicles: 2, IDPrefix: "fleet.a b"},
		edit: func(o *bridge.Options) {
			o.MQTT.URL = proxy.URL()
			o.Topics.Rules = b.rules
		},
	})
	level := (topic.Layout{Rules: b.rules}).Level(matrixID)
	if b.rules != topic.RulesMQTT && level == matrixID {
		t.Fatalf("%s rules leave %q as it is", b.rules, matrixID)
	}
	state, vehicles := f.topic("bridge/state"), f.topic("bridge/vehicles")
	position := f.topic("vehicles/" + level + "/position")

	// Positions arrive, on the vehicle's level, with its real id.
	f.ready()
	f.sim.Send(&exlive.Position{ID: matrixID, Code: "沪A10000", Lat: 31.2, Lng: 121.4})
	if p := decode(t, f.sub.WaitTopic(testWait, position).Payload); p["id"] != matrixID {
		t.Errorf("position on %s: id %v, want %q", position, p["id"], matrixID)
	}

	// Retained: the state, the inventory and the position, as a client
	// that subscribes now gets them.
	for topic, want := range map[string]string{state: "online", vehicles: `"id":"` + matrixID2 + `"`, position: `"id":"` + matrixID + `"`} {
		if m, ok := retained(t, brokerURL, topic)[topic]; !ok || !strings.Contains(m.Payload, want) {
			t.Errorf("retained %s = %q (%v), want %s", topic, m.Payload, ok, want)
		}
	}
	// What docs/scaling.md says of wildcard subscriptions.
	wild := retained(t, brokerURL, f.topic("bridge/+"))
	if b.exactRetained && len(wild) != 0 {
		t.Errorf("%d retained messages for bridge/+, want none on %s (the matrix says it sends them to exact subscriptions only)", len(wild), b.name)
	}
	if !b.exactRetained && (wild[state].Payload != "online" || !strings.Contains(wild[vehicles].Payload, matrixID)) {
		t.Errorf("retained for bridge/+: %v, want the state and the vehicles", wild)
	}

	// A request on the level reaches the real id, and is answered.
	if r := f.ask("vehicles/"+level+"/command", "c1", `{"data":"STOP","request_id":"c1"}`); r["ok"] != true {
		t.Errorf("command result = %v", r)
	}

	// The link is cut without a goodbye: the broker publishes the last
	// will, and retains it; back again, the bridge says online.
	i := len(f.sub.Messages())
	proxy.SetDown(true)
	i = waitPayload(t, f.sub, i, state, "offline")
	if m := retained(t, brokerURL, state)[state]; m.Payload != "offline" {
		t.Errorf("retained state after the link was cut = %q, want offline", m.Payload)
	}
	proxy.SetDown(false)
	i = waitPayload(t, f.sub, i+1, state, "online")

	// The persistent session: a QoS 1 request published while the bridge
	// is stopped is delivered when it starts again with its client id.
	f.stop()
	waitPayload(t, f.sub, i+1, state, "offline")
	before := len(f.sub.Messages())
	f.set("vehicles/"+level+"/command", `{"data":"RESUME","request_id":"c2"}`)
	f.start()
	if r := f.resultAfter(before, "vehicles/"+level+"/command", "c2"); r["ok"] != true {
		t.Errorf("request published while the bridge was away: %v", r)
	}
	var got []string
	for _, c := range received[*exlive.VehicleCommand](f.sim) {
		got = append(got, c.ID+" "+c.Data)
	}
	if want := matrixID + " STOP|" + matrixID + " RESUME"; strings.Join(got, "|") != want {
		t.Errorf("platform received %q, want %q", strings.Join(got, "|"), want)
	}
}
