// Package leakcheck fails a test binary whose goroutines outlive its tests
// (coder/websocket's main_test.go does the same): every exchange, link,
// listener and router must stop what it started. Only tests import it.
package leakcheck

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// Markers name the code whose goroutines count as leaks: ours, the
// WebSocket library's, zstd's, and HTTP servers and clients.
var Markers = []string{
	"github.com/hakuban/hakuban/",
	"github.com/coder/websocket",
	"github.com/klauspost/compress",
	"net/http.(*conn).serve",
	"net/http.(*persistConn)",
}

// Main runs the tests, then waits up to 5 s for leaked goroutines to end
// and exits non-zero, printing their stacks, if some remain. cleanup, if
// not nil, runs after the tests and before the check.
func Main(m *testing.M, cleanup func()) {
	code := m.Run()
	if cleanup != nil {
		cleanup()
	}
	if code == 0 {
		if leaked := Wait(5 * time.Second); leaked != "" {
			fmt.Fprintf(os.Stderr, "goroutine leak:\n%s\n", leaked)
			code = 1
		}
	}
	os.Exit(code)
}

// Wait polls until no goroutine but the caller runs code named by Markers,
// and returns the stacks of those still running after timeout.
func Wait(timeout time.Duration) string {
	deadline := time.Now().Add(timeout)
	for {
		leaked := running()
		if len(leaked) == 0 {
			return ""
		}
		if time.Now().After(deadline) {
			return strings.Join(leaked, "\n\n")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func running() []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var leaked []string
	for _, g := range strings.Split(string(buf), "\n\n")[1:] { // the first is ours
		if strings.Contains(g, "os/signal.signal_recv") { // the fuzzing engine's
			continue
		}
		for _, m := range Markers {
			if strings.Contains(g, m) {
				leaked = append(leaked, g)
				break
			}
		}
	}
	return leaked
}
