package core

import (
	"context"
	"errors"
)

// Sentinel errors. Every error the package returns wraps one of these (or a
// descriptor error from descriptor.go), so callers test with errors.Is.
var (
	// ErrClosed: the contract, sink or exchange was closed.
	ErrClosed = errors.New("closed")
	// ErrInvalidArgument: an argument is out of its allowed range.
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrInvalidCapacity: an expose contract's capacity is not a positive integer.
	ErrInvalidCapacity = errors.New("invalid capacity")
	// ErrStaleVersion: a write carried a version older than the object's current one.
	ErrStaleVersion = errors.New("stale version")
	// ErrRevoked: a write went through an assignment that is no longer valid
	// (the exposer was de-elected; its successor owns the object now).
	ErrRevoked = errors.New("assignment revoked")
	// ErrWrongFormat: a state's format stack does not have the expected encoding on top.
	ErrWrongFormat = errors.New("wrong format")
	// ErrInvalidConfig: a Config field is out of range.
	ErrInvalidConfig = errors.New("invalid config")
	// ErrInvalidHandle: a C API handle is 0, unknown, stale or of the wrong kind
	// (only produced by the C API; it is here so that all codes share one table).
	ErrInvalidHandle = errors.New("invalid handle")
	// ErrBufferTooSmall: a caller-provided buffer cannot hold the result (C API).
	ErrBufferTooSmall = errors.New("buffer too small")
	// ErrInternal: a bug in hakuban (a recovered panic); the message says where.
	ErrInternal = errors.New("internal error")
	// ErrRefused: the network refused a contract (permissions).
	ErrRefused = errors.New("refused")
	// ErrProtocol: a peer broke the wire protocol.
	ErrProtocol = errors.New("protocol error")
	// ErrConnection: a network connection failed.
	ErrConnection = errors.New("connection error")
)

// Code is the numeric form of a result, shared by the C API, the header and
// both bindings: 0 is success, positive values are stream states, negative
// values are errors. The table below is the only place codes are defined; a
// test checks include/hakuban.h and the bindings against it.
type Code int32

// Result codes. Never renumber one: they are part of the C ABI.
const (
	CodeOK Code = 0
	// CodeEmpty: a non-blocking try found nothing pending.
	CodeEmpty Code = 1
	// CodeEnd: the stream ended (its contract or sink was closed or revoked).
	CodeEnd Code = 2
	// CodeTimeout: a blocking wait ran out of time.
	CodeTimeout Code = 3

	CodeInvalidArgument    Code = -1
	CodeInvalidHandle      Code = -2
	CodeInvalidDescriptor  Code = -3
	CodeDescriptorTooLarge Code = -4
	CodeTooManyTags        Code = -5
	CodeInvalidCapacity    Code = -6
	CodeStaleVersion       Code = -7
	CodeRevoked            Code = -8
	CodeClosed             Code = -9
	CodeWrongFormat        Code = -10
	CodeBufferTooSmall     Code = -11
	CodeInvalidConfig      Code = -12
	CodeRefused            Code = -13
	CodeProtocol           Code = -14
	CodeConnection         Code = -15
	CodeInternal           Code = -16
)

// CodeInfo describes one result code.
type CodeInfo struct {
	Code Code
	// Name is the suffix of the C constant: HAKUBAN_<Name>.
	Name string
	// Err is the sentinel error for negative codes, nil otherwise.
	Err error
}

// Codes returns the table of all result codes, in a stable order.
func Codes() []CodeInfo {
	return []CodeInfo{
		{CodeOK, "OK", nil},
		{CodeEmpty, "EMPTY", nil},
		{CodeEnd, "END", nil},
		{CodeTimeout, "TIMEOUT", nil},
		{CodeInvalidArgument, "ERR_INVALID_ARGUMENT", ErrInvalidArgument},
		{CodeInvalidHandle, "ERR_INVALID_HANDLE", ErrInvalidHandle},
		{CodeInvalidDescriptor, "ERR_INVALID_DESCRIPTOR", ErrInvalidDescriptor},
		{CodeDescriptorTooLarge, "ERR_DESCRIPTOR_TOO_LARGE", ErrDescriptorTooLarge},
		{CodeTooManyTags, "ERR_TOO_MANY_TAGS", ErrTooManyTags},
		{CodeInvalidCapacity, "ERR_INVALID_CAPACITY", ErrInvalidCapacity},
		{CodeStaleVersion, "ERR_STALE_VERSION", ErrStaleVersion},
		{CodeRevoked, "ERR_REVOKED", ErrRevoked},
		{CodeClosed, "ERR_CLOSED", ErrClosed},
		{CodeWrongFormat, "ERR_WRONG_FORMAT", ErrWrongFormat},
		{CodeBufferTooSmall, "ERR_BUFFER_TOO_SMALL", ErrBufferTooSmall},
		{CodeInvalidConfig, "ERR_INVALID_CONFIG", ErrInvalidConfig},
		{CodeRefused, "ERR_REFUSED", ErrRefused},
		{CodeProtocol, "ERR_PROTOCOL", ErrProtocol},
		{CodeConnection, "ERR_CONNECTION", ErrConnection},
		{CodeInternal, "ERR_INTERNAL", ErrInternal},
	}
}

// ErrorCode maps an error to its result code: nil is CodeOK, a context
// deadline is CodeTimeout, an error wrapping a sentinel gets the sentinel's
// code, anything else is CodeInternal.
func ErrorCode(err error) Code {
	if err == nil {
		return CodeOK
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return CodeTimeout
	}
	for _, c := range Codes() {
		if c.Err != nil && errors.Is(err, c.Err) {
			return c.Code
		}
	}
	return CodeInternal
}
