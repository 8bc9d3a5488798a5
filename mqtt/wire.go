package mqtt

import (
	"bufio"
	"net"
	"os"
	"sync"
	"time"
)

// wireBuffer is the size of wireConn's read buffer, and how many bytes it
// holds for writing before a Write waits.
const wireBuffer = 64 << 10

// wireCloseGrace bounds how long Close waits for what is held to be written.
const wireCloseGrace = time.Second

// wireConn is the broker connection as paho uses it. paho reads a packet
// with three reads or more (its type, its length a byte at a time, the rest)
// and writes each packet with a write of its own: a system call each, and on
// a busy link most of what the client costs. wireConn reads through a
// buffer, and a goroutine of its own writes out, in one system call, every
// packet paho handed over since its last write. A packet goes out at once
// when the link is idle; when it is busy, packets share system calls.
// Nothing waits for company.
//
// A Write returns once the packet is held, as one returns once the kernel
// holds it: a QoS 1 message stays in paho's store until the broker
// acknowledges it, whatever happens to the connection. A write that fails or
// takes longer than the write timeout closes the connection, and paho
// reconnects.
type wireConn struct {
	net.Conn
	r       *bufio.Reader
	timeout time.Duration // bounds each write to the socket

	mu       sync.Mutex
	out      []byte // handed over by paho, not yet written
	spare    []byte // the buffer of the last write, for reuse
	err      error  // why writing ended; every later Write returns it
	closing  bool
	opened   bool          // paho has written (its CONNECT comes first)
	busy     bool          // a write to the socket is under way
	deadline time.Time     // paho's write deadline, for a Write that waits for room
	waiting  int           // Writes waiting for room
	large    int           // large Writes waiting for what is held to be written: the client's own packets wait behind them
	room     chan struct{} // closed when out is written, or writing ends; then replaced

	wake      chan struct{} // out has bytes, or Close was called
	done      chan struct{} // the writer has ended
	closeOnce sync.Once
	closeErr  error
}

func newWireConn(nc net.Conn, timeout time.Duration) *wireConn {
	c := &wireConn{
		Conn:    nc,
		r:       bufio.NewReaderSize(nc, wireBuffer),
		timeout: timeout,
		room:    make(chan struct{}),
		wake:    make(chan struct{}, 1),
		done:    make(chan struct{}),
	}
	go c.writeLoop()
	return c
}

// Read reads through the buffer. paho reads on one goroutine only.
//
// A failed write closes the connection under the reader, which then fails
// with "use of closed network connection": paho takes that error for its
// own Close and reports no loss, and, its Write having long returned,
// learns of it only at its next write (a keepalive ping, up to Keepalive
// later). So the reader returns the write's error instead: a broker that
// closes the connection over a publish (see poisonStrikes) is reconnected
// at once.
func (c *wireConn) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if err != nil {
		c.mu.Lock()
		if c.err != nil && !c.closing {
			err = c.err
		}
		c.mu.Unlock()
	}
	return n, err
}

// Write holds p for the writer, waiting while too much is held already, at
// most until the write deadline. A packet larger than the buffer (the
// vehicle list of a big account) is not copied: once what is held has been
// written, Write writes it itself; the client's own packets (see direct.go)
// wait meanwhile, so that a steady stream of them cannot hold it back.
func (c *wireConn) Write(p []byte) (int, error) {
	var timer *time.Timer
	large := len(p) > wireBuffer
	c.mu.Lock()
	for (len(c.out) >= wireBuffer || large && (len(c.out) > 0 || c.busy)) && c.err == nil && !c.closing {
		room, deadline := c.room, c.deadline
		c.waiting++
		if large {
			c.large++
		}
		c.mu.Unlock()
		var timeout <-chan time.Time
		if !deadline.IsZero() {
			if timer == nil {
				timer = time.NewTimer(time.Until(deadline))
				defer timer.Stop()
			}
			timeout = timer.C
		}
		select {
		case <-room:
			c.mu.Lock()
			c.waiting--
		case <-timeout:
			c.mu.Lock()
			c.waiting--
			if large {
				c.large--
			}
			c.mu.Unlock()
			return 0, os.ErrDeadlineExceeded
		}
		if large {
			c.large--
		}
	}
	if err := c.endedLocked(); err != nil {
		c.mu.Unlock()
		return 0, err
	}
	c.opened = true
	if large {
		c.busy = true
		c.mu.Unlock()
		n, err := c.write(p, c.timeout)
		c.written(err)
		c.signal()
		return n, err
	}
	c.out = append(c.out, p...)
	c.mu.Unlock()
	c.signal()
	return len(p), nil
}

// endedLocked returns why nothing more can be held for the writer: its
// write failed, or Close was called. Call with c.mu held.
func (c *wireConn) endedLocked() error {
	switch {
	case c.err != nil:
		return c.err
	case c.closing:
		return net.ErrClosed
	}
	return nil
}

// write writes b to the socket within timeout.
func (c *wireConn) write(b []byte, timeout time.Duration) (int, error) {
	c.Conn.SetWriteDeadline(time.Now().Add(timeout))
	return c.Conn.Write(b)
}

// written ends a write to the socket: it wakes Writes waiting for room, and
// after a failed write closes the connection (paho's reader fails next, and
// paho reconnects).
func (c *wireConn) written(err error) {
	c.mu.Lock()
	c.busy = false
	if err != nil && c.err == nil {
		c.err = err
	}
	if c.waiting > 0 || err != nil {
		close(c.room)
		c.room = make(chan struct{})
	}
	c.mu.Unlock()
	if err != nil {
		c.Conn.Close()
	}
}

func (c *wireConn) signal() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// writeLoop writes what is held until Close or a failed write.
func (c *wireConn) writeLoop() {
	defer close(c.done)
	for {
		c.mu.Lock()
		for len(c.out) == 0 || c.busy {
			if (c.closing || c.err != nil) && !c.busy {
				c.mu.Unlock()
				return
			}
			c.mu.Unlock()
			<-c.wake
			c.mu.Lock()
		}
		buf := c.out
		c.out = c.spare[:0]
		c.busy = true
		timeout := c.timeout
		if c.closing {
			timeout = min(timeout, wireCloseGrace)
		}
		c.mu.Unlock()

		_, err := c.write(buf, timeout)
		c.spare = buf[:0] // only this goroutine reads or writes spare
		c.written(err)
		if err != nil {
			return
		}
	}
}

// SetWriteDeadline sets the deadline of a Write that waits for room; the
// writer bounds each of its writes by the write timeout.
func (c *wireConn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	c.deadline = t
	c.mu.Unlock()
	return nil
}

// SetDeadline sets the read deadline and the write deadline.
func (c *wireConn) SetDeadline(t time.Time) error {
	c.SetWriteDeadline(t)
	return c.Conn.SetReadDeadline(t)
}

// Close writes out what is held, for at most wireCloseGrace, and closes the
// connection.
func (c *wireConn) Close() error {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.closing = true
		c.mu.Unlock()
		c.signal()
		t := time.NewTimer(wireCloseGrace)
		select {
		case <-c.done:
		case <-t.C:
		}
		t.Stop()
		c.closeErr = c.Conn.Close()
		<-c.done
		c.mu.Lock()
		if c.err == nil {
			c.err = net.ErrClosed
		}
		close(c.room)
		c.room = make(chan struct{})
		c.mu.Unlock()
	})
	return c.closeErr
}
