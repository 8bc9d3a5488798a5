//go:build race

package bridge_test

// raceEnabled is true under -race, where publishing 300 000 positions
// takes ten times as long and says nothing more than 30 000 do.
const raceEnabled = true
