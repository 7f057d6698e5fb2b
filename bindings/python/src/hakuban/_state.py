"""ObjectState: one value of an object."""

from __future__ import annotations

import json
import threading
from ctypes import POINTER, byref, c_bool, c_char, c_char_p, c_int64, c_size_t, c_uint64
from typing import Any, Dict, Iterable, Optional, Tuple, Union

from . import _lib
from ._errors import BufferTooSmallError, InvalidArgumentError, WrongFormatError

#: The format name the JSON helpers push and pop.
FORMAT_JSON = "JSON"

# Received data up to this size is copied through a per-thread buffer (one
# call); larger data into a buffer of its own (one more call).
_SCRATCH = 64 * 1024

#: The value of a field of a received state that was not read yet.
_UNSET: Any = object()


# Encoded format stacks, by tuple: format stacks repeat, encoding them on
# every send would cost more than the send itself.
# (The array points into the encoded bytes: ctypes keeps them alive.)
_format_arrays: Dict[Tuple[str, ...], Any] = {}


def _format_array(fmt: Tuple[str, ...]) -> Any:
    arr = _format_arrays.get(fmt)
    if arr is None:
        arr = (c_char_p * len(fmt))(*[f.encode("utf-8") for f in fmt])
        if len(_format_arrays) < 256:
            _format_arrays[fmt] = arr
    return arr


class ObjectState:
    """One value of an object: ``data`` (bytes hakuban never interprets),
    ``format`` (a stack of encoding names, innermost first, e.g.
    ``("JSON",)`` or ``("JSON", "zstd")``), ``version`` (integers compared
    lexicographically) and ``synchronized`` (whether it is the current truth
    from a live exposer).

    States are immutable values. Make one to send it through a sink::

        sink.send(ObjectState(b"21.5", format=("celsius",)))
        sink.send(ObjectState.from_json({"t": 21.5}))

    An empty version (the default) lets the sink choose one greater than the
    object's current version. States you make are not synchronized; a sink
    marks what it publishes as synchronized.

    A received state reads its fields from the library on first access and
    keeps the library's copy until the Python object is garbage collected.
    """

    # _hc: the library handle of a received state (a c_uint64), else None.
    __slots__ = ("_hc", "_data", "_format", "_version", "_synchronized", "__weakref__")

    _hc: Optional[c_uint64]
    _data: bytes
    _format: Tuple[str, ...]
    _version: Tuple[int, ...]
    _synchronized: bool

    def __init__(self, data: Union[bytes, bytearray, memoryview] = b"", format: Iterable[str] = (),
                 version: Optional[Iterable[int]] = None) -> None:
        self._hc = None
        if version is None and format == () and type(data) is bytes:
            # the common case, kept cheap: sending costs little more
            self._data = data
            self._format = ()
            self._version = ()
            self._synchronized = False
            return
        if type(data) is not bytes:
            data = bytes(data)  # bytearray, memoryview: states are immutable
        fmt = tuple(format)
        if isinstance(format, str):
            raise TypeError("format is a sequence of names, e.g. format=('JSON',), not a string")
        for f in fmt:
            if not isinstance(f, str):
                raise TypeError(f"format entries are strings, not {type(f).__name__}")
        ver: Tuple[int, ...] = () if version is None else tuple(version)
        for v in ver:
            if not isinstance(v, int) or not -(1 << 63) <= v < (1 << 63):
                raise InvalidArgumentError(f"version entries are 64-bit integers, not {v!r}")
        self._data = data
        self._format = fmt
        self._version = ver
        self._synchronized = False

    @classmethod
    def from_json(cls, value: Any, version: Optional[Iterable[int]] = None,
                  format: Iterable[str] = ()) -> "ObjectState":
        """A state whose data is ``value`` encoded as JSON, with ``"JSON"``
        pushed on top of ``format`` (usually empty)."""
        try:
            text = json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        except (TypeError, ValueError) as e:
            raise InvalidArgumentError(f"the value is not JSON: {e}") from None
        return cls(text.encode("utf-8"), tuple(format) + (FORMAT_JSON,), version)

    def json(self) -> Any:
        """Decodes the data as JSON. Raises WrongFormatError unless the
        outermost format is ``"JSON"``."""
        fmt = self.format
        if not fmt or fmt[-1] != FORMAT_JSON:
            raise WrongFormatError(f"the state's format is {list(fmt)}, not JSON on top")
        return json.loads(self.data)

    def __del__(self) -> None:
        hc = self._hc
        if hc is not None:
            self._hc = None
            try:
                if not _lib._forked:
                    _lib.F.hakuban_object_state_drop(hc)
            except Exception:  # interpreter shutdown: the module may be gone
                pass

    # A received state starts with its fields _UNSET; each is read from the
    # library on first access.

    @property
    def data(self) -> bytes:
        """The state's bytes."""
        d = self._data
        if d is _UNSET:
            d = self._data = _read_data(self._hc)
        return d

    @property
    def format(self) -> Tuple[str, ...]:
        """The format stack, innermost encoding first."""
        f = self._format
        if f is not _UNSET:
            return f
        F = _lib.F
        hc = self._hc
        n = c_size_t()
        _check(F.hakuban_object_state_format_count(byref(n), hc))
        out = c_char_p()
        items = []
        for i in range(n.value):
            _check(F.hakuban_object_state_format(byref(out), hc, c_size_t(i)))
            items.append((out.value or b"").decode("utf-8"))
        f = self._format = tuple(items)
        return f

    @property
    def version(self) -> Tuple[int, ...]:
        """The version; ``()`` for a state made without one."""
        v = self._version
        if v is not _UNSET:
            return v
        p = POINTER(c_int64)()
        n = c_size_t()
        _check(_lib.F.hakuban_object_state_version(byref(p), byref(n), self._hc))
        v = self._version = tuple(p[:n.value]) if n.value else ()
        return v

    @property
    def synchronized(self) -> bool:
        """Whether this is the current truth from a live exposer."""
        s = self._synchronized
        if s is not _UNSET:
            return s
        b = c_bool()
        _check(_lib.F.hakuban_object_state_synchronized(byref(b), self._hc))
        s = self._synchronized = b.value
        return s

    @property
    def unsynchronized_age(self) -> float:
        """Seconds since a not-synchronized state was last synchronized,
        measured now (it grows while you hold the state); 0.0 for a
        synchronized state, a state you made, or when unknown."""
        hc = self._hc
        if hc is None:
            return 0.0
        ms = c_int64()
        _lib.check(_lib.L.hakuban_object_state_unsynchronized_ms(byref(ms), hc.value))
        return ms.value / 1000.0

    def _send_handle(self) -> Tuple[c_uint64, bool]:
        """A library handle of this state, and whether the caller must drop
        it (received states already have one)."""
        hc = self._hc
        if hc is not None:
            return hc, False
        return _new_state(self._data, self._format, self._version), True

    def _fields(self) -> Tuple[Any, ...]:
        return (self.version, self.format, self.synchronized, self.data)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ObjectState):
            return NotImplemented
        return self._fields() == other._fields()

    __hash__ = None  # type: ignore[assignment]  # equal states need not be one object

    def __repr__(self) -> str:
        data = self.data
        shown = repr(data[:32]) + ("..." if len(data) > 32 else "")
        return (f"ObjectState(version={self.version}, format={self.format}, "
                f"synchronized={self.synchronized}, data={shown} ({len(data)} bytes))")

    def __reduce__(self) -> Tuple[Any, ...]:
        return (_rebuild, (self.data, self.format, self.version, self.synchronized))


def _rebuild(data: bytes, fmt: Tuple[str, ...], version: Tuple[int, ...],
             synchronized: bool) -> ObjectState:
    st = ObjectState(data, fmt, version)
    st._synchronized = synchronized
    return st


_new = object.__new__
_SIZES = tuple(c_size_t(i) for i in range(1025))  # small sizes, made once


def _check(rc: int) -> None:
    if rc < 0:
        _lib.raise_for(rc)


def _new_state(data: bytes, fmt: Tuple[str, ...], ver: Tuple[int, ...]) -> c_uint64:
    """A new library state (the caller drops it)."""
    out = c_uint64()
    n, nv, nf = len(data), len(ver), len(fmt)
    rc = _lib.F.hakuban_object_state_new(
        byref(out),
        (c_int64 * nv)(*ver) if nv else None, _SIZES[nv] if nv <= 1024 else c_size_t(nv),
        _format_array(fmt) if nf else None, _SIZES[nf] if nf <= 1024 else c_size_t(nf),
        data if n else None, _SIZES[n] if n <= 1024 else c_size_t(n))
    if rc < 0:
        _lib.raise_for(rc)
    return out


class _Scratch(threading.local):
    """Per-thread buffer that received data is copied into, with its length
    output, made once per thread: (buffer, byref(length), length)."""

    def __init__(self) -> None:
        n = c_size_t()
        self.t = ((c_char * _SCRATCH)(), byref(n), n)


_scratch = _Scratch()
_SCRATCH_SIZE = c_size_t(_SCRATCH)


def _read_data(hc: Optional[c_uint64]) -> bytes:
    # One copy from Go memory into this thread's scratch buffer, one into
    # the bytes object: cheaper than the library's pointer accessor, which
    # mallocs a C copy per state. Larger data gets a buffer of its own.
    buf, pn, n = _scratch.t
    rc = _lib.F.hakuban_object_state_data_copy(buf, _SCRATCH_SIZE, pn, hc)
    if rc == 0:
        return buf[:n.value]  # type: ignore[return-value]  # c_char slices are bytes
    if rc != BufferTooSmallError.code:
        _lib.raise_for(rc)
    size = n.value
    big = (c_char * size)()
    _check(_lib.F.hakuban_object_state_data_copy(big, c_size_t(size), pn, hc))
    return big.raw


def wrap_state(hc: c_uint64) -> ObjectState:
    """Wraps a received state handle (a c_uint64 the state now owns)."""
    st = _new(ObjectState)
    st._hc = hc
    st._data = st._format = st._version = st._synchronized = _UNSET
    return st
