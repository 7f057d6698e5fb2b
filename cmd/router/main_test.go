package main

import (
	"github.com/hakuban/hakuban/internal/leakcheck"

	"bytes"
	"io"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestMain fails the package if a goroutine started by hakuban outlives
// the tests.
func TestMain(m *testing.M) { leakcheck.Main(m, nil) }

func envOf(kv ...string) func(string) string {
	return func(k string) string {
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i] == k {
				return kv[i+1]
			}
		}
		return ""
	}
}

func TestParseFlagsPrecedence(t *testing.T) {
	// Defaults.
	o, err := parseFlags(nil, envOf(), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(o.cfg.Listen, []string{"127.0.0.1:3001"}) || o.cfg.Upstreams != nil || o.cfg.RebalanceThreshold != 0.1 || o.cfg.LogFormat != "text" {
		t.Errorf("defaults: %+v", o.cfg)
	}

	// The environment overrides defaults.
	env := envOf(
		"HAKUBAN_LISTEN", "127.0.0.1:1,127.0.0.1:2",
		"HAKUBAN_UPSTREAM", "ws://a:1/, ws://b:2/",
		"HAKUBAN_REBALANCE_THRESHOLD", "0.25",
		"HAKUBAN_LOG_LEVEL", "debug",
		"HAKUBAN_MAX_OBJECTS", "100",
		"HAKUBAN_MAX_HANDSHAKES", "7",
		"HAKUBAN_PING_INTERVAL", "1s",
		"HAKUBAN_MONITOR_TAG", "routers",
		"HAKUBAN_AUTH_FILE", "/etc/hakuban/auth.json",
	)
	o, err = parseFlags(nil, env, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	c := o.cfg
	if !slices.Equal(c.Listen, []string{"127.0.0.1:1", "127.0.0.1:2"}) || !slices.Equal(c.Upstreams, []string{"ws://a:1/", "ws://b:2/"}) ||
		c.RebalanceThreshold != 0.25 || c.LogLevel != "debug" || c.Limits.MaxObjects != 100 || c.MaxHandshakes != 7 || c.PingInterval != time.Second || c.MonitorTag != "routers" || c.AuthFile != "/etc/hakuban/auth.json" {
		t.Errorf("from the environment: %+v", c)
	}

	// Flags override the environment; --listen repeats.
	o, err = parseFlags([]string{"--listen", "127.0.0.1:7", "--listen=127.0.0.1:8,127.0.0.1:9", "--rebalance-threshold", "0.5", "--log-level", "warn", "--auth-file", "a.json", "--version"}, env, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	c = o.cfg
	if !slices.Equal(c.Listen, []string{"127.0.0.1:7", "127.0.0.1:8", "127.0.0.1:9"}) || c.RebalanceThreshold != 0.5 || c.LogLevel != "warn" || c.AuthFile != "a.json" || !o.version {
		t.Errorf("from flags: %+v, version %v", c, o.version)
	}
}

func TestParseFlagsErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  func(string) string
	}{
		{[]string{"--rebalance-threshold", "lots"}, envOf()},
		{nil, envOf("HAKUBAN_MAX_FRAME", "big")},
		{nil, envOf("HAKUBAN_PING_TIMEOUT", "soon")},
		{[]string{"extra"}, envOf()},
		{[]string{"--no-such-flag"}, envOf()},
	} {
		if _, err := parseFlags(tc.args, tc.env, io.Discard); err == nil {
			t.Errorf("%q accepted", tc.args)
		}
	}
}

func TestRunRejectsInvalidConfig(t *testing.T) {
	var stderr bytes.Buffer
	if code := run([]string{"--log-format", "json", "--rebalance-threshold", "2"}, envOf(), io.Discard, &stderr); code != 2 {
		t.Errorf("exit status %d, want 2; stderr: %s", code, stderr.String())
	}
	if !strings.Contains(stderr.String(), "rebalance threshold") {
		t.Errorf("stderr does not say why: %s", stderr.String())
	}
}

// A flag on the command line replaces its environment default, even one
// that does not parse; and --version works whatever the environment.
func TestFlagOverridesBadEnvironment(t *testing.T) {
	env := envOf("HAKUBAN_MAX_FRAME", "big", "HAKUBAN_PING_INTERVAL", "soon")
	o, err := parseFlags([]string{"--max-frame", "20000000", "--ping-interval", "1s"}, env, io.Discard)
	if err != nil {
		t.Fatalf("flags given, environment ignored, yet: %v", err)
	}
	if o.cfg.Limits.MaxFrame != 20000000 || o.cfg.PingInterval != time.Second {
		t.Errorf("max frame %d, ping interval %v", o.cfg.Limits.MaxFrame, o.cfg.PingInterval)
	}
	var stdout, stderr bytes.Buffer
	if code := run([]string{"--version"}, env, &stdout, &stderr); code != 0 || stdout.Len() == 0 {
		t.Errorf("--version with a bad $HAKUBAN_MAX_FRAME: exit %d, %s", code, stderr.String())
	}
}
