package bridge

import (
	"errors"
	"fmt"
	"strings"

	"github.com/exlive2mqtt/exlive2mqtt/mqtt"
	"github.com/exlive2mqtt/exlive2mqtt/topic"
)

// Config holds the bridge's own settings. The env tags are read by
// caarlos0/env with the prefix BRIDGE_.
type Config struct {
	ReadOnly     bool `env:"READ_ONLY" envDefault:"false" help:"subscribe to no /set topic and send the platform nothing but session frames"`
	MaxRequest   int  `env:"MAX_REQUEST" envDefault:"65536" help:"largest request payload in bytes; larger ones are refused"`
	RequestQueue int  `env:"REQUEST_QUEUE" envDefault:"256" help:"most requests waiting to be sent; more are refused as busy"`
	MaxVehicles  int  `env:"MAX_VEHICLES" envDefault:"200000" help:"most vehicles tracked (topic map, status page); positions of more are still published"`
	// PassthroughAnyTerminal lets a passthrough request name another
	// device than the vehicle of its topic. Off, broker permissions given
	// per vehicle topic hold for passthrough too.
	PassthroughAnyTerminal bool `env:"PASSTHROUGH_ANY_TERMINAL" envDefault:"false" help:"let P/vehicles/V/passthrough/set name any terminalid, not only V's vehicle"`
}

// HassConfig is Home Assistant discovery, read with the prefix HASS_.
type HassConfig struct {
	Discovery bool   `env:"DISCOVERY" envDefault:"false" help:"publish Home Assistant MQTT discovery configs for every vehicle"`
	Prefix    string `env:"PREFIX" envDefault:"homeassistant" help:"Home Assistant's discovery prefix"`
}

// OwnTracksConfig is the OwnTracks output, read with the prefix OWNTRACKS_.
type OwnTracksConfig struct {
	Enable bool   `env:"ENABLE" envDefault:"false" help:"also publish every position as an OwnTracks location on owntracks/USER/V"`
	User   string `env:"USER" envDefault:"exlive" help:"the OwnTracks user level of those topics"`
	// Acc is the accuracy OwnTracks consumers are told. The platform
	// reports none, and Home Assistant's OwnTracks integration drops
	// locations without one.
	Acc int `env:"ACC" envDefault:"0" help:"accuracy in metres to claim in OwnTracks locations (0: leave out; Home Assistant's OwnTracks integration needs one)"`
}

// TopicConfig is how vehicle ids become topic levels, read with the prefix
// MQTT_ beside the broker's settings (mqtt.Config, whose client builds no
// topic): a broker that refuses more than MQTT does in a topic, or reads
// more into it, needs its rules (topic.Rules, docs/scaling.md).
type TopicConfig struct {
	Rules topic.Rules `env:"TOPIC_RULES" envDefault:"mqtt" help:"what becomes _ in a vehicle id's topic level: mqtt (/ + # and control characters), nats (also . space * >) or rabbitmq (also . *), for the broker in use"`
}

// Check returns one error per topic setting the rules refuse, each
// starting with the variable's full name: the topic prefix, the OwnTracks
// user, and the Home Assistant prefix ("" when discovery is off), which
// the bridge publishes under as they are.
func (c TopicConfig) Check(prefix, ownTracksUser, hassPrefix string) error {
	var errs []error
	for _, s := range []struct{ name, value string }{
		{"MQTT_TOPIC_PREFIX", prefix}, {"OWNTRACKS_USER", ownTracksUser}, {"HASS_PREFIX", hassPrefix},
	} {
		if ch, ok := c.Rules.Refused(s.value); ok {
			errs = append(errs, fmt.Errorf("%s=%q: has %q, which the broker of MQTT_TOPIC_RULES=%s refuses or changes in a topic", s.name, s.value, ch, c.Rules))
		}
	}
	return errors.Join(errs...)
}

// Defaults of Config.
const (
	DefaultMaxRequest   = 64 << 10
	DefaultRequestQueue = 256
	DefaultMaxVehicles  = 200_000
)

// Defaults returns a Config with every default filled in.
func Defaults() Config {
	return Config{MaxRequest: DefaultMaxRequest, RequestQueue: DefaultRequestQueue, MaxVehicles: DefaultMaxVehicles}
}

// Validate returns one error per bad setting, each starting with the
// variable's name without the BRIDGE_ prefix.
func (c *Config) Validate() error {
	var errs []error
	if c.MaxRequest < 1 || c.MaxRequest > 16<<20 {
		errs = append(errs, fmt.Errorf("MAX_REQUEST=%q: must be between 1 and 16777216", fmt.Sprint(c.MaxRequest)))
	}
	if c.RequestQueue < 1 || c.RequestQueue > 1<<20 {
		errs = append(errs, fmt.Errorf("REQUEST_QUEUE=%q: must be between 1 and 1048576", fmt.Sprint(c.RequestQueue)))
	}
	if c.MaxVehicles < 1 {
		errs = append(errs, fmt.Errorf("MAX_VEHICLES=%q: must be at least 1", fmt.Sprint(c.MaxVehicles)))
	}
	return errors.Join(errs...)
}

// Validate returns one error per bad setting, each starting with the
// variable's name without the HASS_ prefix.
func (c *HassConfig) Validate() error {
	c.Prefix = strings.Trim(c.Prefix, "/")
	if c.Prefix == "" || mqtt.ValidTopic(c.Prefix) != nil {
		return fmt.Errorf("PREFIX=%q: must be a topic without wildcards, e.g. homeassistant", c.Prefix)
	}
	return nil
}

// Validate returns one error per bad setting, each starting with the
// variable's name without the OWNTRACKS_ prefix.
func (c *OwnTracksConfig) Validate() error {
	var errs []error
	if c.User == "" || (topic.Layout{}).Level(c.User) != c.User {
		errs = append(errs, fmt.Errorf("USER=%q: must be one topic level without / + #", c.User))
	}
	if c.Acc < 0 || c.Acc > 100_000 {
		errs = append(errs, fmt.Errorf("ACC=%q: must be between 0 and 100000", fmt.Sprint(c.Acc)))
	}
	return errors.Join(errs...)
}
