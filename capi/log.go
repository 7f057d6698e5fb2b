package main

/*
#include "shim.h"
*/
import "C"

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/hakuban/hakuban/core"
)

// Logging. Every exchange made through the C API logs through one
// process-wide slog.Handler. Records are formatted on the goroutine that
// logs and queued; one dispatcher goroutine hands them to the C callback
// (or writes them to stderr). So the callback never runs under a hakuban
// lock, and a slow callback never slows the library: when the queue is
// full, records are dropped and counted (latest state wins, for logs too).

// C log levels (enum hakuban_log_level).
const (
	lvlDebug = 0
	lvlInfo  = 1
	lvlWarn  = 2
	lvlError = 3
	lvlOff   = 4
)

const logQueueLen = 1024

var (
	logLevel   = newLevel(lvlWarn) // a C level; WARN by default
	logQueue   = make(chan logRecord, logQueueLen)
	logDropped atomic.Uint64
	logStart   sync.Once

	logMu   sync.Mutex
	logCond = sync.NewCond(&logMu)
	logReg  *logRegistration // guarded by logMu; nil: stderr
)

func newLevel(l int32) *atomic.Int32 {
	var v atomic.Int32
	v.Store(l)
	return &v
}

type logRecord struct {
	level int32
	text  string
}

// logRegistration is one hakuban_log_set_callback registration.
type logRegistration struct {
	id       uint64
	fn       C.hakuban_log_fn
	userData unsafe.Pointer
	drop     C.hakuban_drop_fn
	// guarded by logMu:
	inflight int  // calls running (0 or 1: one dispatcher)
	retired  bool // replaced; the drop function is due once inflight is 0
	dropped  bool // the drop function ran (or is running)
}

func cLevel(l slog.Level) int32 {
	switch {
	case l < slog.LevelInfo:
		return lvlDebug
	case l < slog.LevelWarn:
		return lvlInfo
	case l < slog.LevelError:
		return lvlWarn
	}
	return lvlError
}

// logHandler is the slog.Handler of every exchange made through the C API.
type logHandler struct {
	prefix string // formatted attributes from WithAttrs
	group  string // key prefix from WithGroup, "a.b."
}

func (h *logHandler) Enabled(_ context.Context, l slog.Level) bool {
	return cLevel(l) >= logLevel.Load()
}

func (h *logHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	b.WriteString(h.prefix)
	r.Attrs(func(a slog.Attr) bool {
		appendAttr(&b, h.group, a)
		return true
	})
	enqueueLog(cLevel(r.Level), b.String())
	return nil
}

func (h *logHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	var b strings.Builder
	b.WriteString(h.prefix)
	for _, a := range attrs {
		appendAttr(&b, h.group, a)
	}
	return &logHandler{prefix: b.String(), group: h.group}
}

func (h *logHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	return &logHandler{prefix: h.prefix, group: h.group + name + "."}
}

func appendAttr(b *strings.Builder, group string, a slog.Attr) {
	a.Value = a.Value.Resolve()
	if a.Equal(slog.Attr{}) {
		return
	}
	if a.Value.Kind() == slog.KindGroup {
		g := group
		if a.Key != "" {
			g += a.Key + "."
		}
		for _, ga := range a.Value.Group() {
			appendAttr(b, g, ga)
		}
		return
	}
	fmt.Fprintf(b, " %s%s=%q", group, a.Key, a.Value.String())
}

// newLogger returns the logger of an exchange named name.
func newLogger(name string) *slog.Logger {
	return slog.New(&logHandler{}).With("exchange", name)
}

// logError logs a library error (such as a recovered panic).
func logError(msg string, args ...any) {
	slog.New(&logHandler{}).Error(msg, args...)
}

func enqueueLog(level int32, text string) {
	logStart.Do(func() { go logDispatch() })
	select {
	case logQueue <- logRecord{level, text}:
	default:
		logDropped.Add(1)
	}
}

// logDispatch delivers queued records, in order, for the life of the
// process (the library cannot be unloaded).
func logDispatch() {
	for rec := range logQueue {
		if n := logDropped.Swap(0); n > 0 {
			deliverLog(lvlWarn, fmt.Sprintf("%d log records dropped: the log callback is too slow", n))
		}
		deliverLog(rec.level, rec.text)
	}
}

func deliverLog(level int32, text string) {
	defer guardVoid()
	logMu.Lock()
	reg := logReg
	if reg != nil {
		reg.inflight++
	}
	logMu.Unlock()
	if reg == nil {
		fmt.Fprintf(os.Stderr, "%s hakuban %s %s\n", time.Now().Format("2006-01-02T15:04:05.000Z07:00"), levelName(level), text)
		return
	}
	msg := cString(text)
	if msg != nil {
		C.hakuban__call_log(reg.fn, C.int32_t(level), msg, reg.userData, C.uint64_t(reg.id))
		C.free(unsafe.Pointer(msg))
	}
	logMu.Lock()
	reg.inflight--
	runDrop := reg.retired && reg.inflight == 0 && !reg.dropped
	if runDrop {
		reg.dropped = true
	}
	logCond.Broadcast()
	logMu.Unlock()
	if runDrop && reg.drop != nil {
		// It was replaced from inside its own callback: its drop is ours.
		C.hakuban__call_drop(reg.drop, reg.userData)
	}
}

func levelName(l int32) string {
	return [...]string{"DEBUG", "INFO", "WARN", "ERROR"}[min(max(l, 0), 3)]
}

//export hakuban_log_set_level
func hakuban_log_set_level(level C.int32_t) (rc C.int32_t) {
	defer guard(&rc)
	if level < lvlDebug || level > lvlOff {
		return errorf(core.CodeInvalidArgument, "hakuban_log_set_level", "level %d is not a hakuban_log_level", int32(level))
	}
	logLevel.Store(int32(level))
	return rcOK
}

//export hakuban_log_set_callback
func hakuban_log_set_callback(fn C.hakuban_log_fn, userData unsafe.Pointer, drop C.hakuban_drop_fn) (rc C.int32_t) {
	defer guard(&rc)
	var reg *logRegistration
	if fn != nil {
		reg = &logRegistration{id: callbackIDs.Add(1), fn: fn, userData: userData, drop: drop}
	}
	logMu.Lock()
	old := logReg
	logReg = reg
	runDrop := false
	if old != nil {
		old.retired = true
		if C.hakuban__in_callback(C.uint64_t(old.id)) == 0 {
			for old.inflight > 0 {
				logCond.Wait()
			}
			runDrop = !old.dropped
			old.dropped = true
		}
		// else: called from inside old's callback; deliverLog runs its
		// drop function when that call returns.
	}
	logMu.Unlock()
	if runDrop && old.drop != nil {
		C.hakuban__call_drop(old.drop, old.userData)
	}
	return rcOK
}
