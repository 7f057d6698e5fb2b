"""Threads: receiving concurrently, closing from another thread."""

from __future__ import annotations

import sys
import threading
import time
from typing import Dict, List, Tuple

import pytest

import hakuban
from hakuban import ObjectState
from conftest import wait_until

T = 10.0
LAST = 2000


def test_four_threads_receive_concurrently(exchange: hakuban.Exchange) -> None:
    """Four threads, each with its own contract on the same object, receive
    while a fifth sends: every thread sees increasing versions and ends
    with the last state."""
    contracts = [exchange.observe_object("shared") for _ in range(4)]
    sink = exchange.expose_object("shared").recv(timeout=T)
    results: Dict[int, List[Tuple[int, ...]]] = {}
    errors: List[BaseException] = []
    start = threading.Barrier(5)

    def receive(i: int) -> None:
        try:
            seen: List[Tuple[int, ...]] = []
            start.wait()
            for state in contracts[i]:
                seen.append(state.version)
                if state.data == b"%d" % LAST:
                    break
            results[i] = seen
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=receive, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    start.wait()
    for n in range(1, LAST + 1):
        sink.send(ObjectState(b"%d" % n))
    for t in threads:
        t.join(T)
        assert not t.is_alive()
    assert not errors, errors
    for i in range(4):
        seen = results[i]
        assert seen and seen == sorted(seen) and len(set(seen)) == len(seen)


def test_threads_sharing_one_contract_take_each_state_once(exchange: hakuban.Exchange) -> None:
    """Four threads on one tag contract: every object's event reaches
    exactly one of them; closing wakes them all at once."""
    tags = exchange.observe_tag("work")
    exp = exchange.expose_tag("work")
    taken: List[hakuban.ObjectEvent] = []
    lock = threading.Lock()

    def receive() -> None:
        for ev in tags:  # ends when the contract is closed
            if ev.state is not None and ev.state.data:
                with lock:
                    taken.append(ev)

    threads = [threading.Thread(target=receive) for _ in range(4)]
    for t in threads:
        t.start()
    observers = [exchange.observe_object(hakuban.ObjectDescriptor(i, tags=["work"]))
                 for i in range(20)]
    sinks = [exp.recv(timeout=T) for _ in observers]
    for s in sinks:
        s.send(b"job")
    wait_until(lambda: len(taken) == 20, T, "every event to be taken")
    closed_at = time.monotonic()
    tags.close()
    for t in threads:
        t.join(T)
        assert not t.is_alive()
    assert time.monotonic() - closed_at < 1.0, "close woke the waiting threads at once"
    assert sorted(ev.descriptor.value for ev in taken) == list(range(20))


def _in_recv(t: threading.Thread) -> bool:
    frame = sys._current_frames().get(t.ident or 0)
    while frame is not None:
        if frame.f_code.co_name == "recv":
            return True
        frame = frame.f_back
    return False


def test_close_from_another_thread_wakes_recv(exchange: hakuban.Exchange,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    # With 10 s slices, returning quickly proves that close() woke the wait
    # (rather than the wait noticing at the end of a slice).
    monkeypatch.setattr(hakuban._contracts, "_SLICE_MS", 10_000)
    obs = exchange.observe_object("wait")
    outcome: List[str] = []

    def wait() -> None:
        try:
            obs.recv()
        except hakuban.EndOfStream:
            outcome.append("end")

    t = threading.Thread(target=wait)
    t.start()
    wait_until(lambda: _in_recv(t), T, "the thread to wait in recv")
    closed_at = time.monotonic()
    obs.close()
    t.join(T)
    assert outcome == ["end"]
    assert time.monotonic() - closed_at < 2.0


def test_exchange_close_ends_waits_in_other_threads() -> None:
    ex = hakuban.Exchange()
    obs = ex.observe_object("x")
    exp = ex.expose_object("y")
    ends: List[str] = []

    def drain(c: "hakuban.ObjectObserveContract | hakuban.ObjectExposeContract") -> None:
        for _ in c:
            pass
        ends.append("done")

    threads = [threading.Thread(target=drain, args=(c,)) for c in (obs, exp)]
    for t in threads:
        t.start()
    ex.close()
    for t in threads:
        t.join(T)
    assert ends == ["done", "done"]
    assert obs.closed and exp.closed
