package harness

import (
	"fmt"
	"io"
	"net"
	"time"
)

// TCP is a raw TCP hop between two processes, paced like the systems
// measured: the floor of their latency on the same machine in the same
// run.
type TCP struct {
	// Addr is the receiver's address (sender only).
	Addr string
	// N messages of Size bytes, Interval apart; the first Warmup are left
	// out of the statistics.
	N, Warmup, Size int
	Interval        time.Duration
	// Timeout bounds every wait.
	Timeout time.Duration
}

// Recv listens on a loopback port (event "ready" with the address),
// receives the messages and reports their one-way latencies (event
// "result", a LatStats).
func (t TCP) Recv() error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	Emit("ready", ln.Addr().String())
	ln.(*net.TCPListener).SetDeadline(time.Now().Add(t.Timeout))
	conn, err := ln.Accept()
	if err != nil {
		return err
	}
	ln.Close()
	conn.SetReadDeadline(time.Now().Add(t.Timeout + time.Duration(t.N)*t.Interval))
	buf := make([]byte, t.Size)
	lats := make([]int64, 0, t.N)
	for i := 1; i <= t.N; i++ {
		if _, err := io.ReadFull(conn, buf); err != nil {
			return fmt.Errorf("message %d: %w", i, err)
		}
		now := time.Now().UnixNano()
		if i > t.Warmup {
			lats = append(lats, now-StampOf(buf))
		}
	}
	conn.Close()
	Emit("result", Summarize(lats, t.N-t.Warmup))
	return nil
}

// Send connects to Addr and sends the paced, stamped messages (event
// "done" after the last).
func (t TCP) Send() error {
	conn, err := net.DialTimeout("tcp", t.Addr, t.Timeout)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.(*net.TCPConn).SetNoDelay(true)
	buf := make([]byte, t.Size)
	p := NewPacer(t.Interval)
	for i := 1; i <= t.N; i++ {
		p.Wait(i)
		Stamp(buf, i)
		if _, err := conn.Write(buf); err != nil {
			return err
		}
	}
	Emit("done", nil)
	return nil
}
