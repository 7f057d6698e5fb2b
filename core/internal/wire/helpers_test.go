package wire

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestMain fails the package when a test leaves goroutines behind (the
// coders run on the caller's goroutine, so none should remain).
func TestMain(m *testing.M) {
	before := len(otherGoroutines())
	code := m.Run()
	if code == 0 {
		if left := waitGoroutines(before, 5*time.Second); len(left) > before {
			fmt.Fprintf(os.Stderr, "goroutine leak: %d before, %d after:\n\n%s\n", before, len(left), strings.Join(left, "\n\n"))
			code = 1
		}
	}
	os.Exit(code)
}

// otherGoroutines returns the stacks of all goroutines but the caller's,
// leaving out the os/signal loop that the fuzzing engine starts.
func otherGoroutines() []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	stacks := strings.Split(string(buf), "\n\n")[1:] // the first is ours
	kept := stacks[:0]
	for _, s := range stacks {
		if !strings.Contains(s, "os/signal.signal_recv") {
			kept = append(kept, s)
		}
	}
	return kept
}

// waitGoroutines polls until at most want other goroutines run or the
// deadline passes, and returns the last ones seen.
func waitGoroutines(want int, timeout time.Duration) []string {
	deadline := time.Now().Add(timeout)
	for {
		left := otherGoroutines()
		if len(left) <= want || time.Now().After(deadline) {
			return left
		}
		time.Sleep(10 * time.Millisecond)
	}
}
