package bridge

import (
	"math"
	"time"

	"github.com/exlive2mqtt/exlive2mqtt/events"
	"github.com/exlive2mqtt/exlive2mqtt/exlive"
	"github.com/exlive2mqtt/exlive2mqtt/internal/jsonw"
	"github.com/exlive2mqtt/exlive2mqtt/opt"
)

// The payloads of docs/topics.md, written by hand: positions are the hot path,
// and a fixed field order reads better in mosquitto_sub than a map's.

func str(dst []byte, key, val string) []byte {
	return jsonw.String(jsonw.Member(dst, key), val)
}

// optStr leaves out an empty string: the platform's "" means not given.
func optStr(dst []byte, key, val string) []byte {
	if val == "" {
		return dst
	}
	return str(dst, key, val)
}

func num(dst []byte, key string, v opt.Opt[float64]) []byte {
	if !v.Valid {
		return dst
	}
	return jsonw.Float(jsonw.Member(dst, key), v.V)
}

func flag(dst []byte, key string, v opt.Opt[bool]) []byte {
	if !v.Valid {
		return dst
	}
	return jsonw.Bool(jsonw.Member(dst, key), v.V)
}

func rfc3339(dst []byte, key string, t time.Time) []byte {
	dst = append(jsonw.Member(dst, key), '"')
	dst = t.UTC().AppendFormat(dst, time.RFC3339)
	return append(dst, '"')
}

// appendPosition writes a position payload. lat and lng are WGS-84; fields
// the platform left empty are left out, never sent as 0. received is when
// the bridge received it, in RFC 3339 (see feed.receivedAt).
func appendPosition(dst []byte, p *exlive.Position, lat, lng float64, received []byte) []byte {
	dst = append(dst, '{')
	dst = str(dst, "id", p.ID)
	dst = optStr(dst, "code", p.Code)
	dst = jsonw.Float(jsonw.Member(dst, "lat"), lat)
	dst = jsonw.Float(jsonw.Member(dst, "lng"), lng)
	dst = num(dst, "speed", p.Speed)
	dst = num(dst, "direction", p.Direction)
	if p.Time.Valid {
		dst = rfc3339(dst, "time", p.Time.V)
	}
	dst = append(jsonw.Member(dst, "received"), '"')
	dst = append(append(dst, received...), '"')
	dst = flag(dst, "valid", p.Valid)
	dst = flag(dst, "alarm", p.Alarm)
	// The ignition as the events read it from cstate (docs/events.md),
	// so that a consumer need not parse cstate itself.
	if acc := events.ParseACC(p.CState); acc != events.ACCUnknown {
		dst = jsonw.Bool(jsonw.Member(dst, "ignition"), acc == events.ACCOn)
	}
	dst = num(dst, "fuel", p.Fuel)
	dst = num(dst, "mileage", p.Mileage)
	dst = optStr(dst, "wstate", p.WState)
	dst = optStr(dst, "cstate", p.CState)
	dst = optStr(dst, "posinfo", p.PosInfo)
	return append(dst, '}')
}

// round7 rounds converted coordinates to 1e-7 degrees (about a centimetre):
// the conversion's own digits beyond that are noise.
func round7(f float64) float64 { return math.Round(f*1e7) / 1e7 }

// appendSession writes the session state payload.
func appendSession(dst []byte, s exlive.State) []byte {
	dst = append(dst, '{')
	dst = str(dst, "state", string(s.State))
	dst = rfc3339(dst, "since", s.Since)
	if s.Err != nil {
		dst = str(dst, "error", s.Err.Error())
	}
	if s.Retry > 0 {
		dst = jsonw.Float(jsonw.Member(dst, "retry_in"), math.Round(s.Retry.Seconds()*1000)/1000)
	}
	dst = optStr(dst, "addr", s.Addr)
	if s.Conflict {
		dst = jsonw.Bool(jsonw.Member(dst, "conflict"), true)
		dst = str(dst, "hint", exlive.ConflictHint)
	}
	return append(dst, '}')
}

func appendGroups(dst []byte, groups []exlive.Group) []byte {
	dst = append(dst, '[')
	for i, g := range groups {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, '{')
		dst = str(dst, "groupid", g.ID)
		dst = str(dst, "name", g.Name)
		dst = str(dst, "customer", g.Customer)
		dst = str(dst, "relation", g.Relation)
		dst = append(dst, '}')
	}
	return append(dst, ']')
}

func appendVehicles(dst []byte, vehicles []exlive.Vehicle) []byte {
	if dst == nil {
		// A big account lists 100 000 vehicles and more: a buffer of the
		// right size at once, instead of one that doubles its way there
		// and leaves its smaller copies to the GC.
		n := 2
		for _, v := range vehicles {
			n += len(`{"id":"","code":"","sim":"","groupid":""},`) + len(v.ID) + len(v.Code) + len(v.SIM) + len(v.GroupID)
		}
		dst = make([]byte, 0, n)
	}
	dst = append(dst, '[')
	for i, v := range vehicles {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendVehicle(dst, v)
	}
	return append(dst, ']')
}

// appendVehicle appends one element of the vehicle list's array.
func appendVehicle(dst []byte, v exlive.Vehicle) []byte {
	dst = append(dst, '{')
	dst = str(dst, "id", v.ID)
	dst = str(dst, "code", v.Code)
	dst = str(dst, "sim", v.SIM)
	dst = str(dst, "groupid", v.GroupID)
	return append(dst, '}')
}

func appendText(dst []byte, msg string, t time.Time) []byte {
	dst = append(dst, '{')
	dst = str(dst, "msg", msg)
	dst = rfc3339(dst, "time", t)
	return append(dst, '}')
}

func appendPassthrough(dst []byte, r *exlive.PassthroughReply, t time.Time) []byte {
	dst = append(dst, '{')
	dst = str(dst, "terminalid", r.TerminalID)
	dst = str(dst, "code", r.Code)
	dst = str(dst, "data", r.Data)
	dst = rfc3339(dst, "time", t)
	return append(dst, '}')
}

// result is the answer to a request, published on its …/result topic.
type result struct {
	RequestID string
	Cmd       exlive.Cmd
	OK        bool
	Result    string // the platform's 8000 result, when it answered
	Error     string // why not, when ok is false and the platform did not answer
}

func appendResult(dst []byte, r result) []byte {
	dst = append(dst, '{')
	if r.RequestID != "" {
		dst = str(dst, "request_id", r.RequestID)
	}
	dst = str(dst, "cmd", r.Cmd.String())
	dst = jsonw.Bool(jsonw.Member(dst, "ok"), r.OK)
	dst = optStr(dst, "result", r.Result)
	dst = optStr(dst, "error", r.Error)
	return append(dst, '}')
}
