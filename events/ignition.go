package events

import "strings"

// ACC is the state of a vehicle's ignition (accessory power) as cstate
// tells it.
type ACC uint8

// The states of ACC.
const (
	ACCUnknown ACC = iota // cstate says nothing of ACC
	ACCOn
	ACCOff
)

// ParseACC finds the ACC state in a cstate text. Platforms write
// "ACC开" / "ACC关" (on / off), or "ACC ON" / "ACC OFF" in any case, alone
// or among other states: "ACC开,定位", "GPS;acc off", "ACC:ON". The rule:
// the first "ACC" (any case) that does not follow an ASCII letter or
// digit, then any spaces, ':', '：', '=', '_' or '-', then 开 or ON (on),
// 关 or OFF (off), ON and OFF not followed by a letter ("ACC ONLINE" is
// not an ignition state). Anything else is ACCUnknown: a vehicle
// whose cstate does not tell keeps the state it had.
func ParseACC(cstate string) ACC {
	for i := 0; i+3 <= len(cstate); i++ {
		if !equalFold3(cstate[i:], "acc") || (i > 0 && isAlnum(cstate[i-1])) {
			continue
		}
		rest := strings.TrimLeft(cstate[i+3:], " :=_-")
		rest = strings.TrimPrefix(rest, "：")
		rest = strings.TrimLeft(rest, " ")
		switch {
		case strings.HasPrefix(rest, "开"):
			return ACCOn
		case strings.HasPrefix(rest, "关"):
			return ACCOff
		case len(rest) >= 3 && equalFold3(rest, "off") && (len(rest) == 3 || !isAlnum(rest[3])):
			return ACCOff
		case len(rest) >= 2 && (rest[0]|0x20) == 'o' && (rest[1]|0x20) == 'n' && (len(rest) == 2 || !isAlnum(rest[2])):
			return ACCOn
		}
		// "ACC" of something else ("ACC 1"?): look further, a later
		// token may tell.
	}
	return ACCUnknown
}

// equalFold3 reports whether s starts with lower, three lower-case ASCII
// letters, in any case.
func equalFold3(s, lower string) bool {
	return len(s) >= 3 && s[0]|0x20 == lower[0] && s[1]|0x20 == lower[1] && s[2]|0x20 == lower[2]
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}
