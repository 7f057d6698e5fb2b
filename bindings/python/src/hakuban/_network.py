"""Connector and Listener: linking exchanges into a tree over WebSocket."""

from __future__ import annotations

import asyncio
import enum
import json
import math
import time
from ctypes import byref, c_char_p, c_uint64, c_void_p, string_at
from typing import (TYPE_CHECKING, Any, AsyncIterator, Iterator, List, Mapping, NamedTuple,
                    Optional, Sequence, Tuple, Union)
from urllib.parse import urlsplit

from . import _lib
from ._contracts import _Pollable
from ._errors import ClosedError, EndOfStream, InvalidConfigError, LibraryError, Timeout
from ._resource import Resource

if TYPE_CHECKING:  # pragma: no cover
    from ._exchange import Exchange

#: Longest single wait inside the library (Ctrl-C, see _contracts).
_SLICE_MS = 100


class ConnectorState(enum.IntEnum):
    """What a connector is doing (enum hakuban_connector_state)."""

    #: dialing an upstream URL, or in the handshake
    CONNECTING = 0
    #: the link to the upstream is up
    CONNECTED = 1
    #: the last attempt or link failed (see last_error); waiting before the next
    DISCONNECTED = 2
    #: stopped for good: the exchange was closed
    CLOSED = 3
    #: every URL refused the link for good (protocol version, token)
    REFUSED = 4

    def __str__(self) -> str:
        return self.name


class ConnectorStatus(NamedTuple):
    """A connector's status at one moment."""

    state: ConnectorState
    #: links established so far (a reconnect adds one)
    connects: int
    #: consecutive failures since the last link that lasted (sets the backoff)
    failures: int
    #: the URL connected to, being dialed, or (DISCONNECTED) that failed last
    url: Optional[str]
    #: why the last attempt or link ended; None if nothing failed yet
    last_error: Optional[str]


def _need_network() -> None:
    if not getattr(_lib.L, "has_network", False):
        raise LibraryError(f"libhakuban at {_lib.L.path} has no network functions "
                           "(hakuban_connector_new...): it is older than this binding")


def _take_string(p: c_void_p) -> Optional[str]:
    """Copies and frees a string the library allocated for us."""
    if not p.value:
        return None
    try:
        return string_at(p.value).decode("utf-8", "replace")
    finally:
        _lib.L.hakuban_string_free(p)


def _ms(seconds: Optional[float], what: str) -> int:
    if seconds is None:
        return 0  # the library's default
    if seconds < 0:
        raise InvalidConfigError(f"{what} must not be negative, not {seconds}")
    return max(1, int(round(seconds * 1000))) if seconds else 0


def _path(p: Optional[str]) -> Optional[bytes]:
    return None if p is None else str(p).encode()


#: A listener's rules (``Listener(auth=...)``, ``Listener.set_auth``): the
#: JSON of the router's auth file (docs/router.md) as text (str or bytes), as
#: a dict or list (encoded with ``json.dumps``), or None for no rules.
AuthRules = Union[str, bytes, Mapping[str, Any], List[Any], None]


def _auth_json(auth: AuthRules) -> Optional[bytes]:
    """The auth_json of the C API for ``auth`` (None stays NULL). Whether it
    is a valid auth file is for the library to say."""
    if auth is None:
        return None
    if not getattr(_lib.L, "has_listener_auth", False):
        raise LibraryError(f"libhakuban at {_lib.L.path} has no hakuban_listener_set_auth "
                           "(listener rules): it is older than this binding")
    if isinstance(auth, bytes):
        return auth
    if isinstance(auth, str):
        return auth.encode()
    try:
        text = json.dumps(auth, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as e:
        raise InvalidConfigError(f"auth is not a JSON value: {e}") from None
    return text.encode()


class Connector(_Pollable):
    """Keeps an exchange linked to its upstream (a router, or another
    process's Listener): dials ``urls`` in order of preference, uses the
    first that answers, fails over to the next when the link is lost, and
    reconnects forever with capped exponential backoff and full jitter.

    It returns at once; contracts need not wait for the link (they are
    declared whenever it comes up). Use ``wait_connected()`` when you need
    it up, ``status`` to see it, ``changes()`` (or ``async for`` over
    ``changes_async()``, or ``fileno()`` in a selector) to follow it. An
    exchange has at most one connector; close it to make another. Durations
    are in seconds; None keeps the library's default.
    """

    __slots__ = ("_exchange", "_urls")
    _drop_name = "hakuban_connector_drop"
    _fd_name = "hakuban_connector_status_fd"
    _what = "connector"

    def __init__(self, exchange: "Exchange", urls: Union[str, Sequence[str]], *,
                 name: Optional[str] = None, token: Union[str, bytes, None] = None,
                 min_backoff: Optional[float] = None, max_backoff: Optional[float] = None,
                 ping_interval: Optional[float] = None, ping_timeout: Optional[float] = None,
                 tls_ca_file: Optional[str] = None, tls_cert_file: Optional[str] = None,
                 tls_key_file: Optional[str] = None) -> None:
        self._init_pollable()
        _need_network()
        url_list = [urls] if isinstance(urls, str) else list(urls)
        self._urls: Tuple[str, ...] = tuple(url_list)
        L = _lib.L
        opts = _lib.ConnectorOptions()
        L.hakuban_connector_options_init(byref(opts))
        if name is not None:
            opts.name = name.encode()
        tok = token.encode() if isinstance(token, str) else token
        if tok:
            opts.token = tok
            opts.token_len = len(tok)
        opts.min_backoff_ms = _ms(min_backoff, "min_backoff")
        opts.max_backoff_ms = _ms(max_backoff, "max_backoff")
        opts.ping_interval_ms = _ms(ping_interval, "ping_interval")
        opts.ping_timeout_ms = _ms(ping_timeout, "ping_timeout")
        opts.tls_ca_file = _path(tls_ca_file)
        opts.tls_cert_file = _path(tls_cert_file)
        opts.tls_key_file = _path(tls_key_file)
        encoded = [u.encode() for u in url_list]
        arr = (c_char_p * len(encoded))(*encoded) if encoded else None
        out = c_uint64()
        _lib.check(L.hakuban_connector_new(byref(out), exchange._handle(), arr, len(encoded),
                                           byref(opts)))
        self._own(out)
        self._exchange = exchange
        exchange._adopt(self, keep=True)

    @property
    def urls(self) -> Tuple[str, ...]:
        """The upstream URLs, in order of preference."""
        return self._urls

    def _info(self) -> "_lib.ConnectorStatusInfo":
        info = _lib.ConnectorStatusInfo()
        _lib.check(_lib.L.hakuban_connector_status(byref(info), self._handle()))
        return info

    def _status(self, info: "_lib.ConnectorStatusInfo") -> ConnectorStatus:
        h = self._handle()
        url, err = c_void_p(), c_void_p()
        _lib.check(_lib.L.hakuban_connector_url(byref(url), h))
        u = _take_string(url)
        _lib.check(_lib.L.hakuban_connector_last_error(byref(err), h))
        return ConnectorStatus(ConnectorState(info.state), info.connects, info.failures, u,
                               _take_string(err))

    @property
    def status(self) -> ConnectorStatus:
        """The current status (never blocks). Reading it makes ``fileno()``
        not readable until the next change."""
        return self._status(self._info())

    @property
    def state(self) -> ConnectorState:
        """The current state (never blocks; reads the status like
        ``status``)."""
        return ConnectorState(self._info().state)

    def fileno(self) -> int:
        """A file descriptor that is readable exactly while the status
        (state, connects or failures) changed since it was last read (by
        ``status``, ``state``, ``wait``, ``changes`` or the async waits), for
        select/poll/selectors: when it is readable, read ``status``. It
        belongs to this object: do not read or close it, and stop watching
        it before close() (``wait_async`` and ``changes_async`` do this
        themselves)."""
        if not getattr(_lib.L, "has_status_fd", False):
            raise LibraryError(f"libhakuban at {_lib.L.path} has no "
                               "hakuban_connector_status_fd: it is older than this binding")
        return _Pollable.fileno(self)

    def _wait(self, info: "_lib.ConnectorStatusInfo", state: int,
              timeout: Optional[float]) -> int:
        """hakuban_connector_wait in slices; returns OK or END, raises Timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if deadline is None:
                ms = _SLICE_MS
            else:
                left = deadline - time.monotonic()
                ms = 0 if left <= 0 else min(_SLICE_MS, max(1, math.ceil(left * 1000)))
            rc = _lib.L.hakuban_connector_wait(byref(info), self._handle(), state, ms)
            if rc == _lib.TIMEOUT:
                if deadline is not None and time.monotonic() >= deadline:
                    raise Timeout(f"the connector did not get to the wanted state within "
                                  f"{timeout} s (it is {ConnectorState(info.state).name})")
                continue
            if rc < 0:
                _lib.raise_for(rc)
            return int(rc)

    def wait(self, state: ConnectorState = ConnectorState.CONNECTED,
             timeout: Optional[float] = None) -> ConnectorStatus:
        """Waits until the connector is in ``state`` (at once if it is), at
        most ``timeout`` seconds. Raises Timeout, or EndOfStream when it can
        no longer get there (it was closed, or every URL refused it: the
        message carries the last error)."""
        info = _lib.ConnectorStatusInfo()
        rc = self._wait(info, int(state), timeout)
        status = self._status(info)
        if rc == _lib.END:
            raise EndOfStream(f"the connector cannot become {ConnectorState(state).name}: it is "
                              f"{status.state.name} (last error: {status.last_error})")
        return status

    def wait_connected(self, timeout: Optional[float] = None) -> ConnectorStatus:
        """``wait(ConnectorState.CONNECTED, timeout)``."""
        return self.wait(ConnectorState.CONNECTED, timeout)

    def changes(self, timeout: Optional[float] = None) -> Iterator[ConnectorStatus]:
        """Yields the status every time it changes (state, connects or
        failures; changes in between coalesce), until the connector is
        closed. ``timeout`` bounds each wait (Timeout)."""
        info = self._info()
        while True:
            try:
                rc = self._wait(info, -1, timeout)
            except EndOfStream:
                return
            if rc == _lib.END:
                return
            yield self._status(info)

    async def _changed_async(self, loop: asyncio.AbstractEventLoop,
                             deadline: Optional[float]) -> bool:
        """Waits on the status fd until the status changed since it was last
        read; False if ``deadline`` (loop time) came first. Raises
        EndOfStream when the connector is closed meanwhile."""
        try:
            readable = await self._readable_async(loop, deadline)
        except ClosedError:
            readable = True
        if not self._h:
            raise EndOfStream("the connector was closed")
        return readable

    async def wait_async(self, state: ConnectorState = ConnectorState.CONNECTED,
                         timeout: Optional[float] = None) -> ConnectorStatus:
        """``wait`` for asyncio: waits on the status fd (``fileno()``) with
        ``loop.add_reader``, never blocking the loop. Raises Timeout, or
        EndOfStream when it can no longer get there (also when the connector
        is closed meanwhile)."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            info = self._info()  # read: the fd is readable again at the next change
            if info.state == state:
                return self._status(info)
            if info.state == ConnectorState.CLOSED or (
                    info.state == ConnectorState.REFUSED and state != ConnectorState.CLOSED):
                status = self._status(info)
                raise EndOfStream(f"the connector cannot become {ConnectorState(state).name}: "
                                  f"it is {status.state.name} (last error: {status.last_error})")
            if not await self._changed_async(loop, deadline):
                raise Timeout(f"the connector did not get to {ConnectorState(state).name} within "
                              f"{timeout} s (it is {ConnectorState(info.state).name})")

    async def changes_async(self, timeout: Optional[float] = None) -> AsyncIterator[ConnectorStatus]:
        """``changes`` for asyncio: ``async for status in
        connector.changes_async():`` yields the status every time it changes
        (state, connects or failures; changes in between coalesce), waiting
        on the status fd, until the connector or its exchange is closed
        (CLOSED is the last status yielded). ``timeout`` bounds each wait
        (Timeout)."""
        loop = asyncio.get_running_loop()
        info = self._info()
        last = (info.state, info.connects, info.failures)
        while info.state != ConnectorState.CLOSED:
            deadline = None if timeout is None else loop.time() + timeout
            try:
                changed = await self._changed_async(loop, deadline)
            except EndOfStream:
                return
            if not changed:
                raise Timeout(f"the connector's status did not change within {timeout} s")
            info = self._info()
            if (info.state, info.connects, info.failures) != last:
                last = (info.state, info.connects, info.failures)
                yield self._status(info)

    def close(self) -> None:
        """Stops the connector: the link is closed normally (the upstream
        forgets this exchange's contracts; they stay here). Returns once it
        has stopped (at most about 2 s). Idempotent."""
        ex = getattr(self, "_exchange", None)
        if ex is not None:
            ex._forget(self)
        _Pollable.close(self)  # stops an event loop's watch of the fd first

    def __repr__(self) -> str:
        if self.closed:
            return "<Connector closed>"
        return f"<Connector {list(self._urls)} {self.state.name}>"


class Listener(Resource):
    """Accepts downstream links to an exchange: binds ``address``
    (host:port; port 0 picks a free one, see ``url``) at once and serves
    WebSocket links on it until closed. Downstream exchanges connect to
    ``url``. ``tls_cert_file`` and ``tls_key_file`` make it serve wss://;
    ``tls_client_ca_file`` requires client certificates. Durations in
    seconds; None keeps the library's default.

    ``auth`` sets who may connect and what each client may observe and
    expose, in the format of the router's auth file (docs/router.md:
    ``{"clients": [{"name": ..., "token": ... or "token_sha256": ...,
    "observe": "*" or {"tags": [...], "objects": [...]}, "expose": ...}],
    "anonymous": {...}}``): a dict (or list), encoded with ``json.dumps``,
    or the JSON text. A client's token is the ``token`` of its Connector.
    None (the default): no rules, every client may do everything. Invalid
    rules raise InvalidConfigError. ``set_auth`` replaces them later."""

    __slots__ = ("_exchange", "_url")
    _drop_name = "hakuban_listener_drop"
    _what = "listener"

    def __init__(self, exchange: "Exchange", address: str = "127.0.0.1:3001", *,
                 path: Optional[str] = None, tls_cert_file: Optional[str] = None,
                 tls_key_file: Optional[str] = None, tls_client_ca_file: Optional[str] = None,
                 ping_interval: Optional[float] = None,
                 ping_timeout: Optional[float] = None, auth: AuthRules = None) -> None:
        self._h = 0
        _need_network()
        L = _lib.L
        auth_json = _auth_json(auth)
        opts = _lib.ListenerOptions()
        L.hakuban_listener_options_init(byref(opts))
        opts.address = address.encode()
        if path is not None:
            opts.path = path.encode()
        opts.tls_cert_file = _path(tls_cert_file)
        opts.tls_key_file = _path(tls_key_file)
        opts.tls_client_ca_file = _path(tls_client_ca_file)
        opts.ping_interval_ms = _ms(ping_interval, "ping_interval")
        opts.ping_timeout_ms = _ms(ping_timeout, "ping_timeout")
        out = c_uint64()
        if auth_json is None:
            _lib.check(L.hakuban_listener_new(byref(out), exchange._handle(), byref(opts)))
        else:
            _lib.check(L.hakuban_listener_new_with_auth(byref(out), exchange._handle(), byref(opts),
                                                        auth_json))
        self._own(out)
        self._exchange = exchange
        exchange._adopt(self, keep=True)
        p = c_void_p()
        _lib.check(L.hakuban_listener_url(byref(p), self._h))
        self._url: str = _take_string(p) or ""

    @property
    def url(self) -> str:
        """The URL downstreams connect to, with the port actually bound,
        e.g. ``ws://127.0.0.1:41234/``."""
        return self._url

    @property
    def address(self) -> Tuple[str, int]:
        """(host, port) actually bound."""
        parts = urlsplit(self._url)
        return parts.hostname or "", parts.port or 0

    def set_auth(self, auth: AuthRules) -> None:
        """Replaces the rules (``auth`` as in the constructor; None: no
        rules, every client may do everything) and applies them at once to
        new and open links, as a router reloading its auth file does: a
        client whose token they no longer accept is disconnected (its
        connector becomes REFUSED and does not retry); a contract a client
        may no longer make is refused (its next ``recv`` raises RefusedError
        once, an assignment it held ends, an observed object keeps its last
        state, not synchronized); rights added apply to what clients declare
        afterwards. Thread-safe. Invalid rules raise InvalidConfigError (the
        message says where) and the previous rules stay."""
        auth_json = _auth_json(auth)
        _lib.check(_lib.L.hakuban_listener_set_auth(self._handle(), auth_json))

    def close(self) -> None:
        """Stops accepting, closes every downstream link, unbinds the port.
        Returns when that is done (at most about 2 s). Idempotent."""
        ex = getattr(self, "_exchange", None)
        if ex is not None:
            ex._forget(self)
        Resource.close(self)

    def __repr__(self) -> str:
        return f"<Listener {self._url}{' closed' if self.closed else ''}>"
