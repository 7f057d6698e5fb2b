package main

// The child side: this binary started by the driver in a role (see
// bench/internal/harness for the protocol).

import (
	"fmt"
	"os"
	"time"

	"github.com/hakuban/hakuban/bench/internal/harness"
)

// Args are a child's arguments; each role uses some of them.
type Args struct {
	Name string
	// URL of the nats-server (nats://host:port).
	URL string
	// N is a count of messages or of subscriber connections.
	N int
	// Warmup messages excluded from the statistics.
	Warmup int
	// Messages a fan-out subscriber waits for.
	Messages int
	// Interval between paced messages; Duration of the paced run.
	Interval, Duration time.Duration
	// Size of a message in bytes.
	Size int
	// SubMode: "sync" or "async" (see -sub).
	SubMode string
	// Timeout bounds every wait of the role.
	Timeout time.Duration
	// MaxLife: the child exits after this long whatever happens.
	MaxLife time.Duration
	// Floor: the arguments of a raw TCP floor role (harness.TCP.Role).
	Floor harness.TCP
}

// childMain runs this process as role; it does not return.
func childMain(role string) {
	var a Args
	if err := harness.Args(&a); err != nil {
		fmt.Fprintln(os.Stderr, "natsref child:", err)
		os.Exit(2)
	}
	if a.MaxLife <= 0 {
		a.MaxLife = 2 * time.Minute
	}
	if a.Timeout <= 0 {
		a.Timeout = 30 * time.Second
	}
	run := a.Floor.Role(role)
	if f, ok := roles[role]; ok {
		run = func() error { return f(a) }
	}
	if run == nil {
		fmt.Fprintln(os.Stderr, "natsref: unknown role", role)
		os.Exit(2)
	}
	// Roles that return stay alive (the server serves) until the driver
	// closes stdin.
	harness.Serve("natsref "+role, a.MaxLife, run)
}
