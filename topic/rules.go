package topic

import (
	"fmt"
	"strings"
)

// Rules says which characters of a vehicle id Level replaces by '_': those
// MQTT itself forbids in a published topic level, and, for a broker that
// refuses more or reads more into a topic, those too (MQTT_TOPIC_RULES).
// The zero value is RulesMQTT.
//
// What each broker does with the characters its rule replaces was seen
// here, a client publishing p/a<c>b/x while subscribed to p/+/x (see
// docs/scaling.md, Broker compatibility):
//
//   - NATS 2.9 (its MQTT server) maps topics onto NATS subjects, whose
//     separator is '.'. A topic with '.' or ' ' makes it close the
//     connection, without a word to the client, which sends the message
//     again after every reconnect; a level that is '>' is accepted and
//     never delivered; '*' and '>' are a subject's wildcards.
//   - RabbitMQ 3.10 (its MQTT plugin) maps topics onto AMQP routing keys the
//     same way: '.' becomes a level separator (p/a.b/x is delivered as
//     p/a/b/x, so a subscription to the vehicle's topic never sees it), and
//     '*' comes back as '+' (p/a*b/x is delivered as p/a+b/x). A space is
//     delivered as it is.
type Rules uint8

// The rules MQTT_TOPIC_RULES names.
const (
	RulesMQTT     Rules = iota // "mqtt": MQTT's own (/ + # and control characters; Level)
	RulesNATS                  // "nats": also '.', ' ', '*' and '>'
	RulesRabbitMQ              // "rabbitmq": also '.' and '*'
	numRules
)

var rulesNames = [numRules]string{"mqtt", "nats", "rabbitmq"}

// asciiSet is a set of ASCII characters, a bit each: Level's hot path tests
// an id a byte at a time against it.
type asciiSet [2]uint64

func (s *asciiSet) has(c byte) bool { return s[c>>6]&(1<<(c&63)) != 0 }

// with returns s with every character of chars added.
func (s asciiSet) with(chars string) asciiSet {
	for i := 0; i < len(chars); i++ {
		c := chars[i]
		s[c>>6] |= 1 << (c & 63)
	}
	return s
}

// mqttSet is what MQTT forbids in a published topic level, or what
// Mosquitto refuses: the wildcards, the separator, and the C0 controls and
// DEL (NUL among them). Non-ASCII characters are levelRune's.
func mqttSet() asciiSet {
	s := asciiSet{1<<0x20 - 1} // the C0 controls
	return s.with("\x7f/+#")
}

// replaced holds, by Rules, the ASCII characters Level replaces. No rule
// adds a non-ASCII character: NATS and RabbitMQ carry the rest of Unicode
// (é, 中文, U+00A0, U+3000 were tried) as they are.
var replaced = [numRules]asciiSet{
	RulesMQTT:     mqttSet(),
	RulesNATS:     mqttSet().with(". *>"),
	RulesRabbitMQ: mqttSet().with(".*"),
}

// set returns the characters r replaces; an unknown r, which only code
// could make, replaces what RulesMQTT does.
func (r Rules) set() *asciiSet {
	if r >= numRules {
		r = RulesMQTT
	}
	return &replaced[r]
}

// String returns the rules' name, as MQTT_TOPIC_RULES spells it.
func (r Rules) String() string {
	if r >= numRules {
		return fmt.Sprintf("rules(%d)", uint8(r))
	}
	return rulesNames[r]
}

// ParseRules returns the rules named s (mqtt, nats or rabbitmq, in any
// case).
func ParseRules(s string) (Rules, error) {
	for r, name := range rulesNames {
		if strings.EqualFold(s, name) {
			return Rules(r), nil
		}
	}
	return 0, fmt.Errorf("want %s, %s or %s", rulesNames[RulesMQTT], rulesNames[RulesNATS], rulesNames[RulesRabbitMQ])
}

// UnmarshalText reads the rules' name (ParseRules), as settings are read.
func (r *Rules) UnmarshalText(b []byte) error {
	v, err := ParseRules(string(b))
	if err != nil {
		return err
	}
	*r = v
	return nil
}

// MarshalText writes the rules' name.
func (r Rules) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// Refused returns the first character of s, a topic or part of one that a
// user set (a prefix), that r replaces in a vehicle id and MQTT does not:
// a topic the broker would refuse or change. ok is false when there is
// none.
func (r Rules) Refused(s string) (c byte, ok bool) {
	extra, mqtt := r.set(), RulesMQTT.set()
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x80 && extra.has(c) && !mqtt.has(c) {
			return c, true
		}
	}
	return 0, false
}
