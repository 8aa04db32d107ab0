//go:build !race

package imaging

// raceEnabled: see race_internal_test.go.
const raceEnabled = false
