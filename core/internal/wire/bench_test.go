package wire

import (
	"bytes"
	"testing"
)

// benchState is a typical small state: 64 bytes of JSON, a hybrid-clock
// version, one format entry.
func benchState() *State {
	return &State{
		Object:       17,
		Version:      []int64{1718000000123456, 1},
		Format:       []string{"JSON"},
		Synchronized: true,
		Data:         bytes.Repeat([]byte("x"), 64),
	}
}

func BenchmarkState64(b *testing.B) {
	m := benchState()
	frame := AppendState(nil, m)
	b.Run("encode", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(frame)))
		buf := make([]byte, 0, 256)
		for b.Loop() {
			buf = AppendState(buf[:0], m)
		}
	})
	b.Run("decode", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(frame)))
		d, _ := NewDecoder(Limits{})
		for b.Loop() {
			d.Reset(frame)
			if _, err := d.Next(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encode+decode", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(frame)))
		d, _ := NewDecoder(Limits{})
		buf := make([]byte, 0, 256)
		for b.Loop() {
			buf = AppendState(buf[:0], m)
			d.Reset(buf)
			if _, err := d.Next(); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func TestAppendStateDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates on its own")
	}
	m := benchState()
	buf := make([]byte, 0, 256)
	if n := testing.AllocsPerRun(100, func() { buf = AppendState(buf[:0], m) }); n != 0 {
		t.Fatalf("AppendState allocated %.0f times with room in dst", n)
	}
	s := &Sync{Object: 1, Version: m.Version, Age: 5}
	if n := testing.AllocsPerRun(100, func() { buf = AppendSync(buf[:0], s) }); n != 0 {
		t.Fatalf("AppendSync allocated %.0f times with room in dst", n)
	}
	// A stack-allocated State stays on the stack.
	if n := testing.AllocsPerRun(100, func() {
		st := State{Object: 3, Synchronized: true, Data: m.Data}
		buf = AppendState(buf[:0], &st)
	}); n != 0 {
		t.Fatalf("AppendState of a local State allocated %.0f times", n)
	}
}
