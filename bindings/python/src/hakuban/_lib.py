"""Loading libhakuban.so: lazily, once, ABI-checked, guarded against fork.

Every call into the library goes through ``_lib.L.<function>``. ``L`` starts
as a loader whose first attribute access loads the library (so ``import
hakuban`` costs nothing and starts no Go threads), then becomes the table of
declared functions. In a child forked after loading, ``L`` is replaced by a
guard that raises ``ForkedChildError``: the Go runtime's threads do not
survive fork(), and any call would hang forever. Nothing may keep a reference
to a library function past one call, or the guard could be bypassed.

Two ctypes views of the same library are used: functions that may block
(waiting with a timeout, dropping an exchange, the snapshot) go through
``ctypes.CDLL`` and release the GIL while they run; everything else goes
through ``ctypes.PyDLL`` and keeps it. Those calls return in well under a
microsecond and never wait for Python (hakuban never calls back into Python
here), so keeping the GIL saves a release/re-acquire per call and, more
importantly, does not hand the GIL to another thread in the middle of a
receive loop.

Hot paths (receiving, sending, reading a state) call the functions in
``FAST_FUNCTIONS`` through ``_lib.F``: the same functions *without*
``argtypes``. Converting a Python int through a declared ``c_uint64``
argtype costs ~150-250 ns per argument, more than the call into Go itself,
so these call sites pass ready-made ctypes objects (``c_uint64`` handles,
``c_int64`` timeouts, ``byref`` outputs) whose own types tell ctypes how to
pass them. Never pass a plain int to an ``F`` function: it would be passed
as a C int. Everything else keeps declared ``argtypes`` (``_lib.L``).
"""

from __future__ import annotations

import ctypes
import os
import threading
from ctypes import (POINTER, Structure, c_bool, c_char_p, c_double, c_int, c_int32,
                    c_int64, c_size_t, c_uint32, c_uint64, c_void_p)
from typing import Any, List, NoReturn, Optional, Sequence, Tuple

from ._errors import ForkedChildError, LibraryError, error_for

#: The HAKUBAN_ABI_VERSION this binding was written against. The library's
#: hakuban_abi_version() must be equal (checked at first load).
EXPECTED_ABI_VERSION = 0

#: Environment variable naming the library to load instead of the one
#: inside the package.
LIBRARY_ENV = "HAKUBAN_LIBRARY"

LIBRARY_FILE = "libhakuban.so"

# Result codes the binding handles itself (the rest become exceptions).
OK = 0
EMPTY = 1
END = 2
TIMEOUT = 3
ERR_INVALID_HANDLE = -2


class ExchangeOptions(Structure):
    """struct hakuban_exchange_options."""

    _fields_ = [
        ("name", c_char_p),
        ("max_descriptor_size", c_size_t),
        ("max_tags", c_size_t),
        ("rebalance_threshold", c_double),
        ("rebalance_interval_ms", c_int64),
        ("max_moves_per_interval", c_int32),
        ("handover_timeout_ms", c_int64),
    ]


class ObjectEventStruct(Structure):
    """struct hakuban_object_event."""

    _fields_ = [
        ("descriptor", c_uint64),
        ("state", c_uint64),
        ("gone", c_bool),
    ]


class ConnectorOptions(Structure):
    """struct hakuban_connector_options."""

    _fields_ = [
        ("name", c_char_p),
        ("token", c_char_p),  # const void *: bytes, with token_len
        ("token_len", c_size_t),
        ("min_backoff_ms", c_int64),
        ("max_backoff_ms", c_int64),
        ("ping_interval_ms", c_int64),
        ("ping_timeout_ms", c_int64),
        ("tls_ca_file", c_char_p),
        ("tls_cert_file", c_char_p),
        ("tls_key_file", c_char_p),
    ]


class ConnectorStatusInfo(Structure):
    """struct hakuban_connector_status_info."""

    _fields_ = [
        ("state", c_int32),
        ("connects", c_uint64),
        ("failures", c_uint64),
    ]


class ListenerOptions(Structure):
    """struct hakuban_listener_options."""

    _fields_ = [
        ("address", c_char_p),
        ("path", c_char_p),
        ("tls_cert_file", c_char_p),
        ("tls_key_file", c_char_p),
        ("tls_client_ca_file", c_char_p),
        ("ping_interval_ms", c_int64),
        ("ping_timeout_ms", c_int64),
    ]


_u64 = c_uint64
_pu64 = POINTER(c_uint64)
_i32 = c_int32

# (name, restype, argtypes, may_block). may_block: call with the GIL
# released (ctypes.CDLL) because it can wait.
_PROTOTYPES: Sequence[Tuple[str, Any, List[Any], bool]] = (
    ("hakuban_version", c_char_p, [], False),
    ("hakuban_abi_version", c_uint32, [], False),
    ("hakuban_last_error_message", c_char_p, [], False),
    ("hakuban_string_free", None, [c_void_p], False),
    ("hakuban_log_set_level", _i32, [_i32], False),
    # may block: it waits for a running callback, which needs the GIL
    ("hakuban_log_set_callback", _i32, [c_void_p, c_void_p, c_void_p], True),

    ("hakuban_exchange_options_init", None, [POINTER(ExchangeOptions)], False),
    ("hakuban_exchange_new", _i32, [_pu64, POINTER(ExchangeOptions)], True),
    ("hakuban_exchange_drop", _i32, [_u64], True),
    ("hakuban_exchange_snapshot", _i32, [POINTER(c_void_p), _u64], True),

    ("hakuban_tag_descriptor_new", _i32, [_pu64, c_char_p], False),
    ("hakuban_tag_descriptor_json", _i32, [POINTER(c_char_p), _u64], False),
    ("hakuban_tag_descriptor_drop", _i32, [_u64], False),
    ("hakuban_object_descriptor_new", _i32, [_pu64, c_char_p, POINTER(c_char_p), c_size_t], False),
    ("hakuban_object_descriptor_json", _i32, [POINTER(c_char_p), _u64], False),
    ("hakuban_object_descriptor_key", _i32, [POINTER(c_char_p), _u64], False),
    ("hakuban_object_descriptor_tag_count", _i32, [POINTER(c_size_t), _u64], False),
    ("hakuban_object_descriptor_tag_json", _i32, [POINTER(c_char_p), _u64, c_size_t], False),
    ("hakuban_object_descriptor_drop", _i32, [_u64], False),

    ("hakuban_object_state_new", _i32,
     [_pu64, POINTER(c_int64), c_size_t, POINTER(c_char_p), c_size_t, c_char_p, c_size_t], False),
    ("hakuban_object_state_version", _i32, [POINTER(POINTER(c_int64)), POINTER(c_size_t), _u64], False),
    ("hakuban_object_state_format_count", _i32, [POINTER(c_size_t), _u64], False),
    ("hakuban_object_state_format", _i32, [POINTER(c_char_p), _u64, c_size_t], False),
    ("hakuban_object_state_data", _i32, [POINTER(c_void_p), POINTER(c_size_t), _u64], False),
    ("hakuban_object_state_data_len", _i32, [POINTER(c_size_t), _u64], False),
    ("hakuban_object_state_data_copy", _i32, [c_void_p, c_size_t, POINTER(c_size_t), _u64], False),
    ("hakuban_object_state_synchronized", _i32, [POINTER(c_bool), _u64], False),
    ("hakuban_object_state_unsynchronized_ms", _i32, [POINTER(c_int64), _u64], False),
    ("hakuban_object_state_drop", _i32, [_u64], False),

    ("hakuban_object_observe_contract_new", _i32, [_pu64, _u64, _u64], False),
    ("hakuban_object_observe_contract_try_next", _i32, [_pu64, _u64], False),
    ("hakuban_object_observe_contract_next", _i32, [_pu64, _u64, c_int64], True),
    ("hakuban_object_observe_contract_fd", _i32, [POINTER(c_int), _u64], False),
    ("hakuban_object_observe_contract_current", _i32, [_pu64, _u64], False),
    ("hakuban_object_observe_contract_status", _i32, [POINTER(_i32), _u64], False),
    ("hakuban_object_observe_contract_descriptor", _i32, [_pu64, _u64], False),
    ("hakuban_object_observe_contract_close", _i32, [_u64], False),
    ("hakuban_object_observe_contract_drop", _i32, [_u64], False),

    ("hakuban_object_expose_contract_new", _i32, [_pu64, _u64, _u64, c_uint32], False),
    ("hakuban_object_expose_contract_try_next", _i32, [_pu64, _u64], False),
    ("hakuban_object_expose_contract_next", _i32, [_pu64, _u64, c_int64], True),
    ("hakuban_object_expose_contract_fd", _i32, [POINTER(c_int), _u64], False),
    ("hakuban_object_expose_contract_status", _i32, [POINTER(_i32), _u64], False),
    ("hakuban_object_expose_contract_descriptor", _i32, [_pu64, _u64], False),
    ("hakuban_object_expose_contract_close", _i32, [_u64], False),
    ("hakuban_object_expose_contract_drop", _i32, [_u64], False),

    ("hakuban_tag_observe_contract_new", _i32, [_pu64, _u64, _u64], False),
    ("hakuban_tag_observe_contract_try_next", _i32, [POINTER(ObjectEventStruct), _u64], False),
    ("hakuban_tag_observe_contract_next", _i32, [POINTER(ObjectEventStruct), _u64, c_int64], True),
    ("hakuban_tag_observe_contract_fd", _i32, [POINTER(c_int), _u64], False),
    ("hakuban_tag_observe_contract_status", _i32, [POINTER(_i32), _u64], False),
    ("hakuban_tag_observe_contract_tag", _i32, [_pu64, _u64], False),
    ("hakuban_tag_observe_contract_close", _i32, [_u64], False),
    ("hakuban_tag_observe_contract_drop", _i32, [_u64], False),

    ("hakuban_tag_expose_contract_new", _i32, [_pu64, _u64, _u64, c_uint32], False),
    ("hakuban_tag_expose_contract_try_next", _i32, [_pu64, _u64], False),
    ("hakuban_tag_expose_contract_next", _i32, [_pu64, _u64, c_int64], True),
    ("hakuban_tag_expose_contract_fd", _i32, [POINTER(c_int), _u64], False),
    ("hakuban_tag_expose_contract_status", _i32, [POINTER(_i32), _u64], False),
    ("hakuban_tag_expose_contract_tag", _i32, [_pu64, _u64], False),
    ("hakuban_tag_expose_contract_close", _i32, [_u64], False),
    ("hakuban_tag_expose_contract_drop", _i32, [_u64], False),

    ("hakuban_object_state_sink_send", _i32, [_u64, _u64], False),
    ("hakuban_object_state_sink_desynchronize", _i32, [_u64], False),
    ("hakuban_object_state_sink_current", _i32, [_pu64, _u64], False),
    ("hakuban_object_state_sink_token", _i32, [_pu64, _u64], False),
    ("hakuban_object_state_sink_descriptor", _i32, [_pu64, _u64], False),
    ("hakuban_object_state_sink_try_next", _i32, [_u64], False),
    ("hakuban_object_state_sink_next", _i32, [_u64, c_int64], True),
    ("hakuban_object_state_sink_fd", _i32, [POINTER(c_int), _u64], False),
    ("hakuban_object_state_sink_drop", _i32, [_u64], False),
)

# The network section of the header, newer than the rest: a library without
# it still loads (Connector and Listener then raise LibraryError).
_NETWORK_PROTOTYPES: Sequence[Tuple[str, Any, List[Any], bool]] = (
    ("hakuban_connector_options_init", None, [POINTER(ConnectorOptions)], False),
    ("hakuban_connector_new", _i32,
     [_pu64, _u64, POINTER(c_char_p), c_size_t, POINTER(ConnectorOptions)], True),
    ("hakuban_connector_status", _i32, [POINTER(ConnectorStatusInfo), _u64], False),
    ("hakuban_connector_wait", _i32, [POINTER(ConnectorStatusInfo), _u64, c_int32, c_int64], True),
    ("hakuban_connector_url", _i32, [POINTER(c_void_p), _u64], False),
    ("hakuban_connector_last_error", _i32, [POINTER(c_void_p), _u64], False),
    ("hakuban_connector_drop", _i32, [_u64], True),
    ("hakuban_listener_options_init", None, [POINTER(ListenerOptions)], False),
    ("hakuban_listener_new", _i32, [_pu64, _u64, POINTER(ListenerOptions)], True),
    ("hakuban_listener_url", _i32, [POINTER(c_void_p), _u64], False),
    ("hakuban_listener_drop", _i32, [_u64], True),
)


# Added to the network section later (within ABI 0): a library without it
# still loads (Connector.fileno and the Connector's asyncio waits then raise
# LibraryError).
_STATUS_FD_PROTOTYPE: Tuple[str, Any, List[Any], bool] = (
    "hakuban_connector_status_fd", _i32, [POINTER(c_int), _u64], False)

# Added to the network section later (within ABI 0): a library without them
# still loads (Listener's auth and set_auth then raise LibraryError). Both
# may block: new binds a port, set_auth applies the rules to every open link.
_LISTENER_AUTH_PROTOTYPES: Tuple[Tuple[str, Any, List[Any], bool], ...] = (
    ("hakuban_listener_new_with_auth", _i32, [_pu64, _u64, POINTER(ListenerOptions), c_char_p], True),
    ("hakuban_listener_set_auth", _i32, [_u64, c_char_p], True),
)


#: Functions also offered without argtypes through ``F`` (see the module
#: docstring). Their callers pass ctypes objects only.
FAST_FUNCTIONS = frozenset((
    "hakuban_object_observe_contract_try_next", "hakuban_object_expose_contract_try_next",
    "hakuban_tag_observe_contract_try_next", "hakuban_tag_expose_contract_try_next",
    "hakuban_object_state_new", "hakuban_object_state_drop", "hakuban_object_state_data",
    "hakuban_object_state_data_copy", "hakuban_object_state_version",
    "hakuban_object_state_format_count", "hakuban_object_state_format",
    "hakuban_object_state_synchronized", "hakuban_object_state_sink_send",
))


class Functions:
    """The loaded library: one attribute per declared C function."""

    path: str
    version: str
    abi_version: int
    has_network: bool
    has_status_fd: bool
    has_listener_auth: bool

    def __getattr__(self, name: str) -> Any:  # only reached for undeclared names
        raise AttributeError(f"libhakuban function {name} is not declared in hakuban._lib")


def library_path() -> str:
    """Where the library is loaded from: $HAKUBAN_LIBRARY, else the copy
    inside the installed package."""
    env = os.environ.get(LIBRARY_ENV)
    if env:
        return env
    try:
        from importlib.resources import files
        path = str(files(__package__) / LIBRARY_FILE)
    except Exception:  # pragma: no cover - zipimport or exotic loaders
        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), LIBRARY_FILE)
    return path


def _load(path: str) -> Tuple[Functions, Functions]:
    if not os.path.exists(path):
        raise LibraryError(
            f"libhakuban not found at {path}: install the package with pip (it builds "
            f"or bundles the library), or set {LIBRARY_ENV} to the path of libhakuban.so")
    try:
        cdll = ctypes.CDLL(path)
        pydll = ctypes.PyDLL(path)  # the same library, second view (dlopen counts)
    except OSError as e:
        raise LibraryError(f"cannot load libhakuban from {path}: {e}") from e
    fns = Functions()
    fast = Functions()
    fns.path = fast.path = path
    abi = cdll.hakuban_abi_version
    abi.restype, abi.argtypes = c_uint32, []
    got = abi()
    if got != EXPECTED_ABI_VERSION:
        raise LibraryError(
            f"libhakuban at {path} has ABI version {got}, this binding needs "
            f"{EXPECTED_ABI_VERSION}: install the hakuban package that matches the library "
            f"(or point {LIBRARY_ENV} at a matching libhakuban.so)")
    for name, restype, argtypes, may_block in _PROTOTYPES:
        try:
            f = getattr(cdll if may_block else pydll, name)
        except AttributeError as e:
            raise LibraryError(f"libhakuban at {path} lacks {name}: it is older than "
                               f"this binding") from e
        f.restype = restype
        f.argtypes = argtypes
        setattr(fns, name, f)
        if name in FAST_FUNCTIONS:
            # lib[name] makes a new function object of the same symbol
            # (lib.name would return the cached one, with argtypes).
            g = (cdll if may_block else pydll)[name]
            g.restype = restype
            setattr(fast, name, g)
    fns.has_network = True
    for name, restype, argtypes, may_block in _NETWORK_PROTOTYPES:
        try:
            f = getattr(cdll if may_block else pydll, name)
        except AttributeError:
            fns.has_network = False
            break
        f.restype = restype
        f.argtypes = argtypes
        setattr(fns, name, f)
    name, restype, argtypes, _ = _STATUS_FD_PROTOTYPE
    f = getattr(pydll, name, None) if fns.has_network else None
    fns.has_status_fd = f is not None
    if f is not None:
        f.restype = restype
        f.argtypes = argtypes
        setattr(fns, name, f)
    fns.has_listener_auth = fns.has_network
    for name, restype, argtypes, may_block in _LISTENER_AUTH_PROTOTYPES:
        f = getattr(cdll if may_block else pydll, name, None) if fns.has_network else None
        fns.has_listener_auth = fns.has_listener_auth and f is not None
        if f is not None:
            f.restype = restype
            f.argtypes = argtypes
            setattr(fns, name, f)
    fns.abi_version = fast.abi_version = got
    fns.version = fast.version = fns.hakuban_version().decode()
    return fns, fast


_load_lock = threading.Lock()
_loaded: Optional[Functions] = None
_forked = False


class _Loader:
    """``L`` and ``F`` before the first use: loads the library on first
    access."""

    def __init__(self, fast: bool) -> None:
        self._fast = fast

    def __getattr__(self, name: str) -> Any:
        global L, F, _loaded
        if _forked:
            raise ForkedChildError(_FORK_MESSAGE)
        with _load_lock:
            if _loaded is None:
                checked, fast = _load(library_path())
                L, F = checked, fast
                _loaded = checked
        return getattr(F if self._fast else L, name)


_FORK_MESSAGE = (
    "hakuban cannot be used in a process forked after libhakuban was loaded "
    "(the Go runtime does not survive fork(): the call would hang). Create "
    "hakuban objects after forking, or use multiprocessing's 'spawn' or "
    "'forkserver' start method")


class _ForkGuard:
    """``L`` and ``F`` in a child forked after loading: every use raises."""

    def __getattr__(self, name: str) -> Any:
        raise ForkedChildError(_FORK_MESSAGE)


#: The library, functions with declared argtypes (see the module docstring).
L: Any = _Loader(fast=False)
#: The FAST_FUNCTIONS without argtypes: pass ctypes objects only.
F: Any = _Loader(fast=True)


def _after_fork_in_child() -> None:
    global L, F, _forked
    if _loaded is not None:
        _forked = True
        L = F = _ForkGuard()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def forked() -> bool:
    """True in a child forked after the library was loaded."""
    return _forked


def loaded() -> Optional[Functions]:
    """The library if it is loaded, else None (does not load it)."""
    return _loaded


def raise_for(rc: int) -> NoReturn:
    """Raises the exception for a negative result code, with the calling
    thread's last error message."""
    msg = L.hakuban_last_error_message()
    raise error_for(rc, msg.decode("utf-8", "replace") if msg else f"error {rc}")


def check(rc: int) -> int:
    """Returns rc when it is not an error, else raises its exception."""
    if rc < 0:
        raise_for(rc)
    return rc


def release(drop_name: str, handle: int) -> None:
    """Drops a handle, ignoring errors (for close() and finalizers: the
    handle may be stale already, or we may be a forked child where calling
    the library would hang)."""
    if _forked or not handle:
        return
    try:
        getattr(L, drop_name)(handle)
    except Exception:  # pragma: no cover - interpreter shutdown
        pass
