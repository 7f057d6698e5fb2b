package core

// Grant is what one right of a Permissions (observe or expose) covers.
type Grant struct {
	// All covers every object and tag.
	All bool
	// Tags covers these tags (tag contracts on them) and every object that
	// carries at least one of them.
	Tags []TagDescriptor
	// Objects covers these objects, matched by full descriptor (value and
	// tag set, as everywhere in hakuban).
	Objects []ObjectDescriptor
}

// Permissions say which contracts a downstream link may make (SPEC §3.3):
// which objects and tags its subtree may observe and which it may expose.
// A Listener attaches them to a link from the handshake's token (see
// ListenerOptions.Authorize). A declaration outside them makes no
// contract: the link answers it with an Error (permission denied), which
// the downstream reports on its contracts as ErrRefused, and sends the
// downstream nothing about objects it may not observe or expose.
//
// An object contract on descriptor D is allowed when D is listed or any of
// D's tags is, a tag contract on T when T is listed; All allows
// everything. Exposing an object includes reading its last state when the
// object is assigned (so that the exposer can continue from it).
//
// A nil *Permissions allows everything. Permissions are immutable and
// safe for concurrent use.
type Permissions struct {
	name            string
	observe, expose grantIndex
}

// grantIndex is a Grant indexed for lookups.
type grantIndex struct {
	all     bool
	tags    map[TagDescriptor]struct{}
	objects map[string]struct{} // by ObjectDescriptor.Key
}

// NewPermissions returns permissions with the given rights. name says whom
// they belong to (for example the token's owner) in errors and logs.
func NewPermissions(name string, observe, expose Grant) *Permissions {
	return &Permissions{name: name, observe: indexGrant(observe), expose: indexGrant(expose)}
}

func indexGrant(g Grant) grantIndex {
	ix := grantIndex{all: g.All}
	if len(g.Tags) > 0 {
		ix.tags = make(map[TagDescriptor]struct{}, len(g.Tags))
		for _, t := range g.Tags {
			ix.tags[t] = struct{}{}
		}
	}
	if len(g.Objects) > 0 {
		ix.objects = make(map[string]struct{}, len(g.Objects))
		for _, d := range g.Objects {
			ix.objects[d.Key()] = struct{}{}
		}
	}
	return ix
}

func (ix *grantIndex) object(d ObjectDescriptor) bool {
	if ix.all {
		return true
	}
	if _, ok := ix.objects[d.Key()]; ok {
		return true
	}
	for i := range d.NumTags() {
		if _, ok := ix.tags[d.Tag(i)]; ok {
			return true
		}
	}
	return false
}

func (ix *grantIndex) tag(t TagDescriptor) bool {
	_, ok := ix.tags[t]
	return ix.all || ok
}

// Name returns the name given to NewPermissions ("" for nil).
func (p *Permissions) Name() string {
	if p == nil {
		return ""
	}
	return p.name
}

// MayObserveObject reports whether an object observe contract on d is allowed.
func (p *Permissions) MayObserveObject(d ObjectDescriptor) bool {
	return p == nil || p.observe.object(d)
}

// MayExposeObject reports whether an object expose contract on d is allowed.
func (p *Permissions) MayExposeObject(d ObjectDescriptor) bool {
	return p == nil || p.expose.object(d)
}

// MayObserveTag reports whether a tag observe contract on t is allowed.
func (p *Permissions) MayObserveTag(t TagDescriptor) bool {
	return p == nil || p.observe.tag(t)
}

// MayExposeTag reports whether a tag expose contract on t is allowed.
func (p *Permissions) MayExposeTag(t TagDescriptor) bool {
	return p == nil || p.expose.tag(t)
}
