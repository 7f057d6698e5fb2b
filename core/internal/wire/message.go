package wire

import (
	"strconv"
	"time"
)

// Type is the first byte of every message. Types 0x80–0xFF are optional:
// a receiver skips those it does not know. Unknown types below 0x80 are a
// protocol violation (ErrUnknownMessage).
type Type uint8

// Message types (PROTOCOL.md, "Messages"). "Down" is the WebSocket client,
// "up" the server.
const (
	TypeHello   Type = 0x01 // down→up, first frame, alone
	TypeWelcome Type = 0x02 // up→down, first frame, alone

	TypeDeclareTag    Type = 0x10 // both
	TypeForgetTag     Type = 0x11 // both
	TypeDeclareObject Type = 0x12 // both
	TypeForgetObject  Type = 0x13 // both

	TypeObjectObserve   Type = 0x20 // down→up
	TypeObjectUnobserve Type = 0x21 // down→up
	TypeObjectExpose    Type = 0x22 // down→up
	TypeObjectUnexpose  Type = 0x23 // down→up
	TypeTagObserve      Type = 0x24 // down→up
	TypeTagUnobserve    Type = 0x25 // down→up
	TypeTagExpose       Type = 0x26 // down→up
	TypeTagUnexpose     Type = 0x27 // down→up
	TypeHave            Type = 0x28 // both

	TypeObjectLive Type = 0x30 // up→down
	TypeObjectGone Type = 0x31 // up→down
	TypeAssign     Type = 0x32 // up→down
	TypeRevoke     Type = 0x33 // up→down
	// Since 1.1 (MinorExposer): whether an exposer is elected for a live
	// object the receiver's subtree is fed.
	TypeObjectUnexposed Type = 0x34 // up→down
	TypeObjectExposed   Type = 0x35 // up→down

	TypeState Type = 0x40 // both
	TypeSync  Type = 0x41 // both

	TypeError Type = 0x50 // both

	// TypeOptional is the first optional type: receivers skip unknown
	// messages from here on.
	TypeOptional Type = 0x80
)

var typeNames = map[Type]string{
	TypeHello: "Hello", TypeWelcome: "Welcome",
	TypeDeclareTag: "DeclareTag", TypeForgetTag: "ForgetTag",
	TypeDeclareObject: "DeclareObject", TypeForgetObject: "ForgetObject",
	TypeObjectObserve: "ObjectObserve", TypeObjectUnobserve: "ObjectUnobserve",
	TypeObjectExpose: "ObjectExpose", TypeObjectUnexpose: "ObjectUnexpose",
	TypeTagObserve: "TagObserve", TypeTagUnobserve: "TagUnobserve",
	TypeTagExpose: "TagExpose", TypeTagUnexpose: "TagUnexpose",
	TypeHave:       "Have",
	TypeObjectLive: "ObjectLive", TypeObjectGone: "ObjectGone",
	TypeAssign: "Assign", TypeRevoke: "Revoke",
	TypeObjectUnexposed: "ObjectUnexposed", TypeObjectExposed: "ObjectExposed",
	TypeState: "State", TypeSync: "Sync",
	TypeError: "Error",
}

func (t Type) String() string {
	if s, ok := typeNames[t]; ok {
		return s
	}
	return "type 0x" + strconv.FormatUint(uint64(t), 16)
}

// FromDownstream reports whether a downstream (WebSocket client) may send
// t after the handshake. The decoder does not know the direction; the link
// checks it.
func (t Type) FromDownstream() bool {
	switch t {
	case TypeDeclareTag, TypeForgetTag, TypeDeclareObject, TypeForgetObject,
		TypeObjectObserve, TypeObjectUnobserve, TypeObjectExpose, TypeObjectUnexpose,
		TypeTagObserve, TypeTagUnobserve, TypeTagExpose, TypeTagUnexpose, TypeHave,
		TypeState, TypeSync, TypeError:
		return true
	}
	return false
}

// FromUpstream reports whether an upstream (WebSocket server) may send t
// after the handshake.
func (t Type) FromUpstream() bool {
	switch t {
	case TypeDeclareTag, TypeForgetTag, TypeDeclareObject, TypeForgetObject, TypeHave,
		TypeObjectLive, TypeObjectGone, TypeAssign, TypeRevoke,
		TypeObjectUnexposed, TypeObjectExposed,
		TypeState, TypeSync, TypeError:
		return true
	}
	return false
}

// Message is one protocol message: a pointer to one of the types below.
type Message interface {
	// Type returns the message's type byte.
	Type() Type
	// bodySize returns the encoded body length.
	bodySize() int
	// appendBody appends the encoded body.
	appendBody(dst []byte) []byte
}

// Hello is the downstream's first frame.
type Hello struct {
	Major, Minor uint32   // highest version the sender speaks
	Name         string   // the sender exchange's name, for logs and snapshots
	Token        []byte   // auth token; empty for none
	Features     Features // payload encodings the sender accepts
	Limits       Limits   // what the sender accepts
}

// Welcome is the upstream's answer to an accepted Hello.
type Welcome struct {
	Major, Minor uint32 // the version used on the link (see Negotiate)
	Name         string
	Features     Features
	Limits       Limits
}

// DeclareTag binds a sender-chosen id to a tag descriptor for this link and
// direction, until ForgetTag.
type DeclareTag struct {
	ID   uint32
	JSON []byte // canonical JSON of the tag descriptor
}

// ForgetTag releases a tag id; it may then be declared again.
type ForgetTag struct{ ID uint32 }

// DeclareObject binds a sender-chosen id to an object descriptor for this
// link and direction, until ForgetObject.
type DeclareObject struct {
	ID   uint32
	JSON []byte   // canonical JSON of the descriptor's value
	Tags []uint32 // tag ids declared earlier by the same sender; order and repeats do not matter
}

// ForgetObject releases an object id.
type ForgetObject struct{ ID uint32 }

// ObjectObserve: the sender's subtree observes the object.
type ObjectObserve struct{ Object uint32 }

// ObjectUnobserve: it no longer does.
type ObjectUnobserve struct{ Object uint32 }

// ObjectExpose: the sender's subtree can expose the object, with this total
// capacity. Sent again to change the capacity.
type ObjectExpose struct {
	Object   uint32
	Capacity uint32 // at least 1
}

// ObjectUnexpose: it no longer can.
type ObjectUnexpose struct{ Object uint32 }

// TagObserve: the sender's subtree observes every live object with the tag.
type TagObserve struct{ Tag uint32 }

// TagUnobserve: it no longer does.
type TagUnobserve struct{ Tag uint32 }

// TagExpose: the sender's subtree can expose any object with the tag, with
// this total capacity. Sent again to change the capacity.
type TagExpose struct {
	Tag      uint32
	Capacity uint32 // at least 1
}

// TagUnexpose: it no longer can.
type TagUnexpose struct{ Tag uint32 }

// Have tells the receiver which version of an object the sender holds, so
// that it sends a delta from it or nothing. An empty Version means the
// sender holds nothing (it cannot use a delta it received).
type Have struct {
	Object  uint32
	Version []int64
}

// ObjectLive: the object is live and the receiver's subtree wants it; its
// states follow.
type ObjectLive struct{ Object uint32 }

// ObjectGone: the object is no longer live, or no longer wanted by the
// receiver's subtree; no more states follow until ObjectLive.
type ObjectGone struct{ Object uint32 }

// ObjectUnexposed (1.1): no exposer is elected for a live object the
// receiver's subtree is fed (ObjectLive): its held state stays, not
// synchronized, until ObjectExposed. Sent only on links that negotiated
// minor version MinorExposer or later.
type ObjectUnexposed struct{ Object uint32 }

// ObjectExposed (1.1): an exposer is elected again for the object; its
// states follow. A receiver that got no ObjectUnexposed since ObjectLive
// takes the object as exposed.
type ObjectExposed struct{ Object uint32 }

// Assign elects the receiver's subtree to expose the object. Token fences
// its writes: it increases per object and travels with every State and
// Sync the subtree sends for the object.
type Assign struct {
	Object uint32
	Token  uint64 // at least 1
}

// Revoke ends the assignment with this token.
type Revoke struct {
	Object uint32
	Token  uint64 // at least 1
}

// Encoding is how a State's Data encodes the state data.
type Encoding uint8

const (
	// EncodingRaw: Data is the state data.
	EncodingRaw Encoding = 0
	// EncodingZstd: Data is one zstd frame holding the state data.
	EncodingZstd Encoding = 1
	// EncodingDelta: Data is one zstd frame holding the state data,
	// compressed with the data of version Base as a raw dictionary.
	EncodingDelta Encoding = 2
)

func (e Encoding) String() string {
	switch e {
	case EncodingRaw:
		return "raw"
	case EncodingZstd:
		return "zstd"
	case EncodingDelta:
		return "delta"
	}
	return "encoding " + strconv.Itoa(int(e))
}

// State carries one state of an object.
type State struct {
	Object  uint32
	Version []int64
	Format  []string // the format stack, outermost last
	// Synchronized is false when the state is not (or no longer) the
	// current truth from a live exposer; Age then says how long ago it
	// last was, at the time of sending (microsecond precision).
	Synchronized bool
	Age          time.Duration
	// Token is the assignment token when an assigned subtree sends the
	// state upstream; 0 otherwise.
	Token    uint64
	Encoding Encoding
	// Size is the state data's length after decoding. On the wire only
	// for EncodingZstd and EncodingDelta; for EncodingRaw the decoder sets
	// it to len(Data) and the encoder ignores it. The decoder checks it
	// against MaxStateData; the receiver decodes Data with Size as the
	// limit (delta.Decompress, delta.Apply) and checks the length it got.
	Size int
	// Base is the version Data is a delta from (EncodingDelta only).
	Base []int64
	Data []byte
}

// Sync changes only the synchronized flag of the state the receiver holds,
// which must be Version (otherwise the receiver ignores it).
type Sync struct {
	Object       uint32
	Version      []int64
	Synchronized bool
	Age          time.Duration // when not Synchronized
	Token        uint64        // as in State
}

// Error reports that the receiver's declaration was refused (or, with
// ContractNone, a problem with the link that does not close it).
type Error struct {
	Contract ContractKind
	Ref      uint32 // the receiver's object or tag id the error refers to
	Code     ErrorCode
	Text     string // human-readable, for the user; at most MaxErrorText bytes
}

func (*Hello) Type() Type           { return TypeHello }
func (*Welcome) Type() Type         { return TypeWelcome }
func (*DeclareTag) Type() Type      { return TypeDeclareTag }
func (*ForgetTag) Type() Type       { return TypeForgetTag }
func (*DeclareObject) Type() Type   { return TypeDeclareObject }
func (*ForgetObject) Type() Type    { return TypeForgetObject }
func (*ObjectObserve) Type() Type   { return TypeObjectObserve }
func (*ObjectUnobserve) Type() Type { return TypeObjectUnobserve }
func (*ObjectExpose) Type() Type    { return TypeObjectExpose }
func (*ObjectUnexpose) Type() Type  { return TypeObjectUnexpose }
func (*TagObserve) Type() Type      { return TypeTagObserve }
func (*TagUnobserve) Type() Type    { return TypeTagUnobserve }
func (*TagExpose) Type() Type       { return TypeTagExpose }
func (*TagUnexpose) Type() Type     { return TypeTagUnexpose }
func (*Have) Type() Type            { return TypeHave }
func (*ObjectLive) Type() Type      { return TypeObjectLive }
func (*ObjectGone) Type() Type      { return TypeObjectGone }
func (*ObjectUnexposed) Type() Type { return TypeObjectUnexposed }
func (*ObjectExposed) Type() Type   { return TypeObjectExposed }
func (*Assign) Type() Type          { return TypeAssign }
func (*Revoke) Type() Type          { return TypeRevoke }
func (*State) Type() Type           { return TypeState }
func (*Sync) Type() Type            { return TypeSync }
func (*Error) Type() Type           { return TypeError }
