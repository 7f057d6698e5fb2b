package harness

import (
	"fmt"
	"math"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

// RaiseFileLimit sets the soft RLIMIT_NOFILE to the hard limit and warns
// (as prog) when it is below need. Calling Setrlimit explicitly (rather
// than relying on the Go runtime's own raise) makes child processes
// inherit it.
func RaiseFileLimit(prog string, need uint64) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return
	}
	lim.Cur = lim.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		fmt.Fprintf(os.Stderr, "%s: raising the file limit: %v\n", prog, err)
	}
	if lim.Cur < need {
		fmt.Fprintf(os.Stderr, "%s: warning: only %d file descriptors; the 1,000-connection scenarios need ~%d\n", prog, lim.Cur, need)
	}
}

// Format prints v in unit.
func Format(v float64, unit string) string {
	switch {
	case math.IsNaN(v):
		return "-"
	case unit == "/s" && v >= 1e6:
		return fmt.Sprintf("%.2f M/s", v/1e6)
	case unit == "/s" && v >= 1e3:
		return fmt.Sprintf("%.0f k/s", v/1e3)
	case unit == "/s":
		return fmt.Sprintf("%.0f /s", v)
	case unit == "s":
		return fmt.Sprintf("%.2f s", v)
	case unit == "%":
		return fmt.Sprintf("%.1f %%", v)
	case unit == "ms" && v < 10:
		return fmt.Sprintf("%.2f ms", v)
	}
	return fmt.Sprintf("%.0f %s", v, unit)
}

// LoadAverage returns the 1-, 5- and 15-minute load averages: these
// machines are shared, and the figures mean little when others are busy.
func LoadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// Guard makes every way out of a driver kill its children: call it before
// starting any and defer what it returns (it covers return and panic). On
// SIGINT or SIGTERM it runs onSignal (may be nil), kills the children and
// exits with status 130.
func Guard(prog string, onSignal func()) (release func()) {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		s := <-sigs
		fmt.Fprintf(os.Stderr, "%s: %v: stopping every process\n", prog, s)
		if onSignal != nil {
			onSignal()
		}
		KillAll()
		os.Exit(130)
	}()
	return func() {
		if p := recover(); p != nil {
			KillAll()
			panic(p)
		}
		KillAll()
	}
}

// Select returns the items of all named in the comma-separated names, in
// the order of names; an unknown name is an error.
func Select[S any](names string, all []S, name func(S) string) ([]S, error) {
	var out []S
	for _, n := range strings.Split(names, ",") {
		n = strings.TrimSpace(n)
		found := false
		for _, s := range all {
			if name(s) == n {
				out, found = append(out, s), true
			}
		}
		if !found && n != "" {
			return nil, fmt.Errorf("unknown scenario %q", n)
		}
	}
	return out, nil
}
