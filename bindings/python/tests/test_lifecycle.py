"""close(), context managers, use after close, and no leaked handles."""

from __future__ import annotations

import asyncio
import gc
import os
from ctypes import byref, c_int32, c_size_t, c_uint64, c_void_p
from typing import List, Tuple

import pytest

import hakuban
from hakuban import _lib

T = 5.0


def test_use_after_close_raises(exchange: hakuban.Exchange) -> None:
    obs = exchange.observe_object("x")
    exp = exchange.expose_object("x")
    sink = exp.recv(timeout=T)
    obs.close()
    obs.close()  # idempotent
    assert obs.closed and obs.status is hakuban.Status.CLOSED
    for call in (obs.recv, obs.try_recv, obs.current, obs.fileno):
        with pytest.raises(hakuban.ClosedError):
            call()
    with pytest.raises(hakuban.ClosedError):
        asyncio.run(obs.recv_async())
    assert list(obs) == [], "iterating a closed contract yields nothing"

    sink.close()
    assert sink.closed and sink.revoked
    for call in (lambda: sink.send(b"x"), sink.desynchronize, sink.current, lambda: sink.token):
        with pytest.raises(hakuban.ClosedError):
            call()


def test_closed_exchange(exchange: hakuban.Exchange) -> None:
    ex = hakuban.Exchange()
    c = ex.observe_tag("t")
    ex.close()
    assert ex.closed and c.closed
    with pytest.raises(hakuban.ClosedError):
        ex.observe_object("x")
    with pytest.raises(hakuban.ClosedError):
        ex.snapshot()
    ex.close()


def test_context_managers() -> None:
    with hakuban.Exchange("cm") as ex:
        with ex.observe_object("o") as obs, ex.expose_object("o") as exp:
            with exp.recv(timeout=T) as sink:
                sink.send(b"1")
                assert obs.recv(timeout=T).data == b"1"
            assert sink.closed
        assert obs.closed and exp.closed
        assert ex.snapshot()["contracts"] == []
    assert ex.closed


def _is_live(fn: str, h: int) -> bool:
    """Whether h is still a live handle in the library's table."""
    out = c_void_p() if fn == "hakuban_exchange_snapshot" else c_uint64()
    if fn.endswith("_status"):
        out = c_int32()
    elif fn == "hakuban_object_state_data_len":
        out = c_size_t()
    rc = getattr(_lib.L, fn)(byref(out), h)
    if rc == 0 and fn == "hakuban_exchange_snapshot":
        _lib.L.hakuban_string_free(out)
    return rc != _lib.ERR_INVALID_HANDLE


def _fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_no_leaked_handles_after_gc() -> None:
    fds_before = _fd_count()
    ex = hakuban.Exchange("leaks")
    handles: List[Tuple[str, int]] = [("hakuban_exchange_snapshot", ex._h)]

    def make() -> None:
        obs = ex.observe_object(hakuban.ObjectDescriptor("o", tags=["t"]))
        exp = ex.expose_object(hakuban.ObjectDescriptor("o", tags=["t"]))
        tags = ex.observe_tag("t")
        tag_exp = ex.expose_tag("u")
        sink = exp.recv(timeout=T)
        sink.send(b"data")
        state = obs.recv(timeout=T)
        event = tags.recv(timeout=T)
        current = sink.current()
        for c in (obs, exp, tags, tag_exp, sink):
            c.fileno()  # makes an eventfd per handle

        async def use_fd() -> None:
            with pytest.raises(hakuban.Timeout):
                await obs.recv_async(timeout=0.01)
        asyncio.run(use_fd())
        handles.extend([
            ("hakuban_object_observe_contract_status", obs._h),
            ("hakuban_object_expose_contract_status", exp._h),
            ("hakuban_tag_observe_contract_status", tags._h),
            ("hakuban_tag_expose_contract_status", tag_exp._h),
            ("hakuban_object_state_sink_token", sink._h),
            ("hakuban_object_state_data_len", state._hc.value),  # type: ignore[union-attr]
            ("hakuban_object_state_data_len", current._hc.value),  # type: ignore[union-attr]
        ])
        if event.state is not None:
            handles.append(("hakuban_object_state_data_len", event.state._hc.value))  # type: ignore[union-attr]
        assert len(ex.snapshot()["contracts"]) == 4
        assert _fd_count() >= fds_before + 5
        # nothing is closed explicitly: everything goes out of scope here

    make()
    gc.collect()
    snap = ex.snapshot()
    assert snap["contracts"] == [] and snap["objects"] == []
    for fn, h in handles[1:]:
        assert not _is_live(fn, h), f"{fn} handle {h:#x} leaked"
    assert _is_live(*handles[0])
    del ex
    gc.collect()
    assert not _is_live(*handles[0]), "the exchange handle leaked"
    assert _fd_count() == fds_before, "eventfds leaked"


def test_a_dropped_contract_is_closed(exchange: hakuban.Exchange) -> None:
    exp = exchange.expose_object("tmp")
    exchange.observe_object("tmp")  # not kept: closed at once, like in Go and C
    gc.collect()
    assert exp.try_recv() is None
    assert exchange.snapshot()["contracts"][0]["kind"] == "object_expose"


def test_sink_keeps_its_contract_alive(exchange: hakuban.Exchange) -> None:
    obs = exchange.observe_object("keep")

    def sink_only() -> hakuban.ObjectStateSink:
        return exchange.expose_object("keep").recv(timeout=T)

    sink = sink_only()
    gc.collect()
    assert not sink.revoked
    sink.send(b"still mine")
    assert obs.recv(timeout=T).data == b"still mine"


def test_library_is_loaded_once_and_reports_itself() -> None:
    path = hakuban.library_path()
    assert os.path.exists(path)
    assert _lib.loaded() is not None and _lib.loaded().path == path  # type: ignore[union-attr]


