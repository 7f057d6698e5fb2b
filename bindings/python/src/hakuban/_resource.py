"""What every library handle owned by a Python object shares: close(),
closed, the context manager, and weakref.finalize as the safety net."""

from __future__ import annotations

import weakref
from ctypes import c_uint64
from types import TracebackType
from typing import Optional, Type, TypeVar

from . import _lib
from ._errors import ClosedError

_R = TypeVar("_R", bound="Resource")


class Resource:
    """Base of the classes that own a library handle.

    ``close()`` releases the handle at once; it is idempotent and
    thread-safe. A resource that is garbage collected without being closed
    is closed then (``weakref.finalize``), and at interpreter exit, so
    nothing leaks, but relying on that makes the moment unpredictable:
    prefer ``with`` blocks or explicit ``close()``.
    """

    # _h: the handle as an int, 0 once closed; _hc: the same handle as a
    # c_uint64, for the argtype-less fast calls (see _lib). _hc outlives
    # close(): test _h first.
    __slots__ = ("_h", "_hc", "_finalizer", "__weakref__")

    #: name of the C function that drops this kind of handle
    _drop_name = ""
    #: what the resource is called in error messages
    _what = "resource"

    def _own(self, hc: c_uint64) -> None:
        """Takes ownership of the handle in hc (a c_uint64 output of a
        _new call, kept as is)."""
        h = hc.value
        self._h = h
        self._hc = hc
        self._finalizer = weakref.finalize(self, _lib.release, self._drop_name, h)

    @property
    def closed(self) -> bool:
        """True once close() was called (or the owning exchange closed it)."""
        return not self._h

    def close(self) -> None:
        """Releases the resource. Idempotent."""
        self._h = 0
        fin = getattr(self, "_finalizer", None)
        if fin is not None:
            fin()  # runs the drop at most once, even if called concurrently

    def _handle(self) -> int:
        h = self._h
        if not h:
            raise ClosedError(f"the {self._what} is closed")
        return h

    def __enter__(self: _R) -> _R:
        return self

    def __exit__(self, exc_type: Optional[Type[BaseException]],
                 exc: Optional[BaseException], tb: Optional[TracebackType]) -> None:
        self.close()
