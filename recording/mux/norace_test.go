//go:build !race

package mux

// raceEnabled: the race detector is off.
const raceEnabled = false
