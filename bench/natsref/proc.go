package main

// Child processes of the driver: this binary re-executed in a role. Every
// child is registered so that every exit path of the driver (return,
// error, panic, SIGINT/SIGTERM) kills it; each child also gets SIGKILL
// from the kernel if the driver dies (Pdeathsig) and exits by itself when
// its stdin closes or its lifetime (Args.MaxLife) runs out.

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

// Environment of a child: its role and its arguments (JSON of Args).
const (
	envRole = "HAKUBAN_NATSREF_ROLE"
	envArgs = "HAKUBAN_NATSREF_ARGS"
)

// event is one line a child writes on its stdout.
type event struct {
	Ev   string          `json:"ev"`
	Data json.RawMessage `json:"data,omitempty"`
}

// child is one running process.
type child struct {
	name   string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	events chan event // closed when stdout ends
	done   chan struct{}

	waitOnce sync.Once
	waitErr  error
}

var (
	childrenMu sync.Mutex
	children   = map[*child]struct{}{}
	killedAll  bool
)

// startRole re-executes this binary in role with args.
func startRole(name, role string, args Args) (*child, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(args)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), envRole+"="+role, envArgs+"="+string(b))
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
	c := &child{name: name, cmd: cmd, stdin: stdin, events: make(chan event, 64), done: make(chan struct{})}
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
			var ev event
			if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
				fmt.Fprintf(os.Stderr, "[%s] stdout: %s\n", name, sc.Text())
				continue
			}
			c.events <- ev
		}
	}()
	go func() {
		c.wait()
		close(c.done)
	}()
	return c, nil
}

func (c *child) wait() error {
	c.waitOnce.Do(func() { c.waitErr = c.cmd.Wait() })
	return c.waitErr
}

// send writes one command line to the child's stdin.
func (c *child) send(cmd string) error {
	_, err := io.WriteString(c.stdin, cmd+"\n")
	return err
}

// expect waits up to timeout for the child's next event, which must be
// ev, and decodes its data into v (may be nil).
func (c *child) expect(ev string, timeout time.Duration, v any) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	var e event
	select {
	case got, ok := <-c.events:
		if !ok {
			return fmt.Errorf("waiting for %q: %s exited (%v)", ev, c.name, c.wait())
		}
		e = got
	case <-t.C:
		return fmt.Errorf("%s: no %q within %v", c.name, ev, timeout)
	}
	if e.Ev == "error" {
		var s string
		json.Unmarshal(e.Data, &s)
		return fmt.Errorf("%s: %s", c.name, s)
	}
	if e.Ev != ev {
		return fmt.Errorf("%s: got event %q, want %q", c.name, e.Ev, ev)
	}
	if v != nil {
		if err := json.Unmarshal(e.Data, v); err != nil {
			return fmt.Errorf("%s: %q: %w", c.name, ev, err)
		}
	}
	return nil
}

// stop asks the child to exit (closes its stdin), waits up to grace, then
// kills it. It always unregisters the child.
func (c *child) stop(grace time.Duration) {
	c.stdin.Close()
	select {
	case <-c.done:
	case <-time.After(grace):
		if c.cmd.Process != nil {
			_ = c.cmd.Process.Signal(syscall.SIGKILL)
		}
		<-c.done
	}
	childrenMu.Lock()
	delete(children, c)
	childrenMu.Unlock()
}

// killAll kills every child still running and refuses new ones: the
// driver's last word on every exit path.
func killAll() {
	childrenMu.Lock()
	killedAll = true
	cs := make([]*child, 0, len(children))
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

// run is one repetition of one scenario: the processes it started.
type run struct {
	cfg  *config
	kids []*child
}

func (r *run) role(name, role string, a Args) (*child, error) {
	a.Name = name
	a.Timeout, a.MaxLife, a.SubMode = r.cfg.timeout, r.cfg.maxLife, r.cfg.subMode
	c, err := startRole(name, role, a)
	if err != nil {
		return nil, err
	}
	r.kids = append(r.kids, c)
	return c, nil
}

// close stops every process of the run, in parallel; SIGKILL after 5 s.
func (r *run) close() {
	var wg sync.WaitGroup
	for _, c := range r.kids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.stop(5 * time.Second)
		}()
	}
	wg.Wait()
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
