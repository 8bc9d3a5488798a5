package hass_test

import (
	"fmt"

	"github.com/exlive2mqtt/exlive2mqtt/hass"
	"github.com/exlive2mqtt/exlive2mqtt/topic"
)

func Example() {
	// Availability: the bridge publishes P/vehicles/V/availability
	// (VEHICLE_OFFLINE_AFTER is not 0); no Geofences: no GEOFENCES_FILE.
	cfg := hass.Config{Topics: topic.Layout{Prefix: "exlive", DiscoveryPrefix: "homeassistant"}, Availability: true}
	v := hass.Vehicle{ID: "V1", Code: "沪A12345", Level: "V1"}

	// Publish these retained when HASS_DISCOVERY=true, and again whenever
	// Home Assistant announces "online" on its birth topic. An empty
	// payload deletes an entity that is turned off.
	for _, m := range hass.Configs(cfg, v) {
		fmt.Println(m.Topic, m.Retain, len(m.Payload) > 0)
	}
	// When the vehicle leaves the fleet, publish hass.Remove(cfg, v).
	fmt.Println(len(hass.Remove(cfg, v)), len(hass.Remove(cfg, v)[0].Payload))

	// Output:
	// homeassistant/device_tracker/exlive2mqtt/V1_tracker/config true true
	// homeassistant/sensor/exlive2mqtt/V1_speed/config true true
	// homeassistant/sensor/exlive2mqtt/V1_direction/config true true
	// homeassistant/sensor/exlive2mqtt/V1_fuel/config true true
	// homeassistant/sensor/exlive2mqtt/V1_mileage/config true true
	// homeassistant/sensor/exlive2mqtt/V1_fix_time/config true true
	// homeassistant/binary_sensor/exlive2mqtt/V1_alarm/config true true
	// homeassistant/binary_sensor/exlive2mqtt/V1_valid/config true true
	// homeassistant/binary_sensor/exlive2mqtt/V1_ignition/config true true
	// homeassistant/sensor/exlive2mqtt/V1_last_seen/config true true
	// homeassistant/binary_sensor/exlive2mqtt/V1_online/config true true
	// homeassistant/sensor/exlive2mqtt/V1_geofences/config true false
	// 12 0
}

func ExampleSlug() {
	fmt.Println(hass.Slug("12345"))
	fmt.Println(hass.Slug("fleet/7+a"))
	// Output:
	// 12345
	// fleet_7_a_5e5e94891a
}
