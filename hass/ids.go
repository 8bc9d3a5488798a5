package hass

import (
	"bytes"
	"encoding/json"
	"strings"

	"github.com/exlive2mqtt/exlive2mqtt/topic"
)

// The naming scheme. Every id a discovery config carries is made here, so
// that two bridges on one broker (one per EXLIVE account, each with its own
// MQTT_TOPIC_PREFIX) never name the same thing, and so that every entity,
// those to come included, follows one rule:
//
//   - the node id, the discovery topic's node level, names the bridge:
//     "exlive2mqtt" for the default prefix "exlive" ([LegacyNode]),
//     "exlive2mqtt-<Slug(prefix)>" for any other;
//   - the object id, the topic's last level before /config, names the
//     entity within the bridge: <Slug(vehicle id)>_<object>;
//   - the unique_id, which Home Assistant keys its entity registry by, is
//     the node id and the object id joined by '/';
//   - the device identifier of a vehicle is the node id and the vehicle's
//     platform id joined by '/'.
//
// The bridge with the default prefix keeps the ids earlier versions gave
// every bridge (unique_id "exlive2mqtt_<object id>", device
// "exlive2mqtt_<vehicle id>"), so that the entities of an existing
// installation, with their names, areas and history, stay as they were. The
// two forms never meet: a legacy id starts "exlive2mqtt_" and holds no '/'
// before the vehicle id, a new one starts "exlive2mqtt-"; a node id holds no
// '/', so the first '/' of a new id ends the node. (One meeting is left in the
// legacy form, as it was: a vehicle with the id "bridge_exlive" has the
// bridge's device identifier.) A bridge with another
// prefix left configs under the legacy node in earlier versions, where two
// such bridges overwrote each other's: [Stale] finds them, so that the
// bridge can clear them (docs/scaling.md, "Home Assistant").

// LegacyNode is the node id of the bridge with the default topic prefix, and
// the one node every bridge used before bridges were told apart.
const LegacyNode = "exlive2mqtt"

// Legacy reports whether the bridge keeps the ids of earlier versions: its
// topic prefix is the default one.
func (c Config) Legacy() bool {
	return c.withDefaults().Topics.Prefix == topic.DefaultPrefix
}

// Node returns the bridge's node id, the node level of all its discovery
// topics: LegacyNode for the default prefix, exlive2mqtt-<Slug(prefix)>
// otherwise.
func (c Config) Node() string {
	c = c.withDefaults()
	if c.Legacy() {
		return LegacyNode
	}
	return LegacyNode + "-" + Slug(c.Topics.Prefix)
}

// ObjectID returns the object id of entity object (ObjectSpeed, …) of v:
// <Slug(v.ID)>_<object>. object must be made of [a-z0-9_].
func ObjectID(v Vehicle, object string) string { return Slug(v.ID) + "_" + object }

// Entity returns the unique_id of entity object of v, and the topic of its
// discovery config under component ("sensor", "binary_sensor", …). Every
// entity of a vehicle is named by it.
func (c Config) Entity(component string, v Vehicle, object string) (uniqueID, configTopic string) {
	c = c.withDefaults()
	obj := ObjectID(v, object)
	node := c.Node()
	if c.Legacy() {
		uniqueID = LegacyNode + "_" + obj
	} else {
		uniqueID = node + "/" + obj
	}
	return uniqueID, c.Topics.DiscoveryConfig(node, component, obj)
}

// DeviceID returns the identifier of v's device, which all of v's entities
// share.
func (c Config) DeviceID(v Vehicle) string {
	if c.Legacy() {
		return LegacyNode + "_" + v.ID
	}
	return c.Node() + "/" + v.ID
}

// bridgeEntity returns the unique_id (also the device identifier) and the
// config topic of the bridge's own entity.
func (c Config) bridgeEntity() (uniqueID, configTopic string) {
	c = c.withDefaults()
	if c.Legacy() {
		prefix := Slug(c.Topics.Prefix)
		return "exlive2mqtt_bridge_" + prefix, c.Topics.DiscoveryConfig(LegacyNode, componentBinary, prefix+"_"+ObjectBridge)
	}
	node := c.Node()
	return node + "/" + ObjectBridge, c.Topics.DiscoveryConfig(node, componentBinary, ObjectBridge)
}

// LegacyFilter returns the filter of every config under the legacy node,
// <HASS_PREFIX>/+/exlive2mqtt/+/config, where a bridge whose prefix is not
// the default one left its configs in earlier versions. "" for the bridge
// with the default prefix, whose configs are still there.
func LegacyFilter(cfg Config) string {
	cfg = cfg.withDefaults()
	if cfg.Legacy() {
		return ""
	}
	return cfg.Topics.DiscoveryFilter(LegacyNode)
}

// Stale reports whether a retained config found on LegacyFilter is one this
// bridge published in earlier versions, and should be cleared: its
// availability (a vehicle's entity) or its state topic (the bridge's) is
// this bridge's P/bridge/state. Configs of other bridges, and the empty
// payloads that clear a config, are not.
func Stale(cfg Config, payload []byte) bool {
	cfg = cfg.withDefaults()
	if cfg.Legacy() || len(payload) == 0 {
		return false
	}
	state := cfg.Topics.State()
	// Most configs on a shared broker are other bridges': skip decoding
	// those that cannot name the topic (unless JSON may have escaped it).
	if !strings.ContainsAny(state, "\"\\<>&") && !bytes.Contains(payload, []byte(state)) {
		return false
	}
	var c struct {
		StateTopic   string `json:"state_topic"`
		Availability []struct {
			Topic string `json:"topic"`
		} `json:"availability"`
		Origin struct {
			Name string `json:"name"`
		} `json:"origin"`
	}
	if json.Unmarshal(payload, &c) != nil || c.Origin.Name != "exlive2mqtt" {
		return false
	}
	if len(c.Availability) > 0 {
		return c.Availability[0].Topic == state
	}
	return c.StateTopic == state
}
