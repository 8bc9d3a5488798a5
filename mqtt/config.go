package mqtt

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/exlive2mqtt/exlive2mqtt/secret"
)

// Config holds the broker settings. The env tags are read by caarlos0/env
// with the prefix MQTT_. TopicPrefix is read and checked here, with the
// broker's settings, but the client builds no topic from it: package topic
// does.
type Config struct {
	URL          string        `env:"URL" envDefault:"tcp://localhost:1883" help:"broker; ssl:// or mqtts:// for TLS, ws:// or wss:// for websockets"`
	Username     string        `env:"USERNAME" help:"broker user name"`
	Password     secret.String `env:"PASSWORD" help:"broker password (or MQTT_PASSWORD_FILE)"`
	PasswordFile string        `env:"PASSWORD_FILE" help:"file holding the broker password"`
	ClientID     string        `env:"CLIENT_ID" help:"client id; exlive2mqtt-HOSTNAME when empty. Keep it stable: the broker keeps the session under it"`
	TopicPrefix  string        `env:"TOPIC_PREFIX" envDefault:"exlive" help:"first level(s) of every topic"`
	QoS          byte          `env:"QOS" envDefault:"1" help:"QoS of everything published and subscribed: 0 or 1"`
	Retain       bool          `env:"RETAIN" envDefault:"true" help:"retain positions"`

	CAFile      string `env:"CA_FILE" help:"PEM file of the CA(s) that sign the broker's certificate"`
	CertFile    string `env:"CERT_FILE" help:"PEM client certificate, for brokers that require one"`
	KeyFile     string `env:"KEY_FILE" help:"PEM key of the client certificate"`
	TLSInsecure bool   `env:"TLS_INSECURE" envDefault:"false" help:"skip verifying the broker's certificate (testing only)"`

	StoreDir     string        `env:"STORE_DIR" help:"directory where unsent QoS 1 messages survive a restart (empty: memory only)"`
	QueueLimit   int           `env:"QUEUE_LIMIT" envDefault:"100000" help:"most messages held while the broker is away; the oldest beyond it are dropped and counted"`
	Keepalive    time.Duration `env:"KEEPALIVE" envDefault:"30s" help:"MQTT keepalive"`
	WriteTimeout time.Duration `env:"WRITE_TIMEOUT" envDefault:"10s" help:"longest a publish may block before the bridge queues instead"`
	RetryMax     time.Duration `env:"RETRY_MAX" envDefault:"4s" help:"longest wait between reconnect attempts"`
	InFlight     int           `env:"INFLIGHT" envDefault:"1000" help:"most QoS 1 publishes awaiting their acknowledgement"`
}

// Defaults returns a Config with every default filled in.
func Defaults() Config {
	return Config{
		URL:          "tcp://localhost:1883",
		TopicPrefix:  "exlive",
		QoS:          1,
		Retain:       true,
		QueueLimit:   100_000,
		Keepalive:    30 * time.Second,
		WriteTimeout: 10 * time.Second,
		RetryMax:     4 * time.Second,
		InFlight:     1000,
	}
}

// Validate checks the settings and completes them: it fills ClientID from
// hostname (nil: os.Hostname) and trims TopicPrefix. It reads no file
// (ReadFiles does). It returns one error per bad setting, each starting with
// the variable's name without the MQTT_ prefix, and never quotes the
// password.
func (c *Config) Validate(hostname func() (string, error)) error {
	if hostname == nil {
		hostname = os.Hostname
	}
	var errs []error
	bad := func(name, value, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s=%q: %s", name, value, fmt.Sprintf(format, args...)))
	}
	if u, err := url.Parse(c.URL); err != nil || u.Host == "" {
		shown := c.URL
		if i := strings.LastIndex(shown, "@"); i >= 0 {
			shown = "…" + shown[i:] // whatever precedes '@' may be a password
		}
		bad("URL", shown, "want scheme://host:port, e.g. tcp://localhost:1883")
	} else {
		switch u.Scheme {
		case "tcp", "mqtt", "ssl", "tls", "mqtts", "ws", "wss":
		default:
			bad("URL", c.URL, "scheme must be tcp, mqtt, ssl, tls, mqtts, ws or wss")
		}
		if u.User != nil {
			// Credentials in the URL would end up in logs and the status page.
			bad("URL", redactURL(u), "put the user name and password in MQTT_USERNAME and MQTT_PASSWORD, not in the URL")
		}
	}
	if c.PasswordFile != "" && c.Password != "" {
		errs = append(errs, errors.New("PASSWORD_FILE: set together with PASSWORD; set only one"))
	}
	if c.ClientID == "" {
		host, err := hostname()
		if err != nil || host == "" {
			host = "unknown"
		}
		c.ClientID = "exlive2mqtt-" + host
	}
	if len(c.ClientID) > 65535 {
		bad("CLIENT_ID", c.ClientID[:32]+"…", "too long")
	}
	c.TopicPrefix = strings.Trim(c.TopicPrefix, "/")
	if c.TopicPrefix == "" || ValidTopic(c.TopicPrefix) != nil {
		bad("TOPIC_PREFIX", c.TopicPrefix, "must be a topic without wildcards, e.g. exlive")
	}
	if c.QoS > 1 {
		bad("QOS", fmt.Sprint(c.QoS), "must be 0 or 1")
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		errs = append(errs, errors.New("CERT_FILE, KEY_FILE: set both or neither"))
	}
	if c.QueueLimit < 1 {
		bad("QUEUE_LIMIT", fmt.Sprint(c.QueueLimit), "must be at least 1")
	}
	if c.InFlight < 1 || c.InFlight > 65000 {
		bad("INFLIGHT", fmt.Sprint(c.InFlight), "must be between 1 and 65000")
	}
	for _, d := range []struct {
		name string
		d    time.Duration
	}{{"KEEPALIVE", c.Keepalive}, {"WRITE_TIMEOUT", c.WriteTimeout}, {"RETRY_MAX", c.RetryMax}} {
		if d.d <= 0 {
			bad(d.name, d.d.String(), "must be more than 0")
		}
	}
	if c.Keepalive > 0 && c.Keepalive < time.Second {
		bad("KEEPALIVE", c.Keepalive.String(), "must be at least 1s")
	}
	return errors.Join(errs...)
}

// ReadFiles reads what the settings keep in files: the password from
// PasswordFile, without its trailing line break, when PASSWORD is not set
// (Validate refuses both); and it checks that the CA, certificate and key
// files can be read, so that a wrong path is a settings error rather than a
// failure at every connection attempt. nil reads with os.ReadFile. It
// returns one error per file, each starting with the variable's name without
// the MQTT_ prefix.
func (c *Config) ReadFiles(readFile func(string) ([]byte, error)) error {
	if readFile == nil {
		readFile = os.ReadFile
	}
	var errs []error
	if c.PasswordFile != "" && c.Password == "" {
		if b, err := readFile(c.PasswordFile); err != nil {
			errs = append(errs, fmt.Errorf("PASSWORD_FILE=%q: cannot read: %v", c.PasswordFile, err))
		} else {
			c.Password = secret.String(strings.TrimRight(string(b), "\r\n"))
		}
	}
	for _, f := range []struct{ name, path string }{{"CA_FILE", c.CAFile}, {"CERT_FILE", c.CertFile}, {"KEY_FILE", c.KeyFile}} {
		if f.path != "" {
			if _, err := readFile(f.path); err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: cannot read: %v", f.name, f.path, err))
			}
		}
	}
	return errors.Join(errs...)
}

// TLS returns the TLS settings for the broker, or nil when the URL does not
// ask for TLS.
func (c *Config) TLS() (*tls.Config, error) {
	u, err := url.Parse(c.URL)
	if err != nil {
		return nil, fmt.Errorf("mqtt: url: %w", err)
	}
	switch u.Scheme {
	case "ssl", "tls", "mqtts", "wss":
	default:
		if c.CAFile == "" && c.CertFile == "" && !c.TLSInsecure {
			return nil, nil
		}
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: c.TLSInsecure}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("mqtt: CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("mqtt: CA file %s: no PEM certificate in it", c.CAFile)
		}
		tc.RootCAs = pool
	}
	if c.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("mqtt: client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// redactURL returns the URL with any password replaced.
func redactURL(u *url.URL) string {
	cp := *u
	if cp.User != nil {
		cp.User = url.User(cp.User.Username())
	}
	return cp.String()
}

// SafeURL returns the broker URL as it may be shown: without credentials.
func (c *Config) SafeURL() string {
	u, err := url.Parse(c.URL)
	if err != nil {
		return "(invalid URL)"
	}
	return redactURL(u)
}
