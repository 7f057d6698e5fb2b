package main

// The roles a child process can play. Each role reports through emit and
// fails through its returned error; every wait is bounded by Args.Timeout
// (or a deadline derived from it) and every loop by a count.

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/hakuban/hakuban/bench/internal/harness"
)

var roles = map[string]func(Args) error{
	"server":  roleServer,
	"lat-pub": roleLatPub,
	"lat-sub": roleLatSub,
	"fan-pub": roleFanPub,
	"fan-sub": roleFanSub,
}

const (
	latSubject = "bench.latency"
	fanSubject = "bench.fanout"
)

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
	harness.Emit("ready", s.ClientURL())
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
	harness.Emit("ready", nil)
	buf := make([]byte, a.Size) // Publish copies it into the write buffer
	err = harness.Paced(a.Interval, 1, a.N, func(i int) error {
		harness.Stamp(buf, i)
		return nc.Publish(latSubject, buf)
	})
	if err != nil {
		return err
	}
	if err := nc.FlushTimeout(a.Timeout); err != nil {
		return err
	}
	harness.Emit("done", nil)
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
		i := harness.SeqOf(data)
		if i > a.Warmup {
			lats = append(lats, now-harness.StampOf(data))
		}
		return i < a.N
	})
	if err != nil {
		return err
	}
	harness.Emit("ready", nil)
	if err := <-done; err != nil {
		return fmt.Errorf("after %d messages: %w", len(lats), err)
	}
	harness.Emit("result", harness.Summarize(lats, a.N-a.Warmup))
	return nil
}

// ---- fan-out ----

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
				v := harness.SeqOf(data)
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
	harness.Emit("subscribed", nil)
	select {
	case <-ready:
		harness.Emit("ready", nil)
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
	// For each message, when the first and the last of this process's
	// connections had it (or a later one, as bench/netbench counts with
	// latest wins; NATS delivers every message, so this matters only
	// when one is lost), and how many (connection, message) pairs arrived.
	var res harness.FanReport
	res.First, res.Last, res.Missing = harness.Held(recv, last)
	res.Delivered, res.Expected = harness.Delivered(recv, last)
	harness.Emit("result", res)
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
		sent[v] = harness.Stamp(buf, v)
		return nc.Publish(fanSubject, buf)
	}
	harness.Emit("ready", nil)
	harness.WaitCommand(a.Timeout, "warm")
	if err := send(1); err != nil {
		return err
	}
	if err := nc.FlushTimeout(a.Timeout); err != nil {
		return err
	}
	harness.Emit("warmed", nil)
	harness.WaitCommand(a.Timeout, "go")
	if err := harness.Paced(a.Interval, 2, a.N, send); err != nil {
		return err
	}
	if err := nc.FlushTimeout(a.Timeout); err != nil {
		return err
	}
	harness.Emit("done", fanDone{Sent: sent})
	return nil
}
