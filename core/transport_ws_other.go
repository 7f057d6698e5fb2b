//go:build !linux

package core

// socketQueue cannot ask the kernel here: every frame goes through the
// link's writer goroutine.
func socketQueue(uintptr) (queued, sndbuf int, ok bool) { return 0, 0, false }
