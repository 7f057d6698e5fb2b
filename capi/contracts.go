package main

/*
#include "shim.h"
*/
import "C"

import (
	"unsafe"

	"github.com/hakuban/hakuban/core"
)

// streamObj is what every stream-like handle (contracts and sinks) has:
// a waker and a way to close the core value it wraps.
type streamObj interface {
	handleObj
	wk() *waker
	closeCore()
}

type objObserveObj struct {
	entry
	waker
	c *core.ObjectObserveContract
}

type objExposeObj struct {
	entry
	waker
	c *core.ObjectExposeContract
}

type tagObserveObj struct {
	entry
	waker
	c *core.TagObserveContract
}

type tagExposeObj struct {
	entry
	waker
	c *core.TagExposeContract
}

func (o *objObserveObj) wk() *waker { return &o.waker }
func (o *objExposeObj) wk() *waker  { return &o.waker }
func (o *tagObserveObj) wk() *waker { return &o.waker }
func (o *tagExposeObj) wk() *waker  { return &o.waker }
func (o *objObserveObj) closeCore() { o.c.Close() }
func (o *objExposeObj) closeCore()  { o.c.Close() }
func (o *tagObserveObj) closeCore() { o.c.Close() }

func (o *tagExposeObj) closeCore() { o.c.Close() }

// addStream stores a new stream handle; when the table is full it closes
// the core value again so nothing leaks.
func addStream(fn string, k kind, o streamObj) (uint64, C.int32_t) {
	h := handles.add(k, o)
	if h == 0 {
		o.closeCore()
		return 0, tableFull(fn)
	}
	return h, rcOK
}

// getStream looks up any stream-like handle of kind k.
func getStream(fn string, h uint64, k kind) (streamObj, C.int32_t) {
	if v := handles.get(h, k); v != nil {
		return v.(streamObj), rcOK
	}
	return nil, badHandle(fn, h, k)
}

func streamClose(fn string, h uint64, k kind) C.int32_t {
	o, rc := getStream(fn, h, k)
	if rc != rcOK {
		return rc
	}
	o.closeCore()
	return rcOK
}

// streamDrop removes the handle, closes the core value (waking every
// blocked next), then stops the callback and closes the fd.
func streamDrop(fn string, h uint64, k kind) C.int32_t {
	if h == 0 {
		return rcOK
	}
	v := handles.remove(h, k)
	if v == nil {
		return badHandle(fn, h, k)
	}
	o := v.(streamObj)
	o.closeCore()
	o.wk().shutdown()
	return rcOK
}

func streamFd(fn string, out *C.int, h uint64, k kind) C.int32_t {
	if out == nil {
		return nullArg(fn, "out")
	}
	o, rc := getStream(fn, h, k)
	if rc != rcOK {
		return rc
	}
	fd, rc := o.wk().fd(fn)
	if rc == rcOK {
		*out = fd
	}
	return rc
}

func streamSetCallback(fn string, h uint64, k kind, cb C.hakuban_notify_fn, userData unsafe.Pointer, drop C.hakuban_drop_fn) C.int32_t {
	o, rc := getStream(fn, h, k)
	if rc != rcOK {
		return rc
	}
	return o.wk().setCallback(fn, cb, userData, drop)
}

// descriptorArg looks up the exchange and object descriptor a contract is made from.
func objectContractArgs(fn string, exchange C.hakuban_exchange, descriptor C.hakuban_object_descriptor) (*core.Exchange, core.ObjectDescriptor, C.int32_t) {
	e, rc := lookup[exchangeObj](fn, uint64(exchange), kindExchange)
	if rc != rcOK {
		return nil, core.ObjectDescriptor{}, rc
	}
	d, rc := lookup[objDescObj](fn, uint64(descriptor), kindObjectDescriptor)
	if rc != rcOK {
		return nil, core.ObjectDescriptor{}, rc
	}
	return e.ex, d.d, rcOK
}

func tagContractArgs(fn string, exchange C.hakuban_exchange, tag C.hakuban_tag_descriptor) (*core.Exchange, core.TagDescriptor, C.int32_t) {
	e, rc := lookup[exchangeObj](fn, uint64(exchange), kindExchange)
	if rc != rcOK {
		return nil, core.TagDescriptor{}, rc
	}
	t, rc := lookup[tagDescObj](fn, uint64(tag), kindTagDescriptor)
	if rc != rcOK {
		return nil, core.TagDescriptor{}, rc
	}
	return e.ex, t.t, rcOK
}

func statusOut(fn string, out *C.int32_t, h uint64, k kind, status func(any) core.Status) C.int32_t {
	if out == nil {
		return nullArg(fn, "out")
	}
	v := handles.get(h, k)
	if v == nil {
		return badHandle(fn, h, k)
	}
	*out = C.int32_t(status(v))
	return rcOK
}

// ---- object observe contract ----

//export hakuban_object_observe_contract_new
func hakuban_object_observe_contract_new(out *C.hakuban_object_observe_contract, exchange C.hakuban_exchange, descriptor C.hakuban_object_descriptor) (rc C.int32_t) {
	defer guard(&rc)
	const fn = "hakuban_object_observe_contract_new"
	if out == nil {
		return nullArg(fn, "out")
	}
	ex, d, rc := objectContractArgs(fn, exchange, descriptor)
	if rc != rcOK {
		return rc
	}
	c, err := ex.ObserveObject(d)
	if err != nil {
		return fail(fn, err)
	}
	o := &objObserveObj{c: c}
	o.init(c.SetNotify)
	h, rc := addStream(fn, kindObjectObserve, o)
	if rc == rcOK {
		*out = C.hakuban_object_observe_contract(h)
	}
	return rc
}

// stateOut stores a received state as a new handle in *out.
func stateOut(fn string, out *C.hakuban_object_state, st core.ObjectState, rc C.int32_t) C.int32_t {
	if rc != rcOK {
		*out = 0
		return rc
	}
	h, rc := newStateHandle(fn, st)
	*out = h
	return rc
}

//export hakuban_object_observe_contract_try_next
func hakuban_object_observe_contract_try_next(out *C.hakuban_object_state, contract C.hakuban_object_observe_contract) (rc C.int32_t) {
	defer guard(&rc)
	const fn = "hakuban_object_observe_contract_try_next"
	if out == nil {
		return nullArg(fn, "out")
	}
	o, rc := lookup[objObserveObj](fn, uint64(contract), kindObjectObserve)
	if rc != rcOK {
		return rc
	}
	*out = 0
	if o.quiet() {
		return rcEmpty
	}
	s := new(stateObj)
	if rc := o.take(&s.st); rc != rcOK {
		return rc
	}
	h := handles.add(kindObjectState, s)
	if h == 0 {
		return tableFull(fn)
	}
	*out = C.hakuban_object_state(h)
	return rcOK
}

// take is tryNext (see stream.go) spelled out for the hot receive path:
// the generic version, through a method value and a shape dictionary,
// copies the state three times and costs a quarter of a receive. The state
// goes straight into its handle's value.
func (o *objObserveObj) take(st *core.ObjectState) C.int32_t {
	var ok bool
	var err error
	if *st, ok, err = o.c.TryNext(); !ok && err == nil {
		o.clear()
		*st, ok, err = o.c.TryNext()
	}
	switch {
	case err != nil:
		return streamError(err)
	case !ok:
		return rcEmpty
	}
	return rcOK
}

//export hakuban_object_observe_contract_next
func hakuban_object_observe_contract_next(out *C.hakuban_object_state, contract C.hakuban_object_observe_contract, timeoutMs C.int64_t) (rc C.int32_t) {
	defer guard(&rc)
	const fn = "hakuban_object_observe_contract_next"
	if out == nil {
		return nullArg(fn, "out")
	}
	o, rc := lookup[objObserveObj](fn, uint64(contract), kindObjectObserve)
	if rc != rcOK {
		return rc
	}
	st, rc := nextTimeout(&o.waker, o.c.TryNext, o.c.NextTimeout, int64(timeoutMs))
	return stateOut(fn, out, st, rc)
}

//export hakuban_object_observe_contract_fd
func hakuban_object_observe_contract_fd(out *C.int, contract C.hakuban_object_observe_contract) (rc C.int32_t) {
	defer guard(&rc)
	return streamFd("hakuban_object_observe_contract_fd", out, uint64(contract), kindObjectObserve)
}

//export hakuban_object_observe_contract_set_callback
func hakuban_object_observe_contract_set_callback(contract C.hakuban_object_observe_contract, cb C.hakuban_notify_fn, userData unsafe.Pointer, drop C.hakuban_drop_fn) (rc C.int32_t) {
	defer guard(&rc)
	return streamSetCallback("hakuban_object_observe_contract_set_callback", uint64(contract), kindObjectObserve, cb, userData, drop)
}

//export hakuban_object_observe_contract_current
func hakuban_object_observe_contract_current(out *C.hakuban_object_state, contract C.hakuban_object_observe_contract) (rc C.int32_t) {
	defer guard(&rc)
	const fn = "hakuban_object_observe_contract_current"
	if out == nil {
		return nullArg(fn, "out")
	}
	o, rc := lookup[objObserveObj](fn, uint64(contract), kindObjectObserve)
	if rc != rcOK {
		return rc
	}
	st, ok := o.c.Current()
	if !ok {
		*out = 0
		return rcEmpty
	}
	return stateOut(fn, out, st, rcOK)
}

//export hakuban_object_observe_contract_status
func hakuban_object_observe_contract_status(out *C.int32_t, contract C.hakuban_object_observe_contract) (rc C.int32_t) {
	defer guard(&rc)
	return statusOut("hakuban_object_observe_contract_status", out, uint64(contract), kindObjectObserve, func(v any) core.Status {
		return v.(*objObserveObj).c.Status()
	})
}

//export hakuban_object_observe_contract_descriptor
func hakuban_object_observe_contract_descriptor(out *C.hakuban_object_descriptor, contract C.hakuban_object_observe_contract) (rc C.int32_t) {
	defer guard(&rc)
	const fn = "hakuban_object_observe_contract_descriptor"
	if out == nil {
		return nullArg(fn, "out")
	}
	o, rc := lookup[objObserveObj](fn, uint64(contract), kindObjectObserve)
	if rc != rcOK {
		return rc
	}
	return newObjectDescHandle(fn, out, o.c.Descriptor())
}

//export hakuban_object_observe_contract_close
func hakuban_object_observe_contract_close(contract C.hakuban_object_observe_contract) (rc C.int32_t) {
	defer guard(&rc)
	return streamClose("hakuban_object_observe_contract_close", uint64(contract), kindObjectObserve)
}

//export hakuban_object_observe_contract_drop
func hakuban_object_observe_contract_drop(contract C.hakuban_object_observe_contract) (rc C.int32_t) {
	defer guard(&rc)
	return streamDrop("hakuban_object_observe_contract_drop", uint64(contract), kindObjectObserve)
}

// ---- object expose contract ----

//export hakuban_object_expose_contract_new
func hakuban_object_expose_contract_new(out *C.hakuban_object_expose_contract, exchange C.hakuban_exchange, descriptor C.hakuban_object_descriptor, capacity C.uint32_t) (rc C.int32_t) {
	defer guard(&rc)
	const fn = "hakuban_object_expose_contract_new"
	if out == nil {
		return nullArg(fn, "out")
	}
	ex, d, rc := objectContractArgs(fn, exchange, descriptor)
	if rc != rcOK {
		return rc
	}
	c, err := ex.ExposeObject(d, int(capacity))
	if err != nil {
		return fail(fn, err)
	}
	o := &objExposeObj{c: c}
	o.init(c.SetNotify)
	h, rc := addStream(fn, kindObjectExpose, o)
	if rc == rcOK {
		*out = C.hakuban_object_expose_contract(h)
	}
	return rc
}

// sinkOut stores a new assignment as a new sink handle in *out.
func sinkOut(fn string, out *C.hakuban_object_state_sink, s *core.ObjectStateSink, rc C.int32_t) C.int32_t {
	if rc != rcOK {
		*out = 0
		return rc
	}
	h, rc := newSinkHandle(fn, s)
	*out = h
	return rc
}

//export hakuban_object_expose_contract_try_next
func hakuban_object_expose_contract_try_next(out *C.hakuban_object_state_sink, contract C.hakuban_object_expose_contract) (rc C.int32_t) {
	defer guard(&rc)
	const fn = "hakuban_object_expose_contract_try_next"
	if out == nil {
		return nullArg(fn, "out")
	}
	o, rc := lookup[objExposeObj](fn, uint64(contract), kindObjectExpose)
	if rc != rcOK {
		return rc
	}
	s, rc := tryNext(&o.waker, o.c.TryNext)
	return sinkOut(fn, out, s, rc)
}

//export hakuban_object_expose_contract_next
func hakuban_object_expose_contract_next(out *C.hakuban_object_state_sink, contract C.hakuban_object_expose_contract, timeoutMs C.int64_t) (rc C.int32_t) {
	defer guard(&rc)
	const fn = "hakuban_object_expose_contract_next"
	if out == nil {
		return nullArg(fn, "out")
	}
	o, rc := lookup[objExposeObj](fn, uint64(contract), kindObjectExpose)
	if rc != rcOK {
		return rc
	}
	s, rc := nextTimeout(&o.waker, o.c.TryNext, o.c.NextTimeout, int64(timeoutMs))
	return sinkOut(fn, out, s, rc)
}

//export hakuban_object_expose_contract_fd
func hakuban_object_expose_contract_fd(out *C.int, contract C.hakuban_object_expose_contract) (rc C.int32_t) {
	defer guard(&rc)
	return streamFd("hakuban_object_expose_contract_fd", out, uint64(contract), kindObjectExpose)
}

//export hakuban_object_expose_contract_set_callback
func hakuban_object_expose_contract_set_callback(contract C.hakuban_object_expose_contract, cb C.hakuban_notify_fn, userData unsafe.Pointer, drop C.hakuban_drop_fn) (rc C.int32_t) {
	defer guard(&rc)
	return streamSetCallback("hakuban_object_expose_contract_set_callback", uint64(contract), kindObjectExpose, cb, userData, drop)
}

//export hakuban_object_expose_contract_status
func hakuban_object_expose_contract_status(out *C.int32_t, contract C.hakuban_object_expose_contract) (rc C.int32_t) {
	defer guard(&rc)
	return statusOut("hakuban_object_expose_contract_status", out, uint64(contract), kindObjectExpose, func(v any) core.Status {
		return v.(*objExposeObj).c.Status()
	})
}

//export hakuban_object_expose_contract_descriptor
func hakuban_object_expose_contract_descriptor(out *C.hakuban_object_descriptor, contract C.hakuban_object_expose_contract) (rc C.int32_t) {
	defer guard(&rc)
	const fn = "hakuban_object_expose_contract_descriptor"
	if out == nil {
		return nullArg(fn, "out")
	}
	o, rc := lookup[objExposeObj](fn, uint64(contract), kindObjectExpose)
	if rc != rcOK {
		return rc
	}
	return newObjectDescHandle(fn, out, o.c.Descriptor())
}

//export hakuban_object_expose_contract_close
func hakuban_object_expose_contract_close(contract C.hakuban_object_expose_contract) (rc C.int32_t) {
	defer guard(&rc)
	return streamClose("hakuban_object_expose_contract_close", uint64(contract), kindObjectExpose)
}

//export hakuban_object_expose_contract_drop
func hakuban_object_expose_contract_drop(contract C.hakuban_object_expose_contract) (rc C.int32_t) {
	defer guard(&rc)
	return streamDrop("hakuban_object_expose_contract_drop", uint64(contract), kindObjectExpose)
}

// ---- tag observe contract ----

//export hakuban_tag_observe_contract_new
func hakuban_tag_observe_contract_new(out *C.hakuban_tag_observe_contract, exchange C.hakuban_exchange, tag C.hakuban_tag_descriptor) (rc C.int32_t) {
	defer guard(&rc)
	const fn = "hakuban_tag_observe_contract_new"
	if out == nil {
		return nullArg(fn, "out")
	}
	ex, t, rc := tagContractArgs(fn, exchange, tag)
	if rc != rcOK {
		return rc
	}
	c, err := ex.ObserveTag(t)
	if err != nil {
		return fail(fn, err)
	}
	o := &tagObserveObj{c: c}
	o.init(c.SetNotify)
	h, rc := addStream(fn, kindTagObserve, o)
	if rc == rcOK {
		*out = C.hakuban_tag_observe_contract(h)
	}
	return rc
}

// eventOut stores a tag observe event in *out (zeroed unless rc is OK).
func eventOut(fn string, out *C.hakuban_object_event, ev core.ObjectEvent, rc C.int32_t) C.int32_t {
	*out = C.hakuban_object_event{}
	if rc != rcOK {
		return rc
	}
	var d C.hakuban_object_descriptor
	if rc := newObjectDescHandle(fn, &d, ev.Descriptor); rc != rcOK {
		return rc
	}
	var st C.hakuban_object_state
	if !ev.Gone {
		var rc C.int32_t
		if st, rc = newStateHandle(fn, ev.State); rc != rcOK {
			handles.remove(uint64(d), kindObjectDescriptor)
			return rc
		}
	}
	*out = C.hakuban_object_event{descriptor: d, state: st, gone: C.bool(ev.Gone)}
	return rcOK
}

//export hakuban_tag_observe_contract_try_next
func hakuban_tag_observe_contract_try_next(out *C.hakuban_object_event, contract C.hakuban_tag_observe_contract) (rc C.int32_t) {
	defer guard(&rc)
	const fn = "hakuban_tag_observe_contract_try_next"
	if out == nil {
		return nullArg(fn, "out")
	}
	o, rc := lookup[tagObserveObj](fn, uint64(contract), kindTagObserve)
	if rc != rcOK {
		return rc
	}
	if o.quiet() {
		*out = C.hakuban_object_event{}
		return rcEmpty
	}
	// tryNext spelled out, as in objObserveObj.take.
	ev, ok, err := o.c.TryNext()
	if !ok && err == nil {
		o.clear()
		ev, ok, err = o.c.TryNext()
	}
	switch {
	case err != nil:
		rc = streamError(err)
	case !ok:
		rc = rcEmpty
	}
	return eventOut(fn, out, ev, rc)
}

//export hakuban_tag_observe_contract_next
func hakuban_tag_observe_contract_next(out *C.hakuban_object_event, contract C.hakuban_tag_observe_contract, timeoutMs C.int64_t) (rc C.int32_t) {
	defer guard(&rc)
	const fn = "hakuban_tag_observe_contract_next"
	if out == nil {
		return nullArg(fn, "out")
	}
	o, rc := lookup[tagObserveObj](fn, uint64(contract), kindTagObserve)
	if rc != rcOK {
		return rc
	}
	ev, rc := nextTimeout(&o.waker, o.c.TryNext, o.c.NextTimeout, int64(timeoutMs))
	return eventOut(fn, out, ev, rc)
}

//export hakuban_tag_observe_contract_fd
func hakuban_tag_observe_contract_fd(out *C.int, contract C.hakuban_tag_observe_contract) (rc C.int32_t) {
	defer guard(&rc)
	return streamFd("hakuban_tag_observe_contract_fd", out, uint64(contract), kindTagObserve)
}

//export hakuban_tag_observe_contract_set_callback
func hakuban_tag_observe_contract_set_callback(contract C.hakuban_tag_observe_contract, cb C.hakuban_notify_fn, userData unsafe.Pointer, drop C.hakuban_drop_fn) (rc C.int32_t) {
	defer guard(&rc)
	return streamSetCallback("hakuban_tag_observe_contract_set_callback", uint64(contract), kindTagObserve, cb, userData, drop)
}

//export hakuban_tag_observe_contract_status
func hakuban_tag_observe_contract_status(out *C.int32_t, contract C.hakuban_tag_observe_contract) (rc C.int32_t) {
	defer guard(&rc)
	return statusOut("hakuban_tag_observe_contract_status", out, uint64(contract), kindTagObserve, func(v any) core.Status {
		return v.(*tagObserveObj).c.Status()
	})
}

//export hakuban_tag_observe_contract_tag
func hakuban_tag_observe_contract_tag(out *C.hakuban_tag_descriptor, contract C.hakuban_tag_observe_contract) (rc C.int32_t) {
	defer guard(&rc)
	const fn = "hakuban_tag_observe_contract_tag"
	if out == nil {
		return nullArg(fn, "out")
	}
	o, rc := lookup[tagObserveObj](fn, uint64(contract), kindTagObserve)
	if rc != rcOK {
		return rc
	}
	return newTagHandle(fn, out, o.c.Tag())
}

//export hakuban_tag_observe_contract_close
func hakuban_tag_observe_contract_close(contract C.hakuban_tag_observe_contract) (rc C.int32_t) {
	defer guard(&rc)
	return streamClose("hakuban_tag_observe_contract_close", uint64(contract), kindTagObserve)
}

//export hakuban_tag_observe_contract_drop
func hakuban_tag_observe_contract_drop(contract C.hakuban_tag_observe_contract) (rc C.int32_t) {
	defer guard(&rc)
	return streamDrop("hakuban_tag_observe_contract_drop", uint64(contract), kindTagObserve)
}

// ---- tag expose contract ----

//export hakuban_tag_expose_contract_new
func hakuban_tag_expose_contract_new(out *C.hakuban_tag_expose_contract, exchange C.hakuban_exchange, tag C.hakuban_tag_descriptor, capacity C.uint32_t) (rc C.int32_t) {
	defer guard(&rc)
	const fn = "hakuban_tag_expose_contract_new"
	if out == nil {
		return nullArg(fn, "out")
	}
	ex, t, rc := tagContractArgs(fn, exchange, tag)
	if rc != rcOK {
		return rc
	}
	c, err := ex.ExposeTag(t, int(capacity))
	if err != nil {
		return fail(fn, err)
	}
	o := &tagExposeObj{c: c}
	o.init(c.SetNotify)
	h, rc := addStream(fn, kindTagExpose, o)
	if rc == rcOK {
		*out = C.hakuban_tag_expose_contract(h)
	}
	return rc
}

//export hakuban_tag_expose_contract_try_next
func hakuban_tag_expose_contract_try_next(out *C.hakuban_object_state_sink, contract C.hakuban_tag_expose_contract) (rc C.int32_t) {
	defer guard(&rc)
	const fn = "hakuban_tag_expose_contract_try_next"
	if out == nil {
		return nullArg(fn, "out")
	}
	o, rc := lookup[tagExposeObj](fn, uint64(contract), kindTagExpose)
	if rc != rcOK {
		return rc
	}
	s, rc := tryNext(&o.waker, o.c.TryNext)
	return sinkOut(fn, out, s, rc)
}

//export hakuban_tag_expose_contract_next
func hakuban_tag_expose_contract_next(out *C.hakuban_object_state_sink, contract C.hakuban_tag_expose_contract, timeoutMs C.int64_t) (rc C.int32_t) {
	defer guard(&rc)
	const fn = "hakuban_tag_expose_contract_next"
	if out == nil {
		return nullArg(fn, "out")
	}
	o, rc := lookup[tagExposeObj](fn, uint64(contract), kindTagExpose)
	if rc != rcOK {
		return rc
	}
	s, rc := nextTimeout(&o.waker, o.c.TryNext, o.c.NextTimeout, int64(timeoutMs))
	return sinkOut(fn, out, s, rc)
}

//export hakuban_tag_expose_contract_fd
func hakuban_tag_expose_contract_fd(out *C.int, contract C.hakuban_tag_expose_contract) (rc C.int32_t) {
	defer guard(&rc)
	return streamFd("hakuban_tag_expose_contract_fd", out, uint64(contract), kindTagExpose)
}

//export hakuban_tag_expose_contract_set_callback
func hakuban_tag_expose_contract_set_callback(contract C.hakuban_tag_expose_contract, cb C.hakuban_notify_fn, userData unsafe.Pointer, drop C.hakuban_drop_fn) (rc C.int32_t) {
	defer guard(&rc)
	return streamSetCallback("hakuban_tag_expose_contract_set_callback", uint64(contract), kindTagExpose, cb, userData, drop)
}

//export hakuban_tag_expose_contract_status
func hakuban_tag_expose_contract_status(out *C.int32_t, contract C.hakuban_tag_expose_contract) (rc C.int32_t) {
	defer guard(&rc)
	return statusOut("hakuban_tag_expose_contract_status", out, uint64(contract), kindTagExpose, func(v any) core.Status {
		return v.(*tagExposeObj).c.Status()
	})
}

//export hakuban_tag_expose_contract_tag
func hakuban_tag_expose_contract_tag(out *C.hakuban_tag_descriptor, contract C.hakuban_tag_expose_contract) (rc C.int32_t) {
	defer guard(&rc)
	const fn = "hakuban_tag_expose_contract_tag"
	if out == nil {
		return nullArg(fn, "out")
	}
	o, rc := lookup[tagExposeObj](fn, uint64(contract), kindTagExpose)
	if rc != rcOK {
		return rc
	}
	return newTagHandle(fn, out, o.c.Tag())
}

//export hakuban_tag_expose_contract_close
func hakuban_tag_expose_contract_close(contract C.hakuban_tag_expose_contract) (rc C.int32_t) {
	defer guard(&rc)
	return streamClose("hakuban_tag_expose_contract_close", uint64(contract), kindTagExpose)
}

//export hakuban_tag_expose_contract_drop
func hakuban_tag_expose_contract_drop(contract C.hakuban_tag_expose_contract) (rc C.int32_t) {
	defer guard(&rc)
	return streamDrop("hakuban_tag_expose_contract_drop", uint64(contract), kindTagExpose)
}
