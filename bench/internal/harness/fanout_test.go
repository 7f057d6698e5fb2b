package harness

import (
	"slices"
	"testing"
)

func TestHeld(t *testing.T) {
	// Connection 0 has every message; connection 1 skipped message 2
	// (latest wins) and holds it from message 3's arrival; connection 2
	// never got message 3: one missing pair, left out of message 3's times.
	recv := [][]int64{
		{0, 10, 20, 30},
		{0, 12, 0, 25},
		{0, 11, 21, 0},
	}
	first, last, missing := Held(recv, 3)
	if want := []int64{0, 10, 20, 25}; !slices.Equal(first, want) {
		t.Errorf("first = %v, want %v", first, want)
	}
	if want := []int64{0, 12, 25, 30}; !slices.Equal(last, want) {
		t.Errorf("last = %v, want %v", last, want)
	}
	if missing != 1 {
		t.Errorf("missing = %d, want 1", missing)
	}
	// A connection with fewer slots than messages misses the rest.
	if _, _, missing := Held([][]int64{{0, 5}}, 3); missing != 2 {
		t.Errorf("short: missing = %d, want 2", missing)
	}
}

func TestDelivered(t *testing.T) {
	// Messages 2 and 3 count (1 is the warm-up): connection 0 got both,
	// connection 1 skipped 2, connection 2 has no slot for 3.
	recv := [][]int64{
		{0, 10, 20, 30},
		{0, 12, 0, 25},
		{0, 11, 21},
	}
	if d, e := Delivered(recv, 3); d != 4 || e != 6 {
		t.Errorf("Delivered = %d of %d, want 4 of 6", d, e)
	}
	f := NewFanOut(3)
	f.Add(FanReport{First: make([]int64, 4), Last: make([]int64, 4), Delivered: 4, Expected: 6})
	f.Add(FanReport{First: make([]int64, 4), Last: make([]int64, 4), Delivered: 2, Expected: 2})
	if got := f.DeliveredPct(); got != 75 {
		t.Errorf("DeliveredPct = %v, want 75", got)
	}
}
