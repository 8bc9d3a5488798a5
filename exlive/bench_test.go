package exlive

import (
	"strconv"
	"testing"
	"time"

	"github.com/exlive2mqtt/exlive2mqtt/internal/cpubench"
	"github.com/exlive2mqtt/exlive2mqtt/opt"
)

// benchPosition is a position as a platform sends it, Chinese text included.
func benchPosition(id int) string {
	return `{"header":{"cmd":"1007"},"body":{"code":"沪A` + strconv.Itoa(10000+id) + `","id":"` + strconv.Itoa(id) +
		`","lat":"31.230416","lng":"121.473701","veo":"42.5","dir":"270","gpstime":"2011-11-01 12:38:39",` +
		`"av":"1","alarm":"0","oil":"35.2","dis":"123456.7","wstate":"00000001","cstate":"ACC开,GPS定位",` +
		`"posinfo":"上海市黄浦区人民大道200号附近，距离人民广场约120米"}}`
}

// cycle reads its data over and over, in reads of at most 4 KiB, as a
// socket would deliver it.
type cycle struct {
	data []byte
	off  int
}

func (c *cycle) Read(p []byte) (int, error) {
	n := copy(p[:min(len(p), 4096)], c.data[c.off:])
	c.off = (c.off + n) % len(c.data)
	return n, nil
}

// benchStream is one of the streams the reader benchmarks read: 100
// positions in the given form.
type benchStream struct {
	name   string
	stream []byte
	enc    Encoding
}

func benchStreams(b *testing.B) []benchStream {
	var stream []byte
	for i := range 100 {
		stream = append(stream, benchPosition(i)...)
		stream = append(stream, "\r\n"...)
	}
	gbk := toGBK(b, string(stream))
	// The live dialect: GBK, laid out over lines, back to back.
	var dialect []byte
	for range 100 {
		dialect = append(dialect, fixture(b, "dialect/09_position_json_common_gbk.json")...)
	}
	return []benchStream{
		{"utf-8", stream, EncodingUTF8},
		{"auto", stream, EncodingAuto},
		{"gbk", gbk, EncodingGBK},
		{"auto-gbk", gbk, EncodingAuto},
		{"gbk-dialect", dialect, EncodingGBK},
		{"auto-dialect", dialect, EncodingAuto},
	}
}

func BenchmarkReadFrame(b *testing.B) {
	for _, c := range benchStreams(b) {
		b.Run(c.name, func(b *testing.B) {
			r := NewReader(&cycle{data: c.stream}, 0, c.enc)
			b.SetBytes(int64(len(c.stream) / 100)) // one frame
			b.ReportAllocs()
			defer cpubench.PerOp(b)()
			for b.Loop() {
				if _, err := r.ReadFrame(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkDecodePosition(b *testing.B) {
	frame := []byte(benchPosition(42))
	d := NewDecoder(shanghai(b))
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	defer cpubench.PerOp(b)()
	for b.Loop() {
		if _, err := d.Decode(frame); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReadDecode is a position read off the stream and decoded, as the
// session's read loop does it: ReadFrame then Decode.
func BenchmarkReadDecode(b *testing.B) { benchRead(b, false) }

// benchRead reads and decodes each stream of benchStreams, with
// ReadMessage (inPlace) or with ReadFrame then Decode.
func benchRead(b *testing.B, inPlace bool) {
	for _, c := range benchStreams(b) {
		b.Run(c.name, func(b *testing.B) {
			r := NewReader(&cycle{data: c.stream}, 0, c.enc)
			d := NewDecoder(shanghai(b))
			b.SetBytes(int64(len(c.stream) / 100))
			b.ReportAllocs()
			defer cpubench.PerOp(b)()
			for b.Loop() {
				if _, _, err := readOne(r, d, inPlace); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkAppendFramePosition(b *testing.B) {
	p := &Position{
		ID: "42", Code: "沪A10042", Lat: 31.230416, Lng: 121.473701,
		Speed: opt.Some(42.5), Direction: opt.Some(270.0), Time: opt.Some(time.Date(2011, 11, 1, 12, 38, 39, 0, shanghai(b))),
		Valid: opt.Some(true), Alarm: opt.Some(false), Fuel: opt.Some(35.2), Mileage: opt.Some(123456.7),
		WState: "00000001", CState: "ACC开,GPS定位", PosInfo: "上海市黄浦区人民大道200号附近，距离人民广场约120米",
	}
	buf := AppendFrame(nil, p)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendFrame(buf[:0], p)
	}
}

// BenchmarkReadMessage is BenchmarkReadDecode's work done by ReadMessage,
// which reads a frame whole in the buffer once, in place.
func BenchmarkReadMessage(b *testing.B) { benchRead(b, true) }
