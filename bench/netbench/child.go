package main

// The child side: a process started by the driver in a role. It reads
// commands from stdin (one per line), writes events as JSON lines on
// stdout, and exits when stdin closes, on SIGINT/SIGTERM, or when its
// lifetime runs out, writing its CPU profile first when it has one.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Args are a child's arguments; each role uses some of them.
type Args struct {
	Name string
	// URL of the router (ws://host:port/) or Addr of a TCP peer.
	URL, Addr string
	// N is a count of messages, versions, objects or exchanges.
	N int
	// Warmup messages excluded from the statistics.
	Warmup int
	// Interval between paced messages; Duration of an unpaced run.
	Interval, Duration time.Duration
	// Size of a state or message in bytes.
	Size int
	// First is the number of this process's first object or exchange.
	First int
	// Objects per exchange or per process.
	Objects int
	// MaxObjects is the link limit the client announces (objects the
	// router may declare to it).
	MaxObjects int
	// Timeout bounds every wait of the role.
	Timeout time.Duration
	// MaxLife: the child exits after this long whatever happens.
	MaxLife time.Duration
	// CPUProfile is a file to write a CPU profile to ("" for none).
	CPUProfile string
	// Router role: listen address, address file, metrics address.
	Listen, AddrFile, MetricsAddr string
}

var (
	emitMu   sync.Mutex
	quitOnce sync.Once
	profOn   bool
	profPath string
	commands = make(chan string, 16)
)

// emit writes one event line.
func emit(ev string, data any) {
	var raw json.RawMessage
	if data != nil {
		b, err := json.Marshal(data)
		if err != nil {
			b, _ = json.Marshal(err.Error())
			ev = "error"
		}
		raw = b
	}
	b, _ := json.Marshal(event{Ev: ev, Data: raw})
	emitMu.Lock()
	os.Stdout.Write(append(b, '\n'))
	emitMu.Unlock()
}

// fail reports err to the driver and exits.
func fail(err error) {
	emit("error", err.Error())
	quit(1)
}

// traceOn: an execution trace is being written (NETBENCH_TRACE_DIR).
var traceOn bool

// quit stops the profile and exits.
func quit(code int) {
	quitOnce.Do(func() {
		if traceOn {
			trace.Stop()
		}
		if profOn {
			pprof.StopCPUProfile()
			// Mutex contention (where holders delayed others) and blocking
			// (where goroutines waited), next to the CPU profile.
			base := strings.TrimSuffix(profPath, ".prof")
			for _, name := range []string{"mutex", "block"} {
				if f, err := os.Create(base + "." + name + ".prof"); err == nil {
					pprof.Lookup(name).WriteTo(f, 0)
					f.Close()
				}
			}
		}
		os.Exit(code)
	})
	select {} // another goroutine is exiting
}

// waitCommand returns the next command from the driver, which must be
// one of want; it fails after timeout.
func waitCommand(timeout time.Duration, want ...string) string {
	select {
	case c := <-commands:
		if !slices.Contains(want, c) {
			fail(fmt.Errorf("command %q, want one of %q", c, want))
		}
		return c
	case <-time.After(timeout):
		fail(fmt.Errorf("no %q command within %v", want, timeout))
	}
	panic("unreachable")
}

// childMain runs this process as role; it does not return.
func childMain(role string) {
	var a Args
	if err := json.Unmarshal([]byte(os.Getenv(envArgs)), &a); err != nil {
		fmt.Fprintln(os.Stderr, "netbench child: bad", envArgs, err)
		os.Exit(2)
	}
	if a.MaxLife <= 0 {
		a.MaxLife = 2 * time.Minute
	}
	if a.Timeout <= 0 {
		a.Timeout = 30 * time.Second
	}
	if dir := os.Getenv("NETBENCH_TRACE_DIR"); dir != "" {
		// An execution trace per process (go tool trace): where
		// goroutines waited to run, which a CPU profile does not show.
		f, err := os.Create(fmt.Sprintf("%s/%s-%d.trace", dir, role, os.Getpid()))
		if err == nil {
			err = trace.Start(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		traceOn = true
	}
	if a.CPUProfile != "" {
		f, err := os.Create(a.CPUProfile)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		profOn, profPath = true, a.CPUProfile
		runtime.SetMutexProfileFraction(10)
		runtime.SetBlockProfileRate(int(100 * time.Microsecond))
	}
	// Exit when the driver closes stdin (or dies), on a signal, or when
	// the lifetime runs out.
	go func() {
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() {
			commands <- sc.Text()
		}
		quit(0)
	}()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-sigs
		quit(0)
	}()
	time.AfterFunc(a.MaxLife, func() {
		fmt.Fprintf(os.Stderr, "netbench %s: lifetime of %v over, exiting\n", role, a.MaxLife)
		quit(3)
	})
	f, ok := roles[role]
	if !ok {
		fmt.Fprintln(os.Stderr, "netbench: unknown role", role)
		os.Exit(2)
	}
	if err := f(a); err != nil {
		fail(err)
	}
	// Roles that return stay alive (their goroutines serve) until the
	// driver closes stdin.
	select {}
}
