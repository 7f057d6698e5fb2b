package wire

import "time"

// ProtocolVersion is the version of the protocol this package speaks, as
// "major.minor". The major version is carried by the WebSocket subprotocol
// name (Subprotocol) and changes only with incompatible changes; a minor
// version adds messages, fields or flags that a peer uses only after both
// sides announced a minor version that has them (see Negotiate).
//
// Changelog:
//
//	1.0 — initial.
//	1.1 — ObjectUnexposed (0x34) and ObjectExposed (0x35), U→D: whether an
//	      exposer is elected for a live object the downstream is fed, so
//	      that an observer behind a link can tell "waiting for an exposer"
//	      from "stale". Sent only when both sides speak 1.1 (MinorExposer).
const ProtocolVersion = "1.1"

// ProtocolMajor and ProtocolMinor are ProtocolVersion as numbers.
const (
	ProtocolMajor = 1
	ProtocolMinor = 1
)

// MinorExposer is the first minor version with ObjectUnexposed and
// ObjectExposed.
const MinorExposer = 1

// Subprotocol is the WebSocket subprotocol name for ProtocolMajor. A server
// that does not select it does not speak this major version.
const Subprotocol = "hakuban.v1"

// Link timing defaults (PROTOCOL.md, "Liveness"). Each side pings every
// DefaultPingInterval and declares the link dead when a pong does not arrive
// within DefaultPingTimeout, so a silent link is noticed within
// DefaultPingInterval+DefaultPingTimeout (9 s).
const (
	DefaultPingInterval = 4 * time.Second
	DefaultPingTimeout  = 5 * time.Second

	// DefaultHandshakeTimeout bounds the time from the WebSocket upgrade
	// to Welcome; a server closes with CloseTimeout when Hello has not
	// arrived by then.
	DefaultHandshakeTimeout = 10 * time.Second
)

// Features is a set of optional capabilities. Each side announces the
// payload encodings it accepts; a sender uses an encoding only if the
// receiver announced it.
type Features uint64

const (
	// FeatureZstd: the sender of the announcement accepts states whose
	// data is one zstd frame (EncodingZstd).
	FeatureZstd Features = 1 << 0
	// FeatureDelta: the sender of the announcement accepts deltas
	// (EncodingDelta). Only meaningful together with FeatureZstd.
	FeatureDelta Features = 1 << 1

	// AllFeatures is every feature this package implements.
	AllFeatures = FeatureZstd | FeatureDelta
)

// Negotiate returns the minor version to use on a link with a peer that
// announced version major.minor: the lower of the two minors. It fails with
// ErrUnsupportedVersion when the majors differ.
func Negotiate(major, minor uint32) (uint32, error) {
	if major != ProtocolMajor {
		return 0, unsupportedVersion(major, minor)
	}
	return min(minor, ProtocolMinor), nil
}
