package router_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hakuban/hakuban/core"
	"github.com/hakuban/hakuban/router"
)

// An idle router's monitor object settles: sending it moves the traffic
// counters it contains, and a change of those alone is published every
// 10 intervals, not every interval.
func TestRouterMonitorSettlesWhenIdle(t *testing.T) {
	cfg := testConfig(t)
	cfg.MetricsAddr = ""
	cfg.PingInterval, cfg.PingTimeout = time.Minute, 2*time.Minute
	cfg.MonitorTag, cfg.MonitorInterval = "routers", 20*time.Millisecond
	r := startRouter(t, cfg)

	client := exchange(t, "client")
	o := core.DefaultConnectorOptions()
	o.URLs = r.URLs()
	o.PingInterval, o.PingTimeout = time.Minute, 2*time.Minute
	c, err := client.Connect(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	waitConnected(t, c)
	obs, err := client.ObserveTag(core.MustTagDescriptor("routers"))
	if err != nil {
		t.Fatal(err)
	}
	defer obs.Close()
	// Watch 60 intervals from the first value: at most 1 + 60/10 values
	// then (a couple more for timer slack), against 60 before.
	deadline := time.Now().Add(10 * time.Second) // until the first value
	first := time.Time{}
	distinct := 0
	var last string
	var changed []string
	next := func() (core.ObjectEvent, error) {
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		defer cancel()
		return obs.Next(ctx)
	}
	for {
		ev, err := next()
		if errors.Is(err, context.DeadlineExceeded) && !first.IsZero() {
			return // the window is over
		}
		if err != nil {
			t.Fatalf("after %d values: %v", distinct, err)
		}
		if ev.Gone || ev.State.Data == nil || string(ev.State.Data) == last {
			continue
		}
		if first.IsZero() {
			first = time.Now()
			deadline = first.Add(60 * cfg.MonitorInterval)
		} else if len(changed) < 3 {
			changed = append(changed, strings.Join(diffJSON(last, string(ev.State.Data)), " "))
		}
		last = string(ev.State.Data)
		distinct++
		if distinct > 9 {
			t.Fatalf("an idle router published %d distinct monitor values in %v (interval %v); the first changes: %q",
				distinct, time.Since(first), cfg.MonitorInterval, changed)
		}
	}
}

// Start failing after the monitor started (here: the address file cannot
// be written), while the monitor object is observed, undoes everything
// and returns: the monitor's goroutine, which Start waits for, never
// waits for the router's lock.
func TestRouterStartFailureStopsAnObservedMonitor(t *testing.T) {
	cfg := testConfig(t)
	cfg.MetricsAddr = ""
	cfg.MonitorTag, cfg.MonitorInterval = "routers", 20*time.Millisecond
	cfg.AddrFile = filepath.Join(t.TempDir(), "no-such-dir", "addr")
	r, err := router.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// Someone already observes the monitor tag (here, on the router's own
	// exchange; an upstream client does the same over the network).
	obs, err := r.Exchange().ObserveTag(core.MustTagDescriptor("routers"))
	if err != nil {
		t.Fatal(err)
	}
	defer obs.Close()
	done := make(chan error, 1)
	go func() { done <- r.Start(context.Background()) }()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("Start succeeded with an unwritable address file")
		}
		r.Close()
	case <-time.After(5 * time.Second):
		t.Fatal("Start did not return within 5s")
	}
}

// diffJSON lists the JSON paths whose values differ between a and b.
func diffJSON(a, b string) []string {
	var va, vb any
	json.Unmarshal([]byte(a), &va)
	json.Unmarshal([]byte(b), &vb)
	var out []string
	var walk func(path string, x, y any)
	walk = func(path string, x, y any) {
		switch xv := x.(type) {
		case map[string]any:
			yv, ok := y.(map[string]any)
			if !ok {
				out = append(out, path)
				return
			}
			for k := range xv {
				walk(path+"."+k, xv[k], yv[k])
			}
		case []any:
			yv, ok := y.([]any)
			if !ok || len(xv) != len(yv) {
				out = append(out, path)
				return
			}
			for i := range xv {
				walk(fmt.Sprintf("%s[%d]", path, i), xv[i], yv[i])
			}
		default:
			if !reflect.DeepEqual(x, y) {
				out = append(out, fmt.Sprintf("%s: %v -> %v", path, x, y))
			}
		}
	}
	walk("", va, vb)
	return out
}

// freezeProxy forwards one TCP connection to target until frozen; frozen,
// it forwards nothing more (a peer that stopped answering).
type freezeProxy struct {
	ln      net.Listener
	frozen  chan struct{}
	release chan struct{}
	conns   chan net.Conn
}

func newFreezeProxy(t *testing.T, target string) *freezeProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &freezeProxy{ln: ln, frozen: make(chan struct{}), release: make(chan struct{}), conns: make(chan net.Conn, 16)}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		close(p.release)
		ln.Close()
		close(p.conns)
		for c := range p.conns {
			c.Close()
		}
		wg.Wait()
	})
	pipe := func(dst, src net.Conn) {
		defer wg.Done()
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			if n > 0 {
				select {
				case <-p.frozen:
					<-p.release
					return
				default:
				}
				if _, err := dst.Write(buf[:n]); err != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.conns <- c
			p.conns <- u
			wg.Add(2)
			go pipe(u, c)
			go pipe(c, u)
		}
	}()
	return p
}

// The address file goes as the router stops accepting, before the drain,
// and is not left behind by a second signal ("exit at once"): a script
// waiting for the file must never read a dead address.
func TestRouterBinaryAddrFileGoesAtShutdown(t *testing.T) {
	addrFile := filepath.Join(t.TempDir(), "addr")
	p := startRouterProcess(t, nil, "--listen", "127.0.0.1:0", "--addr-file", addrFile,
		"--log-format", "json", "--close-timeout", "30s", "--ping-interval", "1m", "--ping-timeout", "2m")
	var addr string
	pollFor(t, 20*time.Second, "addr file", func() bool {
		b, err := os.ReadFile(addrFile)
		addr = strings.TrimSpace(string(b))
		return err == nil && addr != ""
	})
	proxy := newFreezeProxy(t, addr)
	leaf := exchange(t, "leaf")
	o := core.DefaultConnectorOptions()
	o.URLs = []string{"ws://" + proxy.ln.Addr().String() + "/"}
	o.PingInterval, o.PingTimeout = time.Minute, 2*time.Minute
	o.MinBackoff, o.MaxBackoff = time.Minute, time.Minute
	c, err := leaf.Connect(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	waitConnected(t, c)
	close(proxy.frozen) // the leaf stops answering

	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	pollFor(t, 10*time.Second, "shutdown begun", func() bool {
		_, ok := p.logged("hakuban: router shutting down", "level")
		return ok
	})
	// The listener stops accepting at once...
	pollFor(t, 10*time.Second, "listener closed", func() bool {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			conn.Close()
		}
		return err != nil
	})
	// ...and the file is gone already.
	if _, err := os.Stat(addrFile); err == nil {
		t.Errorf("addr file still names %s while the router drains and no longer listens", addr)
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := p.wait(t, 10*time.Second); code != 1 {
		t.Errorf("exit status %d after the second signal, want 1", code)
	}
	if b, err := os.ReadFile(addrFile); err == nil {
		t.Errorf("addr file left behind after the second signal, naming the dead address %q", strings.TrimSpace(string(b)))
	}
}
