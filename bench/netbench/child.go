package main

// The child side: this binary started by the driver in a role (see
// bench/internal/harness for the protocol), with an optional CPU profile
// and execution trace.

import (
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"strings"
	"time"

	"github.com/hakuban/hakuban/bench/internal/harness"
)

// Args are a child's arguments; each role uses some of them.
type Args struct {
	Name string
	// URL of the router (ws://host:port/).
	URL string
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
	// Notify: the latency and fan-out observers take states in their
	// contracts' SetNotify hooks instead of with Next.
	Notify bool
	// MaxObjects is the link limit the client announces (objects the
	// router may declare to it).
	MaxObjects int
	// Timeout bounds every wait of the role.
	Timeout time.Duration
	// MaxLife: the child exits after this long whatever happens.
	MaxLife time.Duration
	// Floor: the arguments of a raw TCP floor role (harness.TCP.Role).
	Floor harness.TCP
	// CPUProfile is a file to write a CPU profile to ("" for none).
	CPUProfile string
	// Router role: listen address, address file, metrics address.
	Listen, AddrFile, MetricsAddr string
}

// childMain runs this process as role; it does not return.
func childMain(role string) {
	var a Args
	if err := harness.Args(&a); err != nil {
		fmt.Fprintln(os.Stderr, "netbench child:", err)
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
		harness.AtQuit(trace.Stop)
	}
	if a.CPUProfile != "" {
		startProfiles(a.CPUProfile)
	}
	run := a.Floor.Role(role)
	if f, ok := roles[role]; ok {
		run = func() error { return f(a) }
	}
	if run == nil {
		fmt.Fprintln(os.Stderr, "netbench: unknown role", role)
		os.Exit(2)
	}
	// Roles that return stay alive (their goroutines serve) until the
	// driver closes stdin.
	harness.Serve("netbench "+role, a.MaxLife, run)
}

// startProfiles starts a CPU profile into path and, when the process
// quits, writes it with the mutex contention (where holders delayed
// others) and blocking (where goroutines waited) profiles next to it.
func startProfiles(path string) {
	f, err := os.Create(path)
	if err == nil {
		err = pprof.StartCPUProfile(f)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	runtime.SetMutexProfileFraction(10)
	runtime.SetBlockProfileRate(int(100 * time.Microsecond))
	harness.AtQuit(func() {
		pprof.StopCPUProfile()
		base := strings.TrimSuffix(path, ".prof")
		for _, name := range []string{"mutex", "block"} {
			if f, err := os.Create(base + "." + name + ".prof"); err == nil {
				pprof.Lookup(name).WriteTo(f, 0)
				f.Close()
			}
		}
	})
}
