// Command capi is libhakuban, hakuban's C library: the Go core behind the
// hand-written C interface in include/hakuban.h. Build it with
//
//	go build -buildmode=c-shared \
//	  -ldflags=-extldflags=-Wl,-soname,libhakuban.so.0,--version-script=capi/hakuban.map \
//	  -o libhakuban.so.0.1.0 ./capi
//
// (the top-level CMakeLists.txt and `make lib` do this).
//
// # How it is put together
//
//   - handles.go: the handle table. C only ever holds integers; a bad handle
//     is an error code, never a crash, and no Go pointer reaches C.
//   - errors.go: result codes (core.Codes(), one table for every language),
//     the thread-local last error message, and the recover() that every
//     export defers.
//   - stream.go: what makes a core stream pollable from C: the wake-up file
//     descriptor and the callback dispatcher, both fed by the core's
//     SetNotify hook.
//   - exchange.go, descriptor.go, state.go, contracts.go, sink.go, log.go,
//     network.go: the exports, grouped as in the header.
//   - shim.c: what Go cannot do (thread-local storage, calling C function
//     pointers, eventfd) and the functions that need no Go.
//
// Every export's prototype is checked by the C compiler against hakuban.h:
// the header is part of the cgo preamble (via shim.h) and const parameters
// are spelled through typedefs (hakuban_cchar is const char), so a drift
// between the header and the Go code does not compile.
package main

func main() {}
