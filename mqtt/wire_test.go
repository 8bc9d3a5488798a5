package mqtt

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// enteringConn is one end of a net.Pipe that says when a Write to it
// begins. A Write to a pipe returns only once the other end has read it
// all, so a writer that has entered one is held there until the test reads.
type enteringConn struct {
	net.Conn
	entered chan int // the length of each Write, as it begins
}

func (c *enteringConn) Write(p []byte) (int, error) {
	if c.entered != nil {
		c.entered <- len(p)
	}
	return c.Conn.Write(p)
}

// pipe returns a wireConn over one end of a pipe, the other end, and,
// when watch is set, the channel that tells when the wireConn writes to the
// pipe. Both ends are closed when the test ends.
func pipe(t *testing.T, timeout time.Duration, watch bool) (*wireConn, net.Conn, chan int) {
	t.Helper()
	a, b := net.Pipe()
	ec := &enteringConn{Conn: a}
	if watch {
		ec.entered = make(chan int, 100)
	}
	w := newWireConn(ec, timeout)
	t.Cleanup(func() {
		b.Close()
		w.Close()
	})
	return w, b, ec.entered
}

// entered waits for the wireConn to begin a write to the pipe, and returns
// its length.
func entered(t *testing.T, ch chan int) int {
	t.Helper()
	select {
	case n := <-ch:
		return n
	case <-time.After(10 * time.Second):
		t.Fatal("no write to the socket")
		return 0
	}
}

func packet(b byte, n int) []byte { return bytes.Repeat([]byte{b}, n) }

// readN reads exactly n bytes from r.
func readN(t *testing.T, r io.Reader, n int) []byte {
	t.Helper()
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		t.Fatalf("reading %d bytes: %v", n, err)
	}
	return buf
}

// TestWireBatches: a packet goes out at once on an idle link; packets handed
// over while the socket is busy go out together in one write, in order.
func TestWireBatches(t *testing.T) {
	w, peer, writes := pipe(t, 10*time.Second, true)
	a, b, c := packet('a', 10), packet('b', 20), packet('c', 30)
	if n, err := w.Write(a); n != len(a) || err != nil {
		t.Fatalf("Write = %d, %v", n, err)
	}
	if n := entered(t, writes); n != len(a) {
		t.Fatalf("first write to the socket of %d bytes, want %d (the first packet alone)", n, len(a))
	}
	// The writer is held in its write of a until the peer reads: b and c
	// wait for it, and share the next write.
	w.Write(b)
	w.Write(c)
	if got := readN(t, peer, len(a)); !bytes.Equal(got, a) {
		t.Fatalf("read %q", got)
	}
	if n := entered(t, writes); n != len(b)+len(c) {
		t.Fatalf("second write to the socket of %d bytes, want %d (b and c together)", n, len(b)+len(c))
	}
	// One read of a pipe returns at most one write.
	buf := make([]byte, 1000)
	n, err := peer.Read(buf)
	if err != nil || !bytes.Equal(buf[:n], append(b, c...)) {
		t.Fatalf("read %q, %v; want b then c in one write", buf[:n], err)
	}
	select {
	case n := <-writes:
		t.Errorf("a write of %d bytes more", n)
	default:
	}
}

// TestWireLargePacket: a packet larger than the buffer is written after
// what was held before it, and before what is handed over after it.
func TestWireLargePacket(t *testing.T) {
	w, peer, _ := pipe(t, 10*time.Second, false)
	small1, large, small2 := packet('a', 100), packet('L', 3*wireBuffer+7), packet('b', 100)
	var want []byte
	want = append(want, small1...)
	want = append(want, large...)
	want = append(want, small2...)
	got := make(chan []byte)
	go func() {
		b, _ := io.ReadAll(io.LimitReader(peer, int64(len(want))))
		got <- b
	}()
	for _, p := range [][]byte{small1, large, small2} {
		if n, err := w.Write(p); n != len(p) || err != nil {
			t.Fatalf("Write(%d bytes) = %d, %v", len(p), n, err)
		}
	}
	select {
	case b := <-got:
		if !bytes.Equal(b, want) {
			t.Fatalf("read %d bytes, not the %d written in order", len(b), len(want))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("packets not delivered")
	}
}

// TestWireWriteDeadline: a Write that finds the buffer full waits for room
// at most until paho's write deadline.
func TestWireWriteDeadline(t *testing.T) {
	w, _, writes := pipe(t, time.Minute, true)
	w.Write(packet('a', 10))
	entered(t, writes) // held there: the peer reads nothing
	if _, err := w.Write(packet('b', wireBuffer)); err != nil {
		t.Fatalf("filling the buffer: %v", err)
	}
	const d = 100 * time.Millisecond
	w.SetWriteDeadline(time.Now().Add(d))
	begin := time.Now()
	n, err := w.Write(packet('c', 1))
	if took := time.Since(begin); took < d-10*time.Millisecond {
		t.Errorf("Write returned after %s, before the deadline of %s", took, d)
	}
	if n != 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("Write = %d, %v; want 0, a deadline error", n, err)
	}
}

// TestWireSocketTimeout: a write to the socket that takes longer than the
// write timeout ends the connection: the peer sees it closed, a Write
// waiting for room and every later Write fail with the timeout.
func TestWireSocketTimeout(t *testing.T) {
	w, peer, writes := pipe(t, 100*time.Millisecond, true)
	w.Write(packet('a', 10))
	entered(t, writes)
	w.Write(packet('b', wireBuffer))
	// Waits for room with no deadline: the failed write ends the wait.
	if _, err := w.Write(packet('c', 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Write waiting for room = %v, want the socket's timeout", err)
	}
	if _, err := w.Write(packet('d', 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("Write after the failure = %v, want the same error", err)
	}
	if _, err := peer.Read(make([]byte, 10)); err != io.EOF {
		t.Errorf("peer reads %v, want EOF: the connection is closed", err)
	}
	// paho's reader gets the write's error, not the "use of closed network
	// connection" paho takes for its own Close and does not report.
	if _, err := w.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("Read after the failed write = %v, want the write's error", err)
	}
}

// TestWireCloseFlushes: Close writes out what is held before it closes.
func TestWireCloseFlushes(t *testing.T) {
	w, peer, _ := pipe(t, 10*time.Second, false)
	got := make(chan []byte)
	go func() {
		b, _ := io.ReadAll(peer)
		got <- b
	}()
	w.Write(packet('a', 10))
	w.Write(packet('b', 10))
	if err := w.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
	if b := <-got; string(b) != string(packet('a', 10))+string(packet('b', 10)) {
		t.Errorf("peer read %q before EOF", b)
	}
	if _, err := w.Write(packet('c', 1)); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Write after Close = %v, want net.ErrClosed", err)
	}
	// Closed by paho: its reader gets the connection's own error (a pipe's
	// here; "use of closed network connection" from TCP), which paho
	// expects then.
	if _, err := w.Read(make([]byte, 1)); err != io.ErrClosedPipe {
		t.Errorf("Read after Close = %v, want the pipe's own error", err)
	}
}

// TestWireCloseWhileWriting: Close with the writer held in a write to a
// peer that reads nothing waits wireCloseGrace, no longer, then closes;
// a Write waiting for room at the time fails rather than hang.
func TestWireCloseWhileWriting(t *testing.T) {
	w, _, writes := pipe(t, time.Minute, true)
	w.Write(packet('a', 10))
	entered(t, writes)
	w.Write(packet('b', wireBuffer))
	waiting := make(chan error)
	go func() {
		_, err := w.Write(packet('c', 1))
		waiting <- err
	}()
	begin := time.Now()
	w.Close()
	took := time.Since(begin)
	if took < wireCloseGrace-50*time.Millisecond || took > wireCloseGrace+5*time.Second {
		t.Errorf("Close took %s, want about wireCloseGrace (%s)", took, wireCloseGrace)
	}
	select {
	case err := <-waiting:
		if err == nil {
			t.Error("a Write waiting for room at Close succeeded")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a Write waiting for room at Close hangs")
	}
	select {
	case <-w.done:
	default:
		t.Error("the writer still runs after Close")
	}
}

// TestWireReads: paho's small reads go through the buffer.
func TestWireReads(t *testing.T) {
	w, peer, _ := pipe(t, 10*time.Second, false)
	go peer.Write([]byte{0x30, 0x03, 'a', 'b', 'c'})
	var got []byte
	for len(got) < 5 {
		b := make([]byte, 1)
		if _, err := w.Read(b); err != nil {
			t.Fatal(err)
		}
		got = append(got, b...)
	}
	if !bytes.Equal(got, []byte{0x30, 0x03, 'a', 'b', 'c'}) {
		t.Errorf("read %q", got)
	}
}
