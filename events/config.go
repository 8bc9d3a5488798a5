package events

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/exlive2mqtt/exlive2mqtt/geofence"
)

// Defaults of the settings.
const (
	// DefaultOfflineAfter is how long a vehicle may stay silent before it
	// is offline. Trackers report every 10 to 60 s while driving and
	// every few minutes when parked; ten minutes is longer than that, and
	// short enough to notice a tracker that has lost power the same hour.
	DefaultOfflineAfter = 10 * time.Minute
	// DefaultMovingKmh is the speed above which a vehicle is moving. A
	// parked vehicle's GPS drifts at 1 to 4 km/h; 5 km/h is above that
	// and below walking a vehicle out of a parking space.
	DefaultMovingKmh = 5.0
	// DefaultStoppedAfter is how long a vehicle must stay at or below
	// DefaultMovingKmh (in position time) to be stopped: longer than a
	// red light or a queue, short enough for a delivery stop.
	DefaultStoppedAfter = 3 * time.Minute
)

// Config holds the settings of events and availability. Its variables
// have no common prefix (the contract names them), so it is read
// with the prefix "".
type Config struct {
	OfflineAfter  time.Duration `env:"VEHICLE_OFFLINE_AFTER" envDefault:"10m" help:"a vehicle that sends no position for this long is offline (0: off)"`
	OverspeedKmh  float64       `env:"EVENT_OVERSPEED_KMH" envDefault:"0" help:"speed limit in km/h for overspeed events (0: off); a geofence's speed_limit overrides it inside that fence"`
	MovingKmh     float64       `env:"EVENT_MOVING_KMH" envDefault:"5" help:"speed in km/h above which a vehicle is moving (0: no moving or stopped events)"`
	StoppedAfter  time.Duration `env:"EVENT_STOPPED_AFTER" envDefault:"3m" help:"a moving vehicle is stopped after this long (position time) at or below EVENT_MOVING_KMH"`
	GeofencesFile string        `env:"GEOFENCES_FILE" envDefault:"" help:"GeoJSON FeatureCollection of geofences (WGS-84): polygons, and points with a radius in metres; read again on SIGHUP"`
}

// Defaults returns a Config with every default filled in.
func Defaults() Config {
	return Config{OfflineAfter: DefaultOfflineAfter, MovingKmh: DefaultMovingKmh, StoppedAfter: DefaultStoppedAfter}
}

// Validate returns one error per bad setting, each starting with the
// variable's name. It does not read GEOFENCES_FILE: LoadFences does, at
// start and on every reload.
func (c *Config) Validate() error {
	var errs []error
	bad := func(name, value, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s=%q: %s", name, value, fmt.Sprintf(format, args...)))
	}
	if c.OfflineAfter < 0 || (c.OfflineAfter > 0 && c.OfflineAfter < time.Second) {
		bad("VEHICLE_OFFLINE_AFTER", c.OfflineAfter.String(), "must be 0 (off) or at least 1s")
	}
	kmh := func(name string, v float64) {
		if math.IsNaN(v) || v < 0 || v > 1000 {
			bad(name, strconv.FormatFloat(v, 'g', -1, 64), "must be between 0 and 1000 km/h")
		}
	}
	kmh("EVENT_OVERSPEED_KMH", c.OverspeedKmh)
	kmh("EVENT_MOVING_KMH", c.MovingKmh)
	if c.StoppedAfter < 0 {
		bad("EVENT_STOPPED_AFTER", c.StoppedAfter.String(), "must be 0 (at the first slow position) or more")
	}
	return errors.Join(errs...)
}

// LoadFences reads GEOFENCES_FILE: nil when it is not set. Its error names
// the variable, the file and the bad feature:
//
//	GEOFENCES_FILE="/etc/fences.json": features[3] "depot": ring 0 is not closed: …
func (c *Config) LoadFences() (*geofence.Set, error) {
	if c.GeofencesFile == "" {
		return nil, nil
	}
	s, err := geofence.Load(c.GeofencesFile)
	if err != nil {
		var ge *geofence.Error
		if errors.As(err, &ge) {
			return nil, fmt.Errorf("GEOFENCES_FILE=%q: %s", c.GeofencesFile, ge.Detail())
		}
		return nil, fmt.Errorf("GEOFENCES_FILE=%q: %w", c.GeofencesFile, err)
	}
	return s, nil
}
