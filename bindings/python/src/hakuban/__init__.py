"""hakuban: share data objects between processes.

Processes *expose* data objects and other processes *observe* them. An
object is a shared variable named by JSON (an ObjectDescriptor): exactly one
exposer writes it, any number of observers read its newest state. It is
last-value state sharing, not messaging: a slow observer skips versions, it
never gets a backlog.

Everything happens through four contracts made on an Exchange:

* ``exchange.observe_object(d)`` - ObjectObserveContract, yields ObjectState
* ``exchange.expose_object(d, capacity)`` - ObjectExposeContract, yields an
  ObjectStateSink while it must produce the object
* ``exchange.observe_tag(t)`` - TagObserveContract, yields ObjectEvent
* ``exchange.expose_tag(t, capacity)`` - TagExposeContract, yields sinks

Exchanges in different processes link through ``exchange.connect(urls)``
(a Connector, to a router or another exchange's Listener) and
``exchange.listen(address)`` (a Listener).

Importing this package does not load libhakuban: the first descriptor,
exchange or ``version()`` call does. Do not use hakuban in a child process
forked after that (ForkedChildError); see the README for threads, asyncio
and Ctrl-C.
"""

from __future__ import annotations

from . import _lib
from ._contracts import (ObjectEvent, ObjectExposeContract, ObjectObserveContract,
                         ObjectStateSink, Status, TagExposeContract, TagObserveContract)
from ._descriptor import ObjectDescriptor, TagDescriptor
from ._errors import (BufferTooSmallError, ClosedError, ConnectionFailedError,
                      DescriptorTooLargeError, Empty, EndOfStream, ForkedChildError,
                      HakubanError, InternalError, InvalidArgumentError,
                      InvalidCapacityError, InvalidConfigError, InvalidDescriptorError,
                      InvalidHandleError, LibraryError, ProtocolError, RefusedError,
                      RevokedError, StaleVersionError, Timeout, TooManyTagsError,
                      WrongFormatError)
from ._exchange import Exchange
from ._log import LogLevel, log_to_python, log_to_stderr, set_log_level
from ._network import Connector, ConnectorState, ConnectorStatus, Listener
from ._state import FORMAT_JSON, ObjectState

__version__ = "0.1.0"

#: The library ABI version this binding needs (HAKUBAN_ABI_VERSION).
EXPECTED_ABI_VERSION = _lib.EXPECTED_ABI_VERSION


def version() -> str:
    """The loaded library's version, e.g. "0.1.0" (loads the library)."""
    return str(_lib.L.version)


def abi_version() -> int:
    """The loaded library's ABI version (loads the library)."""
    return int(_lib.L.abi_version)


def library_path() -> str:
    """The path the library is (or will be) loaded from: $HAKUBAN_LIBRARY,
    else the copy inside this package."""
    loaded = _lib.loaded()
    return loaded.path if loaded is not None else _lib.library_path()


__all__ = [
    "Exchange", "ObjectDescriptor", "TagDescriptor", "ObjectState", "ObjectEvent",
    "ObjectObserveContract", "ObjectExposeContract", "TagObserveContract",
    "TagExposeContract", "ObjectStateSink", "Status", "LogLevel", "FORMAT_JSON",
    "Connector", "ConnectorState", "ConnectorStatus", "Listener",
    "EXPECTED_ABI_VERSION", "set_log_level", "log_to_python", "log_to_stderr", "version",
    "abi_version", "library_path",
    "HakubanError", "LibraryError", "ForkedChildError",
    "Empty", "EndOfStream", "Timeout", "InvalidArgumentError", "InvalidHandleError",
    "InvalidDescriptorError", "DescriptorTooLargeError", "TooManyTagsError",
    "InvalidCapacityError", "StaleVersionError", "RevokedError", "ClosedError",
    "WrongFormatError", "BufferTooSmallError", "InvalidConfigError", "RefusedError",
    "ProtocolError", "ConnectionFailedError", "InternalError",
]
