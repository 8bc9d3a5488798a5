// Package topic is the layout of every MQTT topic the bridge publishes and
// subscribes to, as docs/topics.md and docs/integrations.md describe them:
// P/bridge/…, P/vehicles/V/…, the requests' /set and /result topics, the
// OwnTracks topics and the Home Assistant discovery topics. Every topic is
// built here and every request topic parsed here; no other package joins
// topic levels, so the layout can be read, and changed, in one place.
//
// The package knows nothing of MQTT clients or of the platform: it is
// strings in, strings out.
package topic

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// The defaults of the Layout's fields, those of MQTT_TOPIC_PREFIX,
// HASS_PREFIX and OWNTRACKS_USER.
const (
	DefaultPrefix          = "exlive"
	DefaultDiscoveryPrefix = "homeassistant"
	DefaultOwnTracksUser   = "exlive"
)

// Online and Offline are the payloads of the bridge's state topic
// (Layout.State): online once connected, offline at shutdown and as the
// MQTT last will.
const (
	Online  = "online"
	Offline = "offline"
)

// Layout builds and parses the topics. Its fields are settings that have
// been validated (no wildcards; OwnTracksUser one level); it adds no
// defaults of its own.
type Layout struct {
	Prefix          string // P, MQTT_TOPIC_PREFIX: the first level(s) of the bridge's own topics
	DiscoveryPrefix string // HASS_PREFIX: where Home Assistant listens for discovery configs
	OwnTracksUser   string // OWNTRACKS_USER: the user level of owntracks/USER/V
	Rules           Rules  // MQTT_TOPIC_RULES: what Level replaces in a vehicle id
}

// Kind is what a request topic asks for: the level before /set, and before
// /result in its answer's topic.
type Kind uint8

// The kinds of request, in the order docs/topics.md lists them.
const (
	KindCommand     Kind = iota // P/vehicles/V/command/set
	KindPassthrough             // P/vehicles/V/passthrough/set
	KindPosition                // P/vehicles/V/position/set: an upload
	KindMessage                 // P/bridge/message/set
	KindGroups                  // P/bridge/groups/set
	KindVehicles                // P/bridge/vehicles/set
	NumKinds                    // how many kinds there are: for k := range NumKinds
)

var kindNames = [NumKinds]string{"command", "passthrough", "position", "message", "groups", "vehicles"}

// String returns the kind's topic level, e.g. "command".
func (k Kind) String() string {
	if k >= NumKinds {
		return "kind(" + strconv.Itoa(int(k)) + ")"
	}
	return kindNames[k]
}

// Vehicle reports whether requests of this kind are made to one vehicle,
// under P/vehicles/V/, rather than to the bridge, under P/bridge/.
func (k Kind) Vehicle() bool { return k <= KindPosition }

const (
	bridgeLevel   = "/bridge/"
	vehiclesLevel = "/vehicles/"
	setLevel      = "/set"
	resultLevel   = "/result"
)

// State returns P/bridge/state, whose retained payload is Online or
// Offline.
func (l Layout) State() string { return l.Prefix + bridgeLevel + "state" }

// Session returns P/bridge/session, the state of the platform session.
func (l Layout) Session() string { return l.Prefix + bridgeLevel + "session" }

// Groups returns P/bridge/groups, the account's groups.
func (l Layout) Groups() string { return l.Prefix + bridgeLevel + "groups" }

// Vehicles returns P/bridge/vehicles, the account's vehicles.
func (l Layout) Vehicles() string { return l.Prefix + bridgeLevel + "vehicles" }

// Message returns P/bridge/message, where text messages from the platform
// go.
func (l Layout) Message() string { return l.Prefix + bridgeLevel + "message" }

// Position returns P/vehicles/V/position, for the topic level V of a
// vehicle (see Level).
func (l Layout) Position(level string) string {
	return l.Prefix + vehiclesLevel + level + "/position"
}

// Passthrough returns P/vehicles/V/passthrough, where the vehicle's
// passthrough replies go.
func (l Layout) Passthrough(level string) string {
	return l.Prefix + vehiclesLevel + level + "/passthrough"
}

// Availability returns P/vehicles/V/availability, whose retained payload
// is Online or Offline: whether the vehicle has reported within
// VEHICLE_OFFLINE_AFTER (docs/events.md).
func (l Layout) Availability(level string) string {
	return l.Prefix + vehiclesLevel + level + "/availability"
}

// Event returns P/vehicles/V/event, where the vehicle's events go (not
// retained).
func (l Layout) Event(level string) string {
	return l.Prefix + vehiclesLevel + level + "/event"
}

// Geofences returns P/vehicles/V/geofences, whose retained payload is the
// JSON array of the geofences the vehicle is in.
func (l Layout) Geofences(level string) string {
	return l.Prefix + vehiclesLevel + level + "/geofences"
}

// Set returns the topic of a request: P/vehicles/V/<kind>/set, or
// P/bridge/<kind>/set for a kind that is not a vehicle's (level is then
// ignored).
func (l Layout) Set(k Kind, level string) string { return l.request(k, level) + setLevel }

// SetFilter returns the subscription filter of every request of kind k:
// P/vehicles/+/<kind>/set, or P/bridge/<kind>/set.
func (l Layout) SetFilter(k Kind) string { return l.request(k, "+") + setLevel }

// Result returns the topic of the answer to a request: P/vehicles/V/<kind>/result,
// or P/bridge/<kind>/result.
func (l Layout) Result(k Kind, level string) string { return l.request(k, level) + resultLevel }

func (l Layout) request(k Kind, level string) string {
	if k.Vehicle() {
		return l.Prefix + vehiclesLevel + level + "/" + k.String()
	}
	return l.Prefix + bridgeLevel + k.String()
}

// ParseSet reads a request topic: its kind and, for a vehicle's request,
// the level V it names (as it stands in the topic, which may be no level
// the bridge publishes). ok is false for any other topic.
func (l Layout) ParseSet(t string) (level string, k Kind, ok bool) {
	rest, ok := strings.CutPrefix(t, l.Prefix)
	if !ok {
		return "", 0, false
	}
	if rest, ok = strings.CutSuffix(rest, setLevel); !ok {
		return "", 0, false
	}
	if name, ok := strings.CutPrefix(rest, bridgeLevel); ok {
		k, ok := kindNamed(name)
		if !ok || k.Vehicle() {
			return "", 0, false
		}
		return "", k, true
	}
	if rest, ok = strings.CutPrefix(rest, vehiclesLevel); !ok {
		return "", 0, false
	}
	level, name, ok := strings.Cut(rest, "/")
	if !ok {
		return "", 0, false
	}
	if k, ok = kindNamed(name); !ok || !k.Vehicle() {
		return "", 0, false
	}
	return level, k, true
}

func kindNamed(name string) (Kind, bool) {
	for k, n := range kindNames {
		if n == name {
			return Kind(k), true
		}
	}
	return 0, false
}

// All returns P/#, the filter of every topic under the prefix.
func (l Layout) All() string { return l.Prefix + "/#" }

// BridgeFilter returns P/bridge/+, the filter of the bridge's own topics
// (state, session, groups, vehicles, message).
func (l Layout) BridgeFilter() string { return l.Prefix + bridgeLevel + "+" }

// PositionFilter returns P/vehicles/+/position, the filter of every
// vehicle's position.
func (l Layout) PositionFilter() string { return l.Position("+") }

// ParsePosition returns the level V of a position topic,
// P/vehicles/V/position; ok is false for any other topic.
func (l Layout) ParsePosition(t string) (level string, ok bool) {
	rest, ok := strings.CutPrefix(t, l.Prefix+vehiclesLevel)
	if !ok {
		return "", false
	}
	if level, ok = strings.CutSuffix(rest, "/position"); !ok || strings.Contains(level, "/") {
		return "", false
	}
	return level, true
}

// OwnTracks returns owntracks/USER/V, where the vehicle's positions go as
// OwnTracks locations (owntracks/<user>/<device> is OwnTracks' own layout,
// which its Recorder and Home Assistant's OwnTracks integration read).
func (l Layout) OwnTracks(level string) string {
	return "owntracks/" + l.OwnTracksUser + "/" + level
}

// OwnTracksCard returns owntracks/USER/V/info, where the vehicle's
// OwnTracks card (its display name) goes.
func (l Layout) OwnTracksCard(level string) string { return l.OwnTracks(level) + "/info" }

// DiscoveryConfig returns the topic of one Home Assistant discovery config,
// <HASS_PREFIX>/<component>/<node>/<object>/config. node and object must be
// made of [a-zA-Z0-9_-], as Home Assistant requires; package hass names
// them (hass.Config.Entity), one node per bridge.
func (l Layout) DiscoveryConfig(node, component, object string) string {
	return l.DiscoveryPrefix + "/" + component + "/" + node + "/" + object + "/config"
}

// DiscoveryFilter returns the filter of every discovery config
// DiscoveryConfig builds for node, <HASS_PREFIX>/+/<node>/+/config.
func (l Layout) DiscoveryFilter(node string) string { return l.DiscoveryConfig(node, "+", "+") }

// DiscoveryStatus returns <HASS_PREFIX>/status, where Home Assistant
// announces that it has (re)started.
func (l Layout) DiscoveryStatus() string { return l.DiscoveryPrefix + "/status" }

// Level turns a vehicle's platform id into its topic level V: every '/',
// '+', '#' and NUL, every other control character (C0, DEL and C1), every
// invalid byte and every Unicode non-character becomes '_', and so does
// every character the broker refuses under the layout's Rules ('.' and ' '
// for NATS, say). An id that is safe is returned as it is, without an
// allocation.
//
// This is the one rule: the bridge's topics, the status page and the Home
// Assistant configs all take V from here, and the bridge maps V back to the
// id (two ids that share a V are a collision it counts). It is the
// stricter of the two rules the code had (mqtt.Level and hass.TopicLevel;
// the latter let non-characters through), and the right one: a broker
// disconnects a client that publishes to a topic with a wildcard,
// Mosquitto also refuses control characters and non-characters, and a
// client that resends such a message after every reconnect never gets
// anywhere. mqtt.ValidTopic accepts every level Level returns (a test
// holds the two together).
func (l Layout) Level(id string) string {
	set := l.Rules.set()
	if levelSafe(id, set) {
		return id
	}
	var b strings.Builder
	b.Grow(len(id))
	for i := 0; i < len(id); {
		if c := id[i]; c < utf8.RuneSelf {
			if set.has(c) {
				c = '_'
			}
			b.WriteByte(c)
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(id[i:])
		if (r == utf8.RuneError && size == 1) || !levelRune(r) {
			b.WriteByte('_')
		} else {
			b.WriteString(id[i : i+size])
		}
		i += size
	}
	return b.String()
}

// AppendPosition appends Position(Level(id)) to dst: the topic of a
// vehicle's positions, built for each position into a buffer the caller
// reuses, so that the bridge need not keep a topic string per vehicle (100
// 000 of them are 6 MB) nor allocate one per position. It allocates only
// for an id that Level has to change.
func (l Layout) AppendPosition(dst []byte, id string) []byte {
	dst = append(dst, l.Prefix...)
	dst = append(dst, vehiclesLevel...)
	dst = append(dst, l.Level(id)...)
	return append(dst, "/position"...)
}

// levelSafe reports whether Level leaves s as it is under the rules whose
// ASCII characters are set. ASCII, the common case, is checked a byte at a
// time.
func levelSafe(s string, set *asciiSet) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= utf8.RuneSelf {
			return levelSafeSlow(s[i:], set)
		}
		if set.has(c) {
			return false
		}
	}
	return true
}

func levelSafeSlow(s string, set *asciiSet) bool {
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if set.has(c) {
				return false
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && size == 1) || !levelRune(r) {
			return false
		}
		i += size
	}
	return true
}

// levelRune reports whether a non-ASCII rune may stand in a level.
func levelRune(r rune) bool {
	switch {
	case r >= 0x7f && r <= 0x9f:
		return false // C1 controls
	case r >= 0xfdd0 && r <= 0xfdef, r&0xfffe == 0xfffe:
		return false // non-characters, which Mosquitto refuses
	}
	return true
}
