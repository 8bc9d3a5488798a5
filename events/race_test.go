//go:build race

package events

// raceEnabled is true under -race, where a test of 100 000 vehicles is
// slow and says nothing more.
const raceEnabled = true
