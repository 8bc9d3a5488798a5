//go:build unix

package exlivesim

import (
	"bytes"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/exlive2mqtt/exlive2mqtt/exlive"
	"github.com/exlive2mqtt/exlive2mqtt/secret"
)

// BenchmarkPositions is what the platform costs a load test a position,
// flat out to one client that only counts them, as exlive-bench runs it:
// 1 000 vehicles, the send time stamped, positions moved and encoded as
// they are sent or prerendered. cpu-ns/op is the process's CPU (the
// client's counting too) per position: on a busy machine ns/op also counts
// the time the benchmark waited for a core.
func BenchmarkPositions(b *testing.B) {
	for _, c := range []struct {
		name      string
		prerender int
		literal   bool
	}{
		{"moved", 0, false},
		{"prerendered", 20_000, false},
		{"moved/literal", 0, true},
		{"prerendered/literal", 20_000, true},
	} {
		b.Run(c.name, func(b *testing.B) {
			s := New(Config{Vehicles: 1000, Rate: -1, Count: b.N, StampSent: true, Paused: true, Seed: 1,
				Prerender: c.prerender, Literal: c.literal})
			if err := s.Start("127.0.0.1:0"); err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			nc, err := net.Dial("tcp", s.Addr())
			if err != nil {
				b.Fatal(err)
			}
			defer nc.Close()
			w := exlive.NewWriter(nc, exlive.EncodingUTF8)
			if err := w.WriteMessage(&exlive.Login{Name: DefaultUser, Pass: secret.String(DefaultPass), Ver: "4.6936", Type: "json_common"}); err != nil {
				b.Fatal(err)
			}
			buf := make([]byte, 256<<10)
			// The login's answer first, then the positions.
			nc.SetReadDeadline(time.Now().Add(10 * time.Second))
			if _, err := nc.Read(buf); err != nil {
				b.Fatal(err)
			}
			// A position is the one frame with "1007" in it; the last
			// bytes of a read are kept so that one split between reads
			// is counted too.
			key := []byte(`"1007"`)
			var tail []byte
			n := 0
			b.ResetTimer()
			cpu0 := cpuNow()
			s.SetPaused(false)
			for n < b.N {
				nc.SetReadDeadline(time.Now().Add(10 * time.Second))
				k, err := nc.Read(buf[len(tail):])
				if err != nil {
					b.Fatalf("%d of %d positions: %v", n, b.N, err)
				}
				chunk := buf[:len(tail)+k]
				n += bytes.Count(chunk, key)
				tail = append(buf[:0:0], chunk[max(len(chunk)-len(key)+1, 0):]...)
				copy(buf, tail)
			}
			b.ReportMetric(float64(cpuNow()-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
}

func cpuNow() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}
