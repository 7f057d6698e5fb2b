package harness

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

var (
	emitMu   sync.Mutex
	quitMu   sync.Mutex
	quitting bool
	atQuit   []func()
	commands = make(chan string, 16)
)

// Args decodes this process's arguments (StartRole's args) into v.
func Args(v any) error {
	if err := json.Unmarshal([]byte(os.Getenv(envArgs)), v); err != nil {
		return fmt.Errorf("bad %s: %w", envArgs, err)
	}
	return nil
}

// Emit writes one event line.
func Emit(ev string, data any) {
	var raw json.RawMessage
	if data != nil {
		b, err := json.Marshal(data)
		if err != nil {
			b, _ = json.Marshal(err.Error())
			ev = "error"
		}
		raw = b
	}
	b, _ := json.Marshal(Event{Ev: ev, Data: raw})
	emitMu.Lock()
	os.Stdout.Write(append(b, '\n'))
	emitMu.Unlock()
}

// Fail reports err to the driver and exits.
func Fail(err error) {
	Emit("error", err.Error())
	Quit(1)
}

// AtQuit registers f to run before the process exits through Quit (to
// finish a profile or a trace).
func AtQuit(f func()) {
	quitMu.Lock()
	atQuit = append(atQuit, f)
	quitMu.Unlock()
}

// Quit runs the AtQuit functions and exits; it does not return.
func Quit(code int) {
	quitMu.Lock()
	if quitting {
		quitMu.Unlock()
		select {} // another goroutine is exiting
	}
	quitting = true
	fs := atQuit
	quitMu.Unlock()
	for _, f := range fs {
		f()
	}
	os.Exit(code)
}

// Commands delivers the driver's commands, one line each.
func Commands() <-chan string { return commands }

// WaitCommand returns the next command from the driver, which must be
// one of want; it fails after timeout.
func WaitCommand(timeout time.Duration, want ...string) string {
	select {
	case c := <-commands:
		if !slices.Contains(want, c) {
			Fail(fmt.Errorf("command %q, want one of %q", c, want))
		}
		return c
	case <-time.After(timeout):
		Fail(fmt.Errorf("no %q command within %v", want, timeout))
	}
	panic("unreachable")
}

// Serve runs role's work in this child and never returns: it exits when
// the driver closes stdin (or dies), on SIGINT/SIGTERM, when maxLife runs
// out (status 3), or when run fails (status 1, the error reported). A run
// that returns nil leaves the process serving until one of those.
func Serve(name string, maxLife time.Duration, run func() error) {
	go func() {
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() {
			commands <- sc.Text()
		}
		Quit(0)
	}()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-sigs
		Quit(0)
	}()
	time.AfterFunc(maxLife, func() {
		fmt.Fprintf(os.Stderr, "%s: lifetime of %v over, exiting\n", name, maxLife)
		Quit(3)
	})
	if err := run(); err != nil {
		Fail(err)
	}
	select {}
}
