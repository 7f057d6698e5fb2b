package harness

// Child processes of a driver: other binaries (StartChild) or this binary
// re-executed in a role (StartRole). Every child is registered so that
// every exit path of the driver (return, error, panic, SIGINT/SIGTERM:
// the driver calls KillAll) kills it; each child also gets SIGKILL from
// the kernel if the driver dies (Pdeathsig) and exits by itself when its
// stdin closes or its lifetime runs out (Serve).

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Environment of a child: its role and its arguments (JSON).
const (
	envRole = "HAKUBAN_BENCH_ROLE"
	envArgs = "HAKUBAN_BENCH_ARGS"
)

// Role returns the role this process was started in by StartRole, "" for
// the driver.
func Role() string { return os.Getenv(envRole) }

// Event is one line a child writes on its stdout.
type Event struct {
	Ev   string          `json:"ev"`
	Data json.RawMessage `json:"data,omitempty"`
	// From is the child that sent it (set by the driver).
	From *Child `json:"-"`
}

// Child is one running process.
type Child struct {
	Name   string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	events chan Event // closed when stdout ends
	done   chan struct{}
	// Term: stop with SIGTERM (for a binary that does not read stdin)
	// instead of closing stdin.
	Term bool

	waitOnce sync.Once
	waitErr  error
}

var (
	childrenMu sync.Mutex
	children   = map[*Child]struct{}{}
	killedAll  bool
)

// StartChild runs argv (a binary and its arguments). env is added to the
// driver's environment.
func StartChild(name string, argv []string, env []string) (*Child, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = &prefixWriter{prefix: "[" + name + "] ", w: os.Stderr}
	// The kernel kills the child when the driver dies, whatever the cause.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	c := &Child{Name: name, cmd: cmd, stdin: stdin, events: make(chan Event, 64), done: make(chan struct{})}
	childrenMu.Lock()
	if killedAll {
		childrenMu.Unlock()
		return nil, errors.New("shutting down")
	}
	if err := cmd.Start(); err != nil {
		childrenMu.Unlock()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	children[c] = struct{}{}
	childrenMu.Unlock()
	go func() {
		defer close(c.events)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 64<<20)
		for sc.Scan() {
			var ev Event
			if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
				fmt.Fprintf(os.Stderr, "[%s] stdout: %s\n", name, sc.Text())
				continue
			}
			ev.From = c
			c.events <- ev
		}
	}()
	go func() {
		c.Wait()
		close(c.done)
	}()
	return c, nil
}

// StartRole re-executes this binary in role with args.
func StartRole(name, role string, args any) (*Child, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(args)
	if err != nil {
		return nil, err
	}
	return StartChild(name, []string{self}, []string{envRole + "=" + role, envArgs + "=" + string(b)})
}

// Done is closed when the child has exited.
func (c *Child) Done() <-chan struct{} { return c.done }

// Wait waits for the child to exit and returns its exit error.
func (c *Child) Wait() error {
	c.waitOnce.Do(func() { c.waitErr = c.cmd.Wait() })
	return c.waitErr
}

// Send writes one command line to the child's stdin.
func (c *Child) Send(cmd string) error {
	_, err := io.WriteString(c.stdin, cmd+"\n")
	return err
}

// Next returns the child's next event, failing after timeout or when the
// child exits.
func (c *Child) Next(timeout time.Duration) (Event, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case ev, ok := <-c.events:
		if !ok {
			return Event{}, fmt.Errorf("%s exited (%v)", c.Name, c.Wait())
		}
		if ev.Ev == "error" {
			var s string
			json.Unmarshal(ev.Data, &s)
			return ev, fmt.Errorf("%s: %s", c.Name, s)
		}
		return ev, nil
	case <-t.C:
		return Event{}, fmt.Errorf("%s: no event within %v", c.Name, timeout)
	}
}

// Expect waits for the event named ev and decodes its data into v (may be nil).
func (c *Child) Expect(ev string, timeout time.Duration, v any) error {
	deadline := time.Now().Add(timeout)
	for {
		e, err := c.Next(time.Until(deadline))
		if err != nil {
			return fmt.Errorf("waiting for %q: %w", ev, err)
		}
		if e.Ev != ev {
			return fmt.Errorf("%s: got event %q, want %q", c.Name, e.Ev, ev)
		}
		if v != nil {
			if err := json.Unmarshal(e.Data, v); err != nil {
				return fmt.Errorf("%s: %q: %w", c.Name, ev, err)
			}
		}
		return nil
	}
}

// Stop asks the child to exit (closes its stdin), waits up to grace, then
// kills it. It always unregisters the child.
func (c *Child) Stop(grace time.Duration) {
	c.stdin.Close()
	if c.Term && c.cmd.Process != nil {
		_ = c.cmd.Process.Signal(syscall.SIGTERM)
	}
	select {
	case <-c.done:
	case <-time.After(grace):
		c.Kill()
	}
	childrenMu.Lock()
	delete(children, c)
	childrenMu.Unlock()
}

// Kill sends SIGKILL and reaps the child.
func (c *Child) Kill() {
	if c.cmd.Process != nil {
		_ = c.cmd.Process.Signal(syscall.SIGKILL)
	}
	<-c.done
	childrenMu.Lock()
	delete(children, c)
	childrenMu.Unlock()
}

// StopAll stops every child of a scenario: a graceful stop (stdin closed,
// so profiles get written) in parallel, SIGKILL after grace.
func StopAll(cs []*Child, grace time.Duration) {
	var wg sync.WaitGroup
	for _, c := range cs {
		if c == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.Stop(grace)
		}()
	}
	wg.Wait()
}

// KillAll kills every child still running and refuses new ones. It is
// the driver's last word on every exit path.
func KillAll() {
	childrenMu.Lock()
	killedAll = true
	cs := make([]*Child, 0, len(children))
	for c := range children {
		cs = append(cs, c)
	}
	childrenMu.Unlock()
	for _, c := range cs {
		if c.cmd.Process != nil {
			_ = c.cmd.Process.Signal(syscall.SIGKILL)
		}
	}
	for _, c := range cs {
		select {
		case <-c.done:
		case <-time.After(5 * time.Second):
		}
	}
}

// prefixWriter prefixes each line written to w.
type prefixWriter struct {
	mu     sync.Mutex
	prefix string
	w      io.Writer
	mid    bool
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var sb strings.Builder
	for _, line := range strings.SplitAfter(string(b), "\n") {
		if line == "" {
			continue
		}
		if !p.mid {
			sb.WriteString(p.prefix)
		}
		sb.WriteString(line)
		p.mid = !strings.HasSuffix(line, "\n")
	}
	_, err := io.WriteString(p.w, sb.String())
	return len(b), err
}
