// Package opt holds Opt, a value that may be absent. The EXLIVE platform
// sends "" for a field it does not know and OwnTracks leaves out what it
// does not know: in both, "not given" must stay "not given", never become 0.
// Package exlive and package owntracks both carry their optional fields in
// it.
package opt

// Opt is an optional value: Valid reports whether V is present.
type Opt[T any] struct {
	V     T
	Valid bool
}

// Some returns a present Opt holding v.
func Some[T any](v T) Opt[T] { return Opt[T]{V: v, Valid: true} }
