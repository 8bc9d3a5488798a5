package web

import (
	"net/http"
	"strings"
)

// securityHeaders sets headers that keep the page from being framed,
// sniffed, or made to run anything but its own scripts. They are set on
// every response, which costs nothing and leaves no endpoint forgotten.
func securityHeaders(csp string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		// Tile servers such as OpenStreetMap's ask for a Referer; the
		// origin is enough and leaks no path.
		h.Set("Referrer-Policy", "strict-origin-when-cross-origin")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		next.ServeHTTP(w, r)
	})
}

// contentSecurityPolicy allows nothing but the page's own files, plus map
// tiles from the tile server. data: images are needed because Leaflet
// blanks removed tiles with a data: GIF.
func contentSecurityPolicy(tileURL string) string {
	img := "'self' data:"
	if src := tileSource(tileURL); src != "" {
		img += " " + src
	}
	return "default-src 'self'; script-src 'self'; style-src 'self'; img-src " + img +
		"; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
}

// tileSource returns the CSP source expression that covers every URL the
// tile template can expand to: "https://tile.example.org" for a fixed
// host, "https://*.example.org" for the usual "{s}." subdomain, and the
// bare scheme for other templated hosts. It returns "" when 'self' already
// covers the URL (relative or empty) or nothing can be allowed safely.
func tileSource(tileURL string) string {
	scheme, rest, ok := strings.Cut(strings.TrimSpace(tileURL), "://")
	if !ok {
		return ""
	}
	scheme = strings.ToLower(scheme)
	if scheme != "http" && scheme != "https" {
		return ""
	}
	host, _, _ := strings.Cut(rest, "/")
	host, _, _ = strings.Cut(host, "?")
	if i := strings.LastIndexByte(host, '@'); i >= 0 {
		host = host[i+1:] // a CSP source cannot carry user info
	}
	if first, tail, ok := strings.Cut(host, "."); ok && isPlaceholder(first) && !strings.Contains(tail, "{") {
		host = "*." + tail
	}
	if host == "" || strings.ContainsAny(host, "{}") || !isCSPHost(host) {
		// A templated or odd host cannot be named; allowing its scheme
		// keeps the map working and still forbids every other image
		// scheme.
		return scheme + ":"
	}
	return scheme + "://" + host
}

func isPlaceholder(s string) bool {
	return len(s) > 2 && s[0] == '{' && s[len(s)-1] == '}' && !strings.ContainsAny(s[1:len(s)-1], "{}")
}

// isCSPHost reports whether host can be put into the header as it is: a
// ';', ',' or space would end the directive and let a crafted TILE_URL
// widen the policy.
func isCSPHost(host string) bool {
	for _, c := range host {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.ContainsRune(".-:*[]", c):
		default:
			return false
		}
	}
	return true
}
