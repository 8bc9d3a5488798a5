// Package secret holds a string type for passwords and other values that must
// never reach a log line, an error message, a metric or a status page.
package secret

// String is a secret value. Its String, GoString, MarshalJSON and MarshalText
// methods print "<secret>" (or "" when empty), so formatting it by mistake
// leaks nothing. Call Reveal to get the value where it is really needed.
type String string

const redacted = "<secret>"

// Reveal returns the secret value itself.
func (s String) Reveal() string { return string(s) }

// String returns "<secret>", or "" for an empty secret.
func (s String) String() string {
	if s == "" {
		return ""
	}
	return redacted
}

// GoString keeps %#v as quiet as %v.
func (s String) GoString() string { return `"` + s.String() + `"` }

// MarshalText implements encoding.TextMarshaler with the redacted form.
func (s String) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// MarshalJSON implements json.Marshaler with the redacted form.
func (s String) MarshalJSON() ([]byte, error) { return []byte(`"` + s.String() + `"`), nil }
