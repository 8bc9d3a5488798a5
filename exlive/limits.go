package exlive

import "unicode/utf8"

// Bounds on what the platform sends. A frame is already capped
// (Config.MaxFrame), but a program keeps some of a frame's strings for as
// long as it runs (ids and codes in its list of vehicles, the inventory) or
// publishes them with every position: a field of a megabyte in a frame of a
// megabyte must not become a megabyte per vehicle. Real values are far
// shorter: ids are database numbers, IMEIs (15 digits) or SIM numbers (11 to
// 13 digits), plates are up to 10 bytes (沪AD12345), addresses a hundred or
// two.
const (
	// MaxIDLen is the longest id, in bytes: a vehicle's id, a terminal id,
	// a group id, a SIM number. A 1009 or 1011 whose id is longer is
	// skipped (ReasonBadField); a longer SIM is left out of its 1011.
	// Positions and passthrough replies keep their ids as they came: a
	// program refuses those it cannot use (the bridge, any longer than
	// MaxIDLen, which it could not keep as a topic level).
	MaxIDLen = 128
	// MaxCodeLen is the longest code (plate), in bytes. A longer one is
	// left out of a position (Position.Invalid has FieldCode) or a 1011.
	MaxCodeLen = 128
	// MaxTextLen is the longest free text kept, in bytes: a position's
	// wstate, cstate and posinfo, a group's name, customer and relation,
	// an 8000's result. Longer text is cut at a character boundary
	// (Position.Truncated says which).
	MaxTextLen = 1024
)

// The ranges of a position's numbers: beyond them a value is no reading
// but a fault (a platform that writes 1e308 for an unknown mileage), left
// out and counted (Position.Invalid). Uploads are held to the same ranges.
const (
	MaxSpeed   = 10_000 // km/h
	MaxFuel    = 1e12   // litres, either sign
	MaxMileage = 1e12   // km, either sign
)

// cut returns s cut to at most n bytes at a character boundary, and
// whether it was cut.
func cut(s string, n int) (string, bool) {
	if len(s) <= n {
		return s, false
	}
	i := n
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i], true
}
