package hass

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/exlive2mqtt/exlive2mqtt/topic"
)

// The tables below restate what Home Assistant documents and validates for
// MQTT discovery payloads, so that a config HA would reject (the whole entity
// is dropped, with one log line) fails here instead. Sources:
//   - home-assistant.io source/_integrations/{device_tracker,sensor,binary_sensor}.mqtt.markdown
//     (configuration variables, which are required);
//   - homeassistant/components/mqtt/schemas.py (MQTT_ENTITY_COMMON_SCHEMA,
//     MQTT_ENTITY_DEVICE_INFO_SCHEMA, MQTT_ORIGIN_INFO_SCHEMA, availability);
//   - homeassistant/components/mqtt/device_tracker.py (valid_config: state_topic
//     or json_attributes_topic);
//   - homeassistant/components/sensor/const.py (SensorDeviceClass,
//     DEVICE_CLASS_UNITS, DEVICE_CLASS_STATE_CLASSES);
//   - homeassistant/components/binary_sensor/__init__.py (BinarySensorDeviceClass).

type check func(v any) error

func isString(v any) error {
	if _, ok := v.(string); !ok {
		return fmt.Errorf("want string, got %T", v)
	}
	return nil
}

func isBool(v any) error {
	if _, ok := v.(bool); !ok {
		return fmt.Errorf("want boolean, got %T", v)
	}
	return nil
}

func isStringOrNull(v any) error {
	if v == nil {
		return nil
	}
	return isString(v)
}

func oneOf(values ...string) check {
	return func(v any) error {
		s, ok := v.(string)
		if !ok || !slices.Contains(values, s) {
			return fmt.Errorf("want one of %q, got %v", values, v)
		}
		return nil
	}
}

// isTopic checks a topic we subscribe HA to: a non-empty UTF-8 topic name
// without wildcards or NUL (MQTT 3.1.1 §4.7; valid_subscribe_topic would
// accept wildcards, but ours are concrete topics).
func isTopic(v any) error {
	s, ok := v.(string)
	if !ok || s == "" || !utf8.ValidString(s) || strings.ContainsAny(s, "+#\x00") {
		return fmt.Errorf("want a concrete MQTT topic, got %q", v)
	}
	return nil
}

func isIcon(v any) error {
	s, ok := v.(string)
	if !ok || !regexp.MustCompile(`^[a-z0-9-]+:[a-z0-9-]+$`).MatchString(s) {
		return fmt.Errorf("want an icon like mdi:car, got %v", v)
	}
	return nil
}

func isObject(keys map[string]check, required ...string) check {
	return func(v any) error {
		m, ok := v.(map[string]any)
		if !ok {
			return fmt.Errorf("want object, got %T", v)
		}
		for _, k := range required {
			if _, ok := m[k]; !ok {
				return fmt.Errorf("missing required key %q", k)
			}
		}
		for k, val := range m {
			c, ok := keys[k]
			if !ok {
				return fmt.Errorf("unknown key %q", k)
			}
			if err := c(val); err != nil {
				return fmt.Errorf("%s: %w", k, err)
			}
		}
		return nil
	}
}

func isStringList(v any) error {
	l, ok := v.([]any)
	if !ok {
		return fmt.Errorf("want list, got %T", v)
	}
	for _, e := range l {
		if err := isString(e); err != nil {
			return err
		}
	}
	return nil
}

var (
	deviceKeys = map[string]check{
		"identifiers": isStringList, "connections": func(any) error { return nil },
		"manufacturer": isString, "model": isString, "model_id": isString, "name": isString,
		"hw_version": isString, "serial_number": isString, "sw_version": isString,
		"via_device": isString, "suggested_area": isString, "configuration_url": isString,
	}
	originKeys       = map[string]check{"name": isString, "sw_version": isString, "support_url": isString}
	availabilityKeys = map[string]check{"topic": isTopic, "payload_available": isString, "payload_not_available": isString, "value_template": isString}

	commonKeys = map[string]check{
		"availability": func(v any) error {
			l, ok := v.([]any)
			if !ok || len(l) == 0 {
				return fmt.Errorf("want non-empty list, got %v", v)
			}
			for _, e := range l {
				if err := isObject(availabilityKeys, "topic")(e); err != nil {
					return err
				}
			}
			return nil
		},
		"availability_mode":        oneOf("all", "any", "latest"),
		"availability_template":    isString,
		"availability_topic":       isTopic,
		"payload_available":        isString,
		"payload_not_available":    isString,
		"device":                   isObject(deviceKeys),
		"origin":                   isObject(originKeys, "name"),
		"enabled_by_default":       isBool,
		"entity_category":          oneOf("config", "diagnostic"),
		"entity_picture":           isString,
		"icon":                     isIcon,
		"json_attributes_topic":    isTopic,
		"json_attributes_template": isString,
		"object_id":                isString,
		"default_entity_id":        isString,
		"unique_id":                isString,
		"name":                     isStringOrNull,
		"qos":                      func(v any) error { return oneOfNumbers(v, 0, 1, 2) },
		"encoding":                 isString,
	}

	componentKeys = map[string]map[string]check{
		"device_tracker": {
			"state_topic": isTopic, "value_template": isString,
			"payload_home": isString, "payload_not_home": isString, "payload_reset": isString,
			"source_type": oneOf("gps", "router", "bluetooth", "bluetooth_le"),
		},
		"sensor": {
			"state_topic": isTopic, "value_template": isString,
			"device_class": oneOf(sensorDeviceClasses...), "state_class": oneOf("measurement", "total", "total_increasing"),
			"unit_of_measurement": isString, "expire_after": func(any) error { return nil }, "force_update": isBool,
			"last_reset_value_template": isString, "options": isStringList,
			"suggested_display_precision": func(v any) error { return oneOfNumbers(v, 0, 1, 2, 3, 4, 5, 6) },
		},
		"binary_sensor": {
			"state_topic": isTopic, "value_template": isString,
			"device_class": oneOf(binarySensorDeviceClasses...),
			"expire_after": func(any) error { return nil }, "force_update": isBool, "off_delay": func(any) error { return nil },
			"payload_on": isString, "payload_off": isString,
		},
	}

	sensorDeviceClasses = []string{
		"date", "enum", "timestamp", "apparent_power", "aqi", "area", "atmospheric_pressure", "battery",
		"blood_glucose_concentration", "carbon_monoxide", "carbon_dioxide", "conductivity", "current",
		"data_rate", "data_size", "distance", "duration", "energy", "energy_distance", "energy_storage",
		"frequency", "gas", "humidity", "illuminance", "irradiance", "moisture", "monetary",
		"nitrogen_dioxide", "nitrogen_monoxide", "nitrous_oxide", "ozone", "ph", "pm1", "pm10", "pm25",
		"power_factor", "power", "precipitation", "precipitation_intensity", "pressure", "reactive_power",
		"signal_strength", "sound_pressure", "speed", "sulphur_dioxide", "temperature", "temperature_delta",
		"volatile_organic_compounds", "volatile_organic_compounds_parts", "voltage", "volume",
		"volume_storage", "volume_flow_rate", "water", "weight", "wind_direction", "wind_speed",
	}
	binarySensorDeviceClasses = []string{
		"battery", "battery_charging", "carbon_monoxide", "cold", "connectivity", "door", "garage_door",
		"gas", "heat", "light", "lock", "moisture", "motion", "moving", "occupancy", "opening", "plug",
		"power", "presence", "problem", "running", "safety", "smoke", "sound", "tamper", "update",
		"vibration", "window",
	}

	// Units and state classes HA accepts for the device classes we use.
	// Timestamp takes neither a unit nor a state class.
	deviceClassUnits = map[string][]string{
		"speed":          {"km/h", "m/s", "mph", "kn", "ft/s", "in/d", "in/h", "in/s", "mm/d", "mm/h", "mm/s", "Beaufort"},
		"distance":       {"km", "m", "cm", "mm", "mi", "nmi", "yd", "ft", "in"},
		"volume_storage": {"L", "mL", "m³", "ft³", "CCF", "fl. oz.", "gal"},
		"timestamp":      {},
	}
	deviceClassStateClasses = map[string][]string{
		"speed":          {"measurement"},
		"distance":       {"measurement", "total", "total_increasing"},
		"volume_storage": {"measurement"},
		"timestamp":      {},
	}
)

func oneOfNumbers(v any, allowed ...float64) error {
	f, ok := v.(float64)
	if !ok || !slices.Contains(allowed, f) {
		return fmt.Errorf("want one of %v, got %v", allowed, v)
	}
	return nil
}

var configTopicRE = regexp.MustCompile(`^(?:homeassistant|ha)/(device_tracker|sensor|binary_sensor)/[a-zA-Z0-9_-]+/[a-zA-Z0-9_-]+/config$`)

// allMessages is every discovery message of a small fleet under two
// discovery prefixes, plus the bridge's.
func allMessages() []Message {
	var msgs []Message
	for _, cfg := range []Config{allOn, {Topics: topic.Layout{Prefix: "fleet", DiscoveryPrefix: "ha"}, Availability: true, Geofences: true}} {
		for _, v := range []Vehicle{plate, awkward, {ID: "a/b"}, {ID: "a+b"}, {ID: "沪"}, {ID: "x", Code: "x"}} {
			msgs = append(msgs, Configs(cfg, v)...)
		}
		msgs = append(msgs, Bridge(cfg)...)
	}
	return msgs
}

func TestSchema(t *testing.T) {
	msgs := allMessages()
	uniqueIDs := map[string]string{}
	topics := map[string]bool{}
	for _, m := range msgs {
		if !m.Retain {
			t.Errorf("%s: not retained", m.Topic)
		}
		sub := configTopicRE.FindStringSubmatch(m.Topic)
		if sub == nil {
			t.Errorf("topic %q does not match %s", m.Topic, configTopicRE)
			continue
		}
		if topics[m.Topic] {
			t.Errorf("topic %s used twice", m.Topic)
		}
		topics[m.Topic] = true
		component := sub[1]

		var p map[string]any
		if err := json.Unmarshal(m.Payload, &p); err != nil {
			t.Errorf("%s: payload is not a JSON object: %v", m.Topic, err)
			continue
		}
		keys := map[string]check{}
		for k, c := range commonKeys {
			keys[k] = c
		}
		for k, c := range componentKeys[component] {
			keys[k] = c
		}
		var required []string
		if component != "device_tracker" {
			required = append(required, "state_topic")
		} else if p["state_topic"] == nil && p["json_attributes_topic"] == nil {
			t.Errorf("%s: a device_tracker needs state_topic or json_attributes_topic", m.Topic)
		}
		if err := isObject(keys, required...)(p); err != nil {
			t.Errorf("%s: %v", m.Topic, err)
			continue
		}

		// Without a unique_id HA ignores the device block and the entity
		// cannot be edited in the UI; duplicates raise an exception in HA.
		uid, _ := p["unique_id"].(string)
		if uid == "" {
			t.Errorf("%s: no unique_id", m.Topic)
		}
		// One HA instance listens on one discovery prefix.
		key := strings.SplitN(m.Topic, "/", 2)[0] + " " + uid
		if prev, dup := uniqueIDs[key]; dup {
			t.Errorf("unique_id %s used by %s and %s", uid, prev, m.Topic)
		}
		uniqueIDs[key] = m.Topic
		dev, _ := p["device"].(map[string]any)
		if ids, _ := dev["identifiers"].([]any); len(ids) == 0 {
			t.Errorf("%s: device has no identifiers", m.Topic)
		}
		if name, _ := dev["name"].(string); name == "" {
			t.Errorf("%s: device has no name", m.Topic)
		}

		dc, _ := p["device_class"].(string)
		unit, hasUnit := p["unit_of_measurement"].(string)
		sc, hasSC := p["state_class"].(string)
		if component == "sensor" && dc != "" {
			units, known := deviceClassUnits[dc]
			if !known {
				t.Errorf("%s: add device class %s to the unit table", m.Topic, dc)
			}
			if hasUnit && !slices.Contains(units, unit) || !hasUnit && len(units) > 0 {
				t.Errorf("%s: unit %q is not valid for device class %s (want one of %q)", m.Topic, unit, dc, units)
			}
			if hasSC && !slices.Contains(deviceClassStateClasses[dc], sc) {
				t.Errorf("%s: state class %q is not valid for device class %s", m.Topic, sc, dc)
			}
		}
		// A sensor with a state class or unit is numeric; ours must then
		// render numbers, "None" or "" only, which TestTemplates checks.
	}
	if len(msgs) < 20 {
		t.Fatalf("only %d messages", len(msgs))
	}
}

// TestSchemaCatchesMistakes makes sure the tables above are not vacuous.
func TestSchemaCatchesMistakes(t *testing.T) {
	keys := map[string]check{}
	for k, c := range commonKeys {
		keys[k] = c
	}
	for k, c := range componentKeys["sensor"] {
		keys[k] = c
	}
	for _, bad := range []string{
		`{"stat_t":"a/b"}`,
		`{"state_topic":"a/+"}`,
		`{"state_topic":"a","device_class":"velocity"}`,
		`{"state_topic":"a","name":3}`,
		`{"state_topic":"a","origin":{"sw_version":"1"}}`,
		`{"state_topic":"a","availability":[{"payload_available":"x"}]}`,
		`{"state_topic":"a","icon":"car"}`,
	} {
		var p map[string]any
		if err := json.Unmarshal([]byte(bad), &p); err != nil {
			t.Fatal(err)
		}
		if isObject(keys, "state_topic")(p) == nil {
			t.Errorf("%s passed the schema", bad)
		}
	}
	if isObject(keys, "state_topic")(map[string]any{}) == nil {
		t.Error("missing state_topic passed the schema")
	}
}
