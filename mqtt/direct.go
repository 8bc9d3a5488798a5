package mqtt

import (
	"encoding/binary"
	"errors"
)

// QoS 0 messages written straight onto the connection.
//
// paho turns each publish into a token, a packet and a hand-off to its
// writer goroutine, which writes the packet to the connection (wireConn)
// and completes the token, which the client's tracker waits on: three
// goroutines woken for every message, where a QoS 0 message needs none. It
// has no message id, no acknowledgement and nothing to send again, so the
// client encodes its PUBLISH packet itself, into the buffer wireConn writes
// out from, while paho is connected: paho's connection, its CONNECT, its
// keepalive and its QoS 1 traffic are unchanged, and the packets of both
// share the buffer's system calls.
//
// A message so written is published, as paho's token would have said: the
// connection holds it. Written while the link went down (paho was not
// connected throughout, see hand), it is dropped, as paho's would be. A
// packet larger than the buffer, and websocket connections, go through
// paho as before. QoS 1 messages are written the same way, with the memory
// store: see own.go.

// errNoRoom is publish0's answer, when told not to wait, while the buffer
// is full: the message goes to the queue instead.
var errNoRoom = errors.New("mqtt: connection buffer full")

// errNotOpened is publish0's answer before paho has written its CONNECT.
var errNotOpened = errors.New("mqtt: connection not opened by paho yet")

// publishSize returns the size of the PUBLISH packet of m.
func publishSize(m message) int {
	n := 2 + len(m.topic) + len(m.payload)
	if m.qos > 0 {
		n += 2 // the packet identifier
	}
	return 1 + varintSize(n) + n
}

func varintSize(n int) int {
	size := 1
	for n >= 128 {
		n >>= 7
		size++
	}
	return size
}

// appendPublish appends the PUBLISH packet of m to b (MQTT 3.1.1, section
// 3.3), at QoS 0 or, with packet identifier id, at QoS 1, sent before when
// dup is set. The topic was checked by validTopic: at most MaxTopicLen
// bytes.
func appendPublish(b []byte, m message, id uint16, dup bool) []byte {
	h := byte(0x30)
	if m.retain {
		h |= 1
	}
	n := 2 + len(m.topic) + len(m.payload)
	if m.qos > 0 {
		h |= 1 << 1
		n += 2
		if dup {
			h |= 1 << 3
		}
	}
	b = append(b, h)
	for ; ; n >>= 7 {
		if n < 128 {
			b = append(b, byte(n))
			break
		}
		b = append(b, byte(n&127|128))
	}
	b = binary.BigEndian.AppendUint16(b, uint16(len(m.topic)))
	b = append(b, m.topic...)
	if m.qos > 0 {
		b = binary.BigEndian.AppendUint16(b, id)
	}
	return append(b, m.payload...)
}

// publish0 holds the QoS 0 PUBLISH packet of m for the writer. It waits
// while the buffer is full, when wait is set, until the writer has made
// room or failed (each of its writes is bounded by the write timeout);
// otherwise it returns errNoRoom. The packet must fit the buffer (see
// publishSize).
func (c *wireConn) publish0(m message, wait bool) error {
	c.mu.Lock()
	if err := c.roomLocked(wait); err != nil {
		c.mu.Unlock()
		return err
	}
	c.out = appendPublish(c.out, m, 0, false)
	c.mu.Unlock()
	c.signal()
	return nil
}

// awaitRoom returns nil once a packet may be held for the writer: paho has
// opened the connection, it has not failed or closed, and the buffer has
// room, waited for when wait is set (else errNoRoom). A QoS 1 message is
// checked for room before it is stored, and then held by add, room or not:
// a stored message must be written, or wait in the store for the next
// connection.
func (c *wireConn) awaitRoom(wait bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.roomLocked(wait)
}

// roomLocked is awaitRoom with c.mu held. A large Write waiting for what is
// held to be written goes first: there is no room until it has.
func (c *wireConn) roomLocked(wait bool) error {
	for (len(c.out) >= wireBuffer || c.large > 0) && c.err == nil && !c.closing {
		if !wait {
			return errNoRoom
		}
		room := c.room
		c.waiting++
		c.mu.Unlock()
		<-room
		c.mu.Lock()
		c.waiting--
	}
	if err := c.endedLocked(); err != nil {
		return err
	}
	if !c.opened {
		return errNotOpened
	}
	return nil
}

// add holds the PUBLISH packet of m, with id and dup at QoS 1, for the
// writer, whether the buffer has room or not (see awaitRoom); it fails only
// when the connection has failed or is closing.
func (c *wireConn) add(m message, id uint16, dup bool) error {
	c.mu.Lock()
	if err := c.endedLocked(); err != nil {
		c.mu.Unlock()
		return err
	}
	c.out = appendPublish(c.out, m, id, dup)
	c.mu.Unlock()
	c.signal()
	return nil
}
