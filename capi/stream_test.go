package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hakuban/hakuban/core"
)

// A refusal can arrive between the core's wait timing out and
// nextTimeout's last look. The core hands a refusal out once, so that
// look must return it (HAKUBAN_ERR_REFUSED), not HAKUBAN_TIMEOUT.
func TestNextTimeoutReturnsARefusalTakenAfterTheWait(t *testing.T) {
	var w waker
	w.init(func(func()) {})
	refusal := fmt.Errorf("core: refused by upstream: %w", core.ErrRefused)
	taken := false
	// Like the core's TryNext: nothing pending, the refusal handed out once.
	try := func() (struct{}, bool, error) {
		if !taken {
			taken = true
			return struct{}{}, false, refusal
		}
		return struct{}{}, false, nil
	}
	next := func(time.Duration) (struct{}, error) { return struct{}{}, context.DeadlineExceeded }
	if _, rc := nextTimeout(&w, try, next, 5); int32(rc) != int32(core.CodeRefused) || !taken {
		t.Fatalf("nextTimeout returned %d (last look taken: %v), want %d (HAKUBAN_ERR_REFUSED)", int32(rc), taken, core.CodeRefused)
	}
	if _, rc := nextTimeout(&w, try, next, 5); rc != rcTimeout {
		t.Fatalf("then %d, want HAKUBAN_TIMEOUT", int32(rc))
	}
}
