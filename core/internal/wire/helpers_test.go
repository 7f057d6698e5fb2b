package wire

import (
	"github.com/hakuban/hakuban/internal/leakcheck"

	"testing"
)

// TestMain fails the package when a test leaves goroutines behind.
func TestMain(m *testing.M) { leakcheck.Main(m, nil) }
