package core_test

import (
	"testing"

	"github.com/hakuban/hakuban/internal/leakcheck"
)

// TestMain fails the package if goroutines started by hakuban outlive the
// tests: every exchange, contract and link must shut its goroutines down.
func TestMain(m *testing.M) { leakcheck.Main(m, nil) }
