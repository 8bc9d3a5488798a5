package exlivesim

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/exlive2mqtt/exlive2mqtt/exlive"
	"golang.org/x/text/encoding/simplifiedchinese"
)

// stampWidth is the width of the send stamp in a prerendered frame: Unix
// nanoseconds have nineteen digits from 2001 to 2286, so the stamp a frame
// gets is the same number a position moved as it is sent gets, and
// strconv.ParseInt reads either.
const stampWidth = 19

// stampSlot is the wstate of a prerendered frame before its stamp is
// patched in; stampKey finds it in the frame.
var (
	stampSlot = string(bytes.Repeat([]byte{'0'}, stampWidth))
	stampKey  = []byte(`"wstate":"` + stampSlot + `"`)
)

// ErrPrerenderSequence is what Listen returns when Config.Prerender and
// Config.Sequence are both set: a prepared frame cannot tell how many
// positions its vehicle has had, which is what Sequence is for.
var ErrPrerenderSequence = errors.New("exlivesim: Prerender cannot be used with Sequence (prepared frames repeat, sequence numbers must not)")

// prerendered is Config.Prerender's set of positions, laid out as they go
// on the wire. It is read-only once made, so every connection sends from
// the same set.
type prerendered struct {
	wire   []byte // every frame in the server's form, encoding and line end, back to back
	ends   []int  // frame i is wire[ends[i-1]:ends[i]] (from 0 for the first)
	stamps []int  // where frame i's stamp digits begin in wire; nil without StampSent
}

// prerender moves a copy of the fleet through Config.Prerender positions,
// rounded up to whole laps of the fleet so that each vehicle has as many,
// and encodes each as a connection would have sent it. The laps are a
// second apart, the last one now: a vehicle moves on, and its gpstime goes
// on, from one lap to the next.
func (s *Server) prerender() (*prerendered, error) {
	if s.cfg.Sequence {
		return nil, ErrPrerenderSequence
	}
	vs := newFleet(s.cfg).vehicles
	if len(vs) == 0 {
		return &prerendered{}, nil
	}
	laps := (s.cfg.Prerender + len(vs) - 1) / len(vs)
	rng := rand.New(rand.NewPCG(0, s.cfg.Seed+3))
	first := time.Now().Add(-time.Duration(laps-1) * time.Second)
	pr := &prerendered{ends: make([]int, 0, laps*len(vs))}
	if s.cfg.StampSent {
		pr.stamps = make([]int, 0, laps*len(vs))
	}
	gbk := simplifiedchinese.GB18030.NewEncoder()
	var (
		p     exlive.Position
		frame []byte
		out   []byte
	)
	for lap := range laps {
		at := first.Add(time.Duration(lap) * time.Second)
		for _, v := range vs {
			v.step(at, s.cfg.Timezone, &p, rng)
			if s.cfg.StampSent {
				p.WState = stampSlot
			}
			frame = s.format(frame[:0], &p)
			frame = append(frame, s.lineEnd()...)
			b := frame
			if s.enc == exlive.EncodingGBK {
				var err error
				if out, err = gbk.Bytes(frame); err != nil {
					return nil, fmt.Errorf("exlivesim: prerender: %w", err)
				}
				b = out
			}
			if s.cfg.StampSent {
				// The slot's digits and quotes are ASCII, and no GBK
				// byte pair holds a '"', so the key found is the slot.
				i := bytes.Index(b, stampKey)
				if i < 0 {
					return nil, fmt.Errorf("exlivesim: prerender: no stamp slot in %q", b)
				}
				pr.stamps = append(pr.stamps, len(pr.wire)+i+len(`"wstate":"`))
			}
			pr.wire = append(pr.wire, b...)
			pr.ends = append(pr.ends, len(pr.wire))
		}
	}
	return pr, nil
}

// frames returns how many frames the set holds.
func (pr *prerendered) frames() int { return len(pr.ends) }

// start returns where frame i begins in wire.
func (pr *prerendered) start(i int) int {
	if i == 0 {
		return 0
	}
	return pr.ends[i-1]
}

// appendFrames appends n frames, from frame next on, going round the set
// as often as it takes, with stamp in each when the frames have a stamp
// slot. It returns the index of the frame to send after them.
func (pr *prerendered) appendFrames(dst []byte, next, n int, stamp int64) ([]byte, int) {
	var digits [stampWidth]byte
	if pr.stamps != nil {
		putStamp(digits[:], stamp)
	}
	for n > 0 {
		// A run of frames that lies in one piece in wire: one copy, then
		// the stamps patched in the copy.
		k := min(n, pr.frames()-next)
		from, base := pr.start(next), len(dst)
		dst = append(dst, pr.wire[from:pr.ends[next+k-1]]...)
		if pr.stamps != nil {
			for _, at := range pr.stamps[next : next+k] {
				copy(dst[base+at-from:], digits[:])
			}
		}
		n -= k
		next = (next + k) % pr.frames()
	}
	return dst, next
}

// putStamp writes ns in decimal, padded with zeros to fill dst. A number
// too long for dst keeps its last digits; a negative one is written as 0.
func putStamp(dst []byte, ns int64) {
	for i := len(dst) - 1; i >= 0; i-- {
		d := byte(0)
		if ns > 0 {
			d = byte(ns % 10)
			ns /= 10
		}
		dst[i] = '0' + d
	}
}
