package main

import (
	"math"
	"slices"
)

// The same statistics as bench/netbench/stats.go: nearest-rank
// percentiles of the per-message latencies of one repetition, then the
// median (and min–max) of each figure over the repetitions.

// pct returns the p-th percentile (nearest rank) of sorted; 0 when empty.
func pct(sorted []int64, p float64) int64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// median returns the median of vs (the mean of the middle two for an even
// count), with the minimum and maximum.
func median(vs []float64) (med, lo, hi float64) {
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

// latStats summarizes one-way latencies (nanoseconds).
type latStats struct {
	Count, Expected          int
	P50, P90, P99, P999, Max int64
}

func summarize(lats []int64, expected int) latStats {
	slices.Sort(lats)
	return latStats{
		Count: len(lats), Expected: expected,
		P50: pct(lats, 50), P90: pct(lats, 90), P99: pct(lats, 99), P999: pct(lats, 99.9), Max: pct(lats, 100),
	}
}
