package harness

// The raw TCP floors: what plain Go TCP between processes on this machine
// costs in the same run, paced like the systems measured. Both drivers
// run them through the functions here (LatencyFloor, FanFloor) and
// dispatch their child roles to TCP.Role, so the floors are the same code
// for hakuban and for nats-server.

import (
	"fmt"
	"io"
	"net"
	"time"
)

// TCP is one raw TCP floor's arguments, as a child gets them.
type TCP struct {
	// Addr is the address to connect to (sender, relay, fan-out
	// receiver).
	Addr string
	// N messages of Size bytes, Interval apart; the first Warmup are left
	// out of the statistics.
	N, Warmup, Size int
	Interval        time.Duration
	// Warm (sender): send message 1 at once, report "ready" and pace
	// messages 2..N after the driver's "go" (the fan-out's warm-up).
	Warm bool
	// Conns: connections a fan-out relay accepts, or a fan-out receiver
	// process opens.
	Conns int
	// Timeout bounds every wait.
	Timeout time.Duration
}

// The roles of the floors' processes.
const (
	RoleTCPRecv  = "tcp-recv"      // hop and chain receiver (Recv)
	RoleTCPSend  = "tcp-send"      // every floor's sender (Send)
	RoleTCPRelay = "tcp-relay"     // the chain's relay (Relay)
	RoleFanRelay = "tcp-fan-relay" // the fan-out's relay (FanRelay)
	RoleFanRecv  = "tcp-fan-recv"  // a fan-out receiver process (FanRecv)
)

// Role returns the work of a floor role, nil when role is none of them.
func (t TCP) Role(role string) func() error {
	if t.Timeout <= 0 {
		t.Timeout = 30 * time.Second
	}
	switch role {
	case RoleTCPRecv:
		return t.Recv
	case RoleTCPSend:
		return t.Send
	case RoleTCPRelay:
		return t.Relay
	case RoleFanRelay:
		return t.FanRelay
	case RoleFanRecv:
		return t.FanRecv
	}
	return nil
}

// Starter starts a floor role as a child of the driver's current run:
// the driver adds its own arguments (name, lifetime, profile) and stops
// the child with the rest of the run.
type Starter func(name, role string, t TCP) (*Child, error)

// floorRun is the processes one floor measurement started, named
// prefix-name.
type floorRun struct {
	start  Starter
	prefix string
	kids   []*Child
}

func (f *floorRun) run(name, role string, t TCP) (*Child, error) {
	c, err := f.start(f.prefix+"-"+name, role, t)
	if err == nil {
		f.kids = append(f.kids, c)
	}
	return c, err
}

// stop stops the floor's processes (the driver stops them again with its
// run, which does nothing more): gracefully, so that profiles get
// written, and SIGKILL after 5 s.
func (f *floorRun) stop() { StopAll(f.kids, 5*time.Second) }

// LatencyFloor measures the one-way latency of t's messages (t.Addr
// unused) from a sender through relays relay processes to a receiver,
// each a process of its own: relays 0 is the raw TCP hop, 1 the relay
// chain (two hops, the shape of a system with a router or a server in
// the middle). It stops its processes before it returns.
func LatencyFloor(start Starter, t TCP, relays int) (LatStats, error) {
	prefix := "tcp"
	if relays > 0 {
		prefix = "chain"
	}
	f := &floorRun{start: start, prefix: prefix}
	defer f.stop()
	recv, err := f.run("recv", RoleTCPRecv, t)
	if err != nil {
		return LatStats{}, err
	}
	var addr string
	if err := recv.Expect("ready", t.Timeout, &addr); err != nil {
		return LatStats{}, err
	}
	for k := range relays {
		relay, err := f.run(fmt.Sprintf("relay%d", k+1), RoleTCPRelay, TCP{Addr: addr, N: t.N, Size: t.Size, Interval: t.Interval, Timeout: t.Timeout})
		if err != nil {
			return LatStats{}, err
		}
		if err := relay.Expect("ready", t.Timeout, &addr); err != nil {
			return LatStats{}, err
		}
	}
	send, err := f.run("send", RoleTCPSend, TCP{Addr: addr, N: t.N, Size: t.Size, Interval: t.Interval, Timeout: t.Timeout})
	if err != nil {
		return LatStats{}, err
	}
	var lat LatStats
	if err := recv.Expect("result", time.Duration(t.N)*t.Interval+t.Timeout, &lat); err != nil {
		return LatStats{}, err
	}
	return lat, send.Expect("done", t.Timeout, nil)
}

// Recv listens on a loopback port (event "ready" with the address),
// receives the messages and reports their one-way latencies (event
// "result", a LatStats).
func (t TCP) Recv() error {
	conn, err := t.acceptOne()
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetReadDeadline(t.deadline())
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
	Emit("result", Summarize(lats, t.N-t.Warmup))
	return nil
}

// Relay connects to Addr (the next process), listens on a loopback port
// (event "ready" with the address), and writes each of the N messages it
// receives on as soon as it has read it whole, from the goroutine that
// read it: the least a relaying process can do.
func (t TCP) Relay() error {
	out, err := net.DialTimeout("tcp", t.Addr, t.Timeout)
	if err != nil {
		return err
	}
	defer out.Close()
	in, err := t.acceptOne()
	if err != nil {
		return err
	}
	defer in.Close()
	deadline := t.deadline()
	in.SetReadDeadline(deadline)
	out.SetWriteDeadline(deadline)
	buf := make([]byte, t.Size)
	for i := 1; i <= t.N; i++ {
		if _, err := io.ReadFull(in, buf); err != nil {
			return fmt.Errorf("message %d: %w", i, err)
		}
		if _, err := out.Write(buf); err != nil {
			return fmt.Errorf("message %d: %w", i, err)
		}
	}
	return nil
}

// Send connects to Addr and sends the paced, stamped messages 1..N
// (bytes 8–15 carry the number), then reports "done" with each message's
// send time (UnixNano, by number). With Warm it sends message 1 at once,
// reports "ready", and paces messages 2..N after the command "go".
func (t TCP) Send() error {
	if t.Size < 16 {
		return fmt.Errorf("messages of %d bytes cannot carry a stamp and a number", t.Size)
	}
	conn, err := net.DialTimeout("tcp", t.Addr, t.Timeout)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.(*net.TCPConn).SetNoDelay(true)
	sent := make([]int64, t.N+1)
	buf := make([]byte, t.Size)
	send := func(i int) error {
		sent[i] = Stamp(buf, i)
		_, err := conn.Write(buf)
		return err
	}
	first := 1
	if t.Warm {
		if err := send(1); err != nil {
			return err
		}
		Emit("ready", nil)
		WaitCommand(t.Timeout, "go")
		first = 2
	}
	if err := Paced(t.Interval, first, t.N, send); err != nil {
		return err
	}
	Emit("done", sent)
	return nil
}

// acceptOne listens on a loopback port, reports "ready" with its address
// and accepts one connection within t.Timeout.
func (t TCP) acceptOne() (net.Conn, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	defer ln.Close()
	Emit("ready", ln.Addr().String())
	ln.(*net.TCPListener).SetDeadline(time.Now().Add(t.Timeout))
	c, err := ln.Accept()
	if err != nil {
		return nil, fmt.Errorf("no connection: %w", err)
	}
	return c, nil
}

// deadline bounds a paced connection's reads and writes: the run, then
// t.Timeout.
func (t TCP) deadline() time.Time {
	return time.Now().Add(t.Timeout + time.Duration(t.N)*t.Interval)
}
