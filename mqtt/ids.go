package mqtt

import (
	"strconv"
	"strings"
)

// Message ids of the QoS 1 messages the client writes itself.
//
// A QoS 1 message written straight onto the connection (see own.go) needs
// a packet identifier no other unacknowledged packet of the session holds.
// paho hands out its own (for what still goes through it: large messages,
// the online state, subscriptions; and its stored packets, which it resends
// after a reconnect) from a counter nobody else can reach: getID in paho
// v1.5.1 takes the first id after the last it issued that its own map does
// not hold, and resume raises that counter to each id it resends if larger.
// Everything paho numbers is put in its store before it is sent, so the
// store sees each id paho takes, and msgIDs follows paho's counter from it.
//
// The client's ids then keep clear of every outbound id in use (in paho's
// store, or the client's own), of the idReserve ids after paho's counter,
// where paho takes its next ones, and of the idReserve ids after the
// largest id paho last listed, where its counter jumps once it has claimed
// that one. paho numbers a handful of packets at a connect (subscriptions,
// the online state) and a large vehicle list now and then, and the client
// hands it no message that could go the client's way while the client's
// own wait for their acknowledgements (see sendOwn). So paho's counter
// would have to move idReserve ids while a message of the client's waits
// for its acknowledgement (which a reconnect resends) to reach its id, and
// a packet of paho's would have to wait while paho numbers a whole round of
// others. TestMsgIDsKeepClearOfPaho holds msgIDs to that, with margin,
// against a model of paho's ids; should it happen anyway, the client's
// message moves to a new id (see resumeStore.renumber).
type msgIDs struct {
	stored   [1 << 10]uint64 // outbound ids in paho's store, a bit each
	pahoLast uint16          // the last id paho issued, as its store shows
	claimed  uint16          // the largest id paho listed last, 0 for none
	next     uint16          // the last id the client took
}

// idReserve is how many ids after paho's counter the client leaves to it.
const idReserve = 16384

func (m *msgIDs) has(id uint16) bool { return m.stored[id>>6]&(1<<(id&63)) != 0 }
func (m *msgIDs) set(id uint16)      { m.stored[id>>6] |= 1 << (id & 63) }
func (m *msgIDs) clear(id uint16)    { m.stored[id>>6] &^= 1 << (id & 63) }

// reserved reports whether id is among the idReserve after paho's counter,
// or after the largest id paho listed.
func (m *msgIDs) reserved(id uint16) bool {
	d, e := id-m.pahoLast, id-m.claimed // wrap
	return d >= 1 && d <= idReserve || m.claimed != 0 && e >= 1 && e <= idReserve
}

// pahoStored records that paho stored an outbound packet under id: its
// counter is there now (a Put that lost a race with the next few is a
// little behind, and moves nothing).
func (m *msgIDs) pahoStored(id uint16) {
	m.set(id)
	if d := m.pahoLast - id; d == 0 || d > 64 {
		m.pahoLast = id
	}
}

// listing records that paho is listing its store, with the outbound ids
// listed: it resends each, claiming its id and raising its counter to it if
// larger, one after another while it numbers new packets from where its
// counter stands.
func (m *msgIDs) listing(ids []uint16) {
	m.claimed = 0
	for _, id := range ids {
		m.set(id)
		m.claimed = max(m.claimed, id)
	}
}

// take returns a free id for the client, marked stored, or false when
// none is left.
func (m *msgIDs) take() (uint16, bool) {
	for range 1 << 16 {
		m.next++
		switch {
		case m.next == 0:
			continue
		case m.reserved(m.next):
			m.next = m.pahoLast + idReserve // skip the reserve
			continue
		case m.has(m.next):
			continue
		}
		m.set(m.next)
		return m.next, true
	}
	return 0, false
}

// outboundID returns the message id of one of paho's outbound store keys,
// "o.<id>".
func outboundID(key string) (uint16, bool) {
	rest, ok := strings.CutPrefix(key, outboundPrefix)
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseUint(rest, 10, 16)
	return uint16(n), err == nil && n > 0
}

// outboundKey returns paho's store key of the outbound packet id.
func outboundKey(id uint16) string {
	var b [8]byte
	return string(strconv.AppendUint(append(b[:0], outboundPrefix...), uint64(id), 10))
}
