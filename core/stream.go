package core

import (
	"context"
	"iter"
	"sync/atomic"
	"time"
)

// waitable is the wake-up part of every stream-like value (contracts and
// sinks). All fields are guarded by the exchange's mutex.
//
// Waiters sleep on wake, a channel with room for one token that is made on
// first use, so the millions of contracts nobody waits on cost no channel.
// A signal puts a token if there is room: one waiter wakes, takes what is
// pending and, if more is pending (or the stream is closed), passes the
// token on. That chain wakes every waiter without a broadcast.
type waitable struct {
	wake   chan struct{}
	notify func()
	closed bool
	// refused is the upstream's refusal of the contract, nil while there
	// is none (refusal.go). Atomic: lock-free receivers read it.
	refused atomic.Pointer[refusal]
}

// signal wakes one waiter and queues the notify hook, which runs after the
// exchange's mutex is released. Called with ex.mu held.
func (w *waitable) signal(ex *Exchange) {
	if w.wake != nil {
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
	if w.notify != nil {
		ex.addHook(w.notify)
	}
}

// ready returns the wake channel, making it if needed. Called with ex.mu held.
func (w *waitable) ready() chan struct{} {
	if w.wake == nil {
		w.wake = make(chan struct{}, 1)
	}
	return w.wake
}

// next is the blocking receive shared by every stream. take runs with ex.mu
// held and reports the item, whether there was one, and whether more remain.
// When nothing is pending, an unreported refusal of the contract is
// returned (once) instead of waiting.
func next[T any](ctx context.Context, ex *Exchange, w *waitable, take func() (T, bool, bool)) (T, error) {
	var zero T
	for {
		ex.mu.Lock()
		v, ok, more := take()
		if ok {
			if more {
				w.signal(ex)
			}
			ex.unlock()
			return v, nil
		}
		if w.closed {
			w.signal(ex) // pass the wake-up on to the next waiter
			ex.unlock()
			return zero, ErrClosed
		}
		if err := w.takeRefusal(); err != nil {
			ex.unlock()
			return zero, err
		}
		ch := w.ready()
		ex.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			// We may have taken a token meant for another waiter: pass it on.
			ex.mu.Lock()
			w.signal(ex)
			ex.unlock()
			return zero, ctx.Err()
		}
	}
}

// tryNext is the non-blocking receive shared by every stream.
func tryNext[T any](ex *Exchange, w *waitable, take func() (T, bool, bool)) (T, bool, error) {
	var zero T
	ex.mu.Lock()
	v, ok, more := take()
	if ok {
		if more {
			w.signal(ex)
		}
		ex.unlock()
		return v, true, nil
	}
	closed := w.closed
	ex.unlock()
	if closed {
		return zero, false, ErrClosed
	}
	return zero, false, w.takeRefusal()
}

// nextTimeout is next with a timeout instead of a context: what the C API and
// the bindings call. A zero timeout is a try; a negative one waits forever.
func nextTimeout[T any](ex *Exchange, w *waitable, take func() (T, bool, bool), timeout time.Duration) (T, error) {
	return withTimeout(timeout,
		func() (T, bool, error) { return tryNext(ex, w, take) },
		func(ctx context.Context) (T, error) { return next(ctx, ex, w, take) })
}

// withTimeout turns a stream's try and blocking next into a wait bounded by
// timeout: 0 tries, a negative timeout waits forever, and running out of
// time is context.DeadlineExceeded.
func withTimeout[T any](timeout time.Duration, try func() (T, bool, error), wait func(context.Context) (T, error)) (T, error) {
	if timeout == 0 {
		v, ok, err := try()
		if err == nil && !ok {
			err = context.DeadlineExceeded
		}
		return v, err
	}
	ctx := context.Background()
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	return wait(ctx)
}

// readyChan returns the stream's wake channel (see the Ready methods).
func readyChan(ex *Exchange, w *waitable) <-chan struct{} {
	ex.mu.Lock()
	defer ex.mu.Unlock()
	return w.ready()
}

// setNotify installs the hook (see the SetNotify methods).
func setNotify(ex *Exchange, w *waitable, f func(), pending func() bool) {
	ex.mu.Lock()
	w.notify = f
	if f != nil && (w.closed || pending()) {
		ex.addHook(f)
	}
	ex.unlock()
}

// seq adapts a stream to a range-over-func iterator that ends when the
// stream is closed or ctx is done.
func seq[T any](ctx context.Context, ex *Exchange, w *waitable, take func() (T, bool, bool)) iter.Seq[T] {
	return seqOf(ctx, func(ctx context.Context) (T, error) { return next(ctx, ex, w, take) })
}

// seqOf adapts a blocking next to an iterator that ends at its first error.
func seqOf[T any](ctx context.Context, next func(context.Context) (T, error)) iter.Seq[T] {
	return func(yield func(T) bool) {
		for {
			v, err := next(ctx)
			if err != nil || !yield(v) {
				return
			}
		}
	}
}
