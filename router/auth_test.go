package router_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hakuban/hakuban/core"
	"github.com/hakuban/hakuban/router"
)

func sha256Hex(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// authFile is an auth file with a reader (observes tag "public" and one
// object, by hashed token), a writer (everything, plain token) and guests.
var authFile = `{
  "clients": [
    {"name": "reader", "token_sha256": "` + sha256Hex("reader-secret") + `",
     "observe": {"tags": ["public"], "objects": [{"json": {"status": 1}}]}},
    {"name": "writer", "token": "writer-secret", "observe": "*", "expose": "*"}
  ],
  "anonymous": {"name": "guest", "observe": {"tags": [{"room": 12}]}}
}`

func TestParseAuth(t *testing.T) {
	a, err := router.ParseAuth([]byte(authFile))
	if err != nil {
		t.Fatal(err)
	}
	reader, err := a.Authorize([]byte("reader-secret"))
	if err != nil || reader.Name() != "reader" {
		t.Fatalf("reader: %v %v", reader.Name(), err)
	}
	pub := core.MustTagDescriptor("public")
	if !reader.MayObserveObject(core.MustObjectDescriptor("x", pub)) || !reader.MayObserveObject(core.MustObjectDescriptor(map[string]any{"status": 1})) ||
		reader.MayObserveObject(core.MustObjectDescriptor("x")) || reader.MayExposeObject(core.MustObjectDescriptor("x", pub)) || reader.MayExposeTag(pub) {
		t.Error("reader's permissions")
	}
	writer, err := a.Authorize([]byte("writer-secret"))
	if err != nil || !writer.MayExposeTag(core.MustTagDescriptor("anything")) || !writer.MayObserveObject(core.MustObjectDescriptor(1)) {
		t.Fatalf("writer: %v %v", writer.Name(), err)
	}
	guest, err := a.Authorize(nil)
	if err != nil || guest.Name() != "guest" || !guest.MayObserveTag(core.MustTagDescriptor(map[string]any{"room": 12})) || guest.MayObserveTag(pub) {
		t.Fatalf("guest: %v %v", guest.Name(), err)
	}
	// The hash is not a token.
	for _, tok := range []string{"unknown", sha256Hex("reader-secret"), "reader-secret "} {
		if _, err := a.Authorize([]byte(tok)); err == nil || !strings.Contains(err.Error(), "unknown token") {
			t.Errorf("token %q: %v", tok, err)
		}
	}
	noGuests, err := router.ParseAuth([]byte(`{"clients": []}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := noGuests.Authorize(nil); err == nil || !strings.Contains(err.Error(), "token is required") {
		t.Errorf("no token without an anonymous entry: %v", err)
	}
}

func TestParseAuthErrors(t *testing.T) {
	for _, c := range []struct{ file, want string }{
		{`{"clients": [`, "invalid JSON"},
		{`{"clients": []} {}`, "more than one value"},
		{`{"client": []}`, `unknown field "client"`},
		{`{"clients": [{"token": "t"}]}`, "clients[0]: no name"},
		{`{"clients": [{"name": "a"}]}`, `clients[0] ("a"): no token`},
		{`{"clients": [{"name": "a", "token": ""}]}`, "empty token"},
		{`{"clients": [{"name": "a", "token": "t", "token_sha256": "` + sha256Hex("t") + `"}]}`, "not both"},
		{`{"clients": [{"name": "a", "token_sha256": "abc"}]}`, "64 hex digits"},
		{`{"clients": [{"name": "a", "token": "t", "observe": "all"}]}`, `observe: want "*"`},
		{`{"clients": [{"name": "a", "token": "t", "expose": {"tag": ["x"]}}]}`, `expose: want "*"`},
		{`{"clients": [{"name": "a", "token": "t", "observe": {"objects": [{"tags": ["x"]}]}}]}`, "observe"},
		{`{"clients": [{"name": "a", "token": "t"}, {"name": "b", "token_sha256": "` + sha256Hex("t") + `"}]}`, `token of "a" used again`},
		{`{"clients": [{"name": "a", "token": "t"}, {"name": "a", "token": "u"}]}`, "name used twice"},
		{`{"anonymous": {"name": "g", "token": "t"}}`, "anonymous: has no token"},
	} {
		_, err := router.ParseAuth([]byte(c.file))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error saying %q", c.file, err, c.want)
		}
	}
	// A bad file is a startup error naming the file.
	path := filepath.Join(t.TempDir(), "auth.json")
	os.WriteFile(path, []byte(`{"clients": [{"name": "a"}]}`), 0o600)
	cfg := testConfig(t)
	cfg.AuthFile = path
	if _, err := router.New(cfg); err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "no token") {
		t.Errorf("router.New with a bad auth file: %v", err)
	}
	cfg.AuthFile = filepath.Join(t.TempDir(), "missing.json")
	if _, err := router.New(cfg); err == nil || !strings.Contains(err.Error(), "missing.json") {
		t.Errorf("router.New with a missing auth file: %v", err)
	}
}

// connectWithToken links ex to urls with quick retries and pings, sending
// token ("" for none).
func connectWithToken(t *testing.T, ex *core.Exchange, token string, urls ...string) *core.Connector {
	t.Helper()
	o := core.DefaultConnectorOptions()
	o.URLs = urls
	o.Token = []byte(token)
	o.MinBackoff, o.MaxBackoff, o.StableSession = 10*time.Millisecond, 100*time.Millisecond, 100*time.Millisecond
	o.PingInterval, o.PingTimeout = 100*time.Millisecond, time.Second
	c, err := ex.Connect(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestRouterAuthFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "auth.json")
	if err := os.WriteFile(path, []byte(authFile), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t)
	cfg.AuthFile = path
	r := startRouter(t, cfg)
	url := r.URLs()[0]

	writerEx := exchange(t, "writer")
	waitConnected(t, connectWithToken(t, writerEx, "writer-secret", url))
	readerEx := exchange(t, "reader")
	waitConnected(t, connectWithToken(t, readerEx, "reader-secret", url))

	pub := core.MustObjectDescriptor("pub", core.MustTagDescriptor("public"))
	priv := core.MustObjectDescriptor("priv", core.MustTagDescriptor("private"))
	expPub, _ := writerEx.ExposeObject(pub, 1)
	expPriv, _ := writerEx.ExposeObject(priv, 1)
	writerObs, _ := writerEx.ObserveObject(priv) // the writer may observe anything

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	obsPub, _ := readerEx.ObserveObject(pub)
	obsPriv, _ := readerEx.ObserveObject(priv)
	if _, err := obsPriv.Next(ctx); !errors.Is(err, core.ErrRefused) || !strings.Contains(err.Error(), `"reader" may not observe object`) {
		t.Fatalf("reader observing priv: %v", err)
	}
	if obsPriv.Status() != core.StatusRefused {
		t.Fatalf("status %v", obsPriv.Status())
	}
	readerExp, _ := readerEx.ExposeObject(pub, 1)
	if _, err := readerExp.Next(ctx); !errors.Is(err, core.ErrRefused) {
		t.Fatalf("reader exposing pub: %v", err)
	}

	sink, err := expPub.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sink.Send(core.ObjectState{Data: []byte("for everyone")})
	if st, err := obsPub.Next(ctx); err != nil || string(st.Data) != "for everyone" {
		t.Fatalf("reader observing pub: %q %v", st.Data, err)
	}
	sinkPriv, err := expPriv.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sinkPriv.Send(core.ObjectState{Data: []byte("for the writer")})
	if st, err := writerObs.Next(ctx); err != nil || string(st.Data) != "for the writer" {
		t.Fatalf("writer observing priv: %q %v", st.Data, err)
	}

	_, body := get(t, "http://"+r.MetricsAddr().String()+"/metrics")
	if !strings.Contains(body, "hakuban_refused_contracts_total 2\n") {
		t.Errorf("metrics do not count the 2 refused contracts:\n%s", body)
	}

	// Guests (no token) and unknown tokens.
	guestEx := exchange(t, "guest")
	waitConnected(t, connectWithToken(t, guestEx, "", url))
	badEx := exchange(t, "bad")
	bad := connectWithToken(t, badEx, "guess", url)
	pollFor(t, 10*time.Second, "unknown token refused", func() bool { return bad.Status().State == core.ConnectorRefused })
	if err := bad.Status().LastError; err == nil || !strings.Contains(err.Error(), "unknown token") || !strings.Contains(err.Error(), "4002") {
		t.Errorf("unknown token: %v", err)
	}

	// A reload applies to open links at once. Taking "public" from the
	// reader revokes its observation of pub on the link it has open.
	narrower := strings.Replace(authFile, `"tags": ["public"]`, `"tags": []`, 1)
	if err := os.WriteFile(path, []byte(narrower), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := r.ReloadAuth(); err != nil {
		t.Fatal(err)
	}
	for {
		_, err := obsPub.Next(ctx)
		if err == nil {
			continue // the last state, no longer synchronized
		}
		if !errors.Is(err, core.ErrRefused) || !strings.Contains(err.Error(), `"reader" may not observe object`) {
			t.Fatalf("reader's observation of pub after the reload: %v", err)
		}
		break
	}
	_, body = get(t, "http://"+r.MetricsAddr().String()+"/metrics")
	if !strings.Contains(body, "hakuban_refused_contracts_total 3\n") {
		t.Errorf("metrics do not count the revoked contract:\n%s", body)
	}
	// Rights a reload adds apply to what the open link declares next.
	wider := strings.Replace(authFile, `"tags": ["public"]`, `"tags": ["public", "private"]`, 1)
	if err := os.WriteFile(path, []byte(wider), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := r.ReloadAuth(); err != nil {
		t.Fatal(err)
	}
	priv2 := core.MustObjectDescriptor("priv2", core.MustTagDescriptor("private"))
	expPriv2, _ := writerEx.ExposeObject(priv2, 1)
	again, _ := readerEx.ObserveObject(priv2)
	sinkPriv2, err := expPriv2.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sinkPriv2.Send(core.ObjectState{Data: []byte("now allowed")})
	if st, err := again.Next(ctx); err != nil || string(st.Data) != "now allowed" {
		t.Fatalf("the open link after a widening reload: %q %v", st.Data, err)
	}
	reader2 := exchange(t, "reader2")
	waitConnected(t, connectWithToken(t, reader2, "reader-secret", url))
	obs2, _ := reader2.ObserveObject(priv)
	if st, err := obs2.Next(ctx); err != nil || string(st.Data) != "for the writer" {
		t.Fatalf("new reader link after the reload: %q %v", st.Data, err)
	}
	// A broken file is not loaded; the previous one stays.
	os.WriteFile(path, []byte(`{`), 0o600)
	if err := r.ReloadAuth(); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("reloading a broken file: %v", err)
	}
	reader3 := exchange(t, "reader3")
	waitConnected(t, connectWithToken(t, reader3, "reader-secret", url))
}

// TestRouterBinaryAuthFile: $HAKUBAN_AUTH_FILE is loaded at startup, a bad
// file stops the router with a clear error, and SIGHUP reloads the file.
func TestRouterBinaryAuthFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "auth.json")
	os.WriteFile(path, []byte(`{"clients": [{"name": "old", "token": "old-token"}]}`), 0o600)
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"clients": [{"name": "x", "token": "t", "observe": "everything"}]}`), 0o600)

	p := startRouterProcess(t, []string{"HAKUBAN_AUTH_FILE=" + bad}, "--listen", "127.0.0.1:0", "--log-format", "json")
	if code := p.wait(t, 20*time.Second); code != 2 {
		t.Fatalf("exit status %d with a bad auth file, want 2", code)
	}
	if msg, _ := p.logged("hakuban: invalid configuration", "error"); !strings.Contains(msg, bad) || !strings.Contains(msg, "observe") {
		t.Fatalf("the error does not name the file and the problem: %q", msg)
	}

	addrFile := filepath.Join(dir, "addr")
	p = startRouterProcess(t, []string{"HAKUBAN_AUTH_FILE=" + path}, "--listen", "127.0.0.1:0", "--addr-file", addrFile, "--log-format", "json")
	var addr string
	pollFor(t, 20*time.Second, "addr file", func() bool {
		b, err := os.ReadFile(addrFile)
		addr = strings.TrimSpace(string(b))
		return err == nil && addr != ""
	})
	url := "ws://" + addr + "/"
	oldOpen := connectWithToken(t, exchange(t, "old"), "old-token", url)
	waitConnected(t, oldOpen)

	os.WriteFile(path, []byte(`{"clients": [{"name": "new", "token": "new-token"}]}`), 0o600)
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	pollFor(t, 10*time.Second, "reload logged", func() bool { _, ok := p.logged("hakuban: auth file reloaded", "file"); return ok })
	// The open link of the token the file dropped is closed, for good.
	pollFor(t, 10*time.Second, "the open old-token link closed", func() bool { return oldOpen.Status().State == core.ConnectorRefused })
	if err := oldOpen.Status().LastError; err == nil || !strings.Contains(err.Error(), "4002") {
		t.Errorf("the open old-token link: %v", err)
	}
	waitConnected(t, connectWithToken(t, exchange(t, "new"), "new-token", url))
	old := connectWithToken(t, exchange(t, "old2"), "old-token", url)
	pollFor(t, 10*time.Second, "the old token refused", func() bool { return old.Status().State == core.ConnectorRefused })
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := p.wait(t, 10*time.Second); code != 0 {
		t.Fatalf("exit status %d after SIGTERM", code)
	}
}
