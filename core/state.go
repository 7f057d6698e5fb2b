package core

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hakuban/hakuban/core/internal/canon"
)

// Version orders the states of one object. Versions compare
// lexicographically and a prefix is smaller: [1,5] < [1,6] < [2] and
// [1] < [1,0].
type Version []int64

// Compare returns -1, 0 or +1 as v is older than, equal to or newer than o.
func (v Version) Compare(o Version) int {
	return slices.Compare(v, o)
}

// String formats v as "[1,2,3]".
func (v Version) String() string {
	var b strings.Builder
	b.WriteByte('[')
	for i, x := range v {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatInt(x, 10))
	}
	b.WriteByte(']')
	return b.String()
}

// NextVersion returns a version strictly greater than cur that tracks the
// wall clock (microseconds since the Unix epoch) when the clock allows: a
// hybrid clock. An exposer that takes over from another on a host whose
// clock lags still moves forward, because the result is never below cur.
func NextVersion(cur Version, now time.Time) Version {
	return nextVersion(cur, now, new([1]int64))
}

// nextVersion is NextVersion writing the usual one-element result into buf,
// so that a sink can keep it in the state's own allocation.
func nextVersion(cur Version, now time.Time, buf *[1]int64) Version {
	us := now.UnixMicro()
	switch {
	case len(cur) == 0 || cur[0] < us:
		buf[0] = us
	case cur[0] < math.MaxInt64:
		buf[0] = cur[0] + 1
	default:
		// The first element is saturated: extend cur, which makes a larger version.
		return append(slices.Clip(slices.Clone(cur)), 0)
	}
	return buf[:]
}

// ObjectState is one value of an object. The library never interprets Data.
//
// A state handed to a sink belongs to the exchange from then on: do not
// modify its Data or Format afterwards. States returned to observers are
// shared between observers: treat them as read-only.
type ObjectState struct {
	// Version orders states; nil asks the sink to make one (NextVersion).
	Version Version
	// Format names the encodings applied to Data, innermost first, e.g.
	// ["JSON"] or ["JSON","zstd"].
	Format []string
	// Data is the payload.
	Data []byte
	// Synchronized is true while this is the current truth from a live
	// exposer. Sinks set it; observers read it.
	Synchronized bool
	// LastSynchronized is the local time at which the state was last known
	// synchronized; meaningful only when Synchronized is false. (It crosses
	// the network as a relative age, since clocks differ between hosts.)
	LastSynchronized time.Time
}

// IsZero reports whether s holds no state at all (no version).
func (s ObjectState) IsZero() bool { return s.Version == nil }

// SynchronizedAgo returns 0 for a synchronized state, otherwise how long ago
// the state was last synchronized.
func (s ObjectState) SynchronizedAgo() time.Duration {
	if s.Synchronized || s.LastSynchronized.IsZero() {
		return 0
	}
	return time.Since(s.LastSynchronized)
}

// FormatTop returns the outermost encoding, or "" when Format is empty.
func (s ObjectState) FormatTop() string {
	if len(s.Format) == 0 {
		return ""
	}
	return s.Format[len(s.Format)-1]
}

// FormatJSON is the format name the JSON helpers push and pop.
const FormatJSON = "JSON"

// NewJSONState returns a state whose Data is v encoded as JSON and whose
// Format is ["JSON"]. Version is left nil so the sink makes one.
func NewJSONState(v any) (ObjectState, error) {
	return ObjectState{}.EncodeJSON(v)
}

// EncodeJSON returns a copy of s whose Data is v encoded as JSON, with
// "JSON" pushed on top of the format stack.
func (s ObjectState) EncodeJSON(v any) (ObjectState, error) {
	data, err := canon.Marshal(v)
	if err != nil {
		return ObjectState{}, fmt.Errorf("core: encode JSON state: %w", err)
	}
	s.Data = data
	s.Format = append(slices.Clip(s.Format), FormatJSON)
	return s, nil
}

// DecodeJSON decodes Data into v and returns a copy of s with "JSON"
// popped off the format stack. It fails with ErrWrongFormat when the top of
// the stack is not "JSON".
func (s ObjectState) DecodeJSON(v any) (ObjectState, error) {
	if top := s.FormatTop(); top != FormatJSON {
		return ObjectState{}, fmt.Errorf("core: decode JSON state: format is %q, want %q on top: %w", s.Format, FormatJSON, ErrWrongFormat)
	}
	if err := canon.Unmarshal(s.Data, v); err != nil {
		return ObjectState{}, fmt.Errorf("core: decode JSON state: %w", err)
	}
	s.Format = slices.Clip(s.Format[:len(s.Format)-1])
	return s, nil
}
