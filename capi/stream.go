package main

/*
#include "shim.h"
*/
import "C"

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/hakuban/hakuban/core"
)

// waker is the part of every stream-like handle (contracts and sinks) that
// turns the core's SetNotify hook into three things: a fast empty try, a
// pollable file descriptor, and a C callback. The hook is installed when the
// handle is made; the core runs it without its lock, before the call that
// made something pending returns, whenever the stream goes from nothing
// pending to something pending, or ends.
//
// # pending: the fast empty try
//
// pending means "something may be pending". The hook sets it; a try that
// finds nothing clears it and then tries once more. While it (and
// signaled) is false, try_next returns EMPTY with two atomic loads and
// never enters the core (whose TryNext takes the exchange's mutex): that is
// what keeps an empty try near the cost of the C-to-Go call itself.
//
// # signaled: the fd
//
// The fd (an eventfd, made on first use) is readable while signaled is
// true. The hook sets it and writes the fd; a try that finds nothing clears
// it and drains the fd. Both happen under mu, so signaled and the fd's
// counter always agree, and the fd is never written after it was closed.
//
// Why no wake-up is lost (for pending, signaled and the callback alike):
//
//   - Something that becomes pending after the second try has its hook run
//     after it, which sets pending, signals the fd and kicks the callback.
//   - Something that became pending before the second try is taken by it
//     and returned (its hook may mark the stream once more: a spurious
//     wake-up, cleared by the next empty try).
//   - If more than one item is pending, the core runs the hook again when
//     one is taken ("more remain"), so the flags stay set.
type waker struct {
	pending  atomic.Bool
	signaled atomic.Bool // written under mu
	armed    atomic.Bool // an fd or a callback exists: notify has more to do
	mu       sync.Mutex
	rfd, wfd C.int // -1 until fd() is called and after shutdown
	closed   bool
	cb       *callbackReg
	// install is the core value's SetNotify; notifyFn the hook given to it
	// (made once, so re-installing does not allocate).
	install  func(func())
	notifyFn func()
}

// init installs the hook. Call it once the waker is at its final address.
func (w *waker) init(install func(func())) {
	w.rfd, w.wfd = -1, -1
	w.install = install
	w.notifyFn = w.notify
	w.pending.Store(true) // until a try has looked
	install(w.notifyFn)
}

// notify is the core's hook: it runs on whatever goroutine made something
// pending, without the exchange's lock.
func (w *waker) notify() {
	w.pending.Store(true)
	if !w.armed.Load() {
		return // fd() and setCallback catch up on what they may miss here
	}
	w.mu.Lock()
	if w.wfd >= 0 && !w.signaled.Load() {
		w.signaled.Store(true)
		C.hakuban__fd_signal(w.wfd)
	}
	cb := w.cb
	w.mu.Unlock()
	if cb != nil {
		cb.kick()
	}
}

// quiet reports that nothing can be pending: a try may return EMPTY at once.
func (w *waker) quiet() bool {
	return !w.pending.Load() && !w.signaled.Load()
}

// clear is called when a try found nothing: it clears pending, drains the
// fd, and the caller must then try once more.
func (w *waker) clear() {
	w.pending.Store(false)
	if !w.signaled.Load() {
		return
	}
	w.mu.Lock()
	if w.signaled.Load() && w.rfd >= 0 {
		C.hakuban__fd_drain(w.rfd)
		w.signaled.Store(false)
	}
	w.mu.Unlock()
}

// fd returns the stream's wake-up fd, making it on first use.
func (w *waker) fd(fn string) (C.int, C.int32_t) {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return -1, errorf(core.CodeInvalidHandle, fn, "the handle was dropped")
	}
	if w.rfd >= 0 {
		fd := w.rfd
		w.mu.Unlock()
		return fd, rcOK
	}
	r, wr, rc := newWakeFd(fn)
	if rc != rcOK {
		w.mu.Unlock()
		return -1, rc
	}
	w.rfd, w.wfd = r, wr
	w.armed.Store(true)
	w.mu.Unlock()
	// Re-installing the hook runs it at once if something is already
	// pending or the stream has ended, which signals the new fd.
	w.install(w.notifyFn)
	return r, rcOK
}

// newWakeFd makes a wake-up fd (an eventfd: read end == write end).
func newWakeFd(fn string) (r, w C.int, rc C.int32_t) {
	if errno := C.hakuban__fd_new(&r, &w); errno != 0 {
		return -1, -1, errorf(core.CodeInternal, fn, "cannot make an eventfd: errno %d", int(errno))
	}
	return r, w, rcOK
}

// setCallback replaces the callback registration (fn nil clears it).
func (w *waker) setCallback(name string, fn C.hakuban_notify_fn, userData unsafe.Pointer, drop C.hakuban_drop_fn) C.int32_t {
	return swapCallback(name, &w.mu, &w.cb, &w.closed, fn, userData, drop, func() { w.armed.Store(true) })
}

// swapCallback replaces the registration in *slot (guarded by mu; closed,
// also under mu, says the handle was dropped) with one of fn (nil clears
// it): locked, if set, runs under mu with the swap; the old registration
// is stopped, the new one started and kicked once, so that anything
// pending from before is not missed. Shared by every handle with a
// _set_callback.
func swapCallback(name string, mu *sync.Mutex, slot **callbackReg, closed *bool,
	fn C.hakuban_notify_fn, userData unsafe.Pointer, drop C.hakuban_drop_fn, locked func()) C.int32_t {
	var reg *callbackReg
	if fn != nil {
		reg = newCallbackReg(fn, userData, drop)
	}
	mu.Lock()
	if *closed {
		mu.Unlock()
		// The handle was dropped between lookup and here: the caller keeps
		// user_data (the registration never started).
		return errorf(core.CodeInvalidHandle, name, "the handle was dropped")
	}
	old := *slot
	*slot = reg
	if locked != nil {
		locked()
	}
	mu.Unlock()
	if old != nil {
		old.stop()
	}
	if reg != nil {
		go reg.run()
		reg.kick()
	}
	return rcOK
}

// shutdown stops the callback (waiting for a running call unless called
// from inside it) and closes the fd. Called once, by drop, after the core
// value was closed.
func (w *waker) shutdown() {
	w.mu.Lock()
	w.closed = true
	cb := w.cb
	w.cb = nil
	rfd, wfd := w.rfd, w.wfd
	w.rfd, w.wfd = -1, -1
	w.signaled.Store(false)
	w.mu.Unlock()
	w.install(nil)
	if cb != nil {
		cb.stop()
	}
	if rfd >= 0 {
		C.hakuban__fd_close(rfd, wfd)
	}
}

// tryNext runs a core TryNext unless the waker knows nothing is pending;
// when it finds nothing it clears the waker and tries once more (see
// waker). The result is OK, EMPTY, END or an error (see streamError).
func tryNext[T any](w *waker, try func() (T, bool, error)) (T, C.int32_t) {
	var v T
	if w.quiet() {
		return v, rcEmpty
	}
	v, ok, err := try()
	if !ok && err == nil {
		w.clear()
		v, ok, err = try()
	}
	switch {
	case ok:
		return v, rcOK
	case err != nil:
		return v, streamError(err)
	}
	return v, rcEmpty
}

// streamError is the result of a stream's receive that failed with err:
// END once it is closed, or the error (ERR_REFUSED, once, when the network
// refused the contract; it stays open) with its message.
func streamError(err error) C.int32_t {
	if errors.Is(err, core.ErrClosed) {
		return rcEnd
	}
	return setError(core.ErrorCode(err), err.Error())
}

// nextTimeout is the blocking receive: OK, TIMEOUT, END or an error (see
// streamError).
func nextTimeout[T any](w *waker, try func() (T, bool, error), next func(time.Duration) (T, error), ms int64) (T, C.int32_t) {
	if ms == 0 {
		v, rc := tryNext(w, try)
		if rc == rcEmpty {
			rc = rcTimeout
		}
		return v, rc
	}
	v, err := next(msDuration(ms))
	if err == nil {
		return v, rcOK
	}
	if core.ErrorCode(err) == core.CodeTimeout {
		// Found nothing: clear the waker like an empty try does.
		w.clear()
		v, ok, err := try()
		switch {
		case ok:
			return v, rcOK
		case err != nil:
			// A refusal is reported once: the try that took it must
			// return it.
			return v, streamError(err)
		}
		return v, rcTimeout
	}
	return v, streamError(err)
}

// msDuration converts a C timeout: negative waits forever (-1 for the core),
// huge values are clamped instead of overflowing.
func msDuration(ms int64) time.Duration {
	const maxMs = int64(1<<63-1) / int64(time.Millisecond)
	switch {
	case ms < 0:
		return -1
	case ms > maxMs:
		return time.Duration(maxMs) * time.Millisecond
	}
	return time.Duration(ms) * time.Millisecond
}

// callbackReg is one registration of a C notify callback. It has its own
// dispatcher goroutine, so the callback never runs on a thread of the
// caller that caused the event (no surprise re-entrancy into the caller's
// locks), never with a hakuban lock held, and never concurrently with
// itself. Kicks coalesce: one call per burst of events.
type callbackReg struct {
	id       uint64
	fn       C.hakuban_notify_fn
	userData unsafe.Pointer
	drop     C.hakuban_drop_fn
	kickc    chan struct{}
	stopc    chan struct{}
	done     chan struct{}
	stopOnce sync.Once
}

var callbackIDs atomic.Uint64

func newCallbackReg(fn C.hakuban_notify_fn, userData unsafe.Pointer, drop C.hakuban_drop_fn) *callbackReg {
	return &callbackReg{
		id: callbackIDs.Add(1), fn: fn, userData: userData, drop: drop,
		kickc: make(chan struct{}, 1), stopc: make(chan struct{}), done: make(chan struct{}),
	}
}

func (r *callbackReg) kick() {
	select {
	case r.kickc <- struct{}{}:
	default:
	}
}

// run is the dispatcher goroutine. The drop function runs here, after the
// last call, exactly once.
func (r *callbackReg) run() {
	defer close(r.done)
	defer func() {
		if p := recover(); p != nil {
			internalError(p)
		}
		if r.drop != nil {
			C.hakuban__call_drop(r.drop, r.userData)
		}
	}()
	for {
		select {
		case <-r.stopc:
			return
		case <-r.kickc:
		}
		select {
		case <-r.stopc: // a stop wins over a pending kick
			return
		default:
		}
		C.hakuban__call_notify(r.fn, r.userData, C.uint64_t(r.id))
	}
}

// stop ends the registration. It waits until the dispatcher has finished
// (no call running, drop function run) unless it is called from inside the
// callback itself, which would wait forever: then the dispatcher finishes
// when the callback returns.
func (r *callbackReg) stop() {
	r.stopOnce.Do(func() { close(r.stopc) })
	if C.hakuban__in_callback(C.uint64_t(r.id)) != 0 {
		return
	}
	<-r.done
}
