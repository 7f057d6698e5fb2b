// Command demo is hakuban's live demo and the project's main job: it starts
// a hakuban-router and several processes that share sensor objects through
// it, shows capacity-weighted election, lazy exposing, tag observation and
// a failover after a kill -9, and shuts everything down.
//
//	go run ./examples/demo            # the whole show (make demo)
//	go run ./examples/demo exposer NAME CAPACITY URL
//	go run ./examples/demo dashboard URL
//
// Other languages join the same router with the examples under
// examples/c, bindings/python/examples and bindings/ruby/examples.
package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hakuban/hakuban/core"
)

var rooms = core.MustTagDescriptor("rooms")

func main() {
	var err error
	switch {
	case len(os.Args) == 1:
		err = orchestrate()
	case os.Args[1] == "exposer" && len(os.Args) == 5:
		capacity, _ := strconv.Atoi(os.Args[3])
		err = exposer(os.Args[2], capacity, os.Args[4])
	case os.Args[1] == "dashboard" && len(os.Args) == 3:
		err = dashboard(os.Args[2])
	default:
		err = fmt.Errorf("usage: demo [exposer NAME CAPACITY URL | dashboard URL]")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

// connect makes an exchange linked to the router at url.
func connect(name, url string) (*core.Exchange, func(), error) {
	cfg := core.DefaultConfig()
	cfg.Name = name
	ex, err := core.NewExchange(cfg)
	if err != nil {
		return nil, nil, err
	}
	opts := core.DefaultConnectorOptions()
	opts.URLs = []string{url}
	opts.MaxBackoff = time.Second
	c, err := ex.Connect(opts)
	if err != nil {
		ex.Close()
		return nil, nil, err
	}
	return ex, func() { c.Close(); ex.Close() }, nil
}

// untilSignal returns a context cancelled by SIGINT or SIGTERM.
func untilSignal() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

// exposer can produce any room; it publishes a reading every 300 ms for
// each room it is elected for, and only while someone observes it.
func exposer(name string, capacity int, url string) error {
	ex, done, err := connect(name, url)
	if err != nil {
		return err
	}
	defer done()
	ctx, cancel := untilSignal()
	defer cancel()
	c, err := ex.ExposeTag(rooms, capacity)
	if err != nil {
		return err
	}
	fmt.Printf("ready to produce any room (capacity %d)\n", capacity)
	var wg sync.WaitGroup
	defer wg.Wait()
	for sink := range c.Sinks(ctx) {
		fmt.Printf("elected for %s\n", sink.Descriptor().JSON())
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(300 * time.Millisecond)
			defer tick.Stop()
			for {
				st, _ := core.NewJSONState(map[string]any{"celsius": 18 + rand.Float64()*6, "by": name})
				if sink.Send(st) != nil {
					return
				}
				select {
				case <-sink.Done():
					fmt.Printf("released %s\n", sink.Descriptor().JSON())
					return
				case <-ctx.Done():
					return
				case <-tick.C:
				}
			}
		}()
	}
	return nil
}

// dashboard observes three rooms by name and prints every live room it
// sees through a tag observer.
func dashboard(url string) error {
	ex, done, err := connect("dashboard", url)
	if err != nil {
		return err
	}
	defer done()
	ctx, cancel := untilSignal()
	defer cancel()
	for _, room := range []string{"kitchen", "hall", "garage"} {
		if _, err := ex.ObserveObject(core.MustObjectDescriptor(room, rooms)); err != nil {
			return err
		}
	}
	all, err := ex.ObserveTag(rooms)
	if err != nil {
		return err
	}
	// The C example exposer's object (examples/c/exposer.c).
	fromC, err := ex.ObserveObject(core.MustObjectDescriptor(map[string]any{"room": "kitchen"}, core.MustTagDescriptor("temperatures")))
	if err != nil {
		return err
	}
	go func() {
		for st := range fromC.States(ctx) {
			fmt.Printf("%-9s %s from C, synchronized=%v\n", `{"room":"kitchen"}`, st.Data, st.Synchronized)
		}
	}()
	for ev := range all.Events(ctx) {
		if ev.Gone {
			fmt.Printf("%-9s gone\n", ev.Descriptor.JSON())
			continue
		}
		var v struct {
			Celsius float64 `json:"celsius"`
			By      string  `json:"by"`
		}
		ev.State.DecodeJSON(&v)
		sync := "synchronized"
		if !ev.State.Synchronized {
			sync = fmt.Sprintf("NOT synchronized for %v", ev.State.SynchronizedAgo().Round(time.Millisecond))
		}
		fmt.Printf("%-9s %5.1f°C from %-5s %s\n", ev.Descriptor.JSON(), v.Celsius, v.By, sync)
	}
	return nil
}

// orchestrate runs the whole demo. Ctrl-C ends it early; the children are
// still shut down in order (router last).
func orchestrate() error {
	ctx, stop := untilSignal()
	defer stop()
	// pause waits d and reports whether the demo goes on.
	pause := func(d time.Duration) bool {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(d):
			return true
		}
	}
	dir, err := os.MkdirTemp("", "hakuban-demo")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	router := os.Getenv("HAKUBAN_ROUTER")
	if router == "" {
		router = filepath.Join(dir, "hakuban-router")
		say("building hakuban-router")
		if err := run("go", "build", "-o", router, "github.com/hakuban/hakuban/cmd/router"); err != nil {
			return err
		}
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	var procs []*exec.Cmd
	defer func() {
		for i := len(procs) - 1; i >= 0; i-- { // router last
			procs[i].Process.Signal(syscall.SIGTERM)
			procs[i].Wait()
		}
	}()
	addrFile := filepath.Join(dir, "addr")
	r, err := start("router", router, "--listen", "127.0.0.1:0", "--addr-file", addrFile, "--log-level", "warn")
	if err != nil {
		return err
	}
	procs = append(procs, r)
	url, err := waitAddr(addrFile)
	if err != nil {
		return err
	}
	say("router listening at " + url)

	say("a dashboard asks for three rooms; nobody produces anything yet")
	d, err := start("dashboard", self, "dashboard", url)
	if err != nil {
		return err
	}
	procs = append(procs, d)
	if !pause(time.Second) {
		return nil
	}

	say("two exposers join: 'small' (capacity 1) and 'big' (capacity 2); the router elects one per room")
	small, err := start("small", self, "exposer", "small", "1", url)
	if err != nil {
		return err
	}
	procs = append(procs, small)
	big, err := start("big", self, "exposer", "big", "2", url)
	if err != nil {
		return err
	}
	procs = append(procs, big)
	if !pause(3 * time.Second) {
		return nil
	}

	if dir := os.Getenv("HAKUBAN_DEMO_C"); dir != "" {
		say("C joins: examples/c/exposer.c produces {\"room\":\"kitchen\"}; examples/c/observer.c watches it too")
		for _, p := range []struct{ name, bin string }{{"c-exposer", "hakuban_example_exposer"}, {"c-observer", "hakuban_example_observer"}} {
			args := []string{url + "/"}
			if p.name == "c-observer" {
				args = append(args, "5")
			}
			c, err := start(p.name, filepath.Join(dir, p.bin), args...)
			if err != nil {
				return err
			}
			procs = append(procs, c)
		}
		if dir := os.Getenv("HAKUBAN_DEMO_PYTHON"); dir != "" {
			say("Python joins: bindings/python/examples/observer.py watches the C exposer's kitchen")
			py, err := start("py-observer", "python3", filepath.Join(dir, "observer.py"), url+"/", "5")
			if err != nil {
				return err
			}
			procs = append(procs, py)
		}
		if dir := os.Getenv("HAKUBAN_DEMO_RUBY"); dir != "" {
			say("Ruby joins: bindings/ruby/examples/router_observer.rb watches it as well")
			rb, err := start("rb-observer", "ruby", "-I"+filepath.Join(dir, "lib"), filepath.Join(dir, "examples", "router_observer.rb"), url+"/", "5")
			if err != nil {
				return err
			}
			procs = append(procs, rb)
		}
		if !pause(3 * time.Second) {
			return nil
		}
	}

	say("kill -9 'big': its rooms fail over to 'small'")
	big.Process.Signal(syscall.SIGKILL)
	big.Wait()
	procs = slices.DeleteFunc(procs, func(c *exec.Cmd) bool { return c == big })
	if !pause(3 * time.Second) {
		return nil
	}

	say("done: shutting down")
	return nil
}

func say(s string) { fmt.Printf("\n== %s\n", s) }

func run(name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	return cmd.Run()
}

// start runs a process whose output lines are prefixed with its name. The
// kernel kills it if the demo dies first (Ctrl-C, a closed pipe), so no
// router or exposer outlives the demo.
func start(name, bin string, args ...string) (*exec.Cmd, error) {
	cmd := exec.Command(bin, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go prefix(name, out)
	return cmd, nil
}

func prefix(name string, r io.Reader) {
	s := bufio.NewScanner(r)
	for s.Scan() {
		fmt.Printf("%-10s| %s\n", name, s.Text())
	}
}

func waitAddr(file string) (string, error) {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(file); err == nil && len(strings.TrimSpace(string(b))) > 0 {
			return "ws://" + strings.Fields(string(b))[0], nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return "", fmt.Errorf("router did not start")
}
