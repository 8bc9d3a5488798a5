package main

import (
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/caarlos0/env/v11"
	"github.com/exlive2mqtt/exlive2mqtt/bridge"
	"github.com/exlive2mqtt/exlive2mqtt/events"
	"github.com/exlive2mqtt/exlive2mqtt/exlive"
	"github.com/exlive2mqtt/exlive2mqtt/geofence"
	"github.com/exlive2mqtt/exlive2mqtt/mqtt"
	"github.com/exlive2mqtt/exlive2mqtt/secret"
	"github.com/exlive2mqtt/exlive2mqtt/web"
)

// settings composes every package's Config. Each section is read with its
// own prefix, so an error names the one variable it is about.
type settings struct {
	Exlive    exlive.Config          `envPrefix:"EXLIVE_" title:"EXLIVE platform"`
	MQTT      mqtt.Config            `envPrefix:"MQTT_" title:"MQTT broker"`
	Topics    bridge.TopicConfig     `envPrefix:"MQTT_" title:"MQTT topic rules"`
	Bridge    bridge.Config          `envPrefix:"BRIDGE_" title:"Bridge"`
	Hass      bridge.HassConfig      `envPrefix:"HASS_" title:"Home Assistant"`
	OwnTracks bridge.OwnTracksConfig `envPrefix:"OWNTRACKS_" title:"OwnTracks"`
	// Events has no prefix: its variables (VEHICLE_OFFLINE_AFTER,
	// EVENT_*, GEOFENCES_FILE) are named as the contract names
	// them, and claimed by their own first words (see section.claims).
	Events events.Config `envPrefix:"" title:"Events, availability and geofences"`
	HTTP   web.Config    `envPrefix:"HTTP_" title:"HTTP: health, metrics, status page"`
	Log    logConfig     `envPrefix:"LOG_" title:"Logs"`

	// fences are the geofences of Events.GeofencesFile, read by
	// loadSettings; nil when it is not set.
	fences *geofence.Set
}

type logConfig struct {
	Level  string `env:"LEVEL" envDefault:"info" help:"trace, debug, info, warn or error"`
	Format string `env:"FORMAT" envDefault:"json" help:"json (one JSON object a line), or console for people"`
}

// ConfigError lists every bad setting. main exits with status 2 on it.
type ConfigError struct{ Problems []string }

func (e *ConfigError) Error() string {
	return "bad settings:\n  " + strings.Join(e.Problems, "\n  ") + "\n(exlive2mqtt -h lists every setting)"
}

// section is one Config of settings, with its prefix.
type section struct {
	prefix, title string
	ptr           any // pointer to the Config
	typ           reflect.Type
}

// sections returns the fields of s that are settings: those with an
// envPrefix tag.
func (s *settings) sections() []section {
	v := reflect.ValueOf(s).Elem()
	t := v.Type()
	var out []section
	for i := range t.NumField() {
		f := t.Field(i)
		prefix, ok := f.Tag.Lookup("envPrefix")
		if !ok {
			continue
		}
		out = append(out, section{prefix: prefix, title: f.Tag.Get("title"), ptr: v.Field(i).Addr().Interface(), typ: f.Type})
	}
	return out
}

// names returns the section's variables, prefix included.
func (sec section) names() []string {
	var out []string
	for i := range sec.typ.NumField() {
		if name := strings.Split(sec.typ.Field(i).Tag.Get("env"), ",")[0]; name != "" && name != "-" {
			out = append(out, sec.prefix+name)
		}
	}
	return out
}

// claims returns the prefixes of variables that belong to the section,
// for the warning about unknown ones: its prefix, or for a section
// without one the first word of each of its variables (VEHICLE_,
// EVENT_, GEOFENCES_), so that EVENT_OVERSPEED_KMM is caught as a typo.
func (sec section) claims() []string {
	if sec.prefix != "" {
		return []string{sec.prefix}
	}
	var out []string
	for _, name := range sec.names() {
		if word, _, ok := strings.Cut(name, "_"); ok && !slices.Contains(out, word+"_") {
			out = append(out, word+"_")
		}
	}
	return out
}

// loadSettings reads and checks every setting from environ. It returns a
// *ConfigError naming every bad variable and its value (never a secret's).
func loadSettings(environ map[string]string, readFile func(string) ([]byte, error), hostname func() (string, error)) (*settings, error) {
	return loadSections(environ, readFile, hostname, nil)
}

// loadPlatformSettings reads and checks only the EXLIVE_ and LOG_ settings:
// what a command that talks to the platform and to no broker needs (probe).
func loadPlatformSettings(environ map[string]string, readFile func(string) ([]byte, error)) (*settings, error) {
	return loadSections(environ, readFile, nil, map[string]bool{"EXLIVE_": true, "LOG_": true})
}

// loadSections reads and checks the sections whose prefixes only lists
// (every section when only is nil); the others are left zero.
func loadSections(environ map[string]string, readFile func(string) ([]byte, error), hostname func() (string, error), only map[string]bool) (*settings, error) {
	s := &settings{}
	var problems []string
	unparsed := make(map[string]bool) // variables named by a parse error
	for _, sec := range s.sections() {
		if only != nil && !only[sec.prefix] {
			continue
		}
		err := env.ParseWithOptions(sec.ptr, env.Options{Environment: environ, Prefix: sec.prefix})
		var agg env.AggregateError
		if errors.As(err, &agg) {
			for _, e := range agg.Errors {
				problems = append(problems, describe(sec, e, environ))
				var pe env.ParseError
				if errors.As(e, &pe) {
					if f, ok := sec.typ.FieldByName(pe.Name); ok {
						unparsed[sec.prefix+strings.Split(f.Tag.Get("env"), ",")[0]] = true
					}
				}
			}
		} else if err != nil {
			problems = append(problems, err.Error())
		}
	}
	// caarlos0/env gives a variable that is set but empty its envDefault.
	// For these, empty means something (HTTP off, a blank map, a login
	// field sent empty as in the specification's example), so a variable
	// set to "" must stay "".
	for name, field := range map[string]*string{
		"HTTP_ADDR": &s.HTTP.Addr, "HTTP_TILE_URL": &s.HTTP.TileURL,
		"EXLIVE_LOGIN_VER": &s.Exlive.LoginVer, "EXLIVE_LOGIN_TYPE": &s.Exlive.LoginType,
	} {
		if v, ok := environ[name]; ok && v == "" {
			*field = ""
		}
	}
	// Two steps: every section is checked, then what the settings keep in
	// files (passwords, certificates) is read. Both steps' problems are
	// listed together, so one message names every bad variable.
	type validation struct {
		prefix string
		check  func() error
	}
	validations := []validation{
		{"EXLIVE_", s.Exlive.Validate},
		{"MQTT_", func() error { return s.MQTT.Validate(hostname) }},
		{"BRIDGE_", s.Bridge.Validate},
		{"OWNTRACKS_", s.OwnTracks.Validate},
		{"", s.Events.Validate},
		{"HTTP_", s.HTTP.Validate},
		{"LOG_", s.Log.validate},
	}
	if s.Hass.Discovery {
		validations = append(validations, validation{"HASS_", s.Hass.Validate})
	}
	// After the sections' own checks, which trim the prefixes. Its errors
	// name variables of three sections in full.
	validations = append(validations, validation{"", func() error {
		hass := ""
		if s.Hass.Discovery {
			hass = s.Hass.Prefix
		}
		return s.Topics.Check(s.MQTT.TopicPrefix, s.OwnTracks.User, hass)
	}})
	validations = append(validations,
		validation{"EXLIVE_", func() error { return s.Exlive.ReadFiles(readFile) }},
		validation{"MQTT_", func() error { return s.MQTT.ReadFiles(readFile) }},
		// Read once here, to stop a program whose geofences are bad
		// before it connects anywhere; again on SIGHUP (serve).
		validation{"", func() (err error) {
			s.fences, err = s.Events.LoadFences()
			return err
		}},
	)
	for _, v := range validations {
		if only != nil && !only[v.prefix] {
			continue
		}
		for _, e := range unjoin(v.check()) {
			p := v.prefix + e.Error()
			// A variable that failed to parse is read as zero: its
			// parse error says what is wrong, validation would only add
			// noise. The others are checked all the same, so that one
			// message names every bad variable.
			if name, _, _ := strings.Cut(p, "="); !unparsed[name] {
				problems = append(problems, p)
			}
		}
	}
	if len(problems) > 0 {
		return nil, &ConfigError{problems}
	}
	return s, nil
}

// describe turns a parse error into "VAR="value": why".
func describe(sec section, err error, environ map[string]string) string {
	var pe env.ParseError
	if !errors.As(err, &pe) {
		return err.Error()
	}
	f, ok := sec.typ.FieldByName(pe.Name)
	if !ok {
		return err.Error()
	}
	name := sec.prefix + strings.Split(f.Tag.Get("env"), ",")[0]
	value := environ[name]
	if isSecret(f) {
		value = secret.String(value).String()
	}
	why := pe.Err
	for errors.Unwrap(why) != nil {
		why = errors.Unwrap(why)
	}
	return fmt.Sprintf("%s=%q: %v", name, value, why)
}

func isSecret(f reflect.StructField) bool {
	return f.Type == reflect.TypeFor[secret.String]()
}

func unjoin(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

func (c *logConfig) validate() error {
	var errs []error
	switch strings.ToLower(c.Level) {
	case "trace", "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("LEVEL=%q: want trace, debug, info, warn or error", c.Level))
	}
	switch strings.ToLower(c.Format) {
	case "json", "console":
	default:
		errs = append(errs, fmt.Errorf("FORMAT=%q: want json or console", c.Format))
	}
	return errors.Join(errs...)
}

// unknownVariables returns variables that look like settings of ours but
// are not: a typo would otherwise be silently ignored.
func unknownVariables(environ map[string]string) []string {
	known := make(map[string]bool)
	var prefixes []string
	for _, sec := range (&settings{}).sections() {
		prefixes = append(prefixes, sec.claims()...)
		for _, name := range sec.names() {
			known[name] = true
		}
	}
	var unknown []string
	for k := range environ {
		if known[k] || strings.HasPrefix(k, "EXLIVE2MQTT_") {
			continue
		}
		for _, p := range prefixes {
			if strings.HasPrefix(k, p) && p != "LOG_" && p != "HTTP_" {
				unknown = append(unknown, k)
				break
			}
		}
	}
	sort.Strings(unknown)
	return unknown
}

// printHelp lists every setting with its default and meaning.
func printHelp(w io.Writer) {
	fmt.Fprint(w, `exlive2mqtt bridges an EXLIVE vehicle-tracking platform (TCP JSON, port 1502) to MQTT.

Usage:
  exlive2mqtt                 run the bridge; settings come from the environment (below)
  exlive2mqtt probe [flags]   log in with the EXLIVE_* settings alone and report what the platform says and does
  exlive2mqtt demo [flags]    an embedded broker, a simulated platform and the bridge between them
  exlive2mqtt healthcheck     exit 0 when the running bridge is ready (for container health checks)
  exlive2mqtt version         print the version
  exlive2mqtt -h              this help

Settings (environment variables):
`)
	for _, sec := range (&settings{}).sections() {
		fmt.Fprintf(w, "\n%s\n", sec.title)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for i := range sec.typ.NumField() {
			f := sec.typ.Field(i)
			name := strings.Split(f.Tag.Get("env"), ",")[0]
			if name == "" || name == "-" {
				continue
			}
			def, ok := f.Tag.Lookup("envDefault")
			if !ok {
				def = "(none)"
			} else if def == "" {
				def = `""`
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", sec.prefix+name, def, f.Tag.Get("help"))
		}
		tw.Flush()
	}
	fmt.Fprint(w, "\nSecrets: EXLIVE_PASS_FILE and MQTT_PASSWORD_FILE read a password from a file (Docker secrets).\n")
}

func environMap(environ []string) map[string]string {
	m := make(map[string]string, len(environ))
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}
