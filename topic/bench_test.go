package topic_test

import (
	"testing"

	"github.com/exlive2mqtt/exlive2mqtt/topic"
)

// BenchmarkLevel is the level of a safe ASCII id, a safe Chinese one, and
// one that needs replacing (the only kind that allocates), under each
// MQTT_TOPIC_RULES: "fleet.a b1" is safe for MQTT and needs replacing for
// NATS and RabbitMQ.
func BenchmarkLevel(b *testing.B) {
	for _, rules := range []topic.Rules{topic.RulesMQTT, topic.RulesNATS, topic.RulesRabbitMQ} {
		l := topic.Layout{Rules: rules}
		for _, id := range []string{"V12345", "沪A12345", "a/b+c#d", "fleet.a b1"} {
			b.Run(rules.String()+"/"+id, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					l.Level(id)
				}
			})
		}
	}
}

// BenchmarkAppendPosition is the topic of a position built per position
// (topic.Layout.AppendPosition into a reused buffer), under each rule.
func BenchmarkAppendPosition(b *testing.B) {
	for _, rules := range []topic.Rules{topic.RulesMQTT, topic.RulesNATS, topic.RulesRabbitMQ} {
		l := topic.Layout{Prefix: "exlive", Rules: rules}
		for _, id := range []string{"V12345", "fleet.a b1"} {
			b.Run(rules.String()+"/"+id, func(b *testing.B) {
				var buf []byte
				b.ReportAllocs()
				for b.Loop() {
					buf = l.AppendPosition(buf[:0], id)
				}
			})
		}
	}
}
