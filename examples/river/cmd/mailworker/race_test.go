//go:build race

package main

// raceEnabled: the test builds the worker with the race detector too.
const raceEnabled = true
