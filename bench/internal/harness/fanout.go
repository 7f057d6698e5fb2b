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
	first, last         []int64
	delivered, expected int
}

// NewFanOut gathers n messages.
func NewFanOut(n int) *FanOut {
	return &FanOut{first: make([]int64, n+1), last: make([]int64, n+1)}
}

// Add takes one process's report: its earliest and latest receipt of
// each message, and its delivery counts.
func (f *FanOut) Add(r FanReport) {
	for v := range min(len(r.Last), len(f.last)) {
		f.last[v] = max(f.last[v], r.Last[v])
		if f.first[v] == 0 || r.First[v] < f.first[v] {
			f.first[v] = r.First[v]
		}
	}
	f.delivered += r.Delivered
	f.expected += r.Expected
}

// DeliveredPct is the share of (receiver, message) pairs of messages 2..
// that arrived, in percent: below 100 the system skipped messages (latest
// wins) because it fell behind.
func (f *FanOut) DeliveredPct() float64 {
	return 100 * float64(f.delivered) / float64(max(1, f.expected))
}

// Delivered counts, of the (connection, message) pairs of messages 2..n in
// recv[connection][message] (0 for never), those that arrived and all.
func Delivered(recv [][]int64, n int) (delivered, expected int) {
	for _, r := range recv {
		for v := 2; v <= n; v++ {
			expected++
			if v < len(r) && r[v] != 0 {
				delivered++
			}
		}
	}
	return delivered, expected
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
