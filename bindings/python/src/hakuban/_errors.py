"""Exceptions: one class per result code of the C API, all under HakubanError.

The classes are generated from ``CODES``, the one table of result codes in
this package. ``tests/test_errors.py`` checks it against the ``HAKUBAN_*``
codes of ``include/hakuban.h`` (which a Go test checks against the core's
table), so the three cannot drift apart.
"""

from __future__ import annotations

from typing import Dict, NamedTuple, Optional, Tuple, Type


class HakubanError(Exception):
    """Base class of every error raised by hakuban.

    ``code`` is the C result code (``None`` for errors that happen on the
    Python side only, such as a missing library), ``name`` the suffix of its
    C constant (``"ERR_REVOKED"`` for ``HAKUBAN_ERR_REVOKED``).
    """

    code: Optional[int] = None
    name: Optional[str] = None


class LibraryError(HakubanError):
    """libhakuban cannot be used: not found, the wrong ABI version, or a
    forked child (see ``ForkedChildError``)."""


class ForkedChildError(LibraryError):
    """hakuban was used in a child process forked after the library was
    loaded. The Go runtime does not survive fork(): such a call would hang
    forever, so it is refused. Fork before using hakuban, use the "spawn" or
    "forkserver" start method of multiprocessing, or exec() in the child."""


class CodeInfo(NamedTuple):
    """One row of the result-code table."""

    code: int
    #: suffix of the C constant: HAKUBAN_<c_name>
    c_name: str
    #: name of the Python exception class
    py_name: str
    #: builtin exception classes it also derives from (so ``except
    #: ValueError`` catches an invalid descriptor)
    bases: Tuple[Type[BaseException], ...]
    doc: str


#: The result codes of the C API (enum hakuban_result), except HAKUBAN_OK.
#: Positive codes are stream states; the receiving methods turn them into
#: return values (``try_recv`` returns ``None`` for EMPTY, iteration stops at
#: END), but ``recv`` raises ``Timeout`` and ``EndOfStream``.
CODES: Tuple[CodeInfo, ...] = (
    CodeInfo(1, "EMPTY", "Empty", (), "Nothing was pending."),
    CodeInfo(2, "END", "EndOfStream", (),
             "The stream ended: its contract was closed, or the sink was revoked."),
    CodeInfo(3, "TIMEOUT", "Timeout", (TimeoutError,),
             "A blocking call's timeout expired with nothing pending."),
    CodeInfo(-1, "ERR_INVALID_ARGUMENT", "InvalidArgumentError", (ValueError,),
             "An argument is out of range."),
    CodeInfo(-2, "ERR_INVALID_HANDLE", "InvalidHandleError", (),
             "A handle is unknown, of the wrong kind, or already dropped "
             "(a bug in hakuban's Python binding if you ever see it)."),
    CodeInfo(-3, "ERR_INVALID_DESCRIPTOR", "InvalidDescriptorError", (ValueError,),
             "A descriptor is not valid JSON."),
    CodeInfo(-4, "ERR_DESCRIPTOR_TOO_LARGE", "DescriptorTooLargeError", (ValueError,),
             "A descriptor is over the size limit (default 64 KiB)."),
    CodeInfo(-5, "ERR_TOO_MANY_TAGS", "TooManyTagsError", (ValueError,),
             "An object descriptor has more tags than allowed (default 64)."),
    CodeInfo(-6, "ERR_INVALID_CAPACITY", "InvalidCapacityError", (ValueError,),
             "An expose contract's capacity is not in 1..2**30."),
    CodeInfo(-7, "ERR_STALE_VERSION", "StaleVersionError", (),
             "A state's version is older than the object's current one."),
    CodeInfo(-8, "ERR_REVOKED", "RevokedError", (),
             "A write went through a revoked assignment (sink): another "
             "exposer owns the object now."),
    CodeInfo(-9, "ERR_CLOSED", "ClosedError", (),
             "The exchange, contract or sink was closed."),
    CodeInfo(-10, "ERR_WRONG_FORMAT", "WrongFormatError", (ValueError,),
             "A state's format stack does not have the expected encoding on top."),
    CodeInfo(-11, "ERR_BUFFER_TOO_SMALL", "BufferTooSmallError", (),
             "A caller buffer is too small."),
    CodeInfo(-12, "ERR_INVALID_CONFIG", "InvalidConfigError", (ValueError,),
             "An option is out of range."),
    CodeInfo(-13, "ERR_REFUSED", "RefusedError", (PermissionError,),
             "The network refused a contract (permissions)."),
    CodeInfo(-14, "ERR_PROTOCOL", "ProtocolError", (),
             "A peer broke the wire protocol."),
    CodeInfo(-15, "ERR_CONNECTION", "ConnectionFailedError", (ConnectionError,),
             "A network connection failed."),
    CodeInfo(-16, "ERR_INTERNAL", "InternalError", (),
             "A bug in hakuban (a recovered panic); the message says where."),
)


def _make(info: CodeInfo) -> Type[HakubanError]:
    cls = type(info.py_name, (HakubanError,) + info.bases, {
        "__doc__": info.doc,
        "__module__": "hakuban",
        "code": info.code,
        "name": info.c_name,
    })
    return cls


#: Exception class of every code in CODES.
BY_CODE: Dict[int, Type[HakubanError]] = {info.code: _make(info) for info in CODES}


def _cls(py_name: str) -> Type[HakubanError]:
    for info in CODES:
        if info.py_name == py_name:
            return BY_CODE[info.code]
    raise AssertionError(py_name)  # pragma: no cover - table and names below disagree


# Module-level names, so that ``except hakuban.RevokedError`` works and type
# checkers know them. tests/test_errors.py checks that every row of CODES
# has its name here and nothing else is.
Empty = _cls("Empty")
EndOfStream = _cls("EndOfStream")
Timeout = _cls("Timeout")
InvalidArgumentError = _cls("InvalidArgumentError")
InvalidHandleError = _cls("InvalidHandleError")
InvalidDescriptorError = _cls("InvalidDescriptorError")
DescriptorTooLargeError = _cls("DescriptorTooLargeError")
TooManyTagsError = _cls("TooManyTagsError")
InvalidCapacityError = _cls("InvalidCapacityError")
StaleVersionError = _cls("StaleVersionError")
RevokedError = _cls("RevokedError")
ClosedError = _cls("ClosedError")
WrongFormatError = _cls("WrongFormatError")
BufferTooSmallError = _cls("BufferTooSmallError")
InvalidConfigError = _cls("InvalidConfigError")
RefusedError = _cls("RefusedError")
ProtocolError = _cls("ProtocolError")
ConnectionFailedError = _cls("ConnectionFailedError")
InternalError = _cls("InternalError")

ERROR_NAMES: Tuple[str, ...] = tuple(info.py_name for info in CODES)


def error_for(code: int, message: str) -> HakubanError:
    """Returns the exception for a result code (a plain HakubanError with
    that code for a code this binding does not know)."""
    cls = BY_CODE.get(code)
    if cls is None:
        err = HakubanError(f"{message} (unknown result code {code})")
        err.code = code
        return err
    return cls(message)
