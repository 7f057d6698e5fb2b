package main

/*
#include "shim.h"
*/
import "C"

import "runtime"

// selfTestPanic is for the Go tests (which cannot use cgo themselves): it
// proves that an export turns a panic into HAKUBAN_ERR_INTERNAL and a
// message instead of killing the process. It plants a value of the wrong
// type under a state handle, so the export's lookup panics, and returns the
// export's result and the thread's last error message.
func selfTestPanic() (rc int32, msg string) {
	runtime.LockOSThread() // the message is thread-local
	defer runtime.UnlockOSThread()
	level := logLevel.Swap(lvlOff) // the recovered panic is logged: keep tests quiet
	defer logLevel.Store(level)
	h := handles.add(kindObjectState, &exchangeObj{}) // not a *stateObj
	defer handles.remove(h, kindObjectState)
	var n C.size_t
	rc = int32(hakuban_object_state_data_len(&n, C.hakuban_object_state(h)))
	return rc, C.GoString(C.hakuban_last_error_message())
}
