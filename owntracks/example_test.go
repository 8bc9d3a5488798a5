package owntracks_test

import (
	"errors"
	"fmt"

	"github.com/exlive2mqtt/exlive2mqtt/owntracks"
	"github.com/exlive2mqtt/exlive2mqtt/topic"
)

func Example() {
	// A vehicle position becomes a retained location on
	// owntracks/<OWNTRACKS_USER>/<V>.
	l := owntracks.Location{
		Lat: 31.230416,
		Lon: 121.473701,
		Tst: 1320122319, // 2011-11-01T04:38:39Z, the contract example
		Vel: owntracks.RoundSpeed(42.5),
		Cog: owntracks.RoundCourse(180),
		Tid: owntracks.TrackerID("沪A12345", "V1"),
	}
	if err := l.Validate(); err != nil {
		panic(err)
	}
	fmt.Println(topic.Layout{OwnTracksUser: "fleet"}.OwnTracks("V1"))
	fmt.Println(string(owntracks.Encode(nil, l)))

	// A phone's location published on .../position/set is an upload.
	payload := []byte(`{"_type":"location","acc":20,"batt":100,"lat":51.2,"lon":-4,"tid":"aa","tst":1610799026,"vel":7}`)
	if owntracks.IsLocation(payload) {
		up, err := owntracks.Decode(payload)
		fmt.Println(up.Lat, up.Lon, up.Tst, up.Vel.V, up.Vel.Valid, up.Cog.Valid, err)
	}

	_, err := owntracks.Decode([]byte(`{"_type":"transition","event":"enter"}`))
	fmt.Println(errors.Is(err, owntracks.ErrNotLocation), err)

	// Output:
	// owntracks/fleet/V1
	// {"_type":"location","cog":180,"lat":31.230416,"lon":121.473701,"tid":"45","tst":1320122319,"vel":43}
	// 51.2 -4 1610799026 7 true false <nil>
	// true owntracks: not a location message: _type is "transition"
}
