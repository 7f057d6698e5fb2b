package main

/*
#include "shim.h"
*/
import "C"

import (
	"time"
	"unsafe"

	"github.com/hakuban/hakuban/core"
)

// sinkObj is an assignment handle. As a stream its only event is its end:
// the core's hook runs when the sink is revoked, and dropped wakes blocked
// next calls when the handle is dropped.
type sinkObj struct {
	entry
	waker
	s       *core.ObjectStateSink
	dropped chan struct{}
}

func (o *sinkObj) wk() *waker { return &o.waker }

// closeCore ends the handle's own waiting; the assignment itself belongs
// to its contract (the core has no way to give up one object).
func (o *sinkObj) closeCore() { close(o.dropped) }

func newSinkHandle(fn string, s *core.ObjectStateSink) (C.hakuban_object_state_sink, C.int32_t) {
	o := &sinkObj{s: s, dropped: make(chan struct{})}
	o.init(s.SetNotify)
	h := handles.add(kindSink, o)
	if h == 0 {
		return 0, tableFull(fn)
	}
	return C.hakuban_object_state_sink(h), rcOK
}

//export hakuban_object_state_sink_send
func hakuban_object_state_sink_send(sink C.hakuban_object_state_sink, state C.hakuban_object_state) (rc C.int32_t) {
	defer guard(&rc)
	const fn = "hakuban_object_state_sink_send"
	o, rc := lookup[sinkObj](fn, uint64(sink), kindSink)
	if rc != rcOK {
		return rc
	}
	s, rc := lookup[stateObj](fn, uint64(state), kindObjectState)
	if rc != rcOK {
		return rc
	}
	// Send takes ownership of Data and Format: sharing them is safe because
	// a state handle never changes its state (states are immutable).
	if err := o.s.Send(s.st); err != nil {
		return fail(fn, err)
	}
	return rcOK
}

//export hakuban_object_state_sink_desynchronize
func hakuban_object_state_sink_desynchronize(sink C.hakuban_object_state_sink) (rc C.int32_t) {
	defer guard(&rc)
	const fn = "hakuban_object_state_sink_desynchronize"
	o, rc := lookup[sinkObj](fn, uint64(sink), kindSink)
	if rc != rcOK {
		return rc
	}
	if err := o.s.Desynchronize(); err != nil {
		return fail(fn, err)
	}
	return rcOK
}

//export hakuban_object_state_sink_current
func hakuban_object_state_sink_current(out *C.hakuban_object_state, sink C.hakuban_object_state_sink) (rc C.int32_t) {
	defer guard(&rc)
	const fn = "hakuban_object_state_sink_current"
	if out == nil {
		return nullArg(fn, "out")
	}
	o, rc := lookup[sinkObj](fn, uint64(sink), kindSink)
	if rc != rcOK {
		return rc
	}
	st, ok := o.s.Current()
	if !ok {
		*out = 0
		return rcEmpty
	}
	return stateOut(fn, out, st, rcOK)
}

//export hakuban_object_state_sink_token
func hakuban_object_state_sink_token(out *C.uint64_t, sink C.hakuban_object_state_sink) (rc C.int32_t) {
	defer guard(&rc)
	const fn = "hakuban_object_state_sink_token"
	if out == nil {
		return nullArg(fn, "out")
	}
	o, rc := lookup[sinkObj](fn, uint64(sink), kindSink)
	if rc != rcOK {
		return rc
	}
	*out = C.uint64_t(o.s.Token())
	return rcOK
}

//export hakuban_object_state_sink_descriptor
func hakuban_object_state_sink_descriptor(out *C.hakuban_object_descriptor, sink C.hakuban_object_state_sink) (rc C.int32_t) {
	defer guard(&rc)
	const fn = "hakuban_object_state_sink_descriptor"
	if out == nil {
		return nullArg(fn, "out")
	}
	o, rc := lookup[sinkObj](fn, uint64(sink), kindSink)
	if rc != rcOK {
		return rc
	}
	return newObjectDescHandle(fn, out, o.s.Descriptor())
}

//export hakuban_object_state_sink_try_next
func hakuban_object_state_sink_try_next(sink C.hakuban_object_state_sink) (rc C.int32_t) {
	defer guard(&rc)
	const fn = "hakuban_object_state_sink_try_next"
	o, rc := lookup[sinkObj](fn, uint64(sink), kindSink)
	if rc != rcOK {
		return rc
	}
	_, rc = tryNext(&o.waker, o.try)
	return rc
}

// try is the sink's TryNext: "ended" is reported as the stream's end.
func (o *sinkObj) try() (struct{}, bool, error) {
	if o.s.Revoked() {
		return struct{}{}, false, core.ErrClosed
	}
	select {
	case <-o.dropped:
		return struct{}{}, false, core.ErrClosed
	default:
	}
	return struct{}{}, false, nil
}

//export hakuban_object_state_sink_next
func hakuban_object_state_sink_next(sink C.hakuban_object_state_sink, timeoutMs C.int64_t) (rc C.int32_t) {
	defer guard(&rc)
	const fn = "hakuban_object_state_sink_next"
	o, rc := lookup[sinkObj](fn, uint64(sink), kindSink)
	if rc != rcOK {
		return rc
	}
	if timeoutMs == 0 {
		if _, rc = tryNext(&o.waker, o.try); rc == rcEmpty {
			rc = rcTimeout
		}
		return rc
	}
	var timeout <-chan time.Time
	if d := msDuration(int64(timeoutMs)); d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-o.s.Done():
		return rcEnd
	case <-o.dropped:
		return rcEnd
	case <-timeout:
		return rcTimeout
	}
}

//export hakuban_object_state_sink_fd
func hakuban_object_state_sink_fd(out *C.int, sink C.hakuban_object_state_sink) (rc C.int32_t) {
	defer guard(&rc)
	return streamFd("hakuban_object_state_sink_fd", out, uint64(sink), kindSink)
}

//export hakuban_object_state_sink_set_callback
func hakuban_object_state_sink_set_callback(sink C.hakuban_object_state_sink, cb C.hakuban_notify_fn, userData unsafe.Pointer, drop C.hakuban_drop_fn) (rc C.int32_t) {
	defer guard(&rc)
	return streamSetCallback("hakuban_object_state_sink_set_callback", uint64(sink), kindSink, cb, userData, drop)
}

//export hakuban_object_state_sink_drop
func hakuban_object_state_sink_drop(sink C.hakuban_object_state_sink) (rc C.int32_t) {
	defer guard(&rc)
	return streamDrop("hakuban_object_state_sink_drop", uint64(sink), kindSink)
}
