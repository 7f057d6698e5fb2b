"""The library's log: its level, and routing it to Python's logging."""

from __future__ import annotations

import atexit
import ctypes
import enum
import logging
import threading
from typing import Optional

from . import _lib


class LogLevel(enum.IntEnum):
    """The library's log levels (enum hakuban_log_level)."""

    DEBUG = 0
    INFO = 1
    WARN = 2
    ERROR = 3
    OFF = 4


def set_log_level(level: LogLevel) -> None:
    """Sets the process-wide level of the library's log (the default is
    WARN): records below it are not even formatted."""
    _lib.check(_lib.L.hakuban_log_set_level(int(level)))


_LOG_FN = ctypes.CFUNCTYPE(None, ctypes.c_int32, ctypes.c_char_p, ctypes.c_void_p)
_PY_LEVELS = {0: logging.DEBUG, 1: logging.INFO, 2: logging.WARNING, 3: logging.ERROR}
_lock = threading.Lock()
_target: Optional[logging.Logger] = None
_registered = False


def _on_record(level: int, message: bytes, _user_data: Optional[int]) -> None:
    # Runs on the library's log thread (ctypes takes the GIL for it). It must
    # never raise into C.
    try:
        logger = _target
        if logger is not None:
            logger.log(_PY_LEVELS.get(level, logging.WARNING),
                       message.decode("utf-8", "replace") if message else "")
    except Exception:  # pragma: no cover
        pass


_callback = _LOG_FN(_on_record)  # kept alive for as long as it may be registered


def log_to_python(logger: Optional[logging.Logger] = None) -> None:
    """Sends the library's log records (from every exchange: links going up
    and down, refused contracts, recovered internal errors) to ``logger``
    (default: ``logging.getLogger("hakuban")``) instead of standard error;
    ``log_to_stderr()`` goes back. Levels map to DEBUG, INFO, WARNING and
    ERROR; ``set_log_level`` still decides what the library produces.

    Each record costs a call from a library thread into Python (~20 us);
    the library drops records rather than wait when Python is slower, and
    says how many it dropped."""
    global _target, _registered
    with _lock:
        _target = logger if logger is not None else logging.getLogger("hakuban")
        if not _registered:
            _lib.check(_lib.L.hakuban_log_set_callback(
                ctypes.cast(_callback, ctypes.c_void_p), None, None))
            _registered = True


def log_to_stderr() -> None:
    """Sends the library's log back to standard error (its default)."""
    global _target, _registered
    with _lock:
        if _registered:
            # The library waits for a running callback to return; ctypes
            # releases the GIL meanwhile, so the callback can finish.
            _lib.check(_lib.L.hakuban_log_set_callback(None, None, None))
            _registered = False
        _target = None


@atexit.register
def _unregister_at_exit() -> None:
    # No callback may run while the interpreter is being torn down.
    if _registered and not _lib.forked():
        try:
            log_to_stderr()
        except Exception:  # pragma: no cover
            pass
