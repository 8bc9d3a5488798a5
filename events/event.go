package events

import (
	"time"

	"github.com/exlive2mqtt/exlive2mqtt/internal/jsonw"
)

// Type is the type of an event.
type Type uint8

// The types of events, in the order Observe raises them for one position.
const (
	Online        Type = iota + 1 // a position from a vehicle that was offline
	Offline                       // no position for Config.OfflineAfter
	AlarmOn                       // the alarm field went from false to true
	AlarmOff                      // and back
	IgnitionOn                    // cstate went from ACC off to ACC on
	IgnitionOff                   // and back
	GeofenceExit                  // the vehicle left a geofence
	GeofenceEnter                 // the vehicle entered a geofence
	Overspeed                     // the speed went above the limit
	Moving                        // the speed went above Config.MovingKmh
	Stopped                       // the speed stayed at or below it for Config.StoppedAfter
)

var typeNames = [...]string{"", "online", "offline", "alarm_on", "alarm_off", "ignition_on", "ignition_off",
	"geofence_exit", "geofence_enter", "overspeed", "moving", "stopped"}

// String returns the type as the payload's "type" says it: "alarm_on".
func (t Type) String() string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return "unknown"
}

// Types returns every Type, for metrics that want every label up front.
func Types() []Type {
	ts := make([]Type, 0, len(typeNames)-1)
	for t := Online; int(t) < len(typeNames); t++ {
		ts = append(ts, t)
	}
	return ts
}

// Event is something that happened to a vehicle.
type Event struct {
	Type     Type
	ID, Code string    // the vehicle; Code is its latest non-empty code
	Time     time.Time // the position's time; for Offline, when it was decided
	// Lat, Lng are the position's (for Offline, the last position's), in
	// WGS-84 degrees, when HasLocation.
	Lat, Lng    float64
	HasLocation bool
	Speed       float64   // Overspeed, Moving: km/h
	Limit       float64   // Overspeed: the limit it went above, km/h
	Geofence    string    // GeofenceEnter, GeofenceExit: the fence's name
	Since       time.Time // Stopped: when it slowed down; Offline: when the last position came
	// Initial marks an Offline for a listed vehicle never heard from since
	// the start: like a vehicle's first position, it tells what is known
	// (publish the availability) and is not an event (do not publish it
	// on …/event).
	Initial bool
}

// AppendEvent appends the payload of P/vehicles/V/event:
//
//	{"type":"overspeed","id":"V1","code":"粤B12345","time":"2024-05-01T08:00:00Z","lat":22.54,"lng":114.05,"speed":92,"limit":80}
//
// Fields a type does not have are left out; so are code when the vehicle
// has none, and lat and lng when no position told them.
func AppendEvent(dst []byte, e *Event) []byte {
	dst = append(dst, '{')
	dst = jsonw.String(jsonw.Member(dst, "type"), e.Type.String())
	dst = jsonw.String(jsonw.Member(dst, "id"), e.ID)
	if e.Code != "" {
		dst = jsonw.String(jsonw.Member(dst, "code"), e.Code)
	}
	dst = rfc3339(dst, "time", e.Time)
	if e.HasLocation {
		dst = jsonw.Float(jsonw.Member(dst, "lat"), e.Lat)
		dst = jsonw.Float(jsonw.Member(dst, "lng"), e.Lng)
	}
	switch e.Type {
	case Overspeed:
		dst = jsonw.Float(jsonw.Member(dst, "speed"), e.Speed)
		dst = jsonw.Float(jsonw.Member(dst, "limit"), e.Limit)
	case Moving:
		dst = jsonw.Float(jsonw.Member(dst, "speed"), e.Speed)
	case Stopped:
		dst = rfc3339(dst, "since", e.Since)
	case Offline:
		if !e.Since.IsZero() {
			dst = rfc3339(dst, "last_seen", e.Since)
		}
	case GeofenceEnter, GeofenceExit:
		dst = jsonw.String(jsonw.Member(dst, "geofence"), e.Geofence)
	}
	return append(dst, '}')
}

// AppendGeofences appends the payload of P/vehicles/V/geofences: a JSON
// array of the names, [] when there are none.
func AppendGeofences(dst []byte, names []string) []byte {
	dst = append(dst, '[')
	for i, name := range names {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = jsonw.String(dst, name)
	}
	return append(dst, ']')
}

// The payloads of P/vehicles/V/availability.
const (
	AvailabilityOnline  = "online"
	AvailabilityOffline = "offline"
)

func rfc3339(dst []byte, key string, t time.Time) []byte {
	dst = append(jsonw.Member(dst, key), '"')
	dst = t.UTC().AppendFormat(dst, time.RFC3339)
	return append(dst, '"')
}
