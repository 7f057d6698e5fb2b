package wire

import (
	"errors"
	"fmt"
)

// Decoding errors wrap one of these sentinels with the message and field
// concerned; CloseCodeFor maps them to close codes.
var (
	// ErrMalformed: the bytes do not follow the format (truncated, bad
	// varint, invalid UTF-8, reserved bits set, invalid value).
	ErrMalformed = errors.New("wire: malformed")
	// ErrTooLarge: a frame, length or count exceeds a limit.
	ErrTooLarge = errors.New("wire: too large")
	// ErrUnknownMessage: a message type this version does not know, in
	// the range that may not be skipped.
	ErrUnknownMessage = errors.New("wire: unknown message type")
	// ErrUnexpectedMessage: a known message where it is not allowed
	// (a handshake message after the handshake, anything else during it,
	// or more than one message in a handshake frame).
	ErrUnexpectedMessage = errors.New("wire: unexpected message")
	// ErrUnsupportedVersion: the peer's major version is not ours.
	ErrUnsupportedVersion = errors.New("wire: unsupported protocol version")
	// ErrInvalidLimits: a Limits value is out of the allowed range.
	ErrInvalidLimits = errors.New("wire: invalid limits")
)

func unsupportedVersion(major, minor uint32) error {
	return fmt.Errorf("%w: peer speaks %d.%d, we speak %s", ErrUnsupportedVersion, major, minor, ProtocolVersion)
}
