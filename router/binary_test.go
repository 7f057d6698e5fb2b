package router_test

import (
	"bufio"
	"crypto/tls"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hakuban/hakuban/core"

	"github.com/hakuban/hakuban/internal/testcert"
)

// routerBuildDir holds the built binary; TestMain removes it.
var routerBuildDir string

// buildRouter builds cmd/router once per test run into a temporary
// directory and returns the binary's path.
var buildRouter = sync.OnceValues(func() (string, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp("", "hakuban-router-test-")
	if err != nil {
		return "", err
	}
	routerBuildDir = dir
	bin := filepath.Join(dir, "hakuban-router")
	out, err := exec.Command(goBin, "build", "-o", bin, "github.com/hakuban/hakuban/cmd/router").CombinedOutput()
	if err != nil {
		return "", errors.New(string(out))
	}
	return bin, nil
})

func routerBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the router binary")
	}
	bin, err := buildRouter()
	if err != nil {
		t.Fatalf("go build ./cmd/router: %v", err)
	}
	return bin
}

// routerProcess is a hakuban-router subprocess with its JSON logs.
type routerProcess struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error // Wait's result, after done

	mu   sync.Mutex
	logs []map[string]any
}

func startRouterProcess(t *testing.T, env []string, args ...string) *routerProcess {
	t.Helper()
	p := &routerProcess{cmd: exec.Command(routerBinary(t), args...), done: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), env...)
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var rec map[string]any
			if json.Unmarshal(sc.Bytes(), &rec) != nil {
				rec = map[string]any{"msg": sc.Text()}
			}
			if testing.Verbose() {
				t.Logf("router: %s", sc.Text())
			}
			p.mu.Lock()
			p.logs = append(p.logs, rec)
			p.mu.Unlock()
		}
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
	})
	return p
}

// logged returns the value of field in the first log record with msg.
func (p *routerProcess) logged(msg, field string) (string, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, rec := range p.logs {
		if rec["msg"] == msg {
			s, ok := rec[field].(string)
			return s, ok
		}
	}
	return "", false
}

// wait waits for the process to exit and returns its exit code.
func (p *routerProcess) wait(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		t.Fatalf("router did not exit within %v", timeout)
	}
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		return ee.ExitCode()
	}
	if p.err != nil {
		t.Fatal(p.err)
	}
	return 0
}

func TestRouterBinary(t *testing.T) {
	addrFile := filepath.Join(t.TempDir(), "addr")
	// Listen and metrics addresses come from the environment, the rest
	// from flags: both paths are exercised.
	p := startRouterProcess(t,
		[]string{"HAKUBAN_LISTEN=127.0.0.1:0", "HAKUBAN_METRICS_ADDR=127.0.0.1:0", "HAKUBAN_NAME=binary"},
		"--addr-file", addrFile, "--log-format", "json", "--ping-interval", "100ms", "--close-timeout", "1s")

	var addr string
	pollFor(t, 20*time.Second, "addr file", func() bool {
		b, err := os.ReadFile(addrFile)
		addr = strings.TrimSpace(string(b))
		return err == nil && addr != ""
	})
	var metricsAddr string
	pollFor(t, 5*time.Second, "metrics address logged", func() bool {
		var ok bool
		metricsAddr, ok = p.logged("hakuban: metrics listening", "addr")
		return ok
	})
	base := "http://" + metricsAddr
	if code, body := get(t, base+"/healthz"); code != 200 {
		t.Errorf("/healthz: %d %q", code, body)
	}

	leaf := exchange(t, "leaf")
	// No reconnect attempt within the test: its error would replace the
	// close code the leaf is checked for below.
	o := core.DefaultConnectorOptions()
	o.URLs = []string{"ws://" + addr + "/"}
	o.MinBackoff, o.MaxBackoff = time.Minute, time.Minute
	c, err := leaf.Connect(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	waitConnected(t, c)
	if st := c.Status(); st.Peer != "binary" {
		t.Errorf("connected to %q, want the router named by $HAKUBAN_NAME", st.Peer)
	}
	pollFor(t, 5*time.Second, "metrics show the link", func() bool {
		_, body := get(t, base+"/metrics")
		return strings.Contains(body, `hakuban_links{role="downstream"} 1`)
	})
	if code, body := get(t, base+"/snapshot"); code != 200 || !strings.Contains(body, `"name":"binary"`) {
		t.Errorf("/snapshot: %d %s", code, body)
	}

	// Watch the leaf's status from before the signal, so the first change
	// (the disconnect) is seen even if a reconnect attempt follows at once.
	st, changed := c.Watch()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := p.wait(t, 10*time.Second); code != 0 {
		t.Fatalf("exit status %d after SIGTERM, want 0", code)
	}
	// The leaf was told the router went away, and the addr file is gone.
	for st.State == core.ConnectorConnected {
		select {
		case <-changed:
			st, changed = c.Watch()
		case <-time.After(5 * time.Second):
			t.Fatal("leaf still connected after the router exited")
		}
	}
	if err := st.LastError; err == nil || !strings.Contains(err.Error(), "(close 4004)") {
		t.Errorf("leaf saw %v, want close 4004 (going away)", err)
	}
	if _, err := os.Stat(addrFile); !os.IsNotExist(err) {
		t.Errorf("addr file left behind: %v", err)
	}
}

func TestRouterBinaryVersionAndBadFlags(t *testing.T) {
	bin := routerBinary(t)
	out, err := exec.Command(bin, "--version").Output()
	if err != nil || !strings.HasPrefix(string(out), "hakuban-router ") || !strings.Contains(string(out), "protocol "+core.ProtocolVersion) {
		t.Errorf("--version: %q, %v", out, err)
	}
	err = exec.Command(bin, "--log-format", "xml", "--listen", "127.0.0.1:0").Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 {
		t.Errorf("bad flag: %v, want exit status 2", err)
	}
}

func TestRouterBinarySIGINT(t *testing.T) {
	addrFile := filepath.Join(t.TempDir(), "addr")
	p := startRouterProcess(t, nil, "--listen", "127.0.0.1:0", "--addr-file", addrFile, "--log-format", "json")
	pollFor(t, 20*time.Second, "addr file", func() bool { _, err := os.Stat(addrFile); return err == nil })
	if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if code := p.wait(t, 10*time.Second); code != 0 {
		t.Fatalf("exit status %d after SIGINT, want 0", code)
	}
}

func TestRouterBinaryMutualTLS(t *testing.T) {
	certs := testcert.New(t)
	dir := t.TempDir()
	ca, cert, key := certs.Files(t, dir)
	addrFile := filepath.Join(dir, "addr")
	startRouterProcess(t, nil, "--listen", "127.0.0.1:0", "--addr-file", addrFile,
		"--tls-cert", cert, "--tls-key", key, "--tls-client-ca", ca)
	var addr string
	pollFor(t, 20*time.Second, "addr file", func() bool {
		b, err := os.ReadFile(addrFile)
		addr = strings.TrimSpace(string(b))
		return err == nil && addr != ""
	})
	url := "wss://" + addr + "/"

	// A client with a certificate from the CA gets in.
	trusted := exchange(t, "trusted")
	o := core.DefaultConnectorOptions()
	o.URLs = []string{url}
	o.TLS = &tls.Config{RootCAs: certs.Pool, Certificates: []tls.Certificate{certs.Cert}}
	c, err := trusted.Connect(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	waitConnected(t, c)

	// One without a client certificate does not.
	anonymous := exchange(t, "anonymous")
	o.TLS = &tls.Config{RootCAs: certs.Pool}
	o.MinBackoff, o.MaxBackoff = 10*time.Millisecond, 50*time.Millisecond
	c2, err := anonymous.Connect(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c2.Close() })
	pollFor(t, 10*time.Second, "the anonymous client to fail", func() bool {
		st := c2.Status()
		return st.LastError != nil && st.Connects == 0
	})
	if st := c2.Status(); st.State == core.ConnectorConnected {
		t.Fatal("a client without certificate connected")
	}
}
