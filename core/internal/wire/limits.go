package wire

import "fmt"

// Limits bound what one side of a link accepts. Each side announces its
// Limits in the handshake (Hello, Welcome); a sender never sends more than
// its peer announced, and a receiver treats anything beyond its own Limits
// as a violation (ErrTooLarge, close code CloseLimitExceeded).
//
// The decoder enforces the per-message limits (MaxFrame through
// MaxFormatLen). MaxObjects, MaxTags and MaxDepth need link state or a JSON
// parser and are enforced by the exchange; they are here so that they are
// announced with the rest.
//
// A zero field means its default (DefaultLimits). Validate checks the ranges
// in the table of PROTOCOL.md, "Limits".
type Limits struct {
	// MaxFrame is the largest frame (WebSocket message) in bytes.
	MaxFrame int
	// MaxStateData is the largest state data in bytes, after
	// decompression; the encoded payload may not be larger either.
	MaxStateData int
	// MaxDescriptor is the largest canonical descriptor JSON in bytes
	// (tag or object).
	MaxDescriptor int
	// MaxTagsPerObject is the most tags one object descriptor may have.
	MaxTagsPerObject int
	// MaxVersionLen is the most elements in a version.
	MaxVersionLen int
	// MaxFormatEntries is the most entries in a state's format stack.
	MaxFormatEntries int
	// MaxFormatLen is the longest format entry in bytes.
	MaxFormatLen int
	// MaxObjects is the most object descriptors a peer may have declared
	// at once on the link (DeclareObject without ForgetObject).
	MaxObjects int
	// MaxTags is the most tag descriptors a peer may have declared at
	// once on the link.
	MaxTags int
	// MaxDepth is the deepest JSON nesting of a descriptor.
	MaxDepth int
}

// Defaults of Limits.
const (
	DefaultMaxStateData     = 16 << 20
	DefaultMaxFrame         = DefaultMaxStateData + FrameOverhead
	DefaultMaxDescriptor    = 64 << 10
	DefaultMaxTagsPerObject = 64
	DefaultMaxVersionLen    = 64
	DefaultMaxFormatEntries = 16
	DefaultMaxFormatLen     = 64
	DefaultMaxObjects       = 65536
	DefaultMaxTags          = 16384
	DefaultMaxDepth         = 64
)

// FrameOverhead is the room Validate requires in MaxFrame beyond
// MaxStateData (and beyond MaxDescriptor), so that the largest state or
// descriptor always fits in one frame with its message header. The largest
// State header allowed by the hard caps below is under 40 KiB.
const FrameOverhead = 64 << 10

// Fixed protocol limits on handshake and error fields.
const (
	// MaxHandshakeFrame is the largest Hello or Welcome frame. It is
	// small because a server reads Hello before it knows who is talking.
	MaxHandshakeFrame = 16 << 10
	// MaxNameLen is the longest exchange name in bytes.
	MaxNameLen = 256
	// MaxTokenLen is the longest auth token in bytes.
	MaxTokenLen = 4096
	// MaxErrorText is the longest Error text in bytes.
	MaxErrorText = 1024
	// MaxAnnouncedLimits is the most limit values a handshake message
	// may carry (later minor versions may add limits).
	MaxAnnouncedLimits = 64
)

// limitRange is the accepted range of one Limits field: every peer must
// accept at least min (so a simple peer may ignore announcements for data
// under the minimums) and no peer may announce more than max.
type limitRange struct {
	name     string
	min, max int
	field    func(*Limits) *int
}

// limitFields lists the Limits fields in their wire order (PROTOCOL.md,
// "Limits"); a new field may only be appended.
var limitFields = [...]limitRange{
	{"MaxFrame", 128 << 10, 64<<20 + FrameOverhead, func(l *Limits) *int { return &l.MaxFrame }},
	{"MaxStateData", 1 << 10, 64 << 20, func(l *Limits) *int { return &l.MaxStateData }},
	{"MaxDescriptor", 1 << 10, 1 << 20, func(l *Limits) *int { return &l.MaxDescriptor }},
	{"MaxTagsPerObject", 8, 4096, func(l *Limits) *int { return &l.MaxTagsPerObject }},
	{"MaxVersionLen", 4, 1024, func(l *Limits) *int { return &l.MaxVersionLen }},
	{"MaxFormatEntries", 4, 64, func(l *Limits) *int { return &l.MaxFormatEntries }},
	{"MaxFormatLen", 16, 255, func(l *Limits) *int { return &l.MaxFormatLen }},
	{"MaxObjects", 16, 1 << 24, func(l *Limits) *int { return &l.MaxObjects }},
	{"MaxTags", 16, 1 << 24, func(l *Limits) *int { return &l.MaxTags }},
	{"MaxDepth", 8, 1024, func(l *Limits) *int { return &l.MaxDepth }},
}

// DefaultLimits returns the default Limits.
func DefaultLimits() Limits {
	return Limits{
		MaxFrame:         DefaultMaxFrame,
		MaxStateData:     DefaultMaxStateData,
		MaxDescriptor:    DefaultMaxDescriptor,
		MaxTagsPerObject: DefaultMaxTagsPerObject,
		MaxVersionLen:    DefaultMaxVersionLen,
		MaxFormatEntries: DefaultMaxFormatEntries,
		MaxFormatLen:     DefaultMaxFormatLen,
		MaxObjects:       DefaultMaxObjects,
		MaxTags:          DefaultMaxTags,
		MaxDepth:         DefaultMaxDepth,
	}
}

// WithDefaults returns l with every zero field set to its default.
func (l Limits) WithDefaults() Limits {
	d := DefaultLimits()
	for _, f := range limitFields {
		if p := f.field(&l); *p == 0 {
			*p = *f.field(&d)
		}
	}
	return l
}

// Validate checks l, after WithDefaults, against the ranges of PROTOCOL.md:
// every field within its range, and MaxFrame at least FrameOverhead above
// MaxStateData and MaxDescriptor.
func (l Limits) Validate() error {
	l = l.WithDefaults()
	for _, f := range limitFields {
		if v := *f.field(&l); v < f.min || v > f.max {
			return fmt.Errorf("%w: %s = %d, want %d to %d", ErrInvalidLimits, f.name, v, f.min, f.max)
		}
	}
	if l.MaxFrame < l.MaxStateData+FrameOverhead {
		return fmt.Errorf("%w: MaxFrame %d is less than MaxStateData %d + %d", ErrInvalidLimits, l.MaxFrame, l.MaxStateData, FrameOverhead)
	}
	if l.MaxFrame < l.MaxDescriptor+FrameOverhead {
		return fmt.Errorf("%w: MaxFrame %d is less than MaxDescriptor %d + %d", ErrInvalidLimits, l.MaxFrame, l.MaxDescriptor, FrameOverhead)
	}
	return nil
}
