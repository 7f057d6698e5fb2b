//go:build !linux

package core

// Elsewhere the kernel is not asked: every frame goes through the link's
// writer goroutine.

const socketQueueKnown = false

func socketQueued(uintptr) (int, bool)     { return 0, false }
func socketSendBuffer(uintptr) (int, bool) { return 0, false }
