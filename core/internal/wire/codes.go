package wire

import (
	"errors"
	"strconv"
	"unicode/utf8"
)

// CloseCode is a WebSocket close status code in the application range
// 4000–4999 (PROTOCOL.md, "Close codes"). It converts directly to
// websocket.StatusCode. Peers also use the standard codes 1000 (normal
// closure, a user closed the link) and 1009 (message too big, sent by the
// WebSocket library when a frame exceeds the read limit).
type CloseCode uint16

const (
	// CloseProtocolViolation: the peer sent bytes that do not follow the
	// protocol (malformed frame, unknown message type, unknown or reused
	// id, message in the wrong direction or state).
	CloseProtocolViolation CloseCode = 4000
	// CloseUnsupportedVersion: no common protocol version.
	CloseUnsupportedVersion CloseCode = 4001
	// CloseAuthRefused: the Hello's token was refused.
	CloseAuthRefused CloseCode = 4002
	// CloseLimitExceeded: the peer exceeded an announced limit (frame,
	// state, descriptor or declaration count).
	CloseLimitExceeded CloseCode = 4003
	// CloseGoingAway: the sender is shutting down; reconnect (elsewhere).
	CloseGoingAway CloseCode = 4004
	// CloseInternalError: the sender hit a bug; reconnect.
	CloseInternalError CloseCode = 4005
	// CloseTooSlow: the peer did not read fast enough and messages that
	// cannot be coalesced (declarations, assignments) overflowed the
	// send queue.
	CloseTooSlow CloseCode = 4006
	// CloseTimeout: the handshake did not finish in time, or pongs
	// stopped arriving.
	CloseTimeout CloseCode = 4007
)

var closeCodeNames = map[CloseCode]string{
	CloseProtocolViolation:  "protocol violation",
	CloseUnsupportedVersion: "unsupported version",
	CloseAuthRefused:        "auth refused",
	CloseLimitExceeded:      "limit exceeded",
	CloseGoingAway:          "going away",
	CloseInternalError:      "internal error",
	CloseTooSlow:            "too slow",
	CloseTimeout:            "timeout",
}

func (c CloseCode) String() string {
	if s, ok := closeCodeNames[c]; ok {
		return s
	}
	return "close code " + strconv.Itoa(int(c))
}

// Retry reports whether a downstream should reconnect (with backoff) after
// the upstream closed the link with c. Version and auth refusals would only
// repeat.
func (c CloseCode) Retry() bool {
	return c != CloseUnsupportedVersion && c != CloseAuthRefused
}

// CloseCodeFor maps a decoding or handshake error of this package to the
// close code to send; other errors map to CloseInternalError.
func CloseCodeFor(err error) CloseCode {
	switch {
	case errors.Is(err, ErrUnsupportedVersion):
		return CloseUnsupportedVersion
	case errors.Is(err, ErrTooLarge):
		return CloseLimitExceeded
	case errors.Is(err, ErrMalformed), errors.Is(err, ErrUnknownMessage),
		errors.Is(err, ErrUnexpectedMessage), errors.Is(err, ErrInvalidLimits):
		return CloseProtocolViolation
	}
	return CloseInternalError
}

// MaxCloseReason is the longest close reason WebSocket allows, in bytes.
const MaxCloseReason = 123

// CloseReason returns err's text cut to MaxCloseReason bytes on a UTF-8
// boundary, for the close frame.
func CloseReason(err error) string {
	if err == nil {
		return ""
	}
	return TruncateReason(err.Error())
}

// TruncateReason cuts s to at most MaxCloseReason bytes without splitting a
// UTF-8 sequence.
func TruncateReason(s string) string { return truncate(s, MaxCloseReason) }

// TruncateErrorText cuts s to at most MaxErrorText bytes without splitting
// a UTF-8 sequence, for the text of an Error message.
func TruncateErrorText(s string) string { return truncate(s, MaxErrorText) }

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for len(s) > 0 {
		r, size := utf8.DecodeLastRuneInString(s)
		if r != utf8.RuneError || size > 1 {
			break
		}
		s = s[:len(s)-1]
	}
	return s
}

// ErrorCode says why a declaration was refused (Error message). Receivers
// treat unknown codes like ErrorUnspecified.
type ErrorCode uint32

const (
	// ErrorUnspecified: refused for a reason without a code.
	ErrorUnspecified ErrorCode = 0
	// ErrorPermissionDenied: the link's token does not allow the
	// contract.
	ErrorPermissionDenied ErrorCode = 1
	// ErrorLimitExceeded: accepting it would pass a limit of the
	// receiver (for example contracts per client).
	ErrorLimitExceeded ErrorCode = 2
	// ErrorInvalidDescriptor: the descriptor is valid for the protocol
	// but refused by the receiver's policy. (Exceeding an announced limit
	// such as MaxDepth closes the link with CloseLimitExceeded instead.)
	ErrorInvalidDescriptor ErrorCode = 3
	// ErrorStaleVersion: a state from an assigned exposer was older than
	// the object's current state and was dropped.
	ErrorStaleVersion ErrorCode = 4
	// ErrorFenced: a state or sync came with a token that is not the
	// object's current assignment (revoked or unknown) and was dropped.
	ErrorFenced ErrorCode = 5
	// ErrorStateTooLarge: a state exceeds a limit further up the tree and
	// cannot be forwarded.
	ErrorStateTooLarge ErrorCode = 6
)

var errorCodeNames = map[ErrorCode]string{
	ErrorUnspecified:       "unspecified",
	ErrorPermissionDenied:  "permission denied",
	ErrorLimitExceeded:     "limit exceeded",
	ErrorInvalidDescriptor: "invalid descriptor",
	ErrorStaleVersion:      "stale version",
	ErrorFenced:            "fenced",
	ErrorStateTooLarge:     "state too large",
}

func (c ErrorCode) String() string {
	if s, ok := errorCodeNames[c]; ok {
		return s
	}
	return "error code " + strconv.FormatUint(uint64(c), 10)
}

// ContractKind says which declaration an Error refers to.
type ContractKind uint8

const (
	// ContractNone: the error concerns the link, not a declaration; Ref
	// is 0. The link stays open.
	ContractNone ContractKind = 0
	// ContractObjectObserve: Ref is an object id (ObjectObserve).
	ContractObjectObserve ContractKind = 1
	// ContractObjectExpose: Ref is an object id (ObjectExpose, or a State
	// or Sync sent for an assignment).
	ContractObjectExpose ContractKind = 2
	// ContractTagObserve: Ref is a tag id (TagObserve).
	ContractTagObserve ContractKind = 3
	// ContractTagExpose: Ref is a tag id (TagExpose).
	ContractTagExpose ContractKind = 4

	maxContractKind = ContractTagExpose
)

func (k ContractKind) String() string {
	switch k {
	case ContractNone:
		return "link"
	case ContractObjectObserve:
		return "object observe"
	case ContractObjectExpose:
		return "object expose"
	case ContractTagObserve:
		return "tag observe"
	case ContractTagExpose:
		return "tag expose"
	}
	return "contract kind " + strconv.Itoa(int(k))
}
