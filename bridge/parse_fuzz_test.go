package bridge

import (
	"math"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/exlive2mqtt/exlive2mqtt/exlive"
	"github.com/exlive2mqtt/exlive2mqtt/topic"
)

// FuzzParseRequest feeds any bytes to the request parser of every kind of
// /set topic. It must never panic; an error must be a short, readable
// sentence; what it accepts must be usable: valid UTF-8, request ids
// within their limit, and positions with finite numbers in range and texts
// within the platform's bounds; and requestIDOf, which answers a request
// refused unparsed (busy), must find the request_id the parser finds.
//
// The seed corpus is testdata/fuzz/FuzzParseRequest (requests of every kind,
// well-formed and broken: wrong types, numbers out of range, bad expires,
// invalid UTF-8, OwnTracks locations); fuzz with
//
//	go test -run='^$' -fuzz='^FuzzParseRequest$' -parallel=1 ./bridge/
func FuzzParseRequest(f *testing.F) {
	f.Fuzz(func(t *testing.T, payload []byte) {
		for k := range topic.NumKinds {
			p, err := parseRequest(k, payload)
			if id := requestIDOf(k, payload); id != p.requestID {
				t.Fatalf("kind %s: requestIDOf = %q, parseRequest read %q (%v)", k, id, p.requestID, err)
			}
			if err != nil {
				checkError(t, k, payload, err)
				continue
			}
			if !utf8.Valid(payload) {
				t.Fatalf("kind %s: accepted invalid UTF-8 %q", k, payload)
			}
			for _, s := range []string{p.requestID, p.data, p.code, p.terminalID, p.pos.ID, p.pos.Code, p.pos.WState, p.pos.CState, p.pos.PosInfo} {
				if !utf8.ValidString(s) {
					t.Fatalf("kind %s: accepted text %q is not UTF-8", k, s)
				}
			}
			if len(p.requestID) > 256 {
				t.Fatalf("kind %s: request_id of %d bytes accepted", k, len(p.requestID))
			}
			if !p.expires.IsZero() && (p.expires.Year() < 1970 || p.expires.Year() > 9999) {
				t.Fatalf("kind %s: expires %v accepted", k, p.expires)
			}
			if k == topic.KindPosition {
				checkPosition(t, p)
			}
		}
	})
}

func checkError(t *testing.T, k topic.Kind, payload []byte, err error) {
	t.Helper()
	msg := err.Error()
	switch {
	case msg == "":
		t.Fatalf("kind %s: empty error for %q", k, payload)
	case !utf8.ValidString(msg):
		t.Fatalf("kind %s: error %q is not UTF-8", k, msg)
	case len(msg) > 400:
		// The error is published on the result topic and logged: it must
		// not echo a large payload back.
		t.Fatalf("kind %s: error of %d bytes: %.200q…", k, len(msg), msg)
	}
	for _, r := range msg {
		if unicode.IsControl(r) {
			t.Fatalf("kind %s: error %q holds a control character", k, msg)
		}
	}
}

func checkPosition(t *testing.T, p parsed) {
	t.Helper()
	pos := p.pos
	finite := func(name string, v, lo, hi float64) {
		if math.IsNaN(v) || math.IsInf(v, 0) || v < lo || v > hi {
			t.Fatalf("position accepted with %s = %v (want %v to %v)", name, v, lo, hi)
		}
	}
	finite("lat", pos.Lat, -90, 90)
	finite("lng", pos.Lng, -180, 180)
	if pos.Speed.Valid {
		finite("speed", pos.Speed.V, 0, exlive.MaxSpeed)
	}
	if pos.Direction.Valid {
		finite("direction", pos.Direction.V, 0, 360)
	}
	if pos.Fuel.Valid {
		finite("fuel", pos.Fuel.V, -exlive.MaxFuel, exlive.MaxFuel)
	}
	if pos.Mileage.Valid {
		finite("mileage", pos.Mileage.V, -exlive.MaxMileage, exlive.MaxMileage)
	}
	if len(pos.ID) > exlive.MaxIDLen || len(pos.Code) > exlive.MaxCodeLen ||
		len(pos.WState) > exlive.MaxTextLen || len(pos.CState) > exlive.MaxTextLen || len(pos.PosInfo) > exlive.MaxTextLen {
		t.Fatalf("position accepted with id, code, wstate, cstate, posinfo of %d, %d, %d, %d, %d bytes",
			len(pos.ID), len(pos.Code), len(pos.WState), len(pos.CState), len(pos.PosInfo))
	}
	if pos.Time.Valid {
		if y := pos.Time.V.Year(); y < 1970 || y > 9999 {
			t.Fatalf("position accepted with time %v", pos.Time.V)
		}
	}
}
