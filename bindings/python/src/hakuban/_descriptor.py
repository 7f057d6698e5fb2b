"""Descriptors: the names of objects and tags, made from Python values.

Descriptors are immutable values. Their identity (canonical JSON) is always
computed by the library, so Python agrees with every other language; the
Python objects keep only that text, no library handle, so they need no
closing and are cheap to keep in dicts and sets.
"""

from __future__ import annotations

import json
from ctypes import byref, c_char_p, c_size_t, c_uint64
from typing import Any, Dict, FrozenSet, Iterable, Tuple, Union

from . import _lib
from ._errors import InvalidDescriptorError

#: Values a descriptor can be made from: anything ``json.dumps`` accepts.
JSONValue = Any


def _dumps(value: JSONValue, what: str) -> bytes:
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as e:
        raise InvalidDescriptorError(f"{what} is not a JSON value: {e}") from None
    return text.encode("utf-8")


class TagDescriptor:
    """A tag: any JSON value, e.g. ``TagDescriptor("sensors")`` or
    ``TagDescriptor({"room": 12})``.

    Equal tags are equal by value (``{"a":1,"b":2}`` == ``{"b":2,"a":1}``)
    and hash alike.
    """

    __slots__ = ("_canonical", "_value")

    def __init__(self, value: JSONValue) -> None:
        if isinstance(value, TagDescriptor):
            self._canonical: str = value._canonical
            self._value: Any = value._value
            return
        L = _lib.L
        h = c_uint64()
        _lib.check(L.hakuban_tag_descriptor_new(byref(h), _dumps(value, "a tag")))
        try:
            out = c_char_p()
            _lib.check(L.hakuban_tag_descriptor_json(byref(out), h))
            self._canonical = (out.value or b"").decode("utf-8")
        finally:
            L.hakuban_tag_descriptor_drop(h)
        self._value = _UNPARSED

    @classmethod
    def _from_canonical(cls, text: str) -> "TagDescriptor":
        tag = cls.__new__(cls)
        tag._canonical = text
        tag._value = _UNPARSED
        return tag

    @classmethod
    def _from_handle(cls, h: int) -> "TagDescriptor":
        """Reads a tag descriptor handle and drops it."""
        L = _lib.L
        try:
            out = c_char_p()
            _lib.check(L.hakuban_tag_descriptor_json(byref(out), h))
            return cls._from_canonical((out.value or b"").decode("utf-8"))
        finally:
            L.hakuban_tag_descriptor_drop(h)

    @property
    def value(self) -> JSONValue:
        """The tag as a Python value (parsed from the canonical JSON)."""
        if self._value is _UNPARSED:
            self._value = json.loads(self._canonical)
        return self._value

    @property
    def canonical_json(self) -> str:
        """The canonical JSON text of the tag (sorted keys, no white space)."""
        return self._canonical

    def _handle(self) -> int:
        """A new library handle for the tag (the caller drops it)."""
        h = c_uint64()
        _lib.check(_lib.L.hakuban_tag_descriptor_new(byref(h), self._canonical.encode("utf-8")))
        return h.value

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TagDescriptor):
            return NotImplemented
        return self._canonical == other._canonical

    def __hash__(self) -> int:
        return hash(("tag", self._canonical))

    def __lt__(self, other: "TagDescriptor") -> bool:
        return self._canonical < other._canonical

    def __repr__(self) -> str:
        return f"TagDescriptor({self._canonical})"

    def __reduce__(self) -> Tuple[Any, ...]:
        return (TagDescriptor._from_canonical, (self._canonical,))


class _Unparsed:
    def __repr__(self) -> str:  # pragma: no cover
        return "<unparsed>"


_UNPARSED: Any = _Unparsed()

TagLike = Union[TagDescriptor, JSONValue]


class ObjectDescriptor:
    """The name of an object: a JSON value plus a set of tags, e.g.
    ``ObjectDescriptor({"sensor": 7}, tags=["sensors", {"room": 12}])``.

    Identity is by value: key order inside the JSON, tag order and duplicate
    tags do not matter; the same value with other tags is another object.
    """

    __slots__ = ("_key", "_canonical", "_tags", "_value")

    def __init__(self, value: JSONValue, tags: Iterable[TagLike] = ()) -> None:
        if isinstance(value, ObjectDescriptor):
            if tags:
                raise TypeError("ObjectDescriptor(descriptor) takes no tags")
            self._copy_from(value)
            return
        if isinstance(tags, (str, bytes, dict)):
            raise TypeError("tags must be an iterable of tags, e.g. tags=['sensors'], "
                            f"not {type(tags).__name__}")
        tag_set = frozenset(TagDescriptor(t) for t in tags)
        texts = [t._canonical.encode("utf-8") for t in sorted(tag_set)]
        arr = (c_char_p * len(texts))(*texts) if texts else None
        L = _lib.L
        h = c_uint64()
        _lib.check(L.hakuban_object_descriptor_new(byref(h), _dumps(value, "an object descriptor"),
                                                   arr, len(texts)))
        try:
            out = c_char_p()
            _lib.check(L.hakuban_object_descriptor_json(byref(out), h))
            self._canonical: str = (out.value or b"").decode("utf-8")
            _lib.check(L.hakuban_object_descriptor_key(byref(out), h))
            self._key: str = (out.value or b"").decode("utf-8")
        finally:
            L.hakuban_object_descriptor_drop(h)
        self._tags: FrozenSet[TagDescriptor] = tag_set
        self._value: Any = _UNPARSED

    def _copy_from(self, other: "ObjectDescriptor") -> None:
        self._key = other._key
        self._canonical = other._canonical
        self._tags = other._tags
        self._value = other._value

    @classmethod
    def _from_handle(cls, h: int) -> "ObjectDescriptor":
        """Reads an object descriptor handle and drops it. Descriptors of
        received events repeat, so they are cached by key."""
        L = _lib.L
        try:
            out = c_char_p()
            _lib.check(L.hakuban_object_descriptor_key(byref(out), h))
            key = (out.value or b"").decode("utf-8")
            d = _cache.get(key)
            if d is not None:
                return d
            d = cls.__new__(cls)
            d._key = key
            _lib.check(L.hakuban_object_descriptor_json(byref(out), h))
            d._canonical = (out.value or b"").decode("utf-8")
            n = c_size_t()
            _lib.check(L.hakuban_object_descriptor_tag_count(byref(n), h))
            tags = []
            for i in range(n.value):
                _lib.check(L.hakuban_object_descriptor_tag_json(byref(out), h, i))
                tags.append(TagDescriptor._from_canonical((out.value or b"").decode("utf-8")))
            d._tags = frozenset(tags)
            d._value = _UNPARSED
        finally:
            L.hakuban_object_descriptor_drop(h)
        if len(_cache) >= _CACHE_SIZE:
            _cache.clear()  # crude, but bounded and rarely hit
        _cache[key] = d
        return d

    @property
    def value(self) -> JSONValue:
        """The descriptor's JSON value as a Python value."""
        if self._value is _UNPARSED:
            self._value = json.loads(self._canonical)
        return self._value

    @property
    def tags(self) -> FrozenSet[TagDescriptor]:
        """The descriptor's tags."""
        return self._tags

    @property
    def canonical_json(self) -> str:
        """The canonical JSON text of the value (without the tags)."""
        return self._canonical

    @property
    def key(self) -> str:
        """The identity: canonical JSON ``{"json":<value>,"tags":[...]}``.
        Two descriptors name the same object exactly when their keys are
        equal."""
        return self._key

    def _handle(self) -> int:
        """A new library handle for the descriptor (the caller drops it)."""
        texts = [t._canonical.encode("utf-8") for t in sorted(self._tags)]
        arr = (c_char_p * len(texts))(*texts) if texts else None
        h = c_uint64()
        _lib.check(_lib.L.hakuban_object_descriptor_new(
            byref(h), self._canonical.encode("utf-8"), arr, len(texts)))
        return h.value

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ObjectDescriptor):
            return NotImplemented
        return self._key == other._key

    def __hash__(self) -> int:
        return hash(("object", self._key))

    def __repr__(self) -> str:
        if self._tags:
            tags = ", ".join(t._canonical for t in sorted(self._tags))
            return f"ObjectDescriptor({self._canonical}, tags=[{tags}])"
        return f"ObjectDescriptor({self._canonical})"

    def __reduce__(self) -> Tuple[Any, ...]:
        return (_object_descriptor_from_parts, (self._key, self._canonical,
                                                tuple(t._canonical for t in self._tags)))


def _object_descriptor_from_parts(key: str, canonical: str, tags: Tuple[str, ...]) -> ObjectDescriptor:
    d = ObjectDescriptor.__new__(ObjectDescriptor)
    d._key = key
    d._canonical = canonical
    d._tags = frozenset(TagDescriptor._from_canonical(t) for t in tags)
    d._value = _UNPARSED
    return d


_CACHE_SIZE = 4096
_cache: Dict[str, ObjectDescriptor] = {}

ObjectDescriptorLike = Union[ObjectDescriptor, JSONValue]


def object_descriptor(d: ObjectDescriptorLike) -> ObjectDescriptor:
    """``d`` if it is an ObjectDescriptor, else a descriptor of value ``d``
    without tags."""
    return d if isinstance(d, ObjectDescriptor) else ObjectDescriptor(d)


def tag_descriptor(t: TagLike) -> TagDescriptor:
    """``t`` if it is a TagDescriptor, else a tag of value ``t``."""
    return t if isinstance(t, TagDescriptor) else TagDescriptor(t)
