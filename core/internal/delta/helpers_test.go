package delta

import (
	"bytes"
	"fmt"
	"math/rand"
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

// jsonDoc returns a JSON array of about n bytes of sensor-like records.
func jsonDoc(n int, seed int64) []byte {
	r := rand.New(rand.NewSource(seed))
	var b bytes.Buffer
	b.WriteString("[")
	for i := 0; b.Len() < n; i++ {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `{"id":%d,"name":"sensor-%d","room":%d,"temp":%.2f,"ok":%v,"tags":["a%d","b%d"]}`,
			i, r.Intn(100000), r.Intn(500), r.Float64()*40, r.Intn(2) == 0, r.Intn(50), r.Intn(50))
	}
	b.WriteString("]")
	return b.Bytes()
}

// mutateDigits returns a copy of doc with frac of its bytes changed: random
// digits replaced by other random digits, scattered over the document, so
// the result is still valid JSON of the same shape.
func mutateDigits(doc []byte, frac float64, seed int64) []byte {
	r := rand.New(rand.NewSource(seed))
	out := bytes.Clone(doc)
	want := int(float64(len(doc)) * frac)
	for changed := 0; changed < want; {
		p := r.Intn(len(out))
		if c := out[p]; c >= '0' && c <= '9' {
			nc := byte('0' + r.Intn(10))
			if nc != c {
				out[p] = nc
				changed++
			}
		}
	}
	return out
}

func randomBytes(n int, seed int64) []byte {
	b := make([]byte, n)
	rand.New(rand.NewSource(seed)).Read(b)
	return b
}
