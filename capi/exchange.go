package main

/*
#include "shim.h"
*/
import "C"

import (
	"fmt"
	"log/slog"
	"math"
	"time"
	"unsafe"

	"github.com/hakuban/hakuban/core"
)

type exchangeObj struct {
	entry
	ex  *core.Exchange
	log *slog.Logger
}

//export hakuban_exchange_options_init
func hakuban_exchange_options_init(out *C.hakuban_exchange_options) {
	defer guardVoid()
	if out == nil {
		return
	}
	cfg := core.DefaultConfig()
	*out = C.hakuban_exchange_options{
		name:                   nil,
		max_descriptor_size:    C.size_t(cfg.Limits.MaxSize),
		max_tags:               C.size_t(cfg.Limits.MaxTags),
		rebalance_threshold:    C.double(cfg.RebalanceThreshold),
		rebalance_interval_ms:  C.int64_t(cfg.RebalanceInterval / time.Millisecond),
		max_moves_per_interval: C.int32_t(cfg.MaxMovesPerInterval),
		handover_timeout_ms:    C.int64_t(cfg.HandoverTimeout / time.Millisecond),
	}
}

// configOf turns C options into a core.Config; values that do not fit a Go
// int or a Duration are reported as invalid config rather than wrapped.
func configOf(fn string, o *C.hakuban_cexchange_options) (core.Config, C.int32_t) {
	cfg := core.DefaultConfig()
	if o == nil {
		return cfg, rcOK
	}
	bad := func(field string, v any) (core.Config, C.int32_t) {
		return cfg, errorf(core.CodeInvalidConfig, fn, "option %s = %v is out of range", field, v)
	}
	if o.name != nil {
		cfg.Name = goString((*C.hakuban_cchar)(unsafe.Pointer(o.name)))
	}
	if uint64(o.max_descriptor_size) > math.MaxInt32 {
		return bad("max_descriptor_size", uint64(o.max_descriptor_size))
	}
	cfg.Limits.MaxSize = int(o.max_descriptor_size)
	if uint64(o.max_tags) > math.MaxInt32 {
		return bad("max_tags", uint64(o.max_tags))
	}
	cfg.Limits.MaxTags = int(o.max_tags)
	cfg.RebalanceThreshold = float64(o.rebalance_threshold)
	if !msFits(int64(o.rebalance_interval_ms)) {
		return bad("rebalance_interval_ms", int64(o.rebalance_interval_ms))
	}
	cfg.RebalanceInterval = time.Duration(o.rebalance_interval_ms) * time.Millisecond
	cfg.MaxMovesPerInterval = int(o.max_moves_per_interval)
	if !msFits(int64(o.handover_timeout_ms)) {
		return bad("handover_timeout_ms", int64(o.handover_timeout_ms))
	}
	cfg.HandoverTimeout = time.Duration(o.handover_timeout_ms) * time.Millisecond
	return cfg, rcOK
}

//export hakuban_exchange_new
func hakuban_exchange_new(out *C.hakuban_exchange, options *C.hakuban_cexchange_options) (rc C.int32_t) {
	defer guard(&rc)
	const fn = "hakuban_exchange_new"
	if out == nil {
		return nullArg(fn, "out")
	}
	cfg, rc := configOf(fn, options)
	if rc != rcOK {
		return rc
	}
	cfg.Logger = newLogger(cfg.Name)
	ex, err := core.NewExchange(cfg)
	if err != nil {
		return fail(fn, err)
	}
	h := handles.add(kindExchange, &exchangeObj{ex: ex, log: cfg.Logger})
	if h == 0 {
		ex.Close()
		return tableFull(fn)
	}
	cfg.Logger.Debug("exchange created", "handle", fmt.Sprintf("%#x", h))
	*out = C.hakuban_exchange(h)
	return rcOK
}

//export hakuban_exchange_drop
func hakuban_exchange_drop(exchange C.hakuban_exchange) (rc C.int32_t) {
	defer guard(&rc)
	if exchange == 0 {
		return rcOK
	}
	v := handles.remove(uint64(exchange), kindExchange)
	if v == nil {
		return badHandle("hakuban_exchange_drop", uint64(exchange), kindExchange)
	}
	e := v.(*exchangeObj)
	e.ex.Close()
	e.log.Debug("exchange dropped", "handle", fmt.Sprintf("%#x", uint64(exchange)))
	return rcOK
}

//export hakuban_exchange_snapshot
func hakuban_exchange_snapshot(out **C.char, exchange C.hakuban_exchange) (rc C.int32_t) {
	defer guard(&rc)
	const fn = "hakuban_exchange_snapshot"
	if out == nil {
		return nullArg(fn, "out")
	}
	e, rc := lookup[exchangeObj](fn, uint64(exchange), kindExchange)
	if rc != rcOK {
		return rc
	}
	js, err := e.ex.SnapshotJSON()
	if err != nil {
		return fail(fn, err)
	}
	p := cBytes(js)
	if p == nil {
		return outOfMemory(fn, len(js))
	}
	*out = (*C.char)(p)
	return rcOK
}

// tableFull is the error when the handle table has no room left.
func tableFull(fn string) C.int32_t {
	return errorf(core.CodeInternal, fn, "the handle table is full (%d live handles): drop handles you no longer need", maxPages*pageSize)
}

func outOfMemory(fn string, n int) C.int32_t {
	return errorf(core.CodeInternal, fn, "out of memory allocating %d bytes", n)
}
