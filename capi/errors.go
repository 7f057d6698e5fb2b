package main

/*
#cgo CFLAGS: -I${SRCDIR}/../include
#include "shim.h"
*/
import "C"

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
	"unsafe"

	"github.com/hakuban/hakuban/core"
)

// Result codes, as C returns them. The values come from core's table; a
// test checks that include/hakuban.h spells the same table.
const (
	rcOK      = C.int32_t(core.CodeOK)
	rcEmpty   = C.int32_t(core.CodeEmpty)
	rcEnd     = C.int32_t(core.CodeEnd)
	rcTimeout = C.int32_t(core.CodeTimeout)
)

// setError stores msg as the calling thread's last error message and
// returns code. Exports run on the C caller's thread (cgo keeps the
// goroutine on it for the whole call), so the C helper writes that thread's
// message.
func setError(code core.Code, msg string) C.int32_t {
	if msg == "" {
		msg = "error"
	}
	C.hakuban__set_error((*C.char)(unsafe.Pointer(unsafe.StringData(msg))), C.size_t(len(msg)))
	return C.int32_t(code)
}

// errorf formats the last error message of fn and returns code.
func errorf(code core.Code, fn string, format string, args ...any) C.int32_t {
	return setError(code, fn+": "+fmt.Sprintf(format, args...))
}

// fail turns a core error into its code and message.
func fail(fn string, err error) C.int32_t {
	return setError(core.ErrorCode(err), fn+": "+err.Error())
}

// nullArg is the error for a NULL pointer argument.
func nullArg(fn, name string) C.int32_t {
	return errorf(core.CodeInvalidArgument, fn, "%s is NULL", name)
}

// badHandle is the error for a handle that is not a live handle of kind k.
func badHandle(fn string, h uint64, k kind) C.int32_t {
	return setError(core.CodeInvalidHandle, fn+": "+handles.explain(h, k))
}

// lookup returns the live value of handle h of kind k, or sets the error.
func lookup[T any](fn string, h uint64, k kind) (*T, C.int32_t) {
	if v := handles.get(h, k); v != nil {
		return v.(*T), rcOK
	}
	return nil, badHandle(fn, h, k)
}

// guard is deferred by every export that returns a result code: a panic
// (a bug in hakuban) becomes HAKUBAN_ERR_INTERNAL instead of killing the
// host process.
func guard(rc *C.int32_t) {
	if r := recover(); r != nil {
		*rc = internalError(r)
	}
}

// guardVoid is guard for exports without a result.
func guardVoid() {
	if r := recover(); r != nil {
		internalError(r)
	}
}

// internalError logs a recovered panic and sets the error message.
func internalError(r any) C.int32_t {
	fn := exportName()
	logError("panic in C API call recovered", "function", fn, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
	return setError(core.CodeInternal, fmt.Sprintf("%s: internal error (please report): %v", fn, r))
}

// exportName finds the export being run, by walking the stack of a panic.
func exportName() string {
	pcs := make([]uintptr, 64)
	frames := runtime.CallersFrames(pcs[:runtime.Callers(2, pcs)])
	for {
		f, more := frames.Next()
		// "main.hakuban_x" in the library, "<import path>.hakuban_x" in tests
		if name := f.Function[strings.LastIndexByte(f.Function, '.')+1:]; strings.HasPrefix(name, "hakuban_") {
			return name
		}
		if !more {
			return "hakuban"
		}
	}
}
