package core

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/hakuban/hakuban/core/internal/canon"
)

// Descriptor errors. They live here until errors.go takes them over; every
// error of this file wraps exactly one of them (or ErrInvalidConfig).
var (
	// ErrInvalidDescriptor: a descriptor is not one valid JSON value (bad
	// syntax, invalid UTF-8, a duplicate member name, a number out of the
	// range of a double, nesting beyond 10000), or a zero descriptor was
	// used where a real one is needed.
	ErrInvalidDescriptor = errors.New("invalid descriptor")
	// ErrDescriptorTooLarge: a descriptor's canonical JSON (value plus tags)
	// is over DescriptorLimits.MaxSize, or its text is far too long to parse.
	ErrDescriptorTooLarge = errors.New("descriptor too large")
	// ErrTooManyTags: an object descriptor has more distinct tags than
	// DescriptorLimits.MaxTags.
	ErrTooManyTags = errors.New("too many tags")
)

// TagDescriptor names a tag: any JSON value ("sensors", {"room":12}, [1,2]).
//
// It holds the value's canonical JSON (see ObjectDescriptor for the rules),
// so two tags are equal exactly when they mean the same JSON value, and a
// TagDescriptor is comparable with == and usable as a map key. The zero
// TagDescriptor is not a tag; the constructors never return it without an
// error.
type TagDescriptor struct {
	json string // canonical JSON, "" for the zero value
}

// NewTagDescriptor makes a tag from a Go value, marshaled as encoding/json
// would (a string becomes a JSON string, a json.RawMessage is used as JSON
// text, []byte becomes base64) and then canonicalized. It enforces
// DefaultDescriptorLimits.
func NewTagDescriptor(v any) (TagDescriptor, error) {
	return DefaultDescriptorLimits().newTag(v)
}

// ParseTagDescriptor makes a tag from JSON text, such as `"sensors"` or
// `{"room": 12}`. It enforces DefaultDescriptorLimits; use
// DescriptorLimits.ParseTagDescriptor for other limits.
func ParseTagDescriptor(jsonText []byte) (TagDescriptor, error) {
	return DefaultDescriptorLimits().ParseTagDescriptor(jsonText)
}

// MustTagDescriptor is NewTagDescriptor for values known to be valid, as in
// examples and tests; it panics on error.
func MustTagDescriptor(v any) TagDescriptor {
	t, err := NewTagDescriptor(v)
	if err != nil {
		panic(err)
	}
	return t
}

// JSON returns the tag's canonical JSON text ("" for the zero TagDescriptor).
func (t TagDescriptor) JSON() string { return t.json }

// String returns the canonical JSON, for logs and %v.
func (t TagDescriptor) String() string {
	if t.json == "" {
		return "<zero TagDescriptor>"
	}
	return t.json
}

// IsZero reports whether t is the zero TagDescriptor, which names no tag.
func (t TagDescriptor) IsZero() bool { return t.json == "" }

// Compare orders tags by their canonical bytes (-1, 0 or +1), the order in
// which an ObjectDescriptor keeps its tags. The zero TagDescriptor sorts
// first.
func (t TagDescriptor) Compare(o TagDescriptor) int { return strings.Compare(t.json, o.json) }

// MarshalJSON returns the tag's JSON value, so that a tag inside a Go value
// marshals as the value itself. The zero TagDescriptor is an error rather
// than null, because null is a valid, different tag.
func (t TagDescriptor) MarshalJSON() ([]byte, error) {
	if t.json == "" {
		return nil, fmt.Errorf("core: marshal zero TagDescriptor: %w", ErrInvalidDescriptor)
	}
	return []byte(t.json), nil
}

// UnmarshalJSON sets t to the tag whose value is data, under
// DefaultDescriptorLimits. Unlike most types, null is not a no-op: it sets
// the tag null, which is a valid tag.
func (t *TagDescriptor) UnmarshalJSON(data []byte) error {
	nt, err := ParseTagDescriptor(data)
	if err != nil {
		return err
	}
	*t = nt
	return nil
}

// ObjectDescriptor names an object: a JSON value plus a set of tags.
//
// Identity is by value: the JSON is kept in one canonical form (RFC 8785
// style: members sorted by UTF-16 code units, minimal string escapes, no
// white space), so {"a":1,"b":2} and { "b": 2, "a": 1 } are the same object;
// tag order and duplicate tags do not matter; the same JSON with a different
// tag set is a different object. Numbers are compared by value: integers
// exactly however large (1, 1.0 and 1e0 are one number, while
// 12345678901234567890 and 12345678901234567891 stay apart), other numbers
// as IEEE 754 doubles (0.1 and 0.10000000000000000001 are one number); -0
// is 0. Numbers written with a fraction or an exponent must be within the
// range of a double. The full rules are in core/internal/canon.
//
// An ObjectDescriptor is immutable and small (a string, an int32 and a
// slice header): the canonical text of the value and of every tag lives in
// one string, Key, and the tags are substrings of it. Use Key, not the
// struct, as a map key: the struct holds a slice and is not comparable.
// The zero ObjectDescriptor names no object.
type ObjectDescriptor struct {
	// key is the canonical JSON of the whole descriptor,
	// {"json":<value>,"tags":[<tag>,...]}, tags sorted by their canonical
	// text. It is what MarshalJSON returns, so it is unambiguous.
	key string
	// jsonLen is the length of <value>, which starts at key[len(keyPrefix)].
	// int32 because DescriptorLimits.MaxSize is at most 1 GiB; it keeps the
	// struct at 48 bytes on 64-bit platforms.
	jsonLen int32
	// tags are sorted, distinct, and point into key; nil when there are
	// none, so that tagless descriptors allocate only their key. Never
	// handed out without copying.
	tags []TagDescriptor
}

// The parts of ObjectDescriptor.key around the value and the tags.
const (
	keyPrefix   = `{"json":`
	keyTagsOpen = `,"tags":[`
	keySuffix   = `]}`
	keyOverhead = len(keyPrefix) + len(keyTagsOpen) + len(keySuffix)
)

// NewObjectDescriptor makes an object descriptor from a Go value, marshaled
// as encoding/json would and then canonicalized, and a set of tags. It
// enforces DefaultDescriptorLimits. The value is marshaled before its size
// can be checked, so it should come from the program, not from a peer; text
// from a peer goes through ParseObjectDescriptor, which checks first.
func NewObjectDescriptor(v any, tags ...TagDescriptor) (ObjectDescriptor, error) {
	return DefaultDescriptorLimits().newObject(v, tags)
}

// ParseObjectDescriptor makes an object descriptor from JSON text and a set
// of tags. It enforces DefaultDescriptorLimits (text far over the size limit
// is rejected before it is parsed); use DescriptorLimits.ParseObjectDescriptor
// for other limits.
func ParseObjectDescriptor(jsonText []byte, tags ...TagDescriptor) (ObjectDescriptor, error) {
	return DefaultDescriptorLimits().ParseObjectDescriptor(jsonText, tags...)
}

// MustObjectDescriptor is NewObjectDescriptor for values known to be valid,
// as in examples and tests; it panics on error.
func MustObjectDescriptor(v any, tags ...TagDescriptor) ObjectDescriptor {
	d, err := NewObjectDescriptor(v, tags...)
	if err != nil {
		panic(err)
	}
	return d
}

// JSON returns the canonical JSON of the value, without the tags ("" for
// the zero ObjectDescriptor). It does not allocate: it is part of Key.
func (d ObjectDescriptor) JSON() string {
	if d.key == "" {
		return ""
	}
	return d.key[len(keyPrefix) : len(keyPrefix)+int(d.jsonLen)]
}

// Tags returns the tags, sorted by their canonical JSON and distinct, in a
// new slice the caller may keep and modify (nil when there are none);
// NumTags and Tag read them without a copy.
//
// The tags' text is part of d's key string, so that a descriptor holds one
// copy of every byte; a tag kept after d is dropped keeps the key's memory
// alive. To keep a tag of a large descriptor for long (say, as a map key),
// make an independent one with ParseTagDescriptor([]byte(tag.JSON())).
func (d ObjectDescriptor) Tags() []TagDescriptor { return slices.Clone(d.tags) }

// NumTags returns the number of distinct tags.
func (d ObjectDescriptor) NumTags() int { return len(d.tags) }

// Tag returns the i-th tag in the order of Tags; it panics if i is out of
// range [0, NumTags()), like a slice index. It shares memory with d (see
// Tags).
func (d ObjectDescriptor) Tag(i int) TagDescriptor { return d.tags[i] }

// HasTag reports whether t is one of d's tags, by binary search.
func (d ObjectDescriptor) HasTag(t TagDescriptor) bool {
	_, found := slices.BinarySearchFunc(d.tags, t, TagDescriptor.Compare)
	return found
}

// Key returns d's identity as a string: equal descriptors have equal keys and
// different descriptors different keys, so it is the map key for
// descriptors. It is the canonical JSON {"json":<value>,"tags":[...]}, the
// same bytes MarshalJSON returns ("" for the zero ObjectDescriptor).
func (d ObjectDescriptor) Key() string { return d.key }

// Equal reports whether d and o name the same object.
func (d ObjectDescriptor) Equal(o ObjectDescriptor) bool { return d.key == o.key }

// IsZero reports whether d is the zero ObjectDescriptor, which names no
// object.
func (d ObjectDescriptor) IsZero() bool { return d.key == "" }

// Size returns the bytes of canonical JSON of the value plus those of every
// tag: the quantity DescriptorLimits.MaxSize bounds, and a fair measure of
// the memory and wire cost of the descriptor.
func (d ObjectDescriptor) Size() int {
	if d.key == "" {
		return 0
	}
	commas := max(len(d.tags)-1, 0)
	return len(d.key) - keyOverhead - commas
}

// String returns Key, or a marker for the zero ObjectDescriptor, for logs
// and %v.
func (d ObjectDescriptor) String() string {
	if d.key == "" {
		return "<zero ObjectDescriptor>"
	}
	return d.key
}

// MarshalJSON returns {"json":<value>,"tags":[<tag>,...]} (Key). The zero
// ObjectDescriptor is an error: there is no JSON for "no object".
func (d ObjectDescriptor) MarshalJSON() ([]byte, error) {
	if d.key == "" {
		return nil, fmt.Errorf("core: marshal zero ObjectDescriptor: %w", ErrInvalidDescriptor)
	}
	return []byte(d.key), nil
}

// UnmarshalJSON sets d from {"json":<value>,"tags":[<tag>,...]} ("tags"
// optional, in any order, with duplicates; no other members), under
// DefaultDescriptorLimits. null leaves d unchanged, as encoding/json expects.
func (d *ObjectDescriptor) UnmarshalJSON(data []byte) error {
	if string(bytes.TrimSpace(data)) == "null" {
		return nil
	}
	nd, err := DefaultDescriptorLimits().parseObjectJSON(data)
	if err != nil {
		return err
	}
	*d = nd
	return nil
}

// DescriptorLimits bounds the descriptors an exchange accepts, so that one
// peer cannot make every exchange on the way hold huge identities.
type DescriptorLimits struct {
	// MaxSize is the most bytes of canonical JSON a descriptor may have:
	// its value plus all its tags (a tag descriptor alone is bounded by it
	// too). Text to parse may be longer (white space, escapes), but text over
	// 4 × MaxSize is rejected unread. 1 to 1 GiB; default 64 KiB.
	MaxSize int
	// MaxTags is the most distinct tags an object descriptor may have. 0
	// forbids tags. Default 64.
	MaxTags int
}

// maxDescriptorSizeLimit caps DescriptorLimits.MaxSize so that a value's
// length always fits ObjectDescriptor.jsonLen (int32). No real descriptor
// comes near it.
const maxDescriptorSizeLimit = 1 << 30

// DefaultDescriptorLimits returns the limits of the spec: 64 KiB, 64 tags.
func DefaultDescriptorLimits() DescriptorLimits {
	return DescriptorLimits{MaxSize: 64 << 10, MaxTags: 64}
}

// Validate reports a field out of range, wrapping ErrInvalidConfig.
func (l DescriptorLimits) Validate() error {
	if l.MaxSize < 1 || l.MaxSize > maxDescriptorSizeLimit {
		return fmt.Errorf("core: descriptor MaxSize %d not in [1, %d]: %w", l.MaxSize, maxDescriptorSizeLimit, ErrInvalidConfig)
	}
	if l.MaxTags < 0 {
		return fmt.Errorf("core: descriptor MaxTags %d is negative: %w", l.MaxTags, ErrInvalidConfig)
	}
	return nil
}

// Check reports whether d is within l, for an exchange whose configured
// limits differ from the defaults the constructors applied.
func (l DescriptorLimits) Check(d ObjectDescriptor) error {
	if d.key == "" {
		return fmt.Errorf("core: zero object descriptor: %w", ErrInvalidDescriptor)
	}
	if size := d.Size(); size > l.MaxSize {
		return fmt.Errorf("core: object descriptor is %d bytes, limit %d: %w", size, l.MaxSize, ErrDescriptorTooLarge)
	}
	if n := len(d.tags); n > l.MaxTags {
		return fmt.Errorf("core: object descriptor has %d tags, limit %d: %w", n, l.MaxTags, ErrTooManyTags)
	}
	return nil
}

// CheckTag reports whether t is within l (a tag has no tags of its own:
// only its size is checked).
func (l DescriptorLimits) CheckTag(t TagDescriptor) error {
	if t.IsZero() {
		return fmt.Errorf("core: zero tag descriptor: %w", ErrInvalidDescriptor)
	}
	if size := len(t.json); size > l.MaxSize {
		return fmt.Errorf("core: tag descriptor is %d bytes, limit %d: %w", size, l.MaxSize, ErrDescriptorTooLarge)
	}
	return nil
}

// ParseTagDescriptor is the package's ParseTagDescriptor under l, for
// exchanges configured with other limits (such as one decoding descriptors
// from a peer).
func (l DescriptorLimits) ParseTagDescriptor(jsonText []byte) (TagDescriptor, error) {
	if err := l.Validate(); err != nil {
		return TagDescriptor{}, err
	}
	limit := l.textLimit(0)
	if len(jsonText) > limit {
		return TagDescriptor{}, fmt.Errorf("core: tag descriptor text is %d bytes, over 4 × limit %d: %w", len(jsonText), l.MaxSize, ErrDescriptorTooLarge)
	}
	b, err := canon.Canonicalize(jsonText, limit)
	if err != nil {
		return TagDescriptor{}, canonError("tag descriptor", err)
	}
	return l.tagOf(b)
}

// ParseObjectDescriptor is the package's ParseObjectDescriptor under l, for
// exchanges configured with other limits (such as one decoding descriptors
// from a peer).
func (l DescriptorLimits) ParseObjectDescriptor(jsonText []byte, tags ...TagDescriptor) (ObjectDescriptor, error) {
	if err := l.Validate(); err != nil {
		return ObjectDescriptor{}, err
	}
	limit := l.textLimit(0)
	if len(jsonText) > limit {
		return ObjectDescriptor{}, fmt.Errorf("core: object descriptor text is %d bytes, over 4 × limit %d: %w", len(jsonText), l.MaxSize, ErrDescriptorTooLarge)
	}
	sorted, tagBytes, err := l.sortTags(tags)
	if err != nil {
		return ObjectDescriptor{}, err
	}
	// The canonical value is appended straight into the key's buffer; it is
	// rarely longer than the text.
	buf := make([]byte, 0, keyOverhead+len(jsonText)+tagBytes+len(sorted))
	buf = append(buf, keyPrefix...)
	buf, err = canon.Append(buf, jsonText, limit)
	if err != nil {
		return ObjectDescriptor{}, canonError("object descriptor", err)
	}
	return l.finishObject(buf, sorted, tagBytes)
}

// newTag is NewTagDescriptor under l.
func (l DescriptorLimits) newTag(v any) (TagDescriptor, error) {
	if err := l.Validate(); err != nil {
		return TagDescriptor{}, err
	}
	var b []byte
	var err error
	if s, ok := v.(string); ok {
		// The common case, without the reflection of Marshal.
		b, err = canon.AppendQuote(make([]byte, 0, len(s)+2), s)
	} else {
		b, err = canon.Marshal(v)
	}
	if err != nil {
		return TagDescriptor{}, canonError("tag descriptor", err)
	}
	return l.tagOf(b)
}

// tagOf makes a tag of canonical JSON b, checking its size.
func (l DescriptorLimits) tagOf(b []byte) (TagDescriptor, error) {
	if len(b) > l.MaxSize {
		return TagDescriptor{}, fmt.Errorf("core: tag descriptor is %d bytes, limit %d: %w", len(b), l.MaxSize, ErrDescriptorTooLarge)
	}
	return TagDescriptor{json: string(b)}, nil
}

// newObject is NewObjectDescriptor under l.
func (l DescriptorLimits) newObject(v any, tags []TagDescriptor) (ObjectDescriptor, error) {
	if err := l.Validate(); err != nil {
		return ObjectDescriptor{}, err
	}
	sorted, tagBytes, err := l.sortTags(tags)
	if err != nil {
		return ObjectDescriptor{}, err
	}
	var b []byte
	if s, ok := v.(string); ok {
		b, err = canon.AppendQuote(make([]byte, 0, len(s)+2), s)
	} else {
		b, err = canon.Marshal(v)
	}
	if err != nil {
		return ObjectDescriptor{}, canonError("object descriptor", err)
	}
	if size := len(b) + tagBytes; size > l.MaxSize {
		return ObjectDescriptor{}, fmt.Errorf("core: object descriptor is %d bytes, limit %d: %w", size, l.MaxSize, ErrDescriptorTooLarge)
	}
	buf := make([]byte, 0, keyOverhead+len(b)+tagBytes+len(sorted))
	buf = append(append(buf, keyPrefix...), b...)
	return l.finishObject(buf, sorted, tagBytes)
}

// sortTags returns tags sorted by canonical text and without duplicates, in
// a new slice (nil for none), and the sum of their lengths. It rejects zero
// tags and more than l.MaxTags distinct ones.
func (l DescriptorLimits) sortTags(tags []TagDescriptor) ([]TagDescriptor, int, error) {
	if len(tags) == 0 {
		return nil, 0, nil
	}
	for i, t := range tags {
		if t.json == "" {
			return nil, 0, fmt.Errorf("core: tag %d is the zero TagDescriptor: %w", i, ErrInvalidDescriptor)
		}
	}
	sorted := slices.Clone(tags)
	slices.SortFunc(sorted, TagDescriptor.Compare)
	sorted = slices.Clip(slices.Compact(sorted))
	if len(sorted) > l.MaxTags {
		return nil, 0, fmt.Errorf("core: object descriptor has %d tags, limit %d: %w", len(sorted), l.MaxTags, ErrTooManyTags)
	}
	n := 0
	for _, t := range sorted {
		n += len(t.json)
	}
	return sorted, n, nil
}

// finishObject completes buf, which holds keyPrefix and the canonical value,
// into the key, checks the size, and points the tags into the key so that
// the descriptor holds one copy of every byte.
func (l DescriptorLimits) finishObject(buf []byte, sorted []TagDescriptor, tagBytes int) (ObjectDescriptor, error) {
	jsonLen := len(buf) - len(keyPrefix)
	if size := jsonLen + tagBytes; size > l.MaxSize {
		return ObjectDescriptor{}, fmt.Errorf("core: object descriptor is %d bytes, limit %d: %w", size, l.MaxSize, ErrDescriptorTooLarge)
	}
	buf = append(buf, keyTagsOpen...)
	for i, t := range sorted {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, t.json...)
	}
	buf = append(buf, keySuffix...)
	key := string(buf)
	pos := len(keyPrefix) + jsonLen + len(keyTagsOpen)
	for i := range sorted {
		n := len(sorted[i].json)
		sorted[i].json = key[pos : pos+n]
		pos += n + 1
	}
	return ObjectDescriptor{key: key, jsonLen: int32(jsonLen), tags: sorted}, nil
}

// parseObjectJSON parses the MarshalJSON form of an object descriptor.
func (l DescriptorLimits) parseObjectJSON(data []byte) (ObjectDescriptor, error) {
	if err := l.Validate(); err != nil {
		return ObjectDescriptor{}, err
	}
	// Room for the value, the tags and the member names and punctuation.
	limit := l.textLimit(keyOverhead + 2*l.MaxTags)
	if len(data) > limit {
		return ObjectDescriptor{}, fmt.Errorf("core: object descriptor text is %d bytes, over 4 × limit %d: %w", len(data), l.MaxSize, ErrDescriptorTooLarge)
	}
	// Canonicalizing first rejects duplicate members and invalid UTF-8
	// before the members are looked at.
	b, err := canon.Canonicalize(data, limit)
	if err != nil {
		return ObjectDescriptor{}, canonError("object descriptor", err)
	}
	var members map[string]json.RawMessage
	if err := canon.Unmarshal(b, &members); err != nil {
		return ObjectDescriptor{}, fmt.Errorf("core: object descriptor is not an object {\"json\":...,\"tags\":[...]}: %w", ErrInvalidDescriptor)
	}
	value, ok := members["json"]
	if !ok {
		return ObjectDescriptor{}, fmt.Errorf(`core: object descriptor has no "json" member: %w`, ErrInvalidDescriptor)
	}
	var rawTags []json.RawMessage
	for name, m := range members {
		switch name {
		case "json":
		case "tags":
			if err := canon.Unmarshal(m, &rawTags); err != nil || rawTags == nil {
				return ObjectDescriptor{}, fmt.Errorf(`core: object descriptor "tags" is not an array: %w`, ErrInvalidDescriptor)
			}
		default:
			return ObjectDescriptor{}, fmt.Errorf("core: object descriptor has unknown member %q: %w", name, ErrInvalidDescriptor)
		}
	}
	tags := make([]TagDescriptor, len(rawTags))
	for i, raw := range rawTags {
		if tags[i], err = l.ParseTagDescriptor(raw); err != nil {
			return ObjectDescriptor{}, err
		}
	}
	return l.ParseObjectDescriptor(value, tags...)
}

// textLimit is the most bytes of text to parse for a descriptor of at most
// l.MaxSize canonical bytes plus extra bytes of framing: 4 × as much, so
// that white space and escapes rarely matter, while a huge input is still
// rejected before it is read.
func (l DescriptorLimits) textLimit(extra int) int {
	n := 4 * (int64(l.MaxSize) + int64(extra))
	if n > int64(maxInt) {
		return maxInt
	}
	return int(n)
}

const maxInt = int(^uint(0) >> 1)

// canonError rewraps an error of package canon under the descriptor
// sentinels, keeping canon's detail.
func canonError(what string, err error) error {
	sentinel := ErrInvalidDescriptor
	if errors.Is(err, canon.ErrTooLarge) {
		sentinel = ErrDescriptorTooLarge
	}
	var ce *canon.Error
	if errors.As(err, &ce) {
		return fmt.Errorf("core: %s: %s: %w", what, ce.Detail, sentinel)
	}
	return fmt.Errorf("core: %s: %v: %w", what, err, sentinel)
}
