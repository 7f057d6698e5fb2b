package main

/*
#include "shim.h"
*/
import "C"

import (
	"encoding/json"
	"math"
	"sync"
	"unsafe"

	"github.com/hakuban/hakuban/core"
)

// stateObj is an object state handle. The state itself is Go memory (for
// received states, shared read-only with the exchange, so receiving copies
// nothing); C memory for the pointer accessors is made on their first call
// and freed on drop. hakuban_object_state_data_copy copies straight from the
// Go memory into the caller's buffer.
type stateObj struct {
	entry
	st    core.ObjectState
	mu    sync.Mutex // guards the C copies below and freed
	freed bool
	data  unsafe.Pointer // st.Data + NUL, from blockAlloc(len(st.Data)+1)
	ver   unsafe.Pointer // st.Version as int64_t[], from blockAlloc(8*len)
	fmts  []cText
}

func newStateHandle(fn string, st core.ObjectState) (C.hakuban_object_state, C.int32_t) {
	h := handles.add(kindObjectState, &stateObj{st: st})
	if h == 0 {
		return 0, tableFull(fn)
	}
	return C.hakuban_object_state(h), rcOK
}

// goVersion copies a C version array; nil for length 0.
func goVersion(fn string, version *C.hakuban_cint64, n C.size_t) (core.Version, C.int32_t) {
	if n == 0 {
		return nil, rcOK
	}
	if version == nil {
		return nil, errorf(core.CodeInvalidArgument, fn, "version is NULL but version_len is %d", uint64(n))
	}
	if uint64(n) > math.MaxInt32 {
		return nil, errorf(core.CodeInvalidArgument, fn, "version_len %d is too large", uint64(n))
	}
	src := unsafe.Slice((*int64)(unsafe.Pointer(version)), int(n))
	return append(core.Version(nil), src...), rcOK
}

//export hakuban_object_state_new
func hakuban_object_state_new(out *C.hakuban_object_state, version *C.hakuban_cint64, versionLen C.size_t, format *C.hakuban_cchar_cptr, formatLen C.size_t, data *C.hakuban_cvoid, dataLen C.size_t) (rc C.int32_t) {
	defer guard(&rc)
	const fn = "hakuban_object_state_new"
	if out == nil {
		return nullArg(fn, "out")
	}
	var st core.ObjectState
	if st.Version, rc = goVersion(fn, version, versionLen); rc != rcOK {
		return rc
	}
	if formatLen > 0 {
		if format == nil {
			return errorf(core.CodeInvalidArgument, fn, "format is NULL but format_len is %d", uint64(formatLen))
		}
		if uint64(formatLen) > math.MaxInt32 {
			return errorf(core.CodeInvalidArgument, fn, "format_len %d is too large", uint64(formatLen))
		}
		ptrs := unsafe.Slice((**C.hakuban_cchar)(unsafe.Pointer(format)), int(formatLen))
		st.Format = make([]string, len(ptrs))
		for i, p := range ptrs {
			if p == nil {
				return errorf(core.CodeInvalidArgument, fn, "format[%d] is NULL", i)
			}
			st.Format[i] = goString(p)
		}
	}
	if dataLen > 0 {
		if data == nil {
			return errorf(core.CodeInvalidArgument, fn, "data is NULL but data_len is %d", uint64(dataLen))
		}
		if uint64(dataLen) > math.MaxInt {
			return errorf(core.CodeInvalidArgument, fn, "data_len %d is too large", uint64(dataLen))
		}
		st.Data = make([]byte, int(dataLen))
		copy(st.Data, unsafe.Slice((*byte)(unsafe.Pointer(data)), int(dataLen)))
	}
	h, rc := newStateHandle(fn, st)
	if rc == rcOK {
		*out = h
	}
	return rc
}

//export hakuban_object_state_new_json
func hakuban_object_state_new_json(out *C.hakuban_object_state, version *C.hakuban_cint64, versionLen C.size_t, text *C.hakuban_cchar) (rc C.int32_t) {
	defer guard(&rc)
	const fn = "hakuban_object_state_new_json"
	if out == nil {
		return nullArg(fn, "out")
	}
	if text == nil {
		return nullArg(fn, "json")
	}
	v, rc := goVersion(fn, version, versionLen)
	if rc != rcOK {
		return rc
	}
	raw := cBytesOf(text)
	if !json.Valid(raw) {
		return errorf(core.CodeInvalidArgument, fn, "json is not valid JSON")
	}
	st, err := core.NewJSONState(json.RawMessage(raw))
	if err != nil {
		return errorf(core.CodeInvalidArgument, fn, "%v", err)
	}
	st.Version = v
	h, rc := newStateHandle(fn, st)
	if rc == rcOK {
		*out = h
	}
	return rc
}

// withState runs f on a live state with its mutex held.
// stateField writes one field of a state to *out: the body of the accessors
// that read only immutable fields (no lock needed).
func stateField[T any](fn string, out *T, h C.hakuban_object_state, get func(s *stateObj) T) C.int32_t {
	if out == nil {
		return nullArg(fn, "out")
	}
	s, rc := lookup[stateObj](fn, uint64(h), kindObjectState)
	if rc != rcOK {
		return rc
	}
	*out = get(s)
	return rcOK
}

func withState(fn string, h C.hakuban_object_state, f func(s *stateObj) C.int32_t) C.int32_t {
	s, rc := lookup[stateObj](fn, uint64(h), kindObjectState)
	if rc != rcOK {
		return rc
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.freed {
		return badHandle(fn, uint64(h), kindObjectState)
	}
	return f(s)
}

// cData returns the C copy of the data (with a NUL after it), making it.
func (s *stateObj) cData(fn string) (unsafe.Pointer, C.int32_t) {
	if s.data == nil {
		if s.data = blockBytes(s.st.Data); s.data == nil {
			return nil, outOfMemory(fn, len(s.st.Data)+1)
		}
	}
	return s.data, rcOK
}

//export hakuban_object_state_version
func hakuban_object_state_version(out **C.hakuban_cint64, outLen *C.size_t, state C.hakuban_object_state) (rc C.int32_t) {
	defer guard(&rc)
	const fn = "hakuban_object_state_version"
	if out == nil {
		return nullArg(fn, "out")
	}
	if outLen == nil {
		return nullArg(fn, "out_len")
	}
	return withState(fn, state, func(s *stateObj) C.int32_t {
		n := len(s.st.Version)
		if n == 0 {
			*out, *outLen = nil, 0
			return rcOK
		}
		if s.ver == nil {
			p := blockAlloc(n * 8)
			if p == nil {
				return outOfMemory(fn, n*8)
			}
			copy(unsafe.Slice((*int64)(p), n), s.st.Version)
			s.ver = p
		}
		*out, *outLen = (*C.hakuban_cint64)(s.ver), C.size_t(n)
		return rcOK
	})
}

//export hakuban_object_state_format_count
func hakuban_object_state_format_count(out *C.size_t, state C.hakuban_object_state) (rc C.int32_t) {
	defer guard(&rc)
	return stateField("hakuban_object_state_format_count", out, state, func(s *stateObj) C.size_t { return C.size_t(len(s.st.Format)) })
}

//export hakuban_object_state_format
func hakuban_object_state_format(out **C.hakuban_cchar, state C.hakuban_object_state, index C.size_t) (rc C.int32_t) {
	defer guard(&rc)
	const fn = "hakuban_object_state_format"
	if out == nil {
		return nullArg(fn, "out")
	}
	return withState(fn, state, func(s *stateObj) C.int32_t {
		if uint64(index) >= uint64(len(s.st.Format)) {
			return errorf(core.CodeInvalidArgument, fn, "index %d out of range: the format stack has %d entries", uint64(index), len(s.st.Format))
		}
		if s.fmts == nil {
			s.fmts = make([]cText, len(s.st.Format))
		}
		p := s.fmts[index].get(s.st.Format[index])
		if p == nil {
			return outOfMemory(fn, len(s.st.Format[index]))
		}
		*out = (*C.hakuban_cchar)(p)
		return rcOK
	})
}

//export hakuban_object_state_data
func hakuban_object_state_data(out **C.hakuban_cvoid, outLen *C.size_t, state C.hakuban_object_state) (rc C.int32_t) {
	defer guard(&rc)
	const fn = "hakuban_object_state_data"
	if out == nil {
		return nullArg(fn, "out")
	}
	if outLen == nil {
		return nullArg(fn, "out_len")
	}
	return withState(fn, state, func(s *stateObj) C.int32_t {
		if len(s.st.Data) == 0 {
			*out, *outLen = nil, 0
			return rcOK
		}
		p, rc := s.cData(fn)
		if rc != rcOK {
			return rc
		}
		*out, *outLen = (*C.hakuban_cvoid)(p), C.size_t(len(s.st.Data))
		return rcOK
	})
}

//export hakuban_object_state_data_len
func hakuban_object_state_data_len(out *C.size_t, state C.hakuban_object_state) (rc C.int32_t) {
	defer guard(&rc)
	return stateField("hakuban_object_state_data_len", out, state, func(s *stateObj) C.size_t { return C.size_t(len(s.st.Data)) })
}

//export hakuban_object_state_data_copy
func hakuban_object_state_data_copy(out unsafe.Pointer, capacity C.size_t, outLen *C.size_t, state C.hakuban_object_state) (rc C.int32_t) {
	defer guard(&rc)
	const fn = "hakuban_object_state_data_copy"
	if outLen == nil {
		return nullArg(fn, "out_len")
	}
	if out == nil && capacity != 0 {
		return errorf(core.CodeInvalidArgument, fn, "out is NULL but out_capacity is %d", uint64(capacity))
	}
	s, rc := lookup[stateObj](fn, uint64(state), kindObjectState)
	if rc != rcOK {
		return rc
	}
	// The state is immutable Go memory: no lock needed, and a concurrent
	// drop cannot pull it from under us.
	n := len(s.st.Data)
	*outLen = C.size_t(n)
	if uint64(capacity) < uint64(n) {
		return errorf(core.CodeBufferTooSmall, fn, "the data is %d bytes, the buffer %d", n, uint64(capacity))
	}
	if n > 0 {
		copy(unsafe.Slice((*byte)(out), n), s.st.Data)
	}
	return rcOK
}

//export hakuban_object_state_synchronized
func hakuban_object_state_synchronized(out *C.bool, state C.hakuban_object_state) (rc C.int32_t) {
	defer guard(&rc)
	return stateField("hakuban_object_state_synchronized", out, state, func(s *stateObj) C.bool { return C.bool(s.st.Synchronized) })
}

//export hakuban_object_state_unsynchronized_ms
func hakuban_object_state_unsynchronized_ms(out *C.int64_t, state C.hakuban_object_state) (rc C.int32_t) {
	defer guard(&rc)
	return stateField("hakuban_object_state_unsynchronized_ms", out, state, func(s *stateObj) C.int64_t { return C.int64_t(s.st.SynchronizedAgo().Milliseconds()) })
}

//export hakuban_object_state_json
func hakuban_object_state_json(out **C.hakuban_cchar, outLen *C.size_t, state C.hakuban_object_state) (rc C.int32_t) {
	defer guard(&rc)
	const fn = "hakuban_object_state_json"
	if out == nil {
		return nullArg(fn, "out")
	}
	if outLen == nil {
		return nullArg(fn, "out_len")
	}
	return withState(fn, state, func(s *stateObj) C.int32_t {
		if top := s.st.FormatTop(); top != core.FormatJSON {
			return errorf(core.CodeWrongFormat, fn, "the format is %q, not %q on top", s.st.Format, core.FormatJSON)
		}
		p, rc := s.cData(fn)
		if rc != rcOK {
			return rc
		}
		*out, *outLen = (*C.hakuban_cchar)(p), C.size_t(len(s.st.Data))
		return rcOK
	})
}

//export hakuban_object_state_drop
func hakuban_object_state_drop(state C.hakuban_object_state) (rc C.int32_t) {
	defer guard(&rc)
	if state == 0 {
		return rcOK
	}
	v := handles.remove(uint64(state), kindObjectState)
	if v == nil {
		return badHandle("hakuban_object_state_drop", uint64(state), kindObjectState)
	}
	s := v.(*stateObj)
	s.mu.Lock()
	s.freed = true
	blockFree(s.data, len(s.st.Data)+1)
	blockFree(s.ver, 8*len(s.st.Version))
	s.data, s.ver = nil, nil
	for i := range s.fmts {
		s.fmts[i].free()
	}
	s.mu.Unlock()
	return rcOK
}
