"""The four contracts and the sink, and how Python waits on them.

Waiting never uses callbacks from Go threads (each would cost ~20 us and a
thread state, see PLATFORM.md). ``recv`` first polls (and, on a busy stream,
keeps polling for a few microseconds), then sleeps in ``poll()`` on the
handle's readiness file descriptor, with the GIL released, in slices of at
most ``_SLICE_MS`` so that Ctrl-C (which Python only sees between bytecodes
when the signal lands on another thread) interrupts it within that time.
The fd wakes a sleeping thread in about half the time the library's own
blocking ``_next`` takes (measured: p50 56 us against 105 us, p99 ~200 us
against ~650 us, on a loaded 2-CPU machine), because the kernel wakes the
thread directly instead of through the Go scheduler. asyncio waits on the
same fd with ``loop.add_reader``. The fd is made on the first wait: a
contract that never waits costs no eventfd, and no eventfd write per state.
"""

from __future__ import annotations

import asyncio
import enum
import math
import select
import time
from ctypes import byref, c_int, c_int32, c_int64, c_uint64
from typing import (TYPE_CHECKING, Any, Generic, Iterator, List, NamedTuple, NoReturn,
                    Optional, Tuple, TypeVar, Union)

from . import _lib
from ._descriptor import (ObjectDescriptor, ObjectDescriptorLike, TagDescriptor, TagLike,
                          object_descriptor, tag_descriptor)
from ._errors import ClosedError, EndOfStream, InvalidCapacityError, Timeout
from ._resource import Resource
from ._state import ObjectState, _new_state, wrap_state

if TYPE_CHECKING:  # pragma: no cover
    from ._exchange import Exchange

OK, EMPTY, END, TIMEOUT = _lib.OK, _lib.EMPTY, _lib.END, _lib.TIMEOUT

#: Longest single wait inside the library: bounds how late Ctrl-C is seen.
_SLICE_MS = 100
#: A stream that delivered an item within the last _HOT seconds is busy:
#: recv polls it up to _SPIN more times (about 0.3 us each) before waiting.
_HOT = 0.001
_SPIN = 50
_perf_counter = time.perf_counter

T = TypeVar("T")


class Status(enum.IntEnum):
    """Why states or assignments are (not) arriving (enum hakuban_status)."""

    #: observers receive fresh states; exposers are elected
    ACTIVE = 0
    #: the object is observed but nobody can expose it
    WAITING_FOR_EXPOSER = 1
    #: the exposer is not needed: nobody observes its objects
    NO_OBSERVERS = 2
    #: the object is observed, but another exposer is elected
    STANDBY = 3
    #: an exposer is elected but the state is missing or not synchronized
    STALE = 4
    #: a tag observer with no live object carrying its tag
    IDLE = 5
    #: the contract was closed
    CLOSED = 6
    #: the network refused the contract (permissions)
    REFUSED = 7

    def __str__(self) -> str:
        return self.name


class ObjectEvent(NamedTuple):
    """What a tag observe contract delivers: the newest state of one object
    carrying the tag, or (``gone`` true, ``state`` None) its disappearance."""

    descriptor: ObjectDescriptor
    state: Optional[ObjectState]
    gone: bool


class _AsyncWaiter:
    """Wakes the coroutines waiting on one handle's fd, on one event loop.

    The fd is level-triggered (readable while something is pending), so the
    reader is removed as soon as it fires and added again by the next
    waiter that still finds nothing: the loop never spins on an fd whose
    items nobody has taken yet.
    """

    __slots__ = ("loop", "fd", "futures", "registered")

    def __init__(self, loop: asyncio.AbstractEventLoop, fd: int) -> None:
        self.loop = loop
        self.fd = fd
        self.futures: List["asyncio.Future[None]"] = []
        self.registered = False

    def wait(self) -> "asyncio.Future[None]":
        fut = self.loop.create_future()
        self.futures.append(fut)
        if not self.registered:
            self.loop.add_reader(self.fd, self._ready)
            self.registered = True
        return fut

    def _ready(self) -> None:
        self.detach()

    def discard(self, fut: "asyncio.Future[None]") -> None:
        try:
            self.futures.remove(fut)
        except ValueError:
            pass
        if not self.futures and self.registered:
            self.loop.remove_reader(self.fd)
            self.registered = False

    def detach(self) -> None:
        """Stops watching the fd and wakes every waiter."""
        if self.registered:
            self.loop.remove_reader(self.fd)
            self.registered = False
        futures, self.futures = self.futures, []
        for f in futures:
            if not f.done():
                f.set_result(None)


class _Pollable(Resource):
    """A handle that can be waited on: a readiness fd, closing that is safe
    while asyncio watches that fd."""

    __slots__ = ("_fd", "_aw", "_last")

    _close_name = ""
    _fd_name = ""

    def _init_pollable(self) -> None:
        self._h = 0
        self._fd = -1
        self._aw: Optional[_AsyncWaiter] = None
        self._last = 0.0  # when recv last returned an item (perf_counter)

    def fileno(self) -> int:
        """A file descriptor that is readable while something is pending (or
        the stream has ended), for select/poll/selectors. It belongs to this
        object: do not read or close it, and stop watching it before close()
        (asyncio users need not care: ``recv_async`` does this itself)."""
        h = self._handle()
        fd = self._fd
        if fd < 0:
            out = c_int()
            rc = getattr(_lib.L, self._fd_name)(byref(out), h)
            if rc < 0:
                self._fail(rc)
            fd = self._fd = out.value
        return fd

    def close(self) -> None:
        """Closes at once: every ``recv`` waiting in any thread or coroutine
        ends (``EndOfStream``; iteration stops), and the handle is released.
        Idempotent and thread-safe."""
        h = self._h
        self._h = 0
        if h and self._close_name and not _lib.forked():
            getattr(_lib.L, self._close_name)(h)  # wakes every waiter now
        aw = self._aw
        if aw is not None:
            # An event loop may watch the fd (or be about to): stop watching
            # it on the loop's own thread before the drop closes the fd, so
            # the loop never sees a closed (or reused) fd number.
            if _running_loop() is aw.loop or not aw.loop.is_running():
                aw.detach()  # (a loop that is not running watches nothing now)
            else:
                try:
                    aw.loop.call_soon_threadsafe(self._detach_and_release, aw)
                    return
                except RuntimeError:  # it closed meanwhile: nothing watches the fd
                    pass
        Resource.close(self)

    def _detach_and_release(self, aw: _AsyncWaiter) -> None:
        aw.detach()
        Resource.close(self)

    def _async_waiter(self, loop: asyncio.AbstractEventLoop) -> _AsyncWaiter:
        aw = self._aw
        if aw is None or aw.loop is not loop:
            if aw is not None and (aw.futures or aw.registered):
                raise RuntimeError(f"the {self._what} is awaited in another event loop")
            aw = self._aw = _AsyncWaiter(loop, self.fileno())
        return aw

    async def _readable_async(self, loop: asyncio.AbstractEventLoop,
                              deadline: Optional[float]) -> bool:
        """Waits on ``loop`` until the fd is readable or the handle is
        closed; False if ``deadline`` (loop time, None: none) came first."""
        aw = self._async_waiter(loop)
        fut = aw.wait()
        try:
            if deadline is None:
                await fut
            else:
                left = deadline - loop.time()
                if left <= 0:
                    raise asyncio.TimeoutError
                await asyncio.wait_for(fut, left)
        except asyncio.TimeoutError:
            aw.discard(fut)
            return False
        except BaseException:
            aw.discard(fut)
            raise
        return True

    def _fail(self, rc: int) -> NoReturn:
        """Raises for an error code. A handle that went stale because another
        thread closed us (or the interpreter's exit ran our finalizer) is
        reported as the end of the stream."""
        if rc == _lib.ERR_INVALID_HANDLE and self._released():
            raise EndOfStream(f"the {self._what} was closed")
        _lib.raise_for(rc)

    def _released(self) -> bool:
        fin = getattr(self, "_finalizer", None)
        return not self._h or fin is None or not fin.alive


def _running_loop() -> Optional[asyncio.AbstractEventLoop]:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


class _Stream(_Pollable, Generic[T]):
    """Receiving, shared by the four contracts: ``recv``, ``try_recv``,
    iteration, ``recv_async`` and ``async for``."""

    __slots__ = ("_exchange",)

    def _try(self, hc: c_uint64) -> Tuple[int, T]:
        """(rc, item) of a non-blocking receive; item is None unless rc is OK."""
        raise NotImplementedError


    def try_recv(self) -> Optional[T]:
        """The next item if one is pending, else None. Never blocks. Raises
        EndOfStream once the contract is closed."""
        if not self._h:
            raise ClosedError(f"the {self._what} is closed")
        rc, item = self._try(self._hc)
        if rc == OK:
            return item
        if rc == EMPTY:
            return None
        if rc == END:
            raise EndOfStream(f"the {self._what} was closed")
        self._fail(rc)

    def recv(self, timeout: Optional[float] = None) -> T:
        """Waits for the next item, at most ``timeout`` seconds (None: no
        limit). Raises Timeout when the time is up, EndOfStream when the
        contract is closed (also by another thread while waiting). Ctrl-C
        interrupts the wait within 0.1 s."""
        if not self._h:
            raise ClosedError(f"the {self._what} is closed")
        hc = self._hc
        rc, item = self._try(hc)
        if rc == EMPTY and _perf_counter() - self._last < _HOT:
            # A busy stream has its next item within microseconds: polling
            # for a while costs less than going to sleep and being woken
            # again (~50-100 us a round on a loaded machine, which would cap
            # a busy stream at ~10,000-20,000 items/s). Idle streams do not
            # spin.
            for _ in range(_SPIN):
                rc, item = self._try(hc)
                if rc != EMPTY:
                    break
        if rc == OK:
            self._last = _perf_counter()
            return item
        if rc == EMPTY:
            deadline = None if timeout is None else time.monotonic() + timeout
            poller = None  # one per call: a poll object is not for concurrent use
            while True:
                if deadline is None:
                    ms = _SLICE_MS
                else:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise Timeout(f"nothing arrived on the {self._what} within {timeout} s")
                    ms = min(_SLICE_MS, max(1, math.ceil(left * 1000)))
                if poller is None:
                    try:
                        fd = self.fileno()
                    except ClosedError:  # closed by another thread meanwhile
                        rc = END
                        break
                    poller = select.poll()
                    poller.register(fd, select.POLLIN)
                poller.poll(ms)  # releases the GIL
                rc, item = self._try(hc)
                if rc == OK:
                    self._last = _perf_counter()
                    return item
                if rc != EMPTY:
                    break
                if not self._h:
                    rc = END  # closed by another thread between two slices
                    break
        if rc == END:
            raise EndOfStream(f"the {self._what} was closed")
        self._fail(rc)

    def __iter__(self) -> Iterator[T]:
        """Iterating waits like ``recv()`` and stops when the contract is
        closed, also when it was closed (by another thread, or by closing
        its exchange) before or between iterations: closing is how one
        thread stops another's loop."""
        return self

    def __next__(self) -> T:
        try:
            return self.recv()
        except EndOfStream:
            raise StopIteration from None
        except ClosedError:
            if self._h:
                raise
            raise StopIteration from None

    async def recv_async(self, timeout: Optional[float] = None) -> T:
        """``recv`` for asyncio: waits on the readiness fd with
        ``loop.add_reader``, never blocking the loop."""
        if not self._h:
            raise ClosedError(f"the {self._what} is closed")
        rc, item = self._try(self._hc)
        if rc == OK:
            return item
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while rc == EMPTY:
            if not await self._readable_async(loop, deadline):
                raise Timeout(f"nothing arrived on the {self._what} within {timeout} s")
            if not self._h:
                raise EndOfStream(f"the {self._what} was closed")
            rc, item = self._try(self._hc)
            if rc == OK:
                return item
        if rc == END:
            raise EndOfStream(f"the {self._what} was closed")
        self._fail(rc)

    def __aiter__(self) -> "_Stream[T]":
        return self

    async def __anext__(self) -> T:
        try:
            return await self.recv_async()
        except EndOfStream:
            raise StopAsyncIteration from None
        except ClosedError:
            if self._h:
                raise
            raise StopAsyncIteration from None

    def _status(self, fn_name: str) -> Status:
        h = self._h
        if not h:
            return Status.CLOSED
        out = c_int32()
        rc = getattr(_lib.L, fn_name)(byref(out), h)
        if rc < 0:
            if not self._h:
                return Status.CLOSED
            _lib.raise_for(rc)
        return Status(out.value)

    def _register(self, exchange: "Exchange") -> None:
        self._exchange = exchange  # contracts keep their exchange alive
        exchange._adopt(self)


def _capacity(capacity: int) -> int:
    if isinstance(capacity, bool) or not isinstance(capacity, int) or not 1 <= capacity <= 1 << 30:
        raise InvalidCapacityError(f"capacity must be an integer in 1..2**30, not {capacity!r}")
    return capacity


class ObjectObserveContract(_Stream[ObjectState]):
    """"I want this object": makes the object live and receives its newest
    state whenever it changes (new data, or only its ``synchronized`` flag).

    At most one state is pending: a slow reader skips versions (latest
    wins), versions never go backwards. Iterate it, or call ``recv``,
    ``try_recv``, ``await recv_async()``, ``async for``.
    """

    __slots__ = ("_descriptor",)
    _drop_name = "hakuban_object_observe_contract_drop"
    _close_name = "hakuban_object_observe_contract_close"
    _fd_name = "hakuban_object_observe_contract_fd"
    _what = "object observe contract"

    def __init__(self, exchange: "Exchange", descriptor: ObjectDescriptorLike) -> None:
        self._init_pollable()
        d = object_descriptor(descriptor)
        self._descriptor = d
        dh = d._handle()
        try:
            out = c_uint64()
            _lib.check(_lib.L.hakuban_object_observe_contract_new(byref(out), exchange._handle(), dh))
        finally:
            _lib.L.hakuban_object_descriptor_drop(dh)
        self._own(out)
        self._register(exchange)

    @property
    def descriptor(self) -> ObjectDescriptor:
        """The observed object."""
        return self._descriptor

    @property
    def status(self) -> Status:
        """ACTIVE, WAITING_FOR_EXPOSER, STALE or CLOSED."""
        return self._status("hakuban_object_observe_contract_status")

    def current(self) -> Optional[ObjectState]:
        """The object's newest state without consuming it, or None if it has
        none yet."""
        out = c_uint64()
        rc = _lib.L.hakuban_object_observe_contract_current(byref(out), self._handle())
        if rc == OK:
            return wrap_state(out)
        if rc == EMPTY:
            return None
        self._fail(rc)

    def _try(self, hc: c_uint64) -> Tuple[int, Any]:
        out = c_uint64()
        rc = _lib.F.hakuban_object_observe_contract_try_next(byref(out), hc)
        return rc, (wrap_state(out) if rc == OK else None)


    def __repr__(self) -> str:
        return f"<ObjectObserveContract {self._descriptor!r}{' closed' if self.closed else ''}>"


class ObjectExposeContract(_Stream["ObjectStateSink"]):
    """"I can produce this object": yields an ObjectStateSink (an
    assignment) only while this contract is elected and somebody observes
    the object, so nothing is produced that nobody wants. ``capacity``
    (default 1) weighs elections among exposers."""

    __slots__ = ("_descriptor", "_capacity")
    _drop_name = "hakuban_object_expose_contract_drop"
    _close_name = "hakuban_object_expose_contract_close"
    _fd_name = "hakuban_object_expose_contract_fd"
    _what = "object expose contract"

    def __init__(self, exchange: "Exchange", descriptor: ObjectDescriptorLike,
                 capacity: int = 1) -> None:
        self._init_pollable()
        self._capacity = _capacity(capacity)
        d = object_descriptor(descriptor)
        self._descriptor = d
        dh = d._handle()
        try:
            out = c_uint64()
            _lib.check(_lib.L.hakuban_object_expose_contract_new(
                byref(out), exchange._handle(), dh, capacity))
        finally:
            _lib.L.hakuban_object_descriptor_drop(dh)
        self._own(out)
        self._register(exchange)

    @property
    def descriptor(self) -> ObjectDescriptor:
        """The exposed object."""
        return self._descriptor

    @property
    def capacity(self) -> int:
        """How many objects this exposer can carry (weighs elections)."""
        return self._capacity

    @property
    def status(self) -> Status:
        """ACTIVE while elected, STANDBY while another exposer is, else
        NO_OBSERVERS; CLOSED."""
        return self._status("hakuban_object_expose_contract_status")

    def _try(self, hc: c_uint64) -> Tuple[int, Any]:
        out = c_uint64()
        rc = _lib.F.hakuban_object_expose_contract_try_next(byref(out), hc)
        return rc, (ObjectStateSink(out, self) if rc == OK else None)


    def __repr__(self) -> str:
        return (f"<ObjectExposeContract {self._descriptor!r} capacity={self._capacity}"
                f"{' closed' if self.closed else ''}>")


class TagObserveContract(_Stream[ObjectEvent]):
    """"I want every live object with this tag": yields an ObjectEvent per
    state change and per disappearance of such an object. It never makes an
    object live by itself. At most one event per object is pending."""

    __slots__ = ("_tag",)
    _drop_name = "hakuban_tag_observe_contract_drop"
    _close_name = "hakuban_tag_observe_contract_close"
    _fd_name = "hakuban_tag_observe_contract_fd"
    _what = "tag observe contract"

    def __init__(self, exchange: "Exchange", tag: TagLike) -> None:
        self._init_pollable()
        t = tag_descriptor(tag)
        self._tag = t
        th = t._handle()
        try:
            out = c_uint64()
            _lib.check(_lib.L.hakuban_tag_observe_contract_new(byref(out), exchange._handle(), th))
        finally:
            _lib.L.hakuban_tag_descriptor_drop(th)
        self._own(out)
        self._register(exchange)

    @property
    def tag(self) -> TagDescriptor:
        """The observed tag."""
        return self._tag

    @property
    def status(self) -> Status:
        """ACTIVE while some object with the tag is live, IDLE otherwise;
        CLOSED."""
        return self._status("hakuban_tag_observe_contract_status")

    def _try(self, hc: c_uint64) -> Tuple[int, Any]:
        ev = _lib.ObjectEventStruct()
        rc = _lib.F.hakuban_tag_observe_contract_try_next(byref(ev), hc)
        return rc, (_event(ev) if rc == OK else None)


    def __repr__(self) -> str:
        return f"<TagObserveContract {self._tag!r}{' closed' if self.closed else ''}>"


def _event(ev: Any) -> ObjectEvent:
    # Wrap the state first: if reading the descriptor fails, its handle is
    # still dropped by the state's finalizer.
    state = wrap_state(c_uint64(ev.state)) if ev.state else None
    return ObjectEvent(ObjectDescriptor._from_handle(ev.descriptor), state, bool(ev.gone))


class TagExposeContract(_Stream["ObjectStateSink"]):
    """"I can produce any object with this tag": yields one ObjectStateSink
    per object it is elected for. It is offered only objects that an object
    observer asks for by full descriptor."""

    __slots__ = ("_tag", "_capacity")
    _drop_name = "hakuban_tag_expose_contract_drop"
    _close_name = "hakuban_tag_expose_contract_close"
    _fd_name = "hakuban_tag_expose_contract_fd"
    _what = "tag expose contract"

    def __init__(self, exchange: "Exchange", tag: TagLike, capacity: int = 1) -> None:
        self._init_pollable()
        self._capacity = _capacity(capacity)
        t = tag_descriptor(tag)
        self._tag = t
        th = t._handle()
        try:
            out = c_uint64()
            _lib.check(_lib.L.hakuban_tag_expose_contract_new(
                byref(out), exchange._handle(), th, capacity))
        finally:
            _lib.L.hakuban_tag_descriptor_drop(th)
        self._own(out)
        self._register(exchange)

    @property
    def tag(self) -> TagDescriptor:
        """The exposed tag."""
        return self._tag

    @property
    def capacity(self) -> int:
        """How many objects this exposer can carry (weighs elections)."""
        return self._capacity

    @property
    def status(self) -> Status:
        """ACTIVE while elected for some object, NO_OBSERVERS otherwise;
        CLOSED."""
        return self._status("hakuban_tag_expose_contract_status")

    def _try(self, hc: c_uint64) -> Tuple[int, Any]:
        out = c_uint64()
        rc = _lib.F.hakuban_tag_expose_contract_try_next(byref(out), hc)
        return rc, (ObjectStateSink(out, self) if rc == OK else None)


    def __repr__(self) -> str:
        return (f"<TagExposeContract {self._tag!r} capacity={self._capacity}"
                f"{' closed' if self.closed else ''}>")


StateLike = Union[ObjectState, bytes, bytearray, memoryview]


class ObjectStateSink(_Pollable):
    """An assignment: the right to write one object while this exposer is
    elected. ``send`` publishes states, ``desynchronize`` marks the object
    stale, ``current`` reads its newest state (the predecessor's last one
    after a failover).

    The exchange revokes the sink when nobody observes the object any more,
    when the object moves to another exposer, or when its contract closes;
    writes through a revoked sink raise RevokedError (fencing), so a
    de-elected exposer never overwrites its successor. Watch ``revoked``,
    ``wait_revoked()`` or ``await wait_revoked_async()`` to stop producing.

    Closing the sink releases only this Python handle: the object stays
    assigned to the contract until the exchange revokes it (close the
    contract to give up its objects). A sink keeps its contract alive.
    """

    __slots__ = ("_contract", "_token", "_descriptor")
    _drop_name = "hakuban_object_state_sink_drop"
    _fd_name = "hakuban_object_state_sink_fd"
    _what = "object state sink"

    def __init__(self, handle: c_uint64, contract: Any = None) -> None:
        """Sinks are made by expose contracts; do not create them."""
        self._init_pollable()
        self._own(handle)
        self._contract = contract
        self._token: Optional[int] = None
        self._descriptor: Optional[ObjectDescriptor] = None

    def send(self, state: StateLike) -> None:
        """Publishes ``state`` (an ObjectState, or bytes for a state with an
        empty format and a version chosen by the sink) as the object's newest,
        synchronized state. Raises RevokedError once the assignment ended,
        StaleVersionError if the version is older than the current one."""
        if not self._h:
            raise ClosedError("the object state sink is closed")
        if type(state) is bytes:  # the fast path: no ObjectState needed
            sh, owned = _new_state(state, (), ()), True
        else:
            if not isinstance(state, ObjectState):
                state = ObjectState(state)
            sh, owned = state._send_handle()
        F = _lib.F
        rc = F.hakuban_object_state_sink_send(self._hc, sh)
        if owned:
            F.hakuban_object_state_drop(sh)
        if rc:
            self._fail_write(rc)

    def send_json(self, value: Any) -> None:
        """``send(ObjectState.from_json(value))``."""
        self.send(ObjectState.from_json(value))

    def desynchronize(self) -> None:
        """Marks the object's current state as not synchronized (stale, no
        new data); observers are told. The next send makes it fresh."""
        rc = _lib.L.hakuban_object_state_sink_desynchronize(self._handle())
        if rc:
            self._fail_write(rc)

    def current(self) -> Optional[ObjectState]:
        """The object's newest state, or None if it has none."""
        out = c_uint64()
        rc = _lib.L.hakuban_object_state_sink_current(byref(out), self._handle())
        if rc == OK:
            return wrap_state(out)
        if rc == EMPTY:
            return None
        self._fail_write(rc)

    @property
    def token(self) -> int:
        """The fencing token: tokens of one object increase with every new
        assignment."""
        if self._token is None:
            out = c_uint64()
            rc = _lib.L.hakuban_object_state_sink_token(byref(out), self._handle())
            if rc:
                self._fail_write(rc)
            self._token = out.value
        return self._token

    @property
    def descriptor(self) -> ObjectDescriptor:
        """The object this sink writes."""
        if self._descriptor is None:
            out = c_uint64()
            rc = _lib.L.hakuban_object_state_sink_descriptor(byref(out), self._handle())
            if rc:
                self._fail_write(rc)
            self._descriptor = ObjectDescriptor._from_handle(out.value)
        return self._descriptor

    @property
    def revoked(self) -> bool:
        """True once the assignment has ended (stop producing the object).
        Also true after close()."""
        h = self._h
        if not h:
            return True
        rc = _lib.L.hakuban_object_state_sink_try_next(h)
        if rc == END:
            return True
        if rc == EMPTY:
            return False
        if not self._h:
            return True
        _lib.raise_for(rc)

    def wait_revoked(self, timeout: Optional[float] = None) -> bool:
        """Waits until the assignment ends, at most ``timeout`` seconds (None:
        no limit). Returns True if it ended, False on timeout. Ctrl-C
        interrupts the wait within 0.1 s."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            h = self._h
            if not h:
                return True
            if deadline is None:
                ms = _SLICE_MS
            else:
                left = deadline - time.monotonic()
                if left <= 0:
                    return self.revoked
                ms = min(_SLICE_MS, max(1, math.ceil(left * 1000)))
            rc = _lib.L.hakuban_object_state_sink_next(h, ms)
            if rc == END:
                return True
            if rc != TIMEOUT:
                if not self._h:
                    return True
                _lib.raise_for(rc)

    async def wait_revoked_async(self, timeout: Optional[float] = None) -> bool:
        """``wait_revoked`` for asyncio (waits on the fd)."""
        if self.revoked:
            return True
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            if not await self._readable_async(loop, deadline):
                return self.revoked
            if self.revoked:
                return True

    def _fail_write(self, rc: int) -> NoReturn:
        if rc == _lib.ERR_INVALID_HANDLE and self._released():
            raise ClosedError("the object state sink is closed")
        _lib.raise_for(rc)

    def __repr__(self) -> str:
        if self.closed:
            return "<ObjectStateSink closed>"
        return f"<ObjectStateSink {self.descriptor!r} token={self.token}>"
