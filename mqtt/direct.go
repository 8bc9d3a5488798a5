package mqtt

import (
	"encoding/binary"
	"errors"
	"net"
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
// paho as before.

// errNoRoom is publish0's answer, when told not to wait, while the buffer
// is full: the message goes to the queue instead.
var errNoRoom = errors.New("mqtt: connection buffer full")

// errNotOpened is publish0's answer before paho has written its CONNECT.
var errNotOpened = errors.New("mqtt: connection not opened by paho yet")

// publish0Size returns the size of the QoS 0 PUBLISH packet of m.
func publish0Size(m message) int {
	n := 2 + len(m.topic) + len(m.payload)
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

// appendPublish0 appends the QoS 0 PUBLISH packet of m to b (MQTT 3.1.1,
// section 3.3: no packet identifier at QoS 0). The topic was checked by
// validTopic: at most MaxTopicLen bytes.
func appendPublish0(b []byte, m message) []byte {
	h := byte(0x30)
	if m.retain {
		h |= 1
	}
	b = append(b, h)
	for n := 2 + len(m.topic) + len(m.payload); ; n >>= 7 {
		if n < 128 {
			b = append(b, byte(n))
			break
		}
		b = append(b, byte(n&127|128))
	}
	b = binary.BigEndian.AppendUint16(b, uint16(len(m.topic)))
	b = append(b, m.topic...)
	return append(b, m.payload...)
}

// publish0 holds the QoS 0 PUBLISH packet of m for the writer. It waits
// while the buffer is full, when wait is set, until the writer has made
// room or failed (each of its writes is bounded by the write timeout);
// otherwise it returns errNoRoom. The packet must fit the buffer (see
// publish0Size).
func (c *wireConn) publish0(m message, wait bool) error {
	c.mu.Lock()
	for len(c.out) >= wireBuffer && c.err == nil && !c.closing {
		if !wait {
			c.mu.Unlock()
			return errNoRoom
		}
		room := c.room
		c.waiting++
		c.mu.Unlock()
		<-room
		c.mu.Lock()
		c.waiting--
	}
	switch {
	case c.err != nil:
		err := c.err
		c.mu.Unlock()
		return err
	case c.closing:
		c.mu.Unlock()
		return net.ErrClosed
	case !c.opened:
		c.mu.Unlock()
		return errNotOpened
	}
	c.out = appendPublish0(c.out, m)
	c.mu.Unlock()
	c.signal()
	return nil
}
