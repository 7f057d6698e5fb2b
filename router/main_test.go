package router_test

import (
	"os"
	"testing"

	"github.com/hakuban/hakuban/internal/leakcheck"
)

// TestMain fails the package if goroutines started by hakuban, by the
// WebSocket library or by HTTP servers and clients outlive the tests: the
// router's Close must stop everything it started.
func TestMain(m *testing.M) {
	leakcheck.Main(m, func() {
		if routerBuildDir != "" {
			os.RemoveAll(routerBuildDir)
		}
	})
}
