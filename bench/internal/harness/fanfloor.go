package harness

// The raw TCP fan-out floor: the drivers' fan-out scenario with plain Go
// TCP in place of the system measured.

import (
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// FanFloor runs the raw TCP fan-out floor in the shape of the drivers'
// fan-out: a relay process accepts t.Conns receiver connections, opened
// by procs receiver processes (t.Conns/procs each, one reading goroutine
// per connection), then the source's; the source sends message 1 (the
// warm-up) and, once every connection has it, messages 2..t.N of t.Size
// bytes paced by t.Interval. The relay writes each message to every
// receiver connection from min(GOMAXPROCS, 4) writer goroutines, each
// with a fixed share of the connections. Raw TCP queues every message (no
// latest wins): a receiver gets each one. It returns, per message, the
// time from the send until the first and until the last receiver had it
// (FanOut, message 1 left out), and stops its processes before it
// returns.
func FanFloor(start Starter, t TCP, procs int) (first, last LatStats, err error) {
	if procs < 1 || t.Conns < procs {
		return first, last, fmt.Errorf("fan-out floor: %d connections in %d processes", t.Conns, procs)
	}
	f := &floorRun{start: start, prefix: "fanfloor"}
	defer f.stop()
	perProc := t.Conns / procs
	part := TCP{N: t.N, Size: t.Size, Interval: t.Interval, Timeout: t.Timeout}
	relayArgs := part
	relayArgs.Conns = perProc * procs
	relay, err := f.run("relay", RoleFanRelay, relayArgs)
	if err != nil {
		return first, last, err
	}
	if err := relay.Expect("ready", t.Timeout, &part.Addr); err != nil {
		return first, last, err
	}
	recvs := make([]*Child, procs)
	recvArgs := part
	recvArgs.Conns = perProc
	for k := range procs {
		if recvs[k], err = f.run(fmt.Sprintf("recv%d", k), RoleFanRecv, recvArgs); err != nil {
			return first, last, err
		}
	}
	if err := ExpectAll(recvs, "connected", t.Timeout); err != nil {
		return first, last, err
	}
	// Every receiver connection is accepted before the source connects:
	// the relay tells the source by its order.
	if err := relay.Expect("accepted", t.Timeout, nil); err != nil {
		return first, last, err
	}
	srcArgs := part
	srcArgs.Warm = true
	src, err := f.run("send", RoleTCPSend, srcArgs)
	if err != nil {
		return first, last, err
	}
	if err := src.Expect("ready", t.Timeout, nil); err != nil {
		return first, last, err
	}
	if err := ExpectAll(recvs, "ready", t.Timeout); err != nil {
		return first, last, err
	}
	if err := src.Send("go"); err != nil {
		return first, last, err
	}
	var sent []int64
	if err := src.Expect("done", time.Duration(t.N)*t.Interval+t.Timeout, &sent); err != nil {
		return first, last, err
	}
	fan := NewFanOut(t.N)
	for _, c := range recvs {
		var res FanReport
		if err := c.Expect("result", t.Timeout, &res); err != nil {
			return first, last, err
		}
		if res.Missing > 0 {
			return first, last, fmt.Errorf("%s: %d (connection, message) pairs never reached", c.Name, res.Missing)
		}
		fan.Add(res.First, res.Last)
	}
	first, last = fan.Latencies(sent)
	return first, last, nil
}

// fanDeadline bounds a fan-out floor connection's reads and writes: the
// warm-up (the driver waits for each receiver process in turn), then the
// paced run.
func (t TCP) fanDeadline() time.Time {
	return time.Now().Add(2*t.Timeout + time.Duration(t.N)*t.Interval)
}

// FanRelay listens on a loopback port (event "ready" with the address),
// accepts t.Conns receiver connections (event "accepted"), then the
// source's, and writes each of the t.N messages the source sends to every
// receiver. min(GOMAXPROCS, 4) writer goroutines, started once, each
// write every message to their own share of the connections, in order;
// the reader hands each message to every writer's queue (t.N deep: the
// reader never waits for a writer).
func (t TCP) FanRelay() error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer ln.Close()
	Emit("ready", ln.Addr().String())
	ln.(*net.TCPListener).SetDeadline(time.Now().Add(t.Timeout))
	outs := make([]net.Conn, 0, t.Conns)
	defer func() {
		for _, c := range outs {
			c.Close()
		}
	}()
	for len(outs) < t.Conns {
		c, err := ln.Accept()
		if err != nil {
			return fmt.Errorf("after %d of %d connections: %w", len(outs), t.Conns, err)
		}
		outs = append(outs, c)
	}
	Emit("accepted", nil)
	ln.(*net.TCPListener).SetDeadline(time.Now().Add(t.Timeout))
	src, err := ln.Accept()
	if err != nil {
		return fmt.Errorf("no source connection: %w", err)
	}
	defer src.Close()
	deadline := t.fanDeadline()
	src.SetReadDeadline(deadline)
	for _, c := range outs {
		c.SetWriteDeadline(deadline)
	}

	nw := max(1, min(runtime.GOMAXPROCS(0), 4, len(outs)))
	queues := make([]chan []byte, nw)
	errs := make([]error, nw+1)
	var wg sync.WaitGroup
	for w := range nw {
		queues[w] = make(chan []byte, t.N)
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []net.Conn
			for i := w; i < len(outs); i += nw {
				mine = append(mine, outs[i])
			}
			for msg := range queues[w] {
				for i := 0; i < len(mine) && errs[w] == nil; i++ {
					if _, err := mine[i].Write(msg); err != nil {
						errs[w] = fmt.Errorf("message %d: %w", SeqOf(msg), err)
					}
				}
			}
		}()
	}
	for i := 1; i <= t.N; i++ {
		msg := make([]byte, t.Size) // shared by the writers, never modified
		if _, err := io.ReadFull(src, msg); err != nil {
			errs[nw] = fmt.Errorf("source, message %d: %w", i, err)
			break
		}
		for _, q := range queues {
			q <- msg
		}
	}
	for _, q := range queues {
		close(q)
	}
	wg.Wait()
	return errors.Join(errs...)
}

// FanReport is what a fan-out receiver process reports (event "result"):
// per message, when the first and the last of its connections had it.
type FanReport struct {
	First, Last []int64
	Missing     int
}

// FanRecv opens t.Conns connections to Addr (event "connected"), reads
// each in a goroutine of its own, which records the arrival time of each
// message in its own array (no lock is shared), reports "ready" once
// every connection has message 1, and its FanReport once each has all
// t.N.
func (t TCP) FanRecv() error {
	conns := make([]net.Conn, 0, t.Conns)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for k := range t.Conns {
		c, err := net.DialTimeout("tcp", t.Addr, t.Timeout)
		if err != nil {
			return fmt.Errorf("connection %d: %w", k, err)
		}
		conns = append(conns, c)
	}
	Emit("connected", nil)
	deadline := t.fanDeadline()
	recv := make([][]int64, t.Conns)
	errs := make([]error, t.Conns)
	var warm atomic.Int64
	ready := make(chan struct{})
	var wg sync.WaitGroup
	for k, c := range conns {
		got := make([]int64, t.N+1)
		recv[k] = got
		c.SetReadDeadline(deadline)
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, t.Size)
			for i := 1; i <= t.N; i++ {
				if _, err := io.ReadFull(c, buf); err != nil {
					errs[k] = fmt.Errorf("connection %d, message %d: %w", k, i, err)
					return
				}
				now := time.Now().UnixNano()
				if v := SeqOf(buf); v >= 1 && v <= t.N {
					got[v] = now
				}
				if i == 1 && warm.Add(1) == int64(t.Conns) {
					close(ready)
				}
			}
		}()
	}
	select {
	case <-ready:
		Emit("ready", nil)
	case <-time.After(t.Timeout):
		return fmt.Errorf("only %d of %d connections got message 1 within %v", warm.Load(), t.Conns, t.Timeout)
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	var res FanReport
	res.First, res.Last, res.Missing = Held(recv, t.N)
	Emit("result", res)
	return nil
}
