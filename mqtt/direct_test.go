package mqtt

import (
	"bytes"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.mqtt.golang/packets"
)

// TestAppendPublish holds the client's PUBLISH encoding equal to paho's,
// byte for byte, at the remaining-length boundaries (127/128, 16383/16384
// bytes), at QoS 0 and at QoS 1 with packet identifiers at both ends of
// their range, sent before or not, retained or not.
func TestAppendPublish(t *testing.T) {
	for _, topic := range []string{"t", "exlive/vehicles/V1/position", strings.Repeat("a", 300)} {
		for _, size := range []int{0, 1, 100, 122, 123, 124, 125, 126, 16000, 16376, 16377, 16378, 16379, 16380, 60000} {
			for _, retain := range []bool{false, true} {
				for _, q := range []struct {
					qos byte
					id  uint16
					dup bool
				}{{0, 0, false}, {1, 1, false}, {1, 258, true}, {1, 65535, false}} {
					m := message{topic: topic, payload: bytes.Repeat([]byte{'p'}, size), retain: retain, qos: q.qos}
					pp := packets.NewControlPacket(packets.Publish).(*packets.PublishPacket)
					pp.TopicName, pp.Payload, pp.Retain, pp.Qos, pp.MessageID, pp.Dup = m.topic, m.payload, m.retain, q.qos, q.id, q.dup
					var want bytes.Buffer
					if err := pp.Write(&want); err != nil {
						t.Fatal(err)
					}
					got := appendPublish([]byte("x"), m, q.id, q.dup)
					if !bytes.Equal(got[1:], want.Bytes()) || got[0] != 'x' {
						t.Fatalf("topic %d B, payload %d B, retain %v, QoS %d, id %d: encoding differs from paho's", len(topic), size, retain, q.qos, q.id)
					}
					if publishSize(m) != want.Len() {
						t.Fatalf("publishSize = %d, paho wrote %d", publishSize(m), want.Len())
					}
					back, err := packets.ReadPacket(bytes.NewReader(got[1:]))
					if err != nil {
						t.Fatal(err)
					}
					if bp := back.(*packets.PublishPacket); bp.TopicName != topic || len(bp.Payload) != size || bp.Retain != retain || bp.Qos != q.qos || bp.MessageID != q.id || bp.Dup != q.dup {
						t.Fatalf("read back %+v id %d", bp.FixedHeader, bp.MessageID)
					}
				}
			}
		}
	}
}

// TestPublish0 writes QoS 0 packets onto a wireConn: only after paho has
// written (its CONNECT comes first), behind what paho handed over, without
// waiting when told not to, and not after Close.
func TestPublish0(t *testing.T) {
	w, other, writes := pipe(t, 10*time.Second, true)
	m := message{topic: "a/b", payload: []byte("hello")}
	if err := w.publish0(m, false); !errors.Is(err, errNotOpened) {
		t.Fatalf("publish0 before paho wrote = %v, want errNotOpened", err)
	}
	connect := packet('c', 10)
	if _, err := w.Write(connect); err != nil {
		t.Fatal(err)
	}
	if err := w.publish0(m, false); err != nil {
		t.Fatal(err)
	}
	want := append(append([]byte(nil), connect...), appendPublish(nil, m, 0, false)...)
	got := make([]byte, len(want))
	if _, err := io.ReadFull(other, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("read %q, want %q", got, want)
	}
	for len(writes) > 0 {
		<-writes
	}

	// The pipe is not read: the writer is held in its write of the first
	// message, and the buffer fills behind it.
	big := message{topic: "a/b", payload: bytes.Repeat([]byte{'x'}, 1000)}
	if err := w.publish0(big, false); err != nil {
		t.Fatal(err)
	}
	entered(t, writes)
	for i := 0; ; i++ {
		err := w.publish0(big, false)
		if errors.Is(err, errNoRoom) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if i > 2*wireBuffer/1000+10 {
			t.Fatal("the buffer never filled")
		}
	}
	// A waiting publish0 goes through once the writer has made room.
	done := make(chan error, 1)
	go func() { done <- w.publish0(m, true) }()
	select {
	case err := <-done:
		t.Fatalf("publish0 with wait returned %v while the buffer was full", err)
	case <-time.After(50 * time.Millisecond):
	}
	go io.Copy(io.Discard, other)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("publish0 with wait = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("publish0 with wait never returned once the pipe was read")
	}
	w.Close()
	if err := w.publish0(m, true); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("publish0 after Close = %v, want net.ErrClosed", err)
	}
}

// TestPublish0WaitEndsOnFailure: a publish0 waiting for room returns the
// writer's error when the socket write fails, within the write timeout.
func TestPublish0WaitEndsOnFailure(t *testing.T) {
	w, _, writes := pipe(t, 200*time.Millisecond, true)
	if _, err := w.Write(packet('c', 10)); err != nil {
		t.Fatal(err)
	}
	// The writer is held in its write of the CONNECT (the pipe is not
	// read) until the write timeout fails it; the buffer fills behind it.
	entered(t, writes)
	big := message{topic: "a/b", payload: bytes.Repeat([]byte{'x'}, 1000)}
	for w.publish0(big, false) == nil {
	}
	start := time.Now()
	err := w.publish0(big, true)
	if err == nil || errors.Is(err, errNoRoom) {
		t.Fatalf("publish0 with wait on a stuck socket = %v, want the write's error", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("publish0 waited %v", d)
	}
}

// TestLargeWriteGoesFirst: while a packet larger than the buffer waits for
// what is held to be written, the client's own packets wait behind it, so
// that a steady stream of them cannot hold it back until its deadline.
func TestLargeWriteGoesFirst(t *testing.T) {
	w, other, writes := pipe(t, 10*time.Second, true)
	if _, err := w.Write(packet('c', 10)); err != nil {
		t.Fatal(err)
	}
	entered(t, writes) // the writer is held in its write of the CONNECT
	m := message{topic: "a/b", payload: []byte("small"), qos: 1}
	if err := w.publish0(m, false); err != nil {
		t.Fatalf("publish0 with room: %v", err)
	}
	large := packet('L', wireBuffer+1)
	wrote := make(chan error, 1)
	go func() {
		_, err := w.Write(large)
		wrote <- err
	}()
	waitFor(t, func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		return w.large == 1
	})
	if err := w.awaitRoom(false); !errors.Is(err, errNoRoom) {
		t.Fatalf("awaitRoom while a large write waits = %v, want errNoRoom", err)
	}
	if err := w.publish0(m, false); !errors.Is(err, errNoRoom) {
		t.Fatalf("publish0 while a large write waits = %v, want errNoRoom", err)
	}
	after := make(chan error, 1)
	go func() { after <- w.publish0(message{topic: "a/b", payload: []byte("after")}, true) }()

	// Read everything: the CONNECT, the small packet, the large one, and
	// only then the packet that waited.
	want := append(append(append(packet('c', 10), appendPublish(nil, m, 0, false)...), large...),
		appendPublish(nil, message{topic: "a/b", payload: []byte("after")}, 0, false)...)
	got := readN(t, other, len(want))
	if !bytes.Equal(got, want) {
		t.Fatalf("read %d bytes not in the order written (CONNECT, small, large, the one that waited)", len(got))
	}
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
	if err := <-after; err != nil {
		t.Fatal(err)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
	}
}
