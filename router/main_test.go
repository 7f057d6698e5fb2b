package router_test

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestMain fails the package if goroutines started by hakuban, by the
// WebSocket library or by HTTP servers and clients outlive the tests: the
// router's Close must stop everything it started.
func TestMain(m *testing.M) {
	code := m.Run()
	if routerBuildDir != "" {
		os.RemoveAll(routerBuildDir)
	}
	if code == 0 {
		if leaked := waitForLeaks(5 * time.Second); leaked != "" {
			fmt.Fprintf(os.Stderr, "goroutine leak:\n%s\n", leaked)
			code = 1
		}
	}
	os.Exit(code)
}

var leakMarkers = []string{
	"github.com/hakuban/hakuban/",
	"github.com/coder/websocket",
	"net/http.(*conn).serve",
	"net/http.(*persistConn)",
}

// waitForLeaks polls until no goroutine shows a leak marker, or returns
// their stacks after timeout.
func waitForLeaks(timeout time.Duration) string {
	deadline := time.Now().Add(timeout)
	for {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		var leaked []string
		for _, g := range strings.Split(string(buf), "\n\n") {
			if strings.Contains(g, "waitForLeaks") || strings.Contains(g, "testing.tRunner") {
				continue
			}
			for _, m := range leakMarkers {
				if strings.Contains(g, m) {
					leaked = append(leaked, g)
					break
				}
			}
		}
		if len(leaked) == 0 {
			return ""
		}
		if time.Now().After(deadline) {
			return strings.Join(leaked, "\n\n")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
