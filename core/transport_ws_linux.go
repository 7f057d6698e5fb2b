package core

import (
	"syscall"
	"unsafe"
)

// socketQueueKnown: socketQueued can answer here.
const socketQueueKnown = true

// socketQueued returns the bytes queued in a TCP socket's send buffer: not
// sent yet or not acknowledged by the peer (SIOCOUTQ).
func socketQueued(fd uintptr) (int, bool) {
	var q int32
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TIOCOUTQ, uintptr(unsafe.Pointer(&q))); e != 0 {
		return 0, false
	}
	return int(q), true
}

// socketSendBuffer returns the size of a socket's send buffer.
func socketSendBuffer(fd uintptr) (int, bool) {
	b, err := syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF)
	return b, err == nil
}
