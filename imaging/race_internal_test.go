//go:build race

package imaging

// raceEnabled: the race detector's runtime allocates and drops sync.Pool
// items at random, so allocation counts say nothing under it.
const raceEnabled = true
