package main

/*
#include "shim.h"
*/
import "C"

import (
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/hakuban/hakuban/core"
	"github.com/hakuban/hakuban/router"
)

// The network section of the header: connectors and listeners. Both wrap a
// core value; neither is a stream (no try/next), the connector offers a
// blocking wait on its status and a pollable fd for status changes instead.

// connectorObj is a connector handle. dropped is closed by drop, before the
// core connector is closed, so that blocked waits return at once.
type connectorObj struct {
	entry
	c       *core.Connector
	dropped chan struct{}
	sfd     statusFd

	// cbMu guards cb, the registration of hakuban_connector_set_callback,
	// and cbClosed (set by drop: no new registration starts after it).
	cbMu     sync.Mutex
	cb       *callbackReg
	cbClosed bool
}

// notify is the core connector's status hook (installed at creation): it
// keeps the status fd in step and kicks the callback, if any. It runs
// after every status change, without the core's lock.
func (o *connectorObj) notify() {
	o.sfd.notify(o.c)
	o.cbMu.Lock()
	cb := o.cb
	o.cbMu.Unlock()
	if cb != nil {
		cb.kick()
	}
}

// stopCallback ends the registration for good. Called once, by drop,
// after the core connector was closed.
func (o *connectorObj) stopCallback() {
	o.cbMu.Lock()
	o.cbClosed = true
	cb := o.cb
	o.cb = nil
	o.cbMu.Unlock()
	if cb != nil {
		cb.stop()
	}
}

// statusKey is what a status change is about: the fields of
// hakuban_connector_status_info (a change of URL or error alone comes with
// a change of state or counters).
type statusKey struct {
	state    core.ConnectorState
	connects uint64
	failures uint64
}

func keyOf(st core.ConnectorStatus) statusKey {
	return statusKey{st.State, st.Connects, uint64(st.Failures)}
}

// statusFd is a connector's status fd (hakuban_connector_status_fd): an
// eventfd readable exactly while the connector's status differs from the
// one last handed to the caller (seen), and for good once the connector is
// closed. seen starts as every connector's first status (connecting, no
// connects, no failures).
//
// The fd is signaled by the core connector's notify hook (installed when
// the fd is made; it runs after every status change, without the core's
// lock) and by saw when the status moved on while it was being handed out;
// it is drained only by saw. Both compare the current status with seen
// under mu, so the fd and "differs from seen" always agree, and it is never
// written after it was closed. Lock order: mu, then the core connector's.
type statusFd struct {
	mu       sync.Mutex
	seen     statusKey
	rfd, wfd C.int // valid while made is true
	made     bool
	signaled bool
	closed   bool
}

// update makes the fd readable if the current status differs from seen
// (or is final) and, when mayClear, not readable if it does not. Called
// with mu held.
func (s *statusFd) update(cur core.ConnectorStatus, mayClear bool) {
	if !s.made {
		return
	}
	want := keyOf(cur) != s.seen || cur.State == core.ConnectorClosed
	switch {
	case want && !s.signaled:
		C.hakuban__fd_signal(s.wfd)
		s.signaled = true
	case !want && s.signaled && mayClear:
		C.hakuban__fd_drain(s.rfd)
		s.signaled = false
	}
}

// saw records that st was handed to the caller. A change after st (whose
// hook may have run before this) leaves the fd readable.
func (s *statusFd) saw(c *core.Connector, st core.ConnectorStatus) {
	s.mu.Lock()
	s.seen = keyOf(st)
	s.update(c.Status(), true)
	s.mu.Unlock()
}

// notify is the core connector's hook.
func (s *statusFd) notify(c *core.Connector) {
	s.mu.Lock()
	s.update(c.Status(), false)
	s.mu.Unlock()
}

// fd returns the status fd, making it (and installing the hook) on first
// use.
func (s *statusFd) fd(fn string, c *core.Connector) (C.int, C.int32_t) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return -1, errorf(core.CodeInvalidHandle, fn, "the handle was dropped")
	}
	if s.made {
		return s.rfd, rcOK
	}
	r, w, rc := newWakeFd(fn)
	if rc != rcOK {
		return -1, rc
	}
	s.rfd, s.wfd, s.made = r, w, true
	// Changes from now on run the hook (connectorObj.notify; it waits for
	// mu); changes before are seen by this update.
	s.update(c.Status(), false)
	return r, rcOK
}

// shutdown closes the fd. Called once, by drop, after the core connector
// was closed and its hook removed.
func (s *statusFd) shutdown() {
	s.mu.Lock()
	s.closed = true
	made, rfd, wfd := s.made, s.rfd, s.wfd
	s.made, s.signaled = false, false
	s.mu.Unlock()
	if made {
		C.hakuban__fd_close(rfd, wfd)
	}
}

type listenerObj struct {
	entry
	l *core.Listener
	// auth are the rules of the listener's links (the router's auth file
	// format); nil lets every client do everything.
	auth atomic.Pointer[router.Auth]
}

// authorize is the listener's ListenerOptions.Authorize: the current
// rules, or everything allowed without rules.
func (o *listenerObj) authorize(token []byte) (*core.Permissions, error) {
	if a := o.auth.Load(); a != nil {
		return a.Authorize(token)
	}
	return nil, nil
}

// parseAuth parses the auth_json of a listener (NULL: no rules).
func parseAuth(fn string, js *C.hakuban_cchar) (*router.Auth, C.int32_t) {
	if js == nil {
		return nil, rcOK
	}
	a, err := router.ParseAuth([]byte(C.GoString(js)))
	if err != nil {
		return nil, errorf(core.CodeInvalidConfig, fn, "auth_json: %s", strings.TrimPrefix(err.Error(), "router: "))
	}
	return a, rcOK
}

// msOption converts an option in milliseconds. Negative values are passed
// on (core.Validate names the field); values that overflow a Duration, in
// either direction, are reported here.
func msOption(fn, field string, ms C.int64_t) (time.Duration, C.int32_t) {
	if !msFits(int64(ms)) {
		return 0, errorf(core.CodeInvalidConfig, fn, "option %s = %d is out of range", field, int64(ms))
	}
	return time.Duration(ms) * time.Millisecond, rcOK
}

// msFits reports whether ms milliseconds fit in a time.Duration: a value
// that does not would wrap around, and a huge negative one could come out
// positive and pass validation.
func msFits(ms int64) bool {
	const maxMs = math.MaxInt64 / int64(time.Millisecond)
	return ms >= -maxMs && ms <= maxMs
}

// optString reads an optional C string option ("" for NULL).
func optString(p *C.char) string {
	if p == nil {
		return ""
	}
	return C.GoString(p)
}

//export hakuban_connector_options_init
func hakuban_connector_options_init(out *C.hakuban_connector_options) {
	defer guardVoid()
	if out == nil {
		return
	}
	d := core.DefaultConnectorOptions()
	*out = C.hakuban_connector_options{
		min_backoff_ms:   C.int64_t(d.MinBackoff / time.Millisecond),
		max_backoff_ms:   C.int64_t(d.MaxBackoff / time.Millisecond),
		ping_interval_ms: C.int64_t(d.PingInterval / time.Millisecond),
		ping_timeout_ms:  C.int64_t(d.PingTimeout / time.Millisecond),
	}
}

// connectorOptionsOf turns the C arguments into core.ConnectorOptions. URL
// problems are argument errors; option problems are config errors (core's
// Validate reports those when Connect is called).
func connectorOptionsOf(fn string, urls *C.hakuban_cchar_cptr, n C.size_t, o *C.hakuban_cconnector_options) (core.ConnectorOptions, C.int32_t) {
	opts := core.DefaultConnectorOptions()
	if n == 0 {
		return opts, errorf(core.CodeInvalidArgument, fn, "url_count is 0: give at least one upstream URL")
	}
	if urls == nil {
		return opts, nullArg(fn, "urls")
	}
	if uint64(n) > 1<<16 {
		return opts, errorf(core.CodeInvalidArgument, fn, "url_count %d is too large", uint64(n))
	}
	for i, p := range unsafe.Slice((**C.hakuban_cchar)(unsafe.Pointer(urls)), int(n)) {
		if p == nil {
			return opts, errorf(core.CodeInvalidArgument, fn, "urls[%d] is NULL", i)
		}
		opts.URLs = append(opts.URLs, goString(p))
	}
	// The URLs are checked first by Validate; other fields are defaults.
	if err := (core.ConnectorOptions{URLs: opts.URLs}).Validate(); err != nil {
		return opts, errorf(core.CodeInvalidArgument, fn, "%v", err)
	}
	if o == nil {
		return opts, rcOK
	}
	opts.Name = optString(o.name)
	if o.token_len > 0 {
		if o.token == nil {
			return opts, errorf(core.CodeInvalidArgument, fn, "options->token is NULL but token_len is %d", uint64(o.token_len))
		}
		if uint64(o.token_len) > 1<<20 {
			return opts, errorf(core.CodeInvalidConfig, fn, "options->token_len %d is out of range", uint64(o.token_len))
		}
		opts.Token = C.GoBytes(unsafe.Pointer(o.token), C.int(o.token_len))
	}
	var rc C.int32_t
	for _, f := range []struct {
		name string
		ms   C.int64_t
		d    *time.Duration
	}{
		{"min_backoff_ms", o.min_backoff_ms, &opts.MinBackoff},
		{"max_backoff_ms", o.max_backoff_ms, &opts.MaxBackoff},
		{"ping_interval_ms", o.ping_interval_ms, &opts.PingInterval},
		{"ping_timeout_ms", o.ping_timeout_ms, &opts.PingTimeout},
	} {
		if *f.d, rc = msOption(fn, f.name, f.ms); rc != rcOK {
			return opts, rc
		}
	}
	files := router.TLSFiles{Cert: optString(o.tls_cert_file), Key: optString(o.tls_key_file), CA: optString(o.tls_ca_file)}
	if !files.IsZero() {
		cfg, err := files.ClientConfig()
		if err != nil {
			return opts, tlsError(fn, err)
		}
		opts.TLS = cfg
	}
	return opts, rcOK
}

// tlsError reports a TLS file that cannot be used (the router package's
// messages start with its name, which means nothing to a C caller).
func tlsError(fn string, err error) C.int32_t {
	return errorf(core.CodeInvalidConfig, fn, "%s", strings.TrimPrefix(err.Error(), "router: "))
}

//export hakuban_connector_new
func hakuban_connector_new(out *C.hakuban_connector, exchange C.hakuban_exchange, urls *C.hakuban_cchar_cptr, urlCount C.size_t, options *C.hakuban_cconnector_options) (rc C.int32_t) {
	defer guard(&rc)
	const fn = "hakuban_connector_new"
	if out == nil {
		return nullArg(fn, "out")
	}
	e, rc := lookup[exchangeObj](fn, uint64(exchange), kindExchange)
	if rc != rcOK {
		return rc
	}
	opts, rc := connectorOptionsOf(fn, urls, urlCount, options)
	if rc != rcOK {
		return rc
	}
	opts.Logger = e.log
	c, err := e.ex.Connect(opts)
	if err != nil {
		return fail(fn, err)
	}
	obj := &connectorObj{c: c, dropped: make(chan struct{})}
	c.SetNotify(obj.notify)
	h := handles.add(kindConnector, obj)
	if h == 0 {
		c.Close()
		return tableFull(fn)
	}
	*out = C.hakuban_connector(h)
	return rcOK
}

func fillConnectorStatus(out *C.hakuban_connector_status_info, st core.ConnectorStatus) {
	*out = C.hakuban_connector_status_info{
		state:    C.int32_t(st.State),
		connects: C.uint64_t(st.Connects),
		failures: C.uint64_t(st.Failures),
	}
}

//export hakuban_connector_status
func hakuban_connector_status(out *C.hakuban_connector_status_info, connector C.hakuban_connector) (rc C.int32_t) {
	defer guard(&rc)
	const fn = "hakuban_connector_status"
	if out == nil {
		return nullArg(fn, "out")
	}
	o, rc := lookup[connectorObj](fn, uint64(connector), kindConnector)
	if rc != rcOK {
		return rc
	}
	st := o.c.Status()
	o.sfd.saw(o.c, st)
	fillConnectorStatus(out, st)
	return rcOK
}

//export hakuban_connector_status_fd
func hakuban_connector_status_fd(out *C.int, connector C.hakuban_connector) (rc C.int32_t) {
	defer guard(&rc)
	const fn = "hakuban_connector_status_fd"
	if out == nil {
		return nullArg(fn, "out")
	}
	o, rc := lookup[connectorObj](fn, uint64(connector), kindConnector)
	if rc != rcOK {
		return rc
	}
	fd, rc := o.sfd.fd(fn, o.c)
	if rc == rcOK {
		*out = fd
	}
	return rc
}

// waitDone reports whether a wait for want is over with st: OK (reached),
// END (st is final and is not want), or -1 (keep waiting). want < 0 means
// "a status other than seen".
func waitDone(st core.ConnectorStatus, want int32, seen C.hakuban_connector_status_info) C.int32_t {
	if want < 0 {
		if C.int32_t(st.State) != seen.state || C.uint64_t(st.Connects) != seen.connects || C.uint64_t(st.Failures) != seen.failures {
			return rcOK
		}
		if st.State == core.ConnectorClosed {
			return rcEnd // nothing changes any more
		}
		return -1
	}
	w := core.ConnectorState(want)
	switch {
	case st.State == w:
		return rcOK
	case st.State == core.ConnectorClosed:
		return rcEnd
	case st.State == core.ConnectorRefused && w != core.ConnectorClosed:
		return rcEnd
	}
	return -1
}

//export hakuban_connector_wait
func hakuban_connector_wait(out *C.hakuban_connector_status_info, connector C.hakuban_connector, state C.int32_t, timeoutMs C.int64_t) (rc C.int32_t) {
	defer guard(&rc)
	const fn = "hakuban_connector_wait"
	if out == nil {
		return nullArg(fn, "out")
	}
	if state > C.int32_t(core.ConnectorRefused) {
		return errorf(core.CodeInvalidArgument, fn, "state %d is not a connector state (0..%d, or negative for any change)", int32(state), int32(core.ConnectorRefused))
	}
	o, rc := lookup[connectorObj](fn, uint64(connector), kindConnector)
	if rc != rcOK {
		return rc
	}
	seen := *out
	var timeout <-chan time.Time
	if d := msDuration(int64(timeoutMs)); d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		timeout = t.C
	} else if d == 0 {
		closed := make(chan time.Time)
		close(closed)
		timeout = closed // only look
	}
	// The status handed out counts as read for the status fd.
	give := func(st core.ConnectorStatus, rc C.int32_t) C.int32_t {
		o.sfd.saw(o.c, st)
		fillConnectorStatus(out, st)
		return rc
	}
	// Watch returns the status with a channel closed at its next change:
	// no lock is held while waiting, and no change is missed between the
	// look and the wait.
	for {
		st, changed := o.c.Watch()
		if rc := waitDone(st, int32(state), seen); rc >= 0 {
			return give(st, rc)
		}
		select {
		case <-changed:
		case <-o.dropped:
			return give(o.c.Status(), rcEnd)
		case <-timeout:
			return give(st, rcTimeout)
		}
	}
}

// connectorText hands out one of the status's strings as a malloc'd copy.
func connectorText(fn string, out **C.char, connector C.hakuban_connector, pick func(core.ConnectorStatus) (string, bool)) C.int32_t {
	if out == nil {
		return nullArg(fn, "out")
	}
	o, rc := lookup[connectorObj](fn, uint64(connector), kindConnector)
	if rc != rcOK {
		return rc
	}
	s, ok := pick(o.c.Status())
	if !ok {
		*out = nil
		return rcOK
	}
	p := cString(s)
	if p == nil {
		return outOfMemory(fn, len(s)+1)
	}
	*out = p
	return rcOK
}

//export hakuban_connector_url
func hakuban_connector_url(out **C.char, connector C.hakuban_connector) (rc C.int32_t) {
	defer guard(&rc)
	return connectorText("hakuban_connector_url", out, connector, func(st core.ConnectorStatus) (string, bool) {
		return st.URL, true
	})
}

//export hakuban_connector_last_error
func hakuban_connector_last_error(out **C.char, connector C.hakuban_connector) (rc C.int32_t) {
	defer guard(&rc)
	return connectorText("hakuban_connector_last_error", out, connector, func(st core.ConnectorStatus) (string, bool) {
		if st.LastError == nil {
			return "", false
		}
		return st.LastError.Error(), true
	})
}

//export hakuban_connector_drop
func hakuban_connector_drop(connector C.hakuban_connector) (rc C.int32_t) {
	defer guard(&rc)
	if connector == 0 {
		return rcOK
	}
	v := handles.remove(uint64(connector), kindConnector)
	if v == nil {
		return badHandle("hakuban_connector_drop", uint64(connector), kindConnector)
	}
	o := v.(*connectorObj)
	close(o.dropped) // wake waiters first: Close takes up to the close timeout
	o.c.Close()      // the status becomes closed: a polled status fd wakes
	o.c.SetNotify(nil)
	o.sfd.shutdown()
	o.stopCallback()
	return rcOK
}

//export hakuban_connector_set_callback
func hakuban_connector_set_callback(connector C.hakuban_connector, cb C.hakuban_notify_fn, userData unsafe.Pointer, drop C.hakuban_drop_fn) (rc C.int32_t) {
	defer guard(&rc)
	const fn = "hakuban_connector_set_callback"
	o, rc := lookup[connectorObj](fn, uint64(connector), kindConnector)
	if rc != rcOK {
		return rc
	}
	// The first kick makes the callback read the status once at the start.
	return swapCallback(fn, &o.cbMu, &o.cb, &o.cbClosed, cb, userData, drop, nil)
}

// defaultListenAddress is the address hakuban_listener_options_init sets.
func defaultListenAddress() (addr, path string) {
	return C.GoString(C.hakuban__default_listen_address()), C.GoString(C.hakuban__default_listen_path())
}

//export hakuban_listener_options_init
func hakuban_listener_options_init(out *C.hakuban_listener_options) {
	defer guardVoid()
	if out == nil {
		return
	}
	d := core.DefaultListenerOptions()
	*out = C.hakuban_listener_options{
		address:          C.hakuban__default_listen_address(),
		path:             C.hakuban__default_listen_path(),
		ping_interval_ms: C.int64_t(d.PingInterval / time.Millisecond),
		ping_timeout_ms:  C.int64_t(d.PingTimeout / time.Millisecond),
	}
}

func listenerOptionsOf(fn string, o *C.hakuban_clistener_options) (core.ListenerOptions, C.int32_t) {
	opts := core.DefaultListenerOptions()
	if o == nil {
		return opts, rcOK
	}
	if o.address != nil {
		opts.Addr = C.GoString(o.address)
	}
	if o.path != nil {
		opts.Path = C.GoString(o.path)
	}
	var rc C.int32_t
	if opts.PingInterval, rc = msOption(fn, "ping_interval_ms", o.ping_interval_ms); rc != rcOK {
		return opts, rc
	}
	if opts.PingTimeout, rc = msOption(fn, "ping_timeout_ms", o.ping_timeout_ms); rc != rcOK {
		return opts, rc
	}
	files := router.TLSFiles{Cert: optString(o.tls_cert_file), Key: optString(o.tls_key_file), CA: optString(o.tls_client_ca_file)}
	if !files.IsZero() {
		cfg, err := files.ServerConfig()
		if err != nil {
			return opts, tlsError(fn, err)
		}
		opts.TLS = cfg
	}
	return opts, rcOK
}

//export hakuban_listener_new
func hakuban_listener_new(out *C.hakuban_listener, exchange C.hakuban_exchange, options *C.hakuban_clistener_options) (rc C.int32_t) {
	defer guard(&rc)
	return listenerNew("hakuban_listener_new", out, exchange, options, nil)
}

//export hakuban_listener_new_with_auth
func hakuban_listener_new_with_auth(out *C.hakuban_listener, exchange C.hakuban_exchange, options *C.hakuban_clistener_options, authJSON *C.hakuban_cchar) (rc C.int32_t) {
	defer guard(&rc)
	return listenerNew("hakuban_listener_new_with_auth", out, exchange, options, authJSON)
}

// listenerNew is hakuban_listener_new with the rules authJSON (NULL: none).
func listenerNew(fn string, out *C.hakuban_listener, exchange C.hakuban_exchange, options *C.hakuban_clistener_options, authJSON *C.hakuban_cchar) C.int32_t {
	if out == nil {
		return nullArg(fn, "out")
	}
	e, rc := lookup[exchangeObj](fn, uint64(exchange), kindExchange)
	if rc != rcOK {
		return rc
	}
	opts, rc := listenerOptionsOf(fn, options)
	if rc != rcOK {
		return rc
	}
	obj := &listenerObj{}
	a, rc := parseAuth(fn, authJSON)
	if rc != rcOK {
		return rc
	}
	obj.auth.Store(a)
	opts.Authorize = obj.authorize
	opts.Logger = e.log
	l, err := e.ex.Listen(opts)
	if err != nil {
		return fail(fn, err)
	}
	obj.l = l
	h := handles.add(kindListener, obj)
	if h == 0 {
		l.Close()
		return tableFull(fn)
	}
	*out = C.hakuban_listener(h)
	return rcOK
}

//export hakuban_listener_url
func hakuban_listener_url(out **C.char, listener C.hakuban_listener) (rc C.int32_t) {
	defer guard(&rc)
	const fn = "hakuban_listener_url"
	if out == nil {
		return nullArg(fn, "out")
	}
	o, rc := lookup[listenerObj](fn, uint64(listener), kindListener)
	if rc != rcOK {
		return rc
	}
	u := o.l.URL()
	p := cString(u)
	if p == nil {
		return outOfMemory(fn, len(u)+1)
	}
	*out = p
	return rcOK
}

//export hakuban_listener_set_auth
func hakuban_listener_set_auth(listener C.hakuban_listener, authJSON *C.hakuban_cchar) (rc C.int32_t) {
	defer guard(&rc)
	const fn = "hakuban_listener_set_auth"
	o, rc := lookup[listenerObj](fn, uint64(listener), kindListener)
	if rc != rcOK {
		return rc
	}
	a, rc := parseAuth(fn, authJSON)
	if rc != rcOK {
		return rc
	}
	o.auth.Store(a)
	o.l.Reauthorize()
	return rcOK
}

//export hakuban_listener_drop
func hakuban_listener_drop(listener C.hakuban_listener) (rc C.int32_t) {
	defer guard(&rc)
	if listener == 0 {
		return rcOK
	}
	v := handles.remove(uint64(listener), kindListener)
	if v == nil {
		return badHandle("hakuban_listener_drop", uint64(listener), kindListener)
	}
	v.(*listenerObj).l.Close()
	return rcOK
}
