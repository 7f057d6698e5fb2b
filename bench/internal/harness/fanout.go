package harness

import "time"

// ExpectAll waits for event ev from every child in turn.
func ExpectAll(cs []*Child, ev string, timeout time.Duration) error {
	for _, c := range cs {
		if err := c.Expect(ev, timeout, nil); err != nil {
			return err
		}
	}
	return nil
}

// FanOut gathers, for each message 1..n of a fan-out, when the first and
// the last receiver had it (Unix ns; processes report their receivers'
// earliest and latest).
type FanOut struct {
	first, last []int64
}

// NewFanOut gathers n messages.
func NewFanOut(n int) *FanOut {
	return &FanOut{first: make([]int64, n+1), last: make([]int64, n+1)}
}

// Add takes one process's earliest and latest receipt of each message.
func (f *FanOut) Add(first, last []int64) {
	for v := range min(len(last), len(f.last)) {
		f.last[v] = max(f.last[v], last[v])
		if f.first[v] == 0 || first[v] < f.first[v] {
			f.first[v] = first[v]
		}
	}
}

// Latencies summarizes, from each message's send time, the time until the
// first and until the last receiver had it. Message 1 is the warm-up and
// is left out.
func (f *FanOut) Latencies(sent []int64) (first, last LatStats) {
	n := len(f.last) - 1
	var firstLat, lastLat []int64
	for v := 2; v <= n && v < len(sent); v++ {
		lastLat = append(lastLat, f.last[v]-sent[v])
		firstLat = append(firstLat, f.first[v]-sent[v])
	}
	return Summarize(firstLat, n-1), Summarize(lastLat, n-1)
}
