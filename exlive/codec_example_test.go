package exlive_test

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/exlive2mqtt/exlive2mqtt/exlive"
)

// A session reads frames off the socket and decodes each; here two frames
// arrive back to back, the first laid out over several lines and saying
// "succeed" as live servers do, the second with Chinese text and every
// value a string.
func ExampleReader_ReadFrame() {
	stream := "{\n\"header\":\n{\n\"cmd\":\"8000\"\n},\n\"body\":\n{\n\"cmd\":\"1000\",\n\"result\":\"succeed\"\n}\n}" +
		`{"header":{"cmd":"1007"},"body":{"id":"10086","code":"沪A12345","lat":"31.230416","lng":"121.473701",` +
		`"veo":"42.5","dir":"","gpstime":"2011-11-01 12:38:39","posinfo":"上海市黄浦区"}}` + "\r\n"

	r := exlive.NewReader(strings.NewReader(stream), exlive.DefaultMaxFrame, exlive.EncodingAuto)
	dec := exlive.NewDecoder(time.FixedZone("Beijing", 8*60*60)) // gpstime has no zone
	for {
		f, err := r.ReadFrame()
		var skipped *exlive.FrameError
		if errors.As(err, &skipped) {
			continue // junk or a broken frame: the stream goes on
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			fmt.Println(err)
			return
		}
		m, err := dec.Decode(f.Data)
		if err != nil {
			fmt.Println(err)
			continue
		}
		switch m := m.(type) {
		case *exlive.Answer:
			fmt.Printf("answer to %v: ok %v\n", m.Command, m.OK())
		case *exlive.Position:
			fmt.Printf("vehicle %s (%s) at %v,%v speed %v (given %v), heading given %v, at %s: %s\n",
				m.ID, m.Code, m.Lat, m.Lng, m.Speed.V, m.Speed.Valid, m.Direction.Valid,
				m.Time.V.UTC().Format(time.RFC3339), m.PosInfo)
		}
	}
	// Output:
	// answer to 1000: ok true
	// vehicle 10086 (沪A12345) at 31.230416,121.473701 speed 42.5 (given true), heading given false, at 2011-11-01T04:38:39Z: 上海市黄浦区
}
