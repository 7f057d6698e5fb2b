package harness

import (
	"encoding/binary"
	"fmt"
	"syscall"
	"time"
)

// Stamp writes the current wall-clock time (ns) into b's first 8 bytes
// and, when b has room, seq into the next 8; it returns the time.
func Stamp(b []byte, seq int) int64 {
	now := time.Now().UnixNano()
	binary.LittleEndian.PutUint64(b, uint64(now))
	if len(b) >= 16 {
		binary.LittleEndian.PutUint64(b[8:], uint64(seq))
	}
	return now
}

// StampOf returns the time Stamp wrote into b; 0 when b is too short.
func StampOf(b []byte) int64 {
	if len(b) < 8 {
		return 0
	}
	return int64(binary.LittleEndian.Uint64(b))
}

// SeqOf returns the sequence number Stamp wrote into b; -1 when b is too
// short.
func SeqOf(b []byte) int {
	if len(b) < 16 {
		return -1
	}
	return int(binary.LittleEndian.Uint64(b[8:]))
}

// Pacer spaces sends interval apart: send i goes at start + i·interval,
// but never closer than interval/2 to the previous one, so that a late
// wake-up does not make a burst (two states a few µs apart would coalesce,
// latest wins, and the second would go unmeasured). It sleeps with
// nanosleep(2): time.Sleep rounds to the millisecond here, which makes
// 1 ms pacing bursty.
type Pacer struct {
	start, prev time.Time
	interval    time.Duration
}

// NewPacer starts pacing now.
func NewPacer(interval time.Duration) *Pacer {
	now := time.Now()
	return &Pacer{start: now, prev: now.Add(-interval), interval: interval}
}

// Wait sleeps until send i is due.
func (p *Pacer) Wait(i int) {
	target := p.start.Add(time.Duration(i) * p.interval)
	if earliest := p.prev.Add(p.interval / 2); target.Before(earliest) {
		target = earliest
	}
	for range 1000 { // nanosleep may return early on a signal
		d := time.Until(target)
		if d <= 0 {
			break
		}
		ts := syscall.NsecToTimespec(int64(d))
		_ = syscall.Nanosleep(&ts, nil)
	}
	p.prev = time.Now()
}

// Paced calls send(i) for i = first..last, send i due i-first+1 intervals
// after the call (a Pacer's schedule), and stops at the first error, which
// it returns naming i.
func Paced(interval time.Duration, first, last int, send func(i int) error) error {
	p := NewPacer(interval)
	for i := first; i <= last; i++ {
		p.Wait(i - first + 1)
		if err := send(i); err != nil {
			return fmt.Errorf("message %d: %w", i, err)
		}
	}
	return nil
}
