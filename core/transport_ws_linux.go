package core

import (
	"syscall"
	"unsafe"
)

// socketQueue returns the bytes queued in a TCP socket's send buffer (not
// yet acknowledged by the peer) and the buffer's size.
func socketQueue(fd uintptr) (queued, sndbuf int, ok bool) {
	var q int32
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TIOCOUTQ, uintptr(unsafe.Pointer(&q))); e != 0 {
		return 0, 0, false
	}
	b, err := syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF)
	if err != nil {
		return 0, 0, false
	}
	return int(q), b, true
}
