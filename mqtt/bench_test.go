//go:build unix

package mqtt_test

import (
	"bytes"
	"context"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/exlive2mqtt/exlive2mqtt/internal/brokertest"
	"github.com/exlive2mqtt/exlive2mqtt/mqtt"
	"github.com/rs/zerolog"
)

// benchPayload is a position payload as the bridge publishes it.
var benchPayload = []byte(`{"id":"V42","code":"沪A10042","lat":31.230416,"lng":121.473701,"speed":42.5,"direction":270,` +
	`"time":"2011-11-01T04:38:39Z","valid":true,"alarm":false,"fuel":35.2,"mileage":123456.7,` +
	`"wstate":"1700000000123456789","cstate":"ACC开","posinfo":"上海市黄浦区人民大道"}`)

// cpuPerOp reports the process's CPU time per iteration (user and
// system, every thread: paho's goroutines and GC included) as cpu-ns/op,
// from its call to the returned function's, deferred right before the
// loop. On a machine shared with other work, ns/op counts the time the
// benchmark waited for a core; cpu-ns/op does not. With an embedded broker
// it includes the broker's CPU too.
func cpuPerOp(b *testing.B) func() {
	start := cpuNow()
	return func() { b.ReportMetric(float64(cpuNow()-start)/float64(max(b.N, 1)), "cpu-ns/op") }
}

func cpuNow() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}

func benchTopics(prefix string, n int) []string {
	ts := make([]string, n)
	for i := range ts {
		ts[i] = prefix + "/vehicles/V" + strconv.Itoa(i+1) + "/position"
	}
	return ts
}

func BenchmarkValidTopic(b *testing.B) {
	topic := "exlive/vehicles/沪A12345/position"
	b.ReportAllocs()
	defer cpuPerOp(b)()
	for b.Loop() {
		if err := mqtt.ValidTopic(topic); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPublishQueue is Publish on a client that is not connected: the
// topic check and the queue, which drops its oldest message once full.
func BenchmarkPublishQueue(b *testing.B) {
	cfg := mqtt.Defaults()
	cfg.ClientID = "bench"
	cfg.QueueLimit = 4096
	c, err := mqtt.New(cfg, bridgeState(cfg), zerolog.Nop(), nil)
	if err != nil {
		b.Fatal(err)
	}
	topics := benchTopics("exlive", 1000)
	b.ReportAllocs()
	i := 0
	defer cpuPerOp(b)()
	for b.Loop() {
		if err := c.Publish(topics[i], benchPayload, true); err != nil {
			b.Fatal(err)
		}
		if i++; i == len(topics) {
			i = 0
		}
	}
}

// BenchmarkPublish is the whole client: Publish, the sender, paho, the
// broker's acknowledgements, at QoS 0 and 1, against the embedded broker
// and EXLIVE2MQTT_TEST_MQTT_URL's. Every message is delivered before the
// timer stops. On two cores the broker competes with the client; the load
// tool (cmd/exlive-bench) measures the bridge as a process.
func BenchmarkPublish(b *testing.B) {
	// A large message now and then (the inventory a big account lists)
	// among the positions, as the bridge publishes them.
	large := bytes.Repeat([]byte("0123456789abcdef"), 20_000)
	for _, target := range brokertest.Targets(b) {
		for _, qos := range []byte{0, 1} {
			b.Run(target.Name+"/qos"+strconv.Itoa(int(qos)), func(b *testing.B) {
				cfg := mqtt.Defaults()
				cfg.URL = target.URL
				cfg.ClientID = brokertest.ClientID(b)
				cfg.TopicPrefix = brokertest.Prefix(b)
				cfg.QoS = qos
				if err := cfg.Validate(nil); err != nil {
					b.Fatal(err)
				}
				up := make(chan struct{}, 1)
				c, err := mqtt.New(cfg, bridgeState(cfg), zerolog.Nop(), func(l mqtt.Link) {
					if l.Connected {
						select {
						case up <- struct{}{}:
						default:
						}
					}
				})
				if err != nil {
					b.Fatal(err)
				}
				c.Start()
				select {
				case <-up:
				case <-time.After(10 * time.Second):
					b.Fatal("not connected")
				}
				topics := benchTopics(cfg.TopicPrefix, 1000)
				b.ReportAllocs()
				i := 0
				defer cpuPerOp(b)()
				for b.Loop() {
					// Not retained: nothing is left behind on a shared broker.
					if err := c.Publish(topics[i], benchPayload, false); err != nil {
						b.Fatal(err)
					}
					if i%500 == 0 {
						if err := c.Publish(cfg.TopicPrefix+"/bridge/vehicles", large, false); err != nil {
							b.Fatal(err)
						}
					}
					if i++; i == len(topics) {
						i = 0
					}
				}
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				if lost := c.Stop(ctx); lost > 0 {
					b.Fatalf("%d messages not delivered", lost)
				}
				if st := c.Stats(); st.Reconnects > 0 || st.Failed > 0 || st.Late > 0 {
					b.Fatalf("the link did not hold: %+v", st)
				}
			})
		}
	}
}
