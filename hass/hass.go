// Package hass builds the Home Assistant MQTT discovery messages
// (https://www.home-assistant.io/integrations/mqtt/#mqtt-discovery) that make
// every vehicle the bridge publishes show up in Home Assistant as a device
// with a GPS device_tracker, sensors and binary sensors, reading the
// vehicle's retained topics: P/vehicles/V/position, and with events on
// (docs/events.md) P/vehicles/V/availability and P/vehicles/V/geofences.
//
// The package only builds messages, with the topics of package topic;
// publishing them (retained, when HASS_DISCOVERY=true) is the caller's job.
//
// Design notes, with the Home Assistant facts they rest on:
//
//   - One config topic per entity, <HASS_PREFIX>/<component>/<node>/<slug>_<object>/config
//     (topic.Layout.DiscoveryConfig), its node naming the bridge; ids.go has
//     the one scheme of every id (node, object id, unique_id, device).
//     HA only accepts node and object ids made of [a-zA-Z0-9_-] (TOPIC_MATCHER
//     in homeassistant/components/mqtt/discovery.py, and the "Discovery topic"
//     section of the MQTT integration docs), so vehicle ids are turned into a
//     [Slug]. The bridge's own node id lets it find every config it ever
//     published with one subscription ([ConfigFilter]), and no other
//     bridge's.
//   - Full key names, not the abbreviations HA also accepts
//     (homeassistant/components/mqtt/abbreviations.py): the payloads are
//     retained once per entity, not sent by a memory-starved device, and
//     readable payloads are what someone debugging with mosquitto_sub sees.
//   - The device_tracker has no state_topic: HA takes the location from the
//     latitude/longitude keys of its JSON attributes (device_tracker.mqtt docs,
//     json_attributes_topic; MqttDeviceTracker._process_update_extra_state_attributes
//     in homeassistant/components/mqtt/device_tracker.py). Recent HA
//     releases deprecate state_topic and value_template for device_tracker
//     and drop them in 2027.1 (same file).
//   - The position payload leaves out fields the platform left empty, so
//     every template tests "is defined" before reading a key. A template that
//     renders "" makes a numeric sensor or a binary sensor ignore the message
//     and keep its state; "None" makes it unknown (sensor.mqtt docs, state_topic;
//     PAYLOAD_NONE in homeassistant/components/mqtt/const.py). Values that
//     belong to the fix (time, speed, direction, fix validity) become unknown
//     when missing, because keeping them would pair a new position with the
//     old fix; values that describe the vehicle (fuel, mileage, alarm) keep
//     their last state, because the platform leaves them empty when that
//     sensor did not report.
package hass

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"unicode/utf8"

	"github.com/exlive2mqtt/exlive2mqtt/topic"
)

// Config holds the settings the discovery messages depend on.
type Config struct {
	// Topics is the bridge's topic layout: the discovery configs go under
	// its DiscoveryPrefix (topic.DefaultDiscoveryPrefix when empty) and
	// read the topics under its Prefix (topic.DefaultPrefix when empty).
	Topics topic.Layout
	// Version, when set, is sent as origin.sw_version and as the bridge
	// device's sw_version, so HA's logs name the software that sent a config.
	Version string
	// Availability gives each vehicle a connectivity binary sensor that
	// reads P/vehicles/V/availability: set when the bridge publishes it
	// (VEHICLE_OFFLINE_AFTER is not 0).
	Availability bool
	// Geofences gives each vehicle a sensor of the geofences it is in,
	// which reads P/vehicles/V/geofences: set when the bridge has
	// geofences (GEOFENCES_FILE).
	Geofences bool
}

// Vehicle identifies one vehicle of the platform.
type Vehicle struct {
	// ID is the vehicle's platform id. It must not be empty.
	ID string
	// Code is the plate or display code (e.g. "沪A12345"); the device is
	// named after it, or after ID when it is empty.
	Code string
	// Level is the vehicle's topic level V as the bridge publishes it. When
	// empty it is derived from ID by Config.Topics.Level.
	Level string
}

// Message is one MQTT message to publish.
type Message struct {
	Topic   string
	Payload []byte // empty (not nil) in the messages that delete a config
	Retain  bool   // always true: HA must find configs after it restarts
}

// ObjectTracker and the other Object constants name the entities of a
// vehicle: each is the last part of the entity's unique_id and of its config
// topic's object id.
const (
	ObjectTracker   = "tracker"
	ObjectSpeed     = "speed"
	ObjectDirection = "direction"
	ObjectFuel      = "fuel"
	ObjectMileage   = "mileage"
	ObjectFixTime   = "fix_time"
	ObjectAlarm     = "alarm"
	ObjectValid     = "valid"
	ObjectIgnition  = "ignition"
	ObjectLastSeen  = "last_seen"
	ObjectOnline    = "online"    // Config.Availability
	ObjectGeofences = "geofences" // Config.Geofences
	ObjectBridge    = "bridge"
)

const (
	componentTracker = "device_tracker"
	componentSensor  = "sensor"
	componentBinary  = "binary_sensor"
)

// Value templates. They are rendered by Home Assistant's Jinja environment
// with value_json bound to the decoded position payload. Every key is tested
// with "is defined" first: reading a missing key is no error in Jinja, but
// printing it makes HA log a template warning on every message.
const (
	// tplTracker renames lat/lng to the latitude/longitude keys the
	// device_tracker reads its location from, and passes every other field
	// through as an attribute (speed, direction, posinfo, ...). Coordinates
	// are only sent as a pair of numbers: HA resets the location and logs a
	// warning when it gets one without the other. Without them the tracker
	// keeps its last location. The payload has no accuracy, so none is
	// invented: HA then reports gps_accuracy 0.
	tplTracker = `{% set p = value_json %}` +
		`{% set a = dict(p.items() | rejectattr(0, 'in', ['lat', 'lng'])) %}` +
		`{% if p.lat is number and p.lng is number %}` +
		`{{ dict(a, latitude=p.lat, longitude=p.lng) | tojson }}` +
		`{% else %}{{ a | tojson }}{% endif %}`

	// Fix values: unknown when the payload has none.
	tplSpeed     = `{% if value_json.speed is defined %}{{ value_json.speed }}{% else %}None{% endif %}`
	tplDirection = `{% if value_json.direction is defined %}{{ value_json.direction }}{% else %}None{% endif %}`
	tplFixTime   = `{% if value_json.time is defined %}{{ value_json.time }}{% else %}None{% endif %}`
	tplValid     = `{% if value_json.valid is defined %}{{ 'ON' if value_json.valid else 'OFF' }}{% else %}None{% endif %}`

	// Vehicle values: an empty rendering keeps the last state. The
	// ignition is left out of a position whose cstate does not tell it.
	tplFuel     = `{% if value_json.fuel is defined %}{{ value_json.fuel }}{% endif %}`
	tplMileage  = `{% if value_json.mileage is defined %}{{ value_json.mileage }}{% endif %}`
	tplAlarm    = `{% if value_json.alarm is defined %}{{ 'ON' if value_json.alarm else 'OFF' }}{% endif %}`
	tplIgnition = `{% if value_json.ignition is defined %}{{ 'ON' if value_json.ignition else 'OFF' }}{% endif %}`

	// When the bridge received the position: every payload has it.
	tplLastSeen = `{% if value_json.received is defined %}{{ value_json.received }}{% else %}None{% endif %}`

	// The geofences topic holds a JSON array of names. The state is the
	// names joined, or "none": a text sensor takes "" as a state, which
	// shows as nothing at all; it is cut to the 255 characters a state may
	// hold (longer ones are refused and logged by HA). The attribute
	// geofences holds the list whole, for automations
	// ("'depot' in state_attr(…, 'geofences')"). A payload that is not a
	// list (none the bridge sends) renders nothing: no change.
	tplGeofences      = `{% if value_json is defined and value_json is iterable and value_json is not string and value_json is not mapping %}{{ ((value_json | join(', ')) or 'none')[:255] }}{% endif %}`
	tplGeofencesAttrs = `{% if value_json is defined and value_json is iterable and value_json is not string and value_json is not mapping %}{{ {'geofences': value_json | list} | tojson }}{% else %}{}{% endif %}`
)

// availability is HA's list form, which also allows adding a per-vehicle
// topic later with availability_mode "all".
type availability struct {
	Topic               string `json:"topic"`
	PayloadAvailable    string `json:"payload_available"`
	PayloadNotAvailable string `json:"payload_not_available"`
}

type device struct {
	Identifiers  []string `json:"identifiers"`
	Name         string   `json:"name"`
	Manufacturer string   `json:"manufacturer,omitempty"`
	Model        string   `json:"model,omitempty"`
	SWVersion    string   `json:"sw_version,omitempty"`
	ViaDevice    string   `json:"via_device,omitempty"`
}

type origin struct {
	Name      string `json:"name"`
	SWVersion string `json:"sw_version,omitempty"`
}

// entity is the union of the keys the three components use, in the order
// they are written. name has no omitempty: null is how an entity says it is
// the device's main feature and takes the device's name.
type entity struct {
	Name                   *string        `json:"name"`
	UniqueID               string         `json:"unique_id"`
	StateTopic             string         `json:"state_topic,omitempty"`
	ValueTemplate          string         `json:"value_template,omitempty"`
	JSONAttributesTopic    string         `json:"json_attributes_topic,omitempty"`
	JSONAttributesTemplate string         `json:"json_attributes_template,omitempty"`
	SourceType             string         `json:"source_type,omitempty"`
	DeviceClass            string         `json:"device_class,omitempty"`
	StateClass             string         `json:"state_class,omitempty"`
	UnitOfMeasurement      string         `json:"unit_of_measurement,omitempty"`
	PayloadOn              string         `json:"payload_on,omitempty"`
	PayloadOff             string         `json:"payload_off,omitempty"`
	EntityCategory         string         `json:"entity_category,omitempty"`
	Icon                   string         `json:"icon,omitempty"`
	Availability           []availability `json:"availability,omitempty"`
	Device                 device         `json:"device"`
	Origin                 origin         `json:"origin"`
}

type spec struct {
	component string
	object    string
	e         entity
}

func str(s string) *string { return &s }

// Configs returns the retained discovery messages for one vehicle: a
// device_tracker, sensors for speed, direction, fuel, mileage, fix time and
// last seen, binary sensors for alarm, fix validity and ignition and, as
// cfg asks, a connectivity binary sensor and a geofences sensor. An entity
// cfg turns off comes as an empty payload, which deletes it in HA. It
// returns nil when v.ID is empty. The result depends only on its arguments,
// so republishing it (on every connect, or when HA publishes "online" on
// its birth topic) is safe.
func Configs(cfg Config, v Vehicle) []Message {
	if v.ID == "" {
		return nil
	}
	cfg = cfg.withDefaults()
	level := v.level(cfg)
	position := cfg.Topics.Position(level)
	name := v.Code
	if name == "" {
		name = v.ID
	}
	dev := device{
		Identifiers:  []string{cfg.DeviceID(v)},
		Name:         name,
		Manufacturer: "EXLIVE",
		Model:        "vehicle",
		ViaDevice:    cfg.bridgeID(),
	}
	avail := []availability{{
		Topic:               cfg.Topics.State(),
		PayloadAvailable:    topic.Online,
		PayloadNotAvailable: topic.Offline,
	}}
	specs := []spec{
		{componentTracker, ObjectTracker, entity{
			Name:                   nil,
			JSONAttributesTopic:    position,
			JSONAttributesTemplate: tplTracker,
			SourceType:             "gps",
			Icon:                   "mdi:car",
		}},
		{componentSensor, ObjectSpeed, entity{
			Name:              str("Speed"),
			StateTopic:        position,
			ValueTemplate:     tplSpeed,
			DeviceClass:       "speed",
			StateClass:        "measurement",
			UnitOfMeasurement: "km/h",
		}},
		// No device class fits a vehicle heading (wind_direction is the only
		// angle class), and no state class: "measurement" statistics would
		// average 359° and 1° to 180°, and "measurement_angle" is newer than
		// the HA versions this must work with and tied to wind_direction.
		{componentSensor, ObjectDirection, entity{
			Name:              str("Direction"),
			StateTopic:        position,
			ValueTemplate:     tplDirection,
			UnitOfMeasurement: "°",
			Icon:              "mdi:compass-outline",
		}},
		// volume_storage is the class HA made for "the amount of fuel in a
		// fuel tank"; it takes L and only the measurement state class
		// (DEVICE_CLASS_UNITS and DEVICE_CLASS_STATE_CLASSES in
		// homeassistant/components/sensor/const.py).
		{componentSensor, ObjectFuel, entity{
			Name:              str("Fuel"),
			StateTopic:        position,
			ValueTemplate:     tplFuel,
			DeviceClass:       "volume_storage",
			StateClass:        "measurement",
			UnitOfMeasurement: "L",
			Icon:              "mdi:gas-station",
		}},
		{componentSensor, ObjectMileage, entity{
			Name:              str("Mileage"),
			StateTopic:        position,
			ValueTemplate:     tplMileage,
			DeviceClass:       "distance",
			StateClass:        "total_increasing",
			UnitOfMeasurement: "km",
			Icon:              "mdi:counter",
		}},
		{componentSensor, ObjectFixTime, entity{
			Name:          str("Last fix"),
			StateTopic:    position,
			ValueTemplate: tplFixTime,
			DeviceClass:   "timestamp",
		}},
		{componentBinary, ObjectAlarm, entity{
			Name:          str("Alarm"),
			StateTopic:    position,
			ValueTemplate: tplAlarm,
			DeviceClass:   "problem",
			PayloadOn:     "ON",
			PayloadOff:    "OFF",
		}},
		// No binary_sensor device class means "has a valid GPS fix"; a plain
		// on/off with an icon says it best. It is diagnostic information.
		{componentBinary, ObjectValid, entity{
			Name:           str("GPS fix"),
			StateTopic:     position,
			ValueTemplate:  tplValid,
			PayloadOn:      "ON",
			PayloadOff:     "OFF",
			EntityCategory: "diagnostic",
			Icon:           "mdi:crosshairs-gps",
		}},
		// The ignition (ACC) as the bridge reads it from cstate. No
		// device class fits: "power" means mains power detected, and
		// "running" shows "Not running" for a parked car with its radio
		// on; plain on/off with a key is what a driver calls it.
		{componentBinary, ObjectIgnition, entity{
			Name:          str("Ignition"),
			StateTopic:    position,
			ValueTemplate: tplIgnition,
			PayloadOn:     "ON",
			PayloadOff:    "OFF",
			Icon:          "mdi:key-variant",
		}},
		// When the bridge last heard from the vehicle (zigbee2mqtt's
		// last_seen), as opposed to the fix time the tracker reported.
		{componentSensor, ObjectLastSeen, entity{
			Name:           str("Last seen"),
			StateTopic:     position,
			ValueTemplate:  tplLastSeen,
			DeviceClass:    "timestamp",
			EntityCategory: "diagnostic",
		}},
		// Whether the vehicle reports: P/vehicles/V/availability. It is
		// only an entity, never the availability of the others, so the
		// tracker of a parked vehicle that has gone quiet stays on the map
		// where it was last seen, and this one says it is disconnected.
		{componentBinary, ObjectOnline, entity{
			Name:        str("Online"),
			StateTopic:  cfg.Topics.Availability(level),
			DeviceClass: "connectivity",
			PayloadOn:   topic.Online,
			PayloadOff:  topic.Offline,
		}},
		{componentSensor, ObjectGeofences, entity{
			Name:                   str("Geofences"),
			StateTopic:             cfg.Topics.Geofences(level),
			ValueTemplate:          tplGeofences,
			JSONAttributesTopic:    cfg.Topics.Geofences(level),
			JSONAttributesTemplate: tplGeofencesAttrs,
			Icon:                   "mdi:map-marker-radius",
		}},
	}
	off := map[string]bool{ObjectOnline: !cfg.Availability, ObjectGeofences: !cfg.Geofences}
	msgs := make([]Message, 0, len(specs))
	for _, s := range specs {
		var configTopic string
		s.e.UniqueID, configTopic = cfg.Entity(s.component, v, s.object)
		m := Message{Topic: configTopic, Payload: []byte{}, Retain: true}
		// An entity turned off is deleted, in case an earlier run (with
		// geofences, say) made it: it would stay unknown for ever.
		if !off[s.object] {
			s.e.Availability = avail
			s.e.Device = dev
			s.e.Origin = cfg.origin()
			m.Payload = marshal(s.e)
		}
		msgs = append(msgs, m)
	}
	return msgs
}

// Remove returns the messages that delete every entity [Configs] creates for
// v, whatever cfg turns on or off: the same topics with an empty retained
// payload. HA removes the device once its last entity is gone, and the
// broker drops the retained configs.
func Remove(cfg Config, v Vehicle) []Message {
	cfg.Availability, cfg.Geofences = true, true
	return Clear(Configs(cfg, v))
}

// Bridge returns the retained discovery message for the bridge itself: a
// connectivity binary sensor reading P/bridge/state, on a device the
// vehicles name as their via_device. It has no availability on purpose, so
// that it shows "disconnected" rather than "unavailable" when the bridge's
// last will says "offline".
func Bridge(cfg Config) []Message {
	cfg = cfg.withDefaults()
	id, configTopic := cfg.bridgeEntity()
	e := entity{
		Name:        nil,
		UniqueID:    id,
		StateTopic:  cfg.Topics.State(),
		DeviceClass: "connectivity",
		PayloadOn:   topic.Online,
		PayloadOff:  topic.Offline,
		Device: device{
			Identifiers: []string{id},
			Name:        "exlive2mqtt " + cfg.Topics.Prefix,
			Model:       "exlive2mqtt",
			SWVersion:   cfg.Version,
		},
		Origin: cfg.origin(),
	}
	return []Message{{
		Topic:   configTopic,
		Payload: marshal(e),
		Retain:  true,
	}}
}

// Clear returns copies of msgs with empty retained payloads, which delete
// discovery configs in HA and their retained copies on the broker.
func Clear(msgs []Message) []Message {
	out := make([]Message, len(msgs))
	for i, m := range msgs {
		out[i] = Message{Topic: m.Topic, Payload: []byte{}, Retain: true}
	}
	return out
}

// ConfigFilter returns the MQTT topic filter that matches every discovery
// config this package builds for cfg's bridge (its node, under its
// discovery prefix), for vehicles and bridge alike, and no other bridge's.
// Subscribing to it lists the retained configs, so a bridge can [Clear]
// those of vehicles it no longer has.
func ConfigFilter(cfg Config) string {
	cfg = cfg.withDefaults()
	return cfg.Topics.DiscoveryFilter(cfg.Node())
}

// Slug turns a platform id into an identifier made of [a-zA-Z0-9_-] only, as
// HA requires for the ids in a discovery topic. An id already made of those
// characters (and at most 64 bytes long) is its own slug. Any other id has
// each other character replaced by '_', is cut to 64 bytes, and gets '_' and
// 10 hex digits of its SHA-256 appended, so that ids which sanitize alike
// ("a/b" and "a+b") still get different slugs.
func Slug(id string) string {
	const maxLen = 64
	var b strings.Builder
	changed := id == "" || len(id) > maxLen
	for _, r := range id {
		if b.Len() >= maxLen {
			break
		}
		if r < utf8.RuneSelf && (r == '_' || r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			b.WriteRune(r)
			continue
		}
		b.WriteByte('_')
		changed = true
	}
	if !changed {
		return id
	}
	sum := sha256.Sum256([]byte(id))
	h := hex.EncodeToString(sum[:5])
	if b.Len() == 0 {
		return h
	}
	return b.String() + "_" + h
}

func (v Vehicle) level(c Config) string {
	if v.Level != "" {
		return v.Level
	}
	return c.Topics.Level(v.ID)
}

func (c Config) withDefaults() Config {
	if c.Topics.DiscoveryPrefix == "" {
		c.Topics.DiscoveryPrefix = topic.DefaultDiscoveryPrefix
	}
	if c.Topics.Prefix == "" {
		c.Topics.Prefix = topic.DefaultPrefix
	}
	return c
}

func (c Config) origin() origin { return origin{Name: "exlive2mqtt", SWVersion: c.Version} }

// bridgeID returns the bridge device's identifier, which its vehicles name
// as their via_device.
func (c Config) bridgeID() string {
	id, _ := c.bridgeEntity()
	return id
}

// marshal encodes without HTML escaping, so templates keep their '<', '>'
// and '&' readable for whoever inspects the retained configs.
func marshal(e entity) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(e); err != nil {
		// Only strings, slices and structs of them: encoding cannot fail.
		panic("hass: " + err.Error())
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}
