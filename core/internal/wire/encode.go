package wire

import (
	"encoding/binary"
	"math/bits"
	"slices"
	"time"
)

// Flag bits of State and Sync (PROTOCOL.md, "State").
const (
	flagStale         = 0x01 // not synchronized; an age follows
	flagToken         = 0x02 // a token follows
	flagEncodingShift = 2
	flagEncodingMask  = 0x03 << flagEncodingShift

	stateFlagsKnown = flagStale | flagToken | flagEncodingMask
	syncFlagsKnown  = flagStale | flagToken
)

// Append appends m as one message (type, body length, body) to dst and
// returns the extended slice. Several messages appended to one buffer form
// one frame. Append does not check limits (see Check).
func Append(dst []byte, m Message) []byte {
	n := m.bodySize()
	dst = slices.Grow(dst, 1+uvarintLen(uint64(n))+n)
	dst = append(dst, byte(m.Type()))
	dst = binary.AppendUvarint(dst, uint64(n))
	return m.appendBody(dst)
}

// AppendState is Append for a State. It does not allocate when dst has room
// for the message (and, unlike Append, does not make m escape).
func AppendState(dst []byte, m *State) []byte {
	n := m.bodySize()
	dst = slices.Grow(dst, 1+uvarintLen(uint64(n))+n)
	dst = append(dst, byte(TypeState))
	dst = binary.AppendUvarint(dst, uint64(n))
	return m.appendBody(dst)
}

// AppendSync is Append for a Sync, without allocation when dst has room.
func AppendSync(dst []byte, m *Sync) []byte {
	n := m.bodySize()
	dst = slices.Grow(dst, 1+uvarintLen(uint64(n))+n)
	dst = append(dst, byte(TypeSync))
	dst = binary.AppendUvarint(dst, uint64(n))
	return m.appendBody(dst)
}

// Size returns the number of bytes Append adds for m, so that a writer can
// tell whether m still fits in the frame it is filling.
func Size(m Message) int {
	n := m.bodySize()
	return 1 + uvarintLen(uint64(n)) + n
}

func uvarintLen(x uint64) int { return (bits.Len64(x|1) + 6) / 7 }

func varintLen(x int64) int { return uvarintLen(uint64(x<<1) ^ uint64(x>>63)) }

func bytesLen(n int) int { return uvarintLen(uint64(n)) + n }

func versionLen(v []int64) int {
	n := uvarintLen(uint64(len(v)))
	for _, x := range v {
		n += varintLen(x)
	}
	return n
}

func formatLen(f []string) int {
	n := uvarintLen(uint64(len(f)))
	for _, s := range f {
		n += bytesLen(len(s))
	}
	return n
}

func appendBytes(dst, b []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(b)))
	return append(dst, b...)
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

func appendVersion(dst []byte, v []int64) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(v)))
	for _, x := range v {
		dst = binary.AppendVarint(dst, x)
	}
	return dst
}

func appendFormat(dst []byte, f []string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(f)))
	for _, s := range f {
		dst = appendString(dst, s)
	}
	return dst
}

// ageMicros converts an age to whole microseconds, negative ages to 0.
func ageMicros(d time.Duration) uint64 {
	if d <= 0 {
		return 0
	}
	return uint64(d / time.Microsecond)
}

// limitsValues returns the values announced for l: zero fields take their
// defaults.
func limitsValues(l *Limits) [len(limitFields)]uint64 {
	d := l.WithDefaults()
	var v [len(limitFields)]uint64
	for i, f := range limitFields {
		v[i] = uint64(max(*f.field(&d), 0))
	}
	return v
}

func limitsLen(l *Limits) int {
	n := uvarintLen(uint64(len(limitFields)))
	for _, v := range limitsValues(l) {
		n += uvarintLen(v)
	}
	return n
}

func appendLimits(dst []byte, l *Limits) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(limitFields)))
	for _, v := range limitsValues(l) {
		dst = binary.AppendUvarint(dst, v)
	}
	return dst
}

func (m *Hello) bodySize() int {
	return uvarintLen(uint64(m.Major)) + uvarintLen(uint64(m.Minor)) + bytesLen(len(m.Name)) +
		bytesLen(len(m.Token)) + uvarintLen(uint64(m.Features)) + limitsLen(&m.Limits)
}

func (m *Hello) appendBody(dst []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(m.Major))
	dst = binary.AppendUvarint(dst, uint64(m.Minor))
	dst = appendString(dst, m.Name)
	dst = appendBytes(dst, m.Token)
	dst = binary.AppendUvarint(dst, uint64(m.Features))
	return appendLimits(dst, &m.Limits)
}

func (m *Welcome) bodySize() int {
	return uvarintLen(uint64(m.Major)) + uvarintLen(uint64(m.Minor)) + bytesLen(len(m.Name)) +
		uvarintLen(uint64(m.Features)) + limitsLen(&m.Limits)
}

func (m *Welcome) appendBody(dst []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(m.Major))
	dst = binary.AppendUvarint(dst, uint64(m.Minor))
	dst = appendString(dst, m.Name)
	dst = binary.AppendUvarint(dst, uint64(m.Features))
	return appendLimits(dst, &m.Limits)
}

func (m *DeclareTag) bodySize() int {
	return uvarintLen(uint64(m.ID)) + bytesLen(len(m.JSON))
}

func (m *DeclareTag) appendBody(dst []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(m.ID))
	return appendBytes(dst, m.JSON)
}

func (m *DeclareObject) bodySize() int {
	n := uvarintLen(uint64(m.ID)) + bytesLen(len(m.JSON)) + uvarintLen(uint64(len(m.Tags)))
	for _, t := range m.Tags {
		n += uvarintLen(uint64(t))
	}
	return n
}

func (m *DeclareObject) appendBody(dst []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(m.ID))
	dst = appendBytes(dst, m.JSON)
	dst = binary.AppendUvarint(dst, uint64(len(m.Tags)))
	for _, t := range m.Tags {
		dst = binary.AppendUvarint(dst, uint64(t))
	}
	return dst
}

// Messages whose body is one id.

func (m *ForgetTag) bodySize() int       { return uvarintLen(uint64(m.ID)) }
func (m *ForgetObject) bodySize() int    { return uvarintLen(uint64(m.ID)) }
func (m *ObjectObserve) bodySize() int   { return uvarintLen(uint64(m.Object)) }
func (m *ObjectUnobserve) bodySize() int { return uvarintLen(uint64(m.Object)) }
func (m *ObjectUnexpose) bodySize() int  { return uvarintLen(uint64(m.Object)) }
func (m *TagObserve) bodySize() int      { return uvarintLen(uint64(m.Tag)) }
func (m *TagUnobserve) bodySize() int    { return uvarintLen(uint64(m.Tag)) }
func (m *TagUnexpose) bodySize() int     { return uvarintLen(uint64(m.Tag)) }
func (m *ObjectLive) bodySize() int      { return uvarintLen(uint64(m.Object)) }
func (m *ObjectGone) bodySize() int      { return uvarintLen(uint64(m.Object)) }
func (m *ObjectUnexposed) bodySize() int { return uvarintLen(uint64(m.Object)) }
func (m *ObjectExposed) bodySize() int   { return uvarintLen(uint64(m.Object)) }

func (m *ForgetTag) appendBody(d []byte) []byte     { return binary.AppendUvarint(d, uint64(m.ID)) }
func (m *ForgetObject) appendBody(d []byte) []byte  { return binary.AppendUvarint(d, uint64(m.ID)) }
func (m *ObjectObserve) appendBody(d []byte) []byte { return binary.AppendUvarint(d, uint64(m.Object)) }
func (m *ObjectUnobserve) appendBody(d []byte) []byte {
	return binary.AppendUvarint(d, uint64(m.Object))
}
func (m *ObjectUnexpose) appendBody(d []byte) []byte {
	return binary.AppendUvarint(d, uint64(m.Object))
}
func (m *TagObserve) appendBody(d []byte) []byte   { return binary.AppendUvarint(d, uint64(m.Tag)) }
func (m *TagUnobserve) appendBody(d []byte) []byte { return binary.AppendUvarint(d, uint64(m.Tag)) }
func (m *TagUnexpose) appendBody(d []byte) []byte  { return binary.AppendUvarint(d, uint64(m.Tag)) }
func (m *ObjectLive) appendBody(d []byte) []byte   { return binary.AppendUvarint(d, uint64(m.Object)) }
func (m *ObjectGone) appendBody(d []byte) []byte   { return binary.AppendUvarint(d, uint64(m.Object)) }
func (m *ObjectUnexposed) appendBody(d []byte) []byte {
	return binary.AppendUvarint(d, uint64(m.Object))
}
func (m *ObjectExposed) appendBody(d []byte) []byte { return binary.AppendUvarint(d, uint64(m.Object)) }

// Messages whose body is an id and a number.

func (m *ObjectExpose) bodySize() int {
	return uvarintLen(uint64(m.Object)) + uvarintLen(uint64(m.Capacity))
}

func (m *ObjectExpose) appendBody(dst []byte) []byte {
	return binary.AppendUvarint(binary.AppendUvarint(dst, uint64(m.Object)), uint64(m.Capacity))
}

func (m *TagExpose) bodySize() int {
	return uvarintLen(uint64(m.Tag)) + uvarintLen(uint64(m.Capacity))
}

func (m *TagExpose) appendBody(dst []byte) []byte {
	return binary.AppendUvarint(binary.AppendUvarint(dst, uint64(m.Tag)), uint64(m.Capacity))
}

func (m *Assign) bodySize() int {
	return uvarintLen(uint64(m.Object)) + uvarintLen(m.Token)
}

func (m *Assign) appendBody(dst []byte) []byte {
	return binary.AppendUvarint(binary.AppendUvarint(dst, uint64(m.Object)), m.Token)
}

func (m *Revoke) bodySize() int {
	return uvarintLen(uint64(m.Object)) + uvarintLen(m.Token)
}

func (m *Revoke) appendBody(dst []byte) []byte {
	return binary.AppendUvarint(binary.AppendUvarint(dst, uint64(m.Object)), m.Token)
}

func (m *Have) bodySize() int {
	return uvarintLen(uint64(m.Object)) + versionLen(m.Version)
}

func (m *Have) appendBody(dst []byte) []byte {
	return appendVersion(binary.AppendUvarint(dst, uint64(m.Object)), m.Version)
}

func (m *State) flags() byte {
	f := byte(m.Encoding&3) << flagEncodingShift
	if !m.Synchronized {
		f |= flagStale
	}
	if m.Token != 0 {
		f |= flagToken
	}
	return f
}

func (m *State) bodySize() int {
	n := uvarintLen(uint64(m.Object)) + 1 + versionLen(m.Version) + formatLen(m.Format)
	if !m.Synchronized {
		n += uvarintLen(ageMicros(m.Age))
	}
	if m.Token != 0 {
		n += uvarintLen(m.Token)
	}
	switch m.Encoding & 3 {
	case EncodingZstd:
		n += uvarintLen(uint64(max(m.Size, 0)))
	case EncodingDelta:
		n += uvarintLen(uint64(max(m.Size, 0))) + versionLen(m.Base)
	}
	return n + bytesLen(len(m.Data))
}

func (m *State) appendBody(dst []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(m.Object))
	dst = append(dst, m.flags())
	dst = appendVersion(dst, m.Version)
	dst = appendFormat(dst, m.Format)
	if !m.Synchronized {
		dst = binary.AppendUvarint(dst, ageMicros(m.Age))
	}
	if m.Token != 0 {
		dst = binary.AppendUvarint(dst, m.Token)
	}
	switch m.Encoding & 3 {
	case EncodingZstd:
		dst = binary.AppendUvarint(dst, uint64(max(m.Size, 0)))
	case EncodingDelta:
		dst = binary.AppendUvarint(dst, uint64(max(m.Size, 0)))
		dst = appendVersion(dst, m.Base)
	}
	return appendBytes(dst, m.Data)
}

func (m *Sync) flags() byte {
	var f byte
	if !m.Synchronized {
		f |= flagStale
	}
	if m.Token != 0 {
		f |= flagToken
	}
	return f
}

func (m *Sync) bodySize() int {
	n := uvarintLen(uint64(m.Object)) + 1 + versionLen(m.Version)
	if !m.Synchronized {
		n += uvarintLen(ageMicros(m.Age))
	}
	if m.Token != 0 {
		n += uvarintLen(m.Token)
	}
	return n
}

func (m *Sync) appendBody(dst []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(m.Object))
	dst = append(dst, m.flags())
	dst = appendVersion(dst, m.Version)
	if !m.Synchronized {
		dst = binary.AppendUvarint(dst, ageMicros(m.Age))
	}
	if m.Token != 0 {
		dst = binary.AppendUvarint(dst, m.Token)
	}
	return dst
}

func (m *Error) bodySize() int {
	return 1 + uvarintLen(uint64(m.Ref)) + uvarintLen(uint64(m.Code)) + bytesLen(len(m.Text))
}

func (m *Error) appendBody(dst []byte) []byte {
	dst = append(dst, byte(m.Contract))
	dst = binary.AppendUvarint(dst, uint64(m.Ref))
	dst = binary.AppendUvarint(dst, uint64(m.Code))
	return appendString(dst, m.Text)
}
