package exlive

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"
	_ "time/tzdata" // gpstime zones must load in a scratch image too

	"github.com/exlive2mqtt/exlive2mqtt/datum"
	"github.com/exlive2mqtt/exlive2mqtt/secret"
)

// Defaults of the settings that have one.
const (
	DefaultPort              = "1502"
	DefaultHeartbeat         = 30 * time.Second
	DefaultRetryMin          = time.Second
	DefaultRetryMax          = time.Minute
	DefaultCommandTimeout    = 10 * time.Second
	DefaultWriteTimeout      = 10 * time.Second
	DefaultInventoryInterval = time.Hour
	DefaultInventoryQuiet    = 2 * time.Second
	DefaultMaxPending        = 1024
	DefaultMaxBurst          = 10
	DefaultTimezone          = "Asia/Shanghai"
	// DefaultLoginVer and DefaultLoginType are what public clients that
	// work against live servers put in the login frame (the
	// specification's example leaves them empty); type plausibly selects
	// the JSON data format. docs/protocol.md has the evidence.
	DefaultLoginVer  = "4.6936"
	DefaultLoginType = "json_common"
	// HeartbeatMisses is how many heartbeats in a row may go unanswered,
	// on a connection where the platform has answered one, before the
	// link is taken for dead and the session ends (if nothing else has come
	// for an interval either).
	HeartbeatMisses = 3
)

// Config holds the settings of a session. The env tags are read by
// caarlos0/env with the prefix EXLIVE_.
type Config struct {
	Addr     string        `env:"ADDR" help:"host:port of the platform (port 1502 if left out), or several, comma-separated, tried in turn; required"`
	User     string        `env:"USER" help:"account name; required"`
	Pass     secret.String `env:"PASS" help:"account password (or EXLIVE_PASS_FILE)"`
	PassFile string        `env:"PASS_FILE" help:"file holding the account password"`

	LoginVer  string `env:"LOGIN_VER" envDefault:"4.6936" help:"the login frame's ver: what working clients send (set but empty: empty, as in the specification)"`
	LoginType string `env:"LOGIN_TYPE" envDefault:"json_common" help:"the login frame's type: what working clients send (set but empty: empty, as in the specification)"`
	LoginMode string `env:"LOGIN_MODE" help:"the login frame's mode"`

	Heartbeat      time.Duration `env:"HEARTBEAT" envDefault:"30s" help:"heartbeat interval"`
	IdleTimeout    time.Duration `env:"IDLE_TIMEOUT" envDefault:"0s" help:"reconnect when nothing arrives for this long (0: off); a platform that answers heartbeats is checked without it"`
	RetryMin       time.Duration `env:"RETRY_MIN" envDefault:"1s" help:"first reconnect delay"`
	RetryMax       time.Duration `env:"RETRY_MAX" envDefault:"60s" help:"longest reconnect delay; also the wait after a rejected login"`
	CommandTimeout time.Duration `env:"COMMAND_TIMEOUT" envDefault:"10s" help:"how long a 1004/1012 waits for its 8000 answer"`
	WriteTimeout   time.Duration `env:"WRITE_TIMEOUT" envDefault:"10s" help:"longest a write to the platform may block"`
	MaxFrame       int           `env:"MAX_FRAME" envDefault:"1048576" help:"largest frame in bytes; a larger one ends the session"`
	MaxPending     int           `env:"MAX_PENDING" envDefault:"1024" help:"most requests awaiting an answer at once"`
	// MaxRate and MaxBurst bound the requests a program sends on
	// (commands, passthrough, messages, uploads; never the session's own
	// frames). The session does not enforce them: the bridge does, where
	// a request can wait.
	MaxRate  float64     `env:"MAX_RATE" envDefault:"0" help:"most requests sent to the platform a second (0: no limit); more wait, at most EXLIVE_COMMAND_TIMEOUT from their arrival, then are refused as busy"`
	MaxBurst int         `env:"MAX_BURST" envDefault:"10" help:"requests that may go at once above EXLIVE_MAX_RATE, after a quiet time"`
	Encoding Encoding    `env:"ENCODING" envDefault:"auto" help:"text encoding of the platform: auto, utf-8 or gbk"`
	Timezone Zone        `env:"TIMEZONE" envDefault:"Asia/Shanghai" help:"time zone of gpstime"`
	Datum    datum.Datum `env:"DATUM" envDefault:"wgs84" help:"datum of the platform's coordinates: wgs84, gcj02 or bd09; published positions are always WGS-84"`

	InventoryInterval time.Duration `env:"INVENTORY_INTERVAL" envDefault:"1h" help:"how often to refresh groups and vehicles (0: only after login)"`
	InventoryQuiet    time.Duration `env:"INVENTORY_QUIET" envDefault:"2s" help:"a list of groups or vehicles is complete after this much silence since its last frame: time the reader waits on an empty socket, not time spent reading positions; the first frame is awaited at least EXLIVE_COMMAND_TIMEOUT (docs/protocol.md)"`

	// HealthyAfter is how long a session must stay logged in before the
	// reconnect backoff starts again from RetryMin. Not a setting.
	HealthyAfter time.Duration `env:"-"`
}

// Addrs returns the platform's addresses: Addr, split at its commas (each
// with its port, once Validate has added it).
func (c *Config) Addrs() []string {
	var addrs []string
	for a := range strings.SplitSeq(c.Addr, ",") {
		if a = strings.TrimSpace(a); a != "" {
			addrs = append(addrs, a)
		}
	}
	return addrs
}

// Zone is a time zone setting, loaded by name ("Asia/Shanghai", "UTC").
type Zone struct{ *time.Location }

// UnmarshalText loads the zone from the embedded zone database.
func (z *Zone) UnmarshalText(b []byte) error {
	loc, err := time.LoadLocation(string(b))
	if err != nil {
		return fmt.Errorf("unknown time zone %q", b)
	}
	z.Location = loc
	return nil
}

// MarshalText returns the zone's name.
func (z Zone) MarshalText() ([]byte, error) {
	if z.Location == nil {
		return nil, nil
	}
	return []byte(z.Location.String()), nil
}

// Defaults returns a Config with every default filled in, for programs that
// do not read the environment.
func Defaults() Config {
	loc, _ := time.LoadLocation(DefaultTimezone)
	return Config{
		LoginVer:          DefaultLoginVer,
		LoginType:         DefaultLoginType,
		Heartbeat:         DefaultHeartbeat,
		RetryMin:          DefaultRetryMin,
		RetryMax:          DefaultRetryMax,
		CommandTimeout:    DefaultCommandTimeout,
		WriteTimeout:      DefaultWriteTimeout,
		MaxFrame:          DefaultMaxFrame,
		MaxPending:        DefaultMaxPending,
		MaxBurst:          DefaultMaxBurst,
		Timezone:          Zone{loc},
		InventoryInterval: DefaultInventoryInterval,
		InventoryQuiet:    DefaultInventoryQuiet,
	}
}

// Validate checks the settings and completes them: it adds the default port
// to each address of Addr (see Addrs). It reads no file (ReadFiles does). It returns one error per bad
// setting, each starting with the variable's name without the EXLIVE_
// prefix, and never quotes the password.
func (c *Config) Validate() error {
	var errs []error
	bad := func(name, value, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s=%q: %s", name, value, fmt.Sprintf(format, args...)))
	}
	if strings.TrimSpace(c.Addr) == "" {
		errs = append(errs, errors.New("ADDR: required (host:port of the platform)"))
	} else if addrs, err := splitAddrs(c.Addr); err != nil {
		bad("ADDR", c.Addr, "%v", err)
	} else {
		c.Addr = strings.Join(addrs, ",")
	}
	if c.User == "" {
		errs = append(errs, errors.New("USER: required"))
	}
	switch {
	case c.PassFile != "" && c.Pass != "":
		errs = append(errs, errors.New("PASS_FILE: set together with PASS; set only one"))
	case c.Pass == "" && c.PassFile == "":
		errs = append(errs, errors.New("PASS: required (or PASS_FILE)"))
	}
	positive := func(name string, d time.Duration) {
		if d <= 0 {
			bad(name, d.String(), "must be more than 0")
		}
	}
	positive("HEARTBEAT", c.Heartbeat)
	positive("RETRY_MIN", c.RetryMin)
	positive("COMMAND_TIMEOUT", c.CommandTimeout)
	positive("WRITE_TIMEOUT", c.WriteTimeout)
	positive("INVENTORY_QUIET", c.InventoryQuiet)
	if c.RetryMax < c.RetryMin {
		bad("RETRY_MAX", c.RetryMax.String(), "must be at least RETRY_MIN (%s)", c.RetryMin)
	}
	if c.IdleTimeout < 0 {
		bad("IDLE_TIMEOUT", c.IdleTimeout.String(), "must be 0 (off) or more")
	} else if c.IdleTimeout > 0 && c.IdleTimeout <= c.Heartbeat {
		// A platform that does not answer heartbeats may be quiet for at
		// least this long.
		bad("IDLE_TIMEOUT", c.IdleTimeout.String(), "must be longer than HEARTBEAT (%s)", c.Heartbeat)
	}
	if c.InventoryInterval < 0 {
		bad("INVENTORY_INTERVAL", c.InventoryInterval.String(), "must be 0 (only after login) or more")
	}
	if c.MaxFrame < 1024 || c.MaxFrame > 64<<20 {
		bad("MAX_FRAME", fmt.Sprint(c.MaxFrame), "must be between 1024 and 67108864")
	}
	if c.MaxPending < 1 || c.MaxPending > 1<<20 {
		bad("MAX_PENDING", fmt.Sprint(c.MaxPending), "must be between 1 and 1048576")
	}
	if !(c.MaxRate >= 0 && c.MaxRate <= 1e6) { // !(…) refuses NaN too
		bad("MAX_RATE", fmt.Sprint(c.MaxRate), "must be between 0 (no limit) and 1000000 requests a second")
	}
	if c.MaxBurst < 1 || c.MaxBurst > 1<<20 {
		bad("MAX_BURST", fmt.Sprint(c.MaxBurst), "must be between 1 and 1048576")
	}
	if c.Timezone.Location == nil {
		c.Timezone.Location = time.UTC
	}
	return errors.Join(errs...)
}

// ReadFiles reads what the settings keep in files: the password from
// PassFile, without its trailing line break, when PASS is not set (Validate
// refuses both). nil reads with os.ReadFile. Its error starts with the
// variable's name without the EXLIVE_ prefix.
func (c *Config) ReadFiles(readFile func(string) ([]byte, error)) error {
	if c.PassFile == "" || c.Pass != "" {
		return nil
	}
	if readFile == nil {
		readFile = os.ReadFile
	}
	b, err := readFile(c.PassFile)
	if err != nil {
		return fmt.Errorf("PASS_FILE=%q: cannot read: %v", c.PassFile, err)
	}
	c.Pass = secret.String(strings.TrimRight(string(b), "\r\n"))
	return nil
}

// splitAddrs reads a comma-separated list of addresses, each host:port or
// a host (the default port), and names every one that is not.
func splitAddrs(list string) ([]string, error) {
	var (
		addrs []string
		errs  []string
		seen  = map[string]bool{}
	)
	for i, a := range strings.Split(list, ",") {
		a = strings.TrimSpace(a)
		if a == "" {
			errs = append(errs, fmt.Sprintf("address %d is empty", i+1))
			continue
		}
		full, err := withPort(a)
		switch {
		case err != nil:
			errs = append(errs, fmt.Sprintf("%q: %v", a, err))
		case seen[full]:
			errs = append(errs, fmt.Sprintf("%q is listed twice", a))
		default:
			seen[full] = true
			addrs = append(addrs, full)
		}
	}
	if len(errs) > 0 {
		if len(addrs)+len(errs) == 1 {
			// One address: the error needs no name.
			_, msg, _ := strings.Cut(errs[0], ": ")
			if msg == "" {
				msg = errs[0]
			}
			return nil, errors.New(msg)
		}
		return nil, errors.New(strings.Join(errs, "; "))
	}
	return addrs, nil
}

func withPort(addr string) (string, error) {
	// Checked first: "tcp://host/" splits at its last colon as a host and
	// a port.
	if strings.Contains(addr, "://") || strings.ContainsAny(addr, " /") {
		return "", errors.New("want host:port")
	}
	if _, _, err := net.SplitHostPort(addr); err == nil {
		return addr, nil
	}
	host := strings.Trim(addr, "[]")
	if strings.Contains(host, ":") && net.ParseIP(host) == nil {
		// Not an IPv6 address: a host with a port that is not one.
		return "", errors.New("want host:port")
	}
	joined := net.JoinHostPort(host, DefaultPort)
	if _, _, err := net.SplitHostPort(joined); err != nil {
		return "", errors.New("want host:port")
	}
	return joined, nil
}
