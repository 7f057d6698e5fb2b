package wire

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"time"
	"unicode/utf8"
)

// Decoder decodes the frames of one link, one message at a time, against
// the link's receive Limits. Use one Decoder per link (it is not safe for
// concurrent use): Reset it with each frame, then call Next until io.EOF.
// The zero Decoder enforces DefaultLimits.
//
// Next allocates only the message it returns and that message's version,
// format and tag lists, and only after the bytes behind every length and
// count were seen: memory stays under 32 bytes per frame byte even for the
// worst frames (many empty States: 28). Byte-slice fields alias the frame.
//
// A *State is the hot message (one per state delivered), so Next returns
// the Decoder's own: it, with its Version and Format, is valid until the
// next call of Next or Reset, like the byte slices that alias the frame.
// A receiver keeps copies of what it needs. Decode returns messages of
// their own.
type Decoder struct {
	limits Limits
	frame  []byte
	off    int // of the next message in frame
	err    error
	// state is the State Next returns; nil makes Next allocate each one
	// (Decode, which returns them all).
	state *stateBox
}

// NewDecoder returns a Decoder enforcing limits (zero fields take their
// defaults). It fails when the limits are invalid.
func NewDecoder(limits Limits) (*Decoder, error) {
	if err := limits.Validate(); err != nil {
		return nil, err
	}
	return &Decoder{limits: limits.WithDefaults(), state: &stateBox{}}, nil
}

// Reset starts decoding frame. It fails when the frame is empty or larger
// than MaxFrame; Next then returns the same error.
func (d *Decoder) Reset(frame []byte) error {
	if d.limits.MaxFrame == 0 {
		d.limits = DefaultLimits() // zero Decoder
	}
	d.frame, d.off, d.err = frame, 0, nil
	switch {
	case len(frame) == 0:
		d.err = fmt.Errorf("%w: empty frame", ErrMalformed)
	case len(frame) > d.limits.MaxFrame:
		d.err = fmt.Errorf("%w: frame of %d bytes, limit %d", ErrTooLarge, len(frame), d.limits.MaxFrame)
	}
	return d.err
}

// More reports whether the frame has bytes after the message Next returned
// last: another message, or an error Next will report.
func (d *Decoder) More() bool {
	return d.err == nil && d.off < len(d.frame)
}

// Next returns the frame's next message, or io.EOF after the last one. After
// an error it keeps returning that error. Optional message types it does not
// know are skipped. Hello and Welcome are refused (ErrUnexpectedMessage):
// they belong to the handshake (DecodeHello, DecodeWelcome).
func (d *Decoder) Next() (Message, error) {
	for d.err == nil {
		if d.off == len(d.frame) {
			return nil, io.EOF
		}
		start := d.off
		t, body, err := splitMessage(d.frame, &d.off)
		if err != nil {
			d.err = atOffset(err, start)
			break
		}
		if t >= TypeOptional {
			continue
		}
		if t == TypeHello || t == TypeWelcome {
			d.err = atOffset(fmt.Errorf("%w: %v after the handshake", ErrUnexpectedMessage, t), start)
			break
		}
		m, err := decodeBody(t, body, &d.limits, d.state)
		if err != nil {
			d.err = atOffset(err, start)
			break
		}
		return m, nil
	}
	return nil, d.err
}

// Decode decodes every message of frame against limits. It returns either
// all messages or none: a frame with any error yields only the error, so a
// malformed frame is never half applied. Hello and Welcome are refused as
// in Decoder.Next.
func Decode(frame []byte, limits Limits) ([]Message, error) {
	d, err := NewDecoder(limits)
	if err != nil {
		return nil, err
	}
	d.state = nil // every message its own
	if err := d.Reset(frame); err != nil {
		return nil, err
	}
	// Count first, so that the result is allocated once and exactly; this
	// also checks the framing before any message is decoded.
	count := 0
	for off := 0; off < len(frame); {
		start := off
		t, _, err := splitMessage(frame, &off)
		if err != nil {
			return nil, atOffset(err, start)
		}
		if t < TypeOptional {
			count++
		}
	}
	msgs := make([]Message, 0, count)
	for {
		m, err := d.Next()
		if err == io.EOF {
			return msgs, nil
		}
		if err != nil {
			return nil, err
		}
		msgs = append(msgs, m)
	}
}

// splitMessage reads the message header at *off and returns the type and
// body, advancing *off past the message.
func splitMessage(frame []byte, off *int) (Type, []byte, error) {
	rest := frame[*off:]
	t := Type(rest[0])
	n, k := binary.Uvarint(rest[1:])
	if k <= 0 {
		return t, nil, fmt.Errorf("%w: %v: bad or truncated body length", ErrMalformed, t)
	}
	if n > uint64(len(rest)-1-k) {
		return t, nil, fmt.Errorf("%w: %v: body of %d bytes, only %d left in the frame", ErrMalformed, t, n, len(rest)-1-k)
	}
	*off += 1 + k + int(n)
	return t, rest[1+k : 1+k+int(n)], nil
}

func atOffset(err error, off int) error {
	return fmt.Errorf("%w (message at byte %d)", err, off)
}

// decodeBody decodes the body of a message of type t. Bytes after the known
// fields are ignored: later minor versions may append fields. A State goes
// into box, cleared first, or into a new one when box is nil.
func decodeBody(t Type, body []byte, l *Limits, box *stateBox) (Message, error) {
	c := cursor{b: body, msg: t}
	var m Message
	switch t {
	case TypeHello:
		h := &Hello{}
		h.Major = c.u32("major")
		h.Minor = c.u32("minor")
		h.Name = c.str("name", MaxNameLen)
		h.Token = c.bytes("token", MaxTokenLen)
		h.Features = Features(c.uvarint("features"))
		h.Limits = c.limits()
		m = h
	case TypeWelcome:
		w := &Welcome{}
		w.Major = c.u32("major")
		w.Minor = c.u32("minor")
		w.Name = c.str("name", MaxNameLen)
		w.Features = Features(c.uvarint("features"))
		w.Limits = c.limits()
		m = w
	case TypeDeclareTag:
		m = &DeclareTag{ID: c.u32("id"), JSON: c.json(l)}
	case TypeForgetTag:
		m = &ForgetTag{ID: c.u32("id")}
	case TypeDeclareObject:
		o := &DeclareObject{ID: c.u32("id"), JSON: c.json(l)}
		o.Tags = c.tags(l)
		m = o
	case TypeForgetObject:
		m = &ForgetObject{ID: c.u32("id")}
	case TypeObjectObserve:
		m = &ObjectObserve{Object: c.u32("object")}
	case TypeObjectUnobserve:
		m = &ObjectUnobserve{Object: c.u32("object")}
	case TypeObjectExpose:
		m = &ObjectExpose{Object: c.u32("object"), Capacity: c.positive32("capacity")}
	case TypeObjectUnexpose:
		m = &ObjectUnexpose{Object: c.u32("object")}
	case TypeTagObserve:
		m = &TagObserve{Tag: c.u32("tag")}
	case TypeTagUnobserve:
		m = &TagUnobserve{Tag: c.u32("tag")}
	case TypeTagExpose:
		m = &TagExpose{Tag: c.u32("tag"), Capacity: c.positive32("capacity")}
	case TypeTagUnexpose:
		m = &TagUnexpose{Tag: c.u32("tag")}
	case TypeHave:
		m = &Have{Object: c.u32("object"), Version: c.version("version", l)}
	case TypeObjectLive:
		m = &ObjectLive{Object: c.u32("object")}
	case TypeObjectGone:
		m = &ObjectGone{Object: c.u32("object")}
	case TypeObjectUnexposed:
		m = &ObjectUnexposed{Object: c.u32("object")}
	case TypeObjectExposed:
		m = &ObjectExposed{Object: c.u32("object")}
	case TypeAssign:
		m = &Assign{Object: c.u32("object"), Token: c.positive("token")}
	case TypeRevoke:
		m = &Revoke{Object: c.u32("object"), Token: c.positive("token")}
	case TypeState:
		m = c.state(l, box)
	case TypeSync:
		m = c.sync(l)
	case TypeError:
		e := &Error{}
		if k := ContractKind(c.byte("contract")); k <= maxContractKind {
			e.Contract = k
		} else {
			c.fail("contract", ErrMalformed, "unknown contract kind")
		}
		e.Ref = c.u32("ref")
		e.Code = ErrorCode(c.u32("code"))
		e.Text = c.str("text", MaxErrorText)
		m = e
	default:
		return nil, fmt.Errorf("%w: 0x%02x", ErrUnknownMessage, uint8(t))
	}
	if c.err != nil {
		return nil, c.err
	}
	return m, nil
}

// cursor reads the fields of one message body. The first failure sticks:
// later reads return zero values, and the caller checks err once.
type cursor struct {
	b   []byte
	msg Type
	err error
}

func (c *cursor) fail(field string, sentinel error, detail string) {
	if c.err == nil {
		c.err = fmt.Errorf("%w: %v.%s: %s", sentinel, c.msg, field, detail)
	}
}

func (c *cursor) uvarint(field string) uint64 {
	if c.err != nil {
		return 0
	}
	v, n := binary.Uvarint(c.b)
	if n <= 0 {
		if n == 0 {
			c.fail(field, ErrMalformed, "truncated")
		} else {
			c.fail(field, ErrMalformed, "varint overflows 64 bits")
		}
		return 0
	}
	c.b = c.b[n:]
	return v
}

func (c *cursor) varint(field string) int64 {
	if c.err != nil {
		return 0
	}
	v, n := binary.Varint(c.b)
	if n <= 0 {
		if n == 0 {
			c.fail(field, ErrMalformed, "truncated")
		} else {
			c.fail(field, ErrMalformed, "varint overflows 64 bits")
		}
		return 0
	}
	c.b = c.b[n:]
	return v
}

func (c *cursor) u32(field string) uint32 {
	v := c.uvarint(field)
	if v > math.MaxUint32 {
		c.fail(field, ErrMalformed, "over 2^32-1")
		return 0
	}
	return uint32(v)
}

func (c *cursor) positive32(field string) uint32 {
	v := c.u32(field)
	if v == 0 && c.err == nil {
		c.fail(field, ErrMalformed, "must be at least 1")
	}
	return v
}

func (c *cursor) positive(field string) uint64 {
	v := c.uvarint(field)
	if v == 0 && c.err == nil {
		c.fail(field, ErrMalformed, "must be at least 1")
	}
	return v
}

func (c *cursor) byte(field string) byte {
	if c.err != nil {
		return 0
	}
	if len(c.b) == 0 {
		c.fail(field, ErrMalformed, "truncated")
		return 0
	}
	v := c.b[0]
	c.b = c.b[1:]
	return v
}

// length reads a length or count and checks it against max (ErrTooLarge)
// and against the bytes left, each item taking at least minItem bytes
// (ErrMalformed), before anything is allocated for it.
func (c *cursor) length(field string, max, minItem int) int {
	v := c.uvarint(field)
	if c.err != nil {
		return 0
	}
	if v > uint64(max) {
		c.fail(field, ErrTooLarge, fmt.Sprintf("%d over the limit of %d", v, max))
		return 0
	}
	if v*uint64(minItem) > uint64(len(c.b)) {
		c.fail(field, ErrMalformed, fmt.Sprintf("%d announced, only %d bytes left", v, len(c.b)))
		return 0
	}
	return int(v)
}

// bytes reads a length-prefixed byte string. The result aliases the frame,
// with its capacity cut so that appending to it cannot overwrite the frame.
func (c *cursor) bytes(field string, max int) []byte {
	n := c.length(field, max, 1)
	if c.err != nil {
		return nil
	}
	v := c.b[:n:n]
	c.b = c.b[n:]
	return v
}

func (c *cursor) str(field string, max int) string {
	b := c.bytes(field, max)
	if c.err == nil && !utf8.Valid(b) {
		c.fail(field, ErrMalformed, "invalid UTF-8")
	}
	return string(b)
}

func (c *cursor) json(l *Limits) []byte {
	b := c.bytes("json", l.MaxDescriptor)
	if c.err == nil && len(b) == 0 {
		c.fail("json", ErrMalformed, "empty descriptor")
	}
	return b
}

func (c *cursor) version(field string, l *Limits) []int64 {
	return c.versionIn(field, l, nil)
}

// versionIn reads a version into buf when it fits, or a new slice.
func (c *cursor) versionIn(field string, l *Limits, buf []int64) []int64 {
	n := c.length(field, l.MaxVersionLen, 1)
	if c.err != nil || n == 0 {
		return nil
	}
	var v []int64
	if n <= len(buf) {
		v = buf[:n:n]
	} else {
		v = make([]int64, n)
	}
	for i := range v {
		v[i] = c.varint(field)
	}
	return v
}

// format reads a format stack into buf when it fits, or a new slice.
func (c *cursor) format(l *Limits, buf []string) []string {
	n := c.length("format", l.MaxFormatEntries, 1)
	if c.err != nil || n == 0 {
		return nil
	}
	var f []string
	if n <= len(buf) {
		f = buf[:n:n]
	} else {
		f = make([]string, n)
	}
	for i := range f {
		b := c.bytes("format", l.MaxFormatLen)
		if c.err != nil {
			return nil
		}
		if !utf8.Valid(b) {
			c.fail("format", ErrMalformed, "invalid UTF-8")
			return nil
		}
		f[i] = internFormat(b)
	}
	return f
}

// internFormat returns common format names without allocating.
func internFormat(b []byte) string {
	switch string(b) {
	case "JSON":
		return "JSON"
	case "zstd":
		return "zstd"
	case "gzip":
		return "gzip"
	case "UTF-8":
		return "UTF-8"
	case "CBOR":
		return "CBOR"
	case "MessagePack":
		return "MessagePack"
	case "protobuf":
		return "protobuf"
	}
	return string(b)
}

func (c *cursor) tags(l *Limits) []uint32 {
	n := c.length("tags", l.MaxTagsPerObject, 1)
	if c.err != nil || n == 0 {
		return nil
	}
	t := make([]uint32, n)
	for i := range t {
		t[i] = c.u32("tags")
	}
	return t
}

func (c *cursor) age() time.Duration {
	us := c.uvarint("age")
	if us > math.MaxInt64/uint64(time.Microsecond) {
		return math.MaxInt64 // older than anything measurable: clamp
	}
	return time.Duration(us) * time.Microsecond
}

func (c *cursor) limits() Limits {
	n := c.length("limits", MaxAnnouncedLimits, 1)
	var l Limits
	for i := 0; i < n && c.err == nil; i++ {
		v := c.uvarint("limits")
		if i < len(limitFields) {
			// Clamp before converting so that Validate sees an
			// out-of-range value, not a wrapped one.
			*limitFields[i].field(&l) = int(min(v, math.MaxInt32))
		}
	}
	if c.err != nil {
		return l
	}
	l = l.WithDefaults()
	if err := l.Validate(); err != nil {
		c.err = fmt.Errorf("%v.limits: %w", c.msg, err)
	}
	return l
}

// stateBox holds a decoded State with room for a short version and format
// stack, so that a typical State costs one allocation instead of three.
type stateBox struct {
	State
	version [2]int64
	format  [1]string
}

func (c *cursor) state(l *Limits, box *stateBox) *State {
	if box == nil {
		box = &stateBox{}
	} else {
		*box = stateBox{}
	}
	m := &box.State
	m.Object = c.u32("object")
	flags := c.byte("flags")
	if c.err == nil && flags&^stateFlagsKnown != 0 {
		c.fail("flags", ErrMalformed, fmt.Sprintf("reserved bits set in 0x%02x", flags))
	}
	m.Encoding = Encoding(flags&flagEncodingMask) >> flagEncodingShift
	if c.err == nil && m.Encoding > EncodingDelta {
		c.fail("flags", ErrMalformed, "unknown encoding 3")
	}
	m.Version = c.versionIn("version", l, box.version[:])
	m.Format = c.format(l, box.format[:])
	m.Synchronized = flags&flagStale == 0
	if !m.Synchronized {
		m.Age = c.age()
	}
	if flags&flagToken != 0 {
		m.Token = c.positive("token")
	}
	if m.Encoding != EncodingRaw {
		m.Size = c.length("size", l.MaxStateData, 0)
	}
	if m.Encoding == EncodingDelta {
		m.Base = c.version("base", l)
	}
	m.Data = c.bytes("data", l.MaxStateData)
	if m.Encoding == EncodingRaw {
		m.Size = len(m.Data)
	} else if c.err == nil && len(m.Data) == 0 {
		c.fail("data", ErrMalformed, "empty zstd frame")
	}
	return m
}

func (c *cursor) sync(l *Limits) *Sync {
	m := &Sync{Object: c.u32("object")}
	flags := c.byte("flags")
	if c.err == nil && flags&^syncFlagsKnown != 0 {
		c.fail("flags", ErrMalformed, fmt.Sprintf("reserved bits set in 0x%02x", flags))
	}
	m.Version = c.version("version", l)
	m.Synchronized = flags&flagStale == 0
	if !m.Synchronized {
		m.Age = c.age()
	}
	if flags&flagToken != 0 {
		m.Token = c.positive("token")
	}
	return m
}

// DecodeHello decodes the downstream's first frame, which must hold exactly
// one Hello and be at most MaxHandshakeFrame bytes. Announced limits are
// validated (missing ones take their defaults); the version is not checked
// here, so that the caller can report it (see Negotiate).
func DecodeHello(frame []byte) (*Hello, error) {
	m, err := decodeHandshake(frame, TypeHello)
	if err != nil {
		return nil, err
	}
	return m.(*Hello), nil
}

// DecodeWelcome decodes the upstream's first frame, as DecodeHello.
func DecodeWelcome(frame []byte) (*Welcome, error) {
	m, err := decodeHandshake(frame, TypeWelcome)
	if err != nil {
		return nil, err
	}
	return m.(*Welcome), nil
}

func decodeHandshake(frame []byte, want Type) (Message, error) {
	switch {
	case len(frame) == 0:
		return nil, fmt.Errorf("%w: empty %v frame", ErrMalformed, want)
	case len(frame) > MaxHandshakeFrame:
		return nil, fmt.Errorf("%w: %v frame of %d bytes, limit %d", ErrTooLarge, want, len(frame), MaxHandshakeFrame)
	}
	off := 0
	t, body, err := splitMessage(frame, &off)
	if err != nil {
		return nil, err
	}
	if t != want {
		return nil, fmt.Errorf("%w: %v instead of %v", ErrUnexpectedMessage, t, want)
	}
	if off != len(frame) {
		return nil, fmt.Errorf("%w: %v must be alone in its frame", ErrUnexpectedMessage, want)
	}
	// The handshake messages have no field bounded by Limits.
	l := DefaultLimits()
	return decodeBody(t, body, &l, nil)
}

// Check reports whether m respects limits (the peer's announced limits, or
// our own), with the error its decoder would report. A sender uses it to
// refuse a message the peer would close the link over. For a State it checks
// the encoded payload; whether Size is honest is for the receiver to find.
func Check(m Message, limits Limits) error {
	l := limits.WithDefaults()
	if s := Size(m); s > l.MaxFrame && m.Type() != TypeHello && m.Type() != TypeWelcome {
		return fmt.Errorf("%w: %v of %d bytes, frame limit %d", ErrTooLarge, m.Type(), s, l.MaxFrame)
	}
	ck := checker{msg: m.Type(), l: &l}
	switch m := m.(type) {
	case *Hello:
		if s := Size(m); s > MaxHandshakeFrame {
			return fmt.Errorf("%w: Hello of %d bytes, limit %d", ErrTooLarge, s, MaxHandshakeFrame)
		}
		ck.str("name", m.Name, MaxNameLen)
		ck.max("token", len(m.Token), MaxTokenLen)
		ck.limits(m.Limits)
	case *Welcome:
		if s := Size(m); s > MaxHandshakeFrame {
			return fmt.Errorf("%w: Welcome of %d bytes, limit %d", ErrTooLarge, s, MaxHandshakeFrame)
		}
		ck.str("name", m.Name, MaxNameLen)
		ck.limits(m.Limits)
	case *DeclareTag:
		ck.json(m.JSON)
	case *DeclareObject:
		ck.json(m.JSON)
		ck.max("tags", len(m.Tags), l.MaxTagsPerObject)
	case *ObjectExpose:
		ck.positive("capacity", uint64(m.Capacity))
	case *TagExpose:
		ck.positive("capacity", uint64(m.Capacity))
	case *Assign:
		ck.positive("token", m.Token)
	case *Revoke:
		ck.positive("token", m.Token)
	case *Have:
		ck.max("version", len(m.Version), l.MaxVersionLen)
	case *State:
		ck.max("version", len(m.Version), l.MaxVersionLen)
		ck.max("format", len(m.Format), l.MaxFormatEntries)
		for _, f := range m.Format {
			ck.str("format", f, l.MaxFormatLen)
		}
		switch m.Encoding {
		case EncodingRaw:
		case EncodingZstd, EncodingDelta:
			if m.Size < 0 {
				ck.fail("size", ErrMalformed, "negative")
			}
			ck.max("size", m.Size, l.MaxStateData)
			if len(m.Data) == 0 {
				ck.fail("data", ErrMalformed, "empty zstd frame")
			}
			if m.Encoding == EncodingDelta {
				ck.max("base", len(m.Base), l.MaxVersionLen)
			}
		default:
			ck.fail("encoding", ErrMalformed, m.Encoding.String())
		}
		ck.max("data", len(m.Data), l.MaxStateData)
	case *Sync:
		ck.max("version", len(m.Version), l.MaxVersionLen)
	case *Error:
		if m.Contract > maxContractKind {
			ck.fail("contract", ErrMalformed, "unknown contract kind")
		}
		ck.str("text", m.Text, MaxErrorText)
	}
	return ck.err
}

type checker struct {
	msg Type
	l   *Limits
	err error
}

func (ck *checker) fail(field string, sentinel error, detail string) {
	if ck.err == nil {
		ck.err = fmt.Errorf("%w: %v.%s: %s", sentinel, ck.msg, field, detail)
	}
}

func (ck *checker) max(field string, n, max int) {
	if n > max {
		ck.fail(field, ErrTooLarge, fmt.Sprintf("%d over the limit of %d", n, max))
	}
}

func (ck *checker) positive(field string, v uint64) {
	if v == 0 {
		ck.fail(field, ErrMalformed, "must be at least 1")
	}
}

func (ck *checker) str(field, s string, max int) {
	ck.max(field, len(s), max)
	if !utf8.ValidString(s) {
		ck.fail(field, ErrMalformed, "invalid UTF-8")
	}
}

func (ck *checker) json(b []byte) {
	if len(b) == 0 {
		ck.fail("json", ErrMalformed, "empty descriptor")
	}
	ck.max("json", len(b), ck.l.MaxDescriptor)
}

func (ck *checker) limits(l Limits) {
	if err := l.Validate(); err != nil && ck.err == nil {
		ck.err = fmt.Errorf("%v.limits: %w", ck.msg, err)
	}
}
