package main

// The roles a child process can play. Each role reports through emit and
// fails through its returned error; every wait is bounded by Args.Timeout
// (or a deadline derived from it) and every loop by a count.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

var roles = map[string]func(Args) error{
	"server":   roleServer,
	"tcp-recv": roleTCPRecv,
	"tcp-send": roleTCPSend,
	"lat-pub":  roleLatPub,
	"lat-sub":  roleLatSub,
	"fan-pub":  roleFanPub,
	"fan-sub":  roleFanSub,
}

const (
	latSubject = "bench.latency"
	fanSubject = "bench.fanout"
)

// stamp writes the current wall-clock time (ns) into b's first 8 bytes
// and seq into the next 8 (NATS messages carry no version).
func stamp(b []byte, seq int) int64 {
	now := time.Now().UnixNano()
	binary.LittleEndian.PutUint64(b, uint64(now))
	if len(b) >= 16 {
		binary.LittleEndian.PutUint64(b[8:], uint64(seq))
	}
	return now
}

func stampOf(b []byte) int64 {
	if len(b) < 8 {
		return 0
	}
	return int64(binary.LittleEndian.Uint64(b))
}

func seqOf(b []byte) int {
	if len(b) < 16 {
		return -1
	}
	return int(binary.LittleEndian.Uint64(b[8:]))
}

// pacer spaces sends interval apart: send i goes at start + i·interval,
// but never closer than interval/2 to the previous one, so that a late
// wake-up does not make a burst. It sleeps with nanosleep(2), as
// bench/netbench does (time.Sleep rounds to the millisecond on these VMs).
type pacer struct {
	start, prev time.Time
	interval    time.Duration
}

func newPacer(interval time.Duration) *pacer {
	now := time.Now()
	return &pacer{start: now, prev: now.Add(-interval), interval: interval}
}

// wait sleeps until send i is due.
func (p *pacer) wait(i int) {
	target := p.start.Add(time.Duration(i) * p.interval)
	if earliest := p.prev.Add(p.interval / 2); target.Before(earliest) {
		target = earliest
	}
	for range 1000 { // nanosleep may return early on a signal
		d := time.Until(target)
		if d <= 0 {
			break
		}
		ts := syscall.NsecToTimespec(int64(d))
		_ = syscall.Nanosleep(&ts, nil)
	}
	p.prev = time.Now()
}

// ---- the server ----

// roleServer runs an embedded nats-server with default options on a
// random loopback port, in this process only, until stdin closes.
func roleServer(a Args) error {
	s, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: server.RANDOM_PORT, NoLog: true, NoSigs: true,
	})
	if err != nil {
		return err
	}
	go s.Start()
	if !s.ReadyForConnections(a.Timeout) {
		return fmt.Errorf("nats-server not ready within %v", a.Timeout)
	}
	emit("ready", s.ClientURL())
	return nil
}

// connect opens one client connection; no reconnects (a lost server is
// a failed repetition), asynchronous errors (slow consumer) on stderr.
func connect(a Args, name string) (*nats.Conn, error) {
	return nats.Connect(a.URL, nats.Name(name), nats.Timeout(a.Timeout), nats.NoReconnect(),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		}))
}

// receive subscribes nc to subject and calls onMsg with each message and
// its arrival time (UnixNano), one message at a time, until onMsg returns
// false (done then yields nil) or deadline passes (an error). mode "sync"
// reads with SubscribeSync + NextMsg in a goroutine of its own; "async"
// uses Subscribe with a handler (nats.go's per-subscription delivery
// goroutine calls it). Both take a message from the connection's read
// loop through one goroutine hand-off. The subscription is flushed: the
// server has it when receive returns.
func receive(nc *nats.Conn, mode, subject string, deadline time.Time, onMsg func(data []byte, now int64) bool) (<-chan error, error) {
	done := make(chan error, 1)
	var once sync.Once
	finish := func(err error) { once.Do(func() { done <- err }) }
	if mode == "async" {
		var over atomic.Bool
		_, err := nc.Subscribe(subject, func(m *nats.Msg) {
			now := time.Now().UnixNano()
			if !over.Load() && !onMsg(m.Data, now) {
				over.Store(true)
				finish(nil)
			}
		})
		if err != nil {
			return nil, err
		}
		time.AfterFunc(time.Until(deadline), func() {
			finish(fmt.Errorf("deadline passed (%v)", nats.ErrTimeout))
		})
	} else {
		sub, err := nc.SubscribeSync(subject)
		if err != nil {
			return nil, err
		}
		go func() {
			for range 1 << 24 {
				m, err := sub.NextMsg(time.Until(deadline))
				if err != nil {
					finish(err)
					return
				}
				if !onMsg(m.Data, time.Now().UnixNano()) {
					finish(nil)
					return
				}
			}
			finish(errors.New("too many messages"))
		}()
	}
	return done, nc.FlushTimeout(time.Until(deadline))
}

// ---- raw TCP floor (as bench/netbench) ----

func roleTCPRecv(a Args) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	emit("ready", ln.Addr().String())
	ln.(*net.TCPListener).SetDeadline(time.Now().Add(a.Timeout))
	conn, err := ln.Accept()
	if err != nil {
		return err
	}
	ln.Close()
	conn.SetReadDeadline(time.Now().Add(a.Timeout + time.Duration(a.N)*a.Interval))
	buf := make([]byte, a.Size)
	lats := make([]int64, 0, a.N)
	for i := 1; i <= a.N; i++ {
		if _, err := io.ReadFull(conn, buf); err != nil {
			return fmt.Errorf("message %d: %w", i, err)
		}
		now := time.Now().UnixNano()
		if i > a.Warmup {
			lats = append(lats, now-stampOf(buf))
		}
	}
	conn.Close()
	emit("result", summarize(lats, a.N-a.Warmup))
	return nil
}

func roleTCPSend(a Args) error {
	conn, err := net.DialTimeout("tcp", a.Addr, a.Timeout)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.(*net.TCPConn).SetNoDelay(true)
	buf := make([]byte, a.Size)
	p := newPacer(a.Interval)
	for i := 1; i <= a.N; i++ {
		p.wait(i)
		stamp(buf, i)
		if _, err := conn.Write(buf); err != nil {
			return err
		}
	}
	emit("done", nil)
	return nil
}

// ---- latency through the server ----

// roleLatPub publishes messages 1..a.N paced by a.Interval, as soon as it
// is connected. Publish only buffers the message and wakes the
// connection's flusher goroutine, which writes it: no Flush per message
// (a Flush is a PING/PONG round trip that blocks the publisher).
func roleLatPub(a Args) error {
	nc, err := connect(a, a.Name)
	if err != nil {
		return err
	}
	defer nc.Close()
	emit("ready", nil)
	buf := make([]byte, a.Size) // Publish copies it into the write buffer
	p := newPacer(a.Interval)
	for i := 1; i <= a.N; i++ {
		p.wait(i)
		stamp(buf, i)
		if err := nc.Publish(latSubject, buf); err != nil {
			return err
		}
	}
	if err := nc.FlushTimeout(a.Timeout); err != nil {
		return err
	}
	emit("done", nil)
	return nil
}

// roleLatSub receives messages until message a.N (or the deadline) and
// reports the one-way latencies of those after the warm-up.
func roleLatSub(a Args) error {
	nc, err := connect(a, a.Name)
	if err != nil {
		return err
	}
	defer nc.Close()
	lats := make([]int64, 0, a.N)
	deadline := time.Now().Add(2*a.Timeout + time.Duration(a.N)*a.Interval)
	done, err := receive(nc, a.SubMode, latSubject, deadline, func(data []byte, now int64) bool {
		i := seqOf(data)
		if i > a.Warmup {
			lats = append(lats, now-stampOf(data))
		}
		return i < a.N
	})
	if err != nil {
		return err
	}
	emit("ready", nil)
	if err := <-done; err != nil {
		return fmt.Errorf("after %d messages: %w", len(lats), err)
	}
	emit("result", summarize(lats, a.N-a.Warmup))
	return nil
}

// ---- fan-out ----

// fanResult: for each message (index), the time (UnixNano) at which the
// first and the last of this process's connections had it (or a later
// one, as bench/netbench counts with latest wins; NATS delivers every
// message, so this matters only when one is lost). Delivered counts the
// (connection, message) pairs received, of Expected, messages 2.. only.
type fanResult struct {
	First, Last         []int64
	Missing             int
	Delivered, Expected int
}

// roleFanSub opens a.N connections, each subscribed to the fan-out
// subject, reports "subscribed", then "ready" once every connection got
// message 1 (the warm-up), and the result once each has a.Messages.
func roleFanSub(a Args) error {
	last := a.Messages
	deadline := time.Now().Add(3*a.Timeout + a.Duration)
	recv := make([][]int64, a.N)
	dones := make([]<-chan error, a.N)
	conns := make([]*nats.Conn, a.N)
	errs := make([]error, a.N)
	var warm atomic.Int64
	ready := make(chan struct{})
	var wg sync.WaitGroup
	for k := range a.N {
		recv[k] = make([]int64, last+1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			nc, err := connect(a, fmt.Sprintf("%s-%d", a.Name, k))
			if err != nil {
				errs[k] = err
				return
			}
			conns[k] = nc
			dones[k], errs[k] = receive(nc, a.SubMode, fanSubject, deadline, func(data []byte, now int64) bool {
				v := seqOf(data)
				if v >= 1 && v <= last && recv[k][v] == 0 {
					recv[k][v] = now
				}
				if v == 1 && warm.Add(1) == int64(a.N) {
					close(ready)
				}
				return v < last
			})
		}()
	}
	wg.Wait()
	defer func() {
		for _, nc := range conns {
			if nc != nil {
				nc.Close()
			}
		}
	}()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	emit("subscribed", nil)
	select {
	case <-ready:
		emit("ready", nil)
	case <-time.After(a.Timeout):
		return fmt.Errorf("only %d of %d connections got the warm-up message within %v", warm.Load(), a.N, a.Timeout)
	}
	for k, d := range dones {
		if err := <-d; err != nil {
			errs[k] = fmt.Errorf("connection %d: %w", k, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	res := fanResult{First: make([]int64, last+1), Last: make([]int64, last+1)}
	for k := range a.N {
		held := int64(0)
		for v := last; v >= 1; v-- {
			if t := recv[k][v]; t != 0 && (held == 0 || t < held) {
				held = t
			}
			if v >= 2 {
				res.Expected++
				if recv[k][v] != 0 {
					res.Delivered++
				}
			}
			if held == 0 {
				res.Missing++
				continue
			}
			res.Last[v] = max(res.Last[v], held)
			if res.First[v] == 0 || held < res.First[v] {
				res.First[v] = held
			}
		}
	}
	emit("result", res)
	return nil
}

// fanDone: the send time (UnixNano) of each message (index).
type fanDone struct {
	Sent []int64
}

// roleFanPub sends message 1 (the warm-up) on "warm", then on "go"
// messages 2..a.N paced by a.Interval (Publish, no Flush per message).
func roleFanPub(a Args) error {
	nc, err := connect(a, a.Name)
	if err != nil {
		return err
	}
	defer nc.Close()
	sent := make([]int64, a.N+1)
	buf := make([]byte, a.Size)
	send := func(v int) error {
		sent[v] = stamp(buf, v)
		return nc.Publish(fanSubject, buf)
	}
	emit("ready", nil)
	waitCommand(a.Timeout, "warm")
	if err := send(1); err != nil {
		return err
	}
	if err := nc.FlushTimeout(a.Timeout); err != nil {
		return err
	}
	emit("warmed", nil)
	waitCommand(a.Timeout, "go")
	p := newPacer(a.Interval)
	for v := 2; v <= a.N; v++ {
		p.wait(v - 2)
		if err := send(v); err != nil {
			return err
		}
	}
	if err := nc.FlushTimeout(a.Timeout); err != nil {
		return err
	}
	emit("done", fanDone{Sent: sent})
	return nil
}
