package harness

import (
	"math"
	"slices"
)

// Pct returns the p-th percentile (nearest rank) of sorted; 0 when empty.
func Pct(sorted []int64, p float64) int64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// Median returns the median of vs (the mean of the middle two for an even
// count), with the minimum and maximum.
func Median(vs []float64) (med, lo, hi float64) {
	if len(vs) == 0 {
		return math.NaN(), math.NaN(), math.NaN()
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	n := len(s)
	med = s[n/2]
	if n%2 == 0 {
		med = (s[n/2-1] + s[n/2]) / 2
	}
	return med, s[0], s[n-1]
}

// LatStats summarizes one-way latencies.
type LatStats struct {
	Count, Expected int
	// Percentiles in nanoseconds.
	P50, P90, P99, P999, Max int64
}

// Summarize sorts lats and summarizes them; expected is how many there
// should have been.
func Summarize(lats []int64, expected int) LatStats {
	slices.Sort(lats)
	return LatStats{
		Count: len(lats), Expected: expected,
		P50: Pct(lats, 50), P90: Pct(lats, 90), P99: Pct(lats, 99), P999: Pct(lats, 99.9), Max: Pct(lats, 100),
	}
}
