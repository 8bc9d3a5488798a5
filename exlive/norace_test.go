//go:build !race

package exlive_test

const raceEnabled = false
