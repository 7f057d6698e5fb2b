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
// bytes paced by t.Interval. The relay writes to the receiver connections
// from min(GOMAXPROCS, 4) writer goroutines, each with a fixed share of
// the connections, latest wins as in the systems measured: each write
// sends a connection the newest message, so a relay that falls behind
// skips messages instead of queueing them. It returns, per message, the
// time from the send until the first and until the last receiver had it
// (FanOut, message 1 left out), and stops its processes before it
// returns.
func FanFloor(start Starter, t TCP, procs int) (first, last LatStats, delivered float64, err error) {
	if procs < 1 || t.Conns < procs {
		return first, last, 0, fmt.Errorf("fan-out floor: %d connections in %d processes", t.Conns, procs)
	}
	f := &floorRun{start: start, prefix: "fanfloor"}
	defer f.stop()
	perProc := t.Conns / procs
	part := TCP{N: t.N, Size: t.Size, Interval: t.Interval, Timeout: t.Timeout}
	relayArgs := part
	relayArgs.Conns = perProc * procs
	relay, err := f.run("relay", RoleFanRelay, relayArgs)
	if err != nil {
		return first, last, 0, err
	}
	if err := relay.Expect("ready", t.Timeout, &part.Addr); err != nil {
		return first, last, 0, err
	}
	recvs := make([]*Child, procs)
	recvArgs := part
	recvArgs.Conns = perProc
	for k := range procs {
		if recvs[k], err = f.run(fmt.Sprintf("recv%d", k), RoleFanRecv, recvArgs); err != nil {
			return first, last, 0, err
		}
	}
	if err := ExpectAll(recvs, "connected", t.Timeout); err != nil {
		return first, last, 0, err
	}
	// Every receiver connection is accepted before the source connects:
	// the relay tells the source by its order.
	if err := relay.Expect("accepted", t.Timeout, nil); err != nil {
		return first, last, 0, err
	}
	srcArgs := part
	srcArgs.Warm = true
	src, err := f.run("send", RoleTCPSend, srcArgs)
	if err != nil {
		return first, last, 0, err
	}
	if err := src.Expect("ready", t.Timeout, nil); err != nil {
		return first, last, 0, err
	}
	if err := ExpectAll(recvs, "ready", t.Timeout); err != nil {
		return first, last, 0, err
	}
	if err := src.Send("go"); err != nil {
		return first, last, 0, err
	}
	var sent []int64
	if err := src.Expect("done", time.Duration(t.N)*t.Interval+t.Timeout, &sent); err != nil {
		return first, last, 0, err
	}
	fan := NewFanOut(t.N)
	for _, c := range recvs {
		var res FanReport
		if err := c.Expect("result", t.Timeout, &res); err != nil {
			return first, last, 0, err
		}
		if res.Missing > 0 {
			return first, last, 0, fmt.Errorf("%s: %d (connection, message) pairs never reached", c.Name, res.Missing)
		}
		fan.Add(res)
	}
	first, last = fan.Latencies(sent)
	return first, last, fan.DeliveredPct(), nil
}

// fanDeadline bounds a fan-out floor connection's reads and writes: the
// warm-up (the driver waits for each receiver process in turn), then the
// paced run.
func (t TCP) fanDeadline() time.Time {
	return time.Now().Add(2*t.Timeout + time.Duration(t.N)*t.Interval)
}

// FanRelay listens on a loopback port (event "ready" with the address),
// accepts t.Conns receiver connections (event "accepted"), then the
// source's, and passes the t.N messages the source sends on to every
// receiver, latest wins. min(GOMAXPROCS, 4) writer goroutines, started
// once, each keep their own share of the connections up to date: on each
// pass a connection gets the newest message if it does not have it yet,
// and a writer passes again until a pass finds nothing to send. The reader
// only publishes the newest message and wakes the writers: it never waits
// for them, and the last message reaches every connection.
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
	var latest atomic.Pointer[[]byte] // the newest message; never modified
	wake := make([]chan struct{}, nw)
	errs := make([]error, nw+1)
	var wg sync.WaitGroup
	for w := range nw {
		wake[w] = make(chan struct{}, 1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []net.Conn
			for i := w; i < len(outs); i += nw {
				mine = append(mine, outs[i])
			}
			has := make([]int, len(mine)) // the newest message each connection got
			pass := func() bool {
				wrote := false
				for i, c := range mine {
					msg := *latest.Load()
					if seq := SeqOf(msg); seq > has[i] {
						if _, err := c.Write(msg); err != nil {
							errs[w] = fmt.Errorf("message %d: %w", seq, err)
							return false
						}
						has[i], wrote = seq, true
					}
				}
				return wrote
			}
			for range wake[w] {
				for pass() {
				}
				if errs[w] != nil {
					return
				}
			}
		}()
	}
	for i := 1; i <= t.N; i++ {
		msg := make([]byte, t.Size)
		if _, err := io.ReadFull(src, msg); err != nil {
			errs[nw] = fmt.Errorf("source, message %d: %w", i, err)
			break
		}
		latest.Store(&msg)
		for _, c := range wake {
			select {
			case c <- struct{}{}:
			default: // a pass is due already
			}
		}
	}
	for _, c := range wake {
		close(c) // a writer finishes its passes first
	}
	wg.Wait()
	return errors.Join(errs...)
}

// FanReport is what a fan-out receiver process reports (event "result"):
// per message, when the first and the last of its connections had it;
// and of the (connection, message) pairs of messages 2.. (Expected), how
// many arrived (Delivered): with latest wins, the rest were skipped.
type FanReport struct {
	First, Last         []int64
	Missing             int
	Delivered, Expected int
}

// FanRecv opens t.Conns connections to Addr (event "connected"), reads
// each in a goroutine of its own, which records the arrival time of each
// message in its own array (no lock is shared), reports "ready" once
// every connection has message 1, and its FanReport once each has message
// t.N (latest wins: a connection may skip messages before it).
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
			for i := 1; ; i++ {
				if _, err := io.ReadFull(c, buf); err != nil {
					errs[k] = fmt.Errorf("connection %d, message %d: %w", k, i, err)
					return
				}
				now := time.Now().UnixNano()
				v := SeqOf(buf)
				if v >= 1 && v <= t.N {
					got[v] = now
				}
				if i == 1 && warm.Add(1) == int64(t.Conns) {
					close(ready)
				}
				if v >= t.N {
					return
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
	res.Delivered, res.Expected = Delivered(recv, t.N)
	Emit("result", res)
	return nil
}
