package main

// The child side: a process started by the driver in a role. It reads
// commands from stdin (one per line), writes events as JSON lines on
// stdout, and exits when stdin closes, on SIGINT/SIGTERM, or when its
// lifetime runs out.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"sync"
	"syscall"
	"time"
)

// Args are a child's arguments; each role uses some of them.
type Args struct {
	Name string
	// URL of the nats-server (nats://host:port) or Addr of a TCP peer.
	URL, Addr string
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
}

var (
	emitMu   sync.Mutex
	quitOnce sync.Once
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

func quit(code int) {
	quitOnce.Do(func() { os.Exit(code) })
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
		fmt.Fprintln(os.Stderr, "natsref child: bad", envArgs, err)
		os.Exit(2)
	}
	if a.MaxLife <= 0 {
		a.MaxLife = 2 * time.Minute
	}
	if a.Timeout <= 0 {
		a.Timeout = 30 * time.Second
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
		fmt.Fprintf(os.Stderr, "natsref %s: lifetime of %v over, exiting\n", role, a.MaxLife)
		quit(3)
	})
	f, ok := roles[role]
	if !ok {
		fmt.Fprintln(os.Stderr, "natsref: unknown role", role)
		os.Exit(2)
	}
	if err := f(a); err != nil {
		fail(err)
	}
	// Roles that return stay alive (the server serves) until the driver
	// closes stdin.
	select {}
}
