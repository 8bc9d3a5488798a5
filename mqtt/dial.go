package mqtt

import (
	"crypto/tls"
	"net"
	"net/url"
	"time"

	"golang.org/x/net/proxy"
)

// dialBroker connects to the broker as paho itself would: through the proxy
// the environment names (ALL_PROXY), with TLS for ssl://, tls:// and
// mqtts://, within the dialer's timeout.
func dialBroker(u *url.URL, tc *tls.Config, d *net.Dialer) (net.Conn, error) {
	nc, err := proxy.FromEnvironmentUsing(d).Dial("tcp", u.Host)
	if err != nil {
		return nil, err
	}
	switch u.Scheme {
	case "ssl", "tls", "mqtts":
	default:
		return nc, nil
	}
	if tc == nil {
		tc = &tls.Config{}
	}
	if tc.ServerName == "" {
		tc = tc.Clone()
		tc.ServerName = u.Hostname()
	}
	tlsConn := tls.Client(nc, tc)
	if d.Timeout > 0 {
		nc.SetDeadline(time.Now().Add(d.Timeout))
	}
	if err := tlsConn.Handshake(); err != nil {
		nc.Close()
		return nil, err
	}
	nc.SetDeadline(time.Time{})
	return tlsConn, nil
}
