package delta

import "errors"

var (
	// ErrTooLarge means the decoded data would exceed the caller's maximum
	// size (a possible decompression bomb).
	ErrTooLarge = errors.New("delta: decoded data too large")

	// ErrCorrupt means the input is not a valid zstd frame, or a delta was
	// applied to a different base than it was made from (the frame checksum
	// does not match).
	ErrCorrupt = errors.New("delta: corrupt input")
)
