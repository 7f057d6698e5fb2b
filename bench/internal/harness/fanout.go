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

// Held reduces one process's arrival times, recv[connection][message]
// (UnixNano, 0 for never; messages 1..n), to the time the first and the
// last connection held each message or a newer one: with latest wins a
// connection may skip a version, and it holds v from the earliest arrival
// of any version ≥ v. missing counts the (connection, message) pairs
// never held; their connections are left out of that message's times.
func Held(recv [][]int64, n int) (first, last []int64, missing int) {
	first, last = make([]int64, n+1), make([]int64, n+1)
	for _, r := range recv {
		held := int64(0)
		for v := n; v >= 1; v-- {
			if v >= len(r) {
				missing++
				continue
			}
			if t := r[v]; t != 0 && (held == 0 || t < held) {
				held = t
			}
			if held == 0 {
				missing++
				continue
			}
			last[v] = max(last[v], held)
			if first[v] == 0 || held < first[v] {
				first[v] = held
			}
		}
	}
	return first, last, missing
}
