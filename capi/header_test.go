package main

import (
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/hakuban/hakuban/core"
)

// These tests hold include/hakuban.h to the Go side: one table of result
// codes (core.Codes()), one of statuses, and the bad-handle test's coverage.
// (The exports' prototypes are checked by the C compiler, see doc.go.)

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// enumValues parses `enum name { A = 1, B = -2, ... };` from the header.
func enumValues(t *testing.T, header, name string) map[string]int32 {
	t.Helper()
	m := regexp.MustCompile(`(?s)enum ` + name + ` \{(.*?)\};`).FindStringSubmatch(header)
	if m == nil {
		t.Fatalf("enum %s not found in hakuban.h", name)
	}
	body := regexp.MustCompile(`(?s)/\*.*?\*/`).ReplaceAllString(m[1], "")
	vals := map[string]int32{}
	for _, e := range regexp.MustCompile(`(HAKUBAN_\w+)\s*=\s*(-?\d+)`).FindAllStringSubmatch(body, -1) {
		v, err := strconv.ParseInt(e[2], 10, 32)
		if err != nil {
			t.Fatal(err)
		}
		if _, dup := vals[e[1]]; dup {
			t.Errorf("enum %s: %s defined twice", name, e[1])
		}
		vals[e[1]] = int32(v)
	}
	return vals
}

func TestHeaderResultCodesMatchCore(t *testing.T) {
	header := readFile(t, "../include/hakuban.h")
	inHeader := enumValues(t, header, "hakuban_result")
	seen := map[string]bool{}
	for _, c := range core.Codes() {
		name := "HAKUBAN_" + c.Name
		seen[name] = true
		v, ok := inHeader[name]
		switch {
		case !ok:
			t.Errorf("%s (%d) is in core.Codes() but not in hakuban.h", name, c.Code)
		case v != int32(c.Code):
			t.Errorf("%s is %d in hakuban.h but %d in core.Codes()", name, v, c.Code)
		}
	}
	for name, v := range inHeader {
		if !seen[name] {
			t.Errorf("%s = %d is in hakuban.h but not in core.Codes()", name, v)
		}
	}
	// The library returns these as they are: check the capi constants too.
	for name, v := range map[string]int32{"HAKUBAN_OK": int32(rcOK), "HAKUBAN_EMPTY": int32(rcEmpty), "HAKUBAN_END": int32(rcEnd), "HAKUBAN_TIMEOUT": int32(rcTimeout)} {
		if inHeader[name] != v {
			t.Errorf("capi returns %d for %s, the header says %d", v, name, inHeader[name])
		}
	}
}

func TestHeaderStatusesMatchCore(t *testing.T) {
	inHeader := enumValues(t, readFile(t, "../include/hakuban.h"), "hakuban_status")
	n := 0
	for s := core.Status(0); s.String() != "unknown"; s++ {
		name := "HAKUBAN_STATUS_" + strings.ToUpper(s.String())
		v, ok := inHeader[name]
		switch {
		case !ok:
			t.Errorf("core status %d (%s) has no %s in hakuban.h", s, s, name)
		case v != int32(s):
			t.Errorf("%s is %d in hakuban.h but %d in core", name, v, s)
		}
		n++
	}
	if len(inHeader) != n {
		t.Errorf("hakuban.h has %d statuses, core %d", len(inHeader), n)
	}
}

func TestHeaderConnectorStatesMatchCore(t *testing.T) {
	inHeader := enumValues(t, readFile(t, "../include/hakuban.h"), "hakuban_connector_state")
	n := 0
	for s := core.ConnectorState(0); s.String() != "unknown"; s++ {
		name := "HAKUBAN_CONNECTOR_" + strings.ToUpper(s.String())
		v, ok := inHeader[name]
		switch {
		case !ok:
			t.Errorf("core connector state %d (%s) has no %s in hakuban.h", s, s, name)
		case v != int32(s):
			t.Errorf("%s is %d in hakuban.h but %d in core", name, v, s)
		}
		n++
	}
	if len(inHeader) != n {
		t.Errorf("hakuban.h has %d connector states, core %d", len(inHeader), n)
	}
	// hakuban_connector_wait refuses states above the last one.
	if last := core.ConnectorState(n - 1); last != core.ConnectorRefused {
		t.Errorf("the last connector state is %s; hakuban_connector_wait assumes refused", last)
	}
}

func TestListenerDefaultsMatchCore(t *testing.T) {
	addr, path := defaultListenAddress()
	d := core.DefaultListenerOptions()
	if addr != d.Addr || path != d.Path {
		t.Errorf("hakuban_listener_options_init sets %q %q, core's defaults are %q %q", addr, path, d.Addr, d.Path)
	}
	if !strings.Contains(readFile(t, "../include/hakuban.h"), `address "`+d.Addr+`"`) {
		t.Errorf("hakuban.h does not document the default address %q", d.Addr)
	}
}

func TestHeaderLogLevels(t *testing.T) {
	inHeader := enumValues(t, readFile(t, "../include/hakuban.h"), "hakuban_log_level")
	want := map[string]int32{"HAKUBAN_LOG_DEBUG": lvlDebug, "HAKUBAN_LOG_INFO": lvlInfo, "HAKUBAN_LOG_WARN": lvlWarn, "HAKUBAN_LOG_ERROR": lvlError, "HAKUBAN_LOG_OFF": lvlOff}
	for name, v := range want {
		if got, ok := inHeader[name]; !ok || got != v {
			t.Errorf("%s: hakuban.h has %d (present %v), capi uses %d", name, got, ok, v)
		}
	}
	if len(inHeader) != len(want) {
		t.Errorf("hakuban.h has %d log levels, capi %d", len(inHeader), len(want))
	}
}

func TestHeaderVersionMacros(t *testing.T) {
	header := readFile(t, "../include/hakuban.h")
	macro := func(name string) string {
		m := regexp.MustCompile(`#define ` + name + ` (\S+)`).FindStringSubmatch(header)
		if m == nil {
			t.Fatalf("%s not defined", name)
		}
		return m[1]
	}
	v := macro("HAKUBAN_VERSION_MAJOR") + "." + macro("HAKUBAN_VERSION_MINOR") + "." + macro("HAKUBAN_VERSION_PATCH")
	if s := macro("HAKUBAN_VERSION"); s != strconv.Quote(v) {
		t.Errorf("HAKUBAN_VERSION is %s, the parts say %q", s, v)
	}
	// The SONAME is libhakuban.so.<ABI>; the build and docs rely on it.
	if abi := macro("HAKUBAN_ABI_VERSION"); !strings.Contains(header, "libhakuban.so."+abi+")") {
		t.Errorf("the header's comment does not name the SONAME libhakuban.so.%s", abi)
	}
}

// handleTypes are the header's handle typedefs.
var handleTypes = []string{
	"hakuban_exchange", "hakuban_object_descriptor", "hakuban_tag_descriptor",
	"hakuban_object_state", "hakuban_object_observe_contract", "hakuban_object_expose_contract",
	"hakuban_tag_observe_contract", "hakuban_tag_expose_contract", "hakuban_object_state_sink",
	"hakuban_connector", "hakuban_listener",
}

func TestHeaderBadHandleTestCoversEveryFunction(t *testing.T) {
	header := readFile(t, "../include/hakuban.h")
	tests := readFile(t, "../tests/c/test_handles.c")
	decl := regexp.MustCompile(`(?m)^(?:int32_t|void|uint32_t|const char \*)\s*(hakuban_\w+)\(([^)]*)\);`)
	byValue := regexp.MustCompile(`(?:^|,)\s*(?:` + strings.Join(handleTypes, "|") + `)\s+\w+\s*(?:,|$)`)
	n := 0
	for _, m := range decl.FindAllStringSubmatch(header, -1) {
		name, params := m[1], strings.Join(strings.Fields(m[2]), " ")
		if !byValue.MatchString(params) {
			continue
		}
		n++
		if !regexp.MustCompile(`CHECK_BAD(?:_DROP)?\([^;]*\b` + name + `\b`).MatchString(tests) {
			t.Errorf("%s takes a handle but tests/c/test_handles.c has no CHECK_BAD for it", name)
		}
	}
	if n < 60 {
		t.Fatalf("found only %d functions taking handles: is the declaration pattern stale?", n)
	}
	t.Logf("%d functions taking handles, all covered", n)
}

func TestExportRecoversPanic(t *testing.T) {
	rc, msg := selfTestPanic()
	if rc != int32(core.CodeInternal) {
		t.Fatalf("rc = %d, want %d (ERR_INTERNAL)", rc, core.CodeInternal)
	}
	if !strings.HasPrefix(msg, "hakuban_object_state_data_len: internal error") {
		t.Fatalf("message %q does not name the function", msg)
	}
}
