"""asyncio: async for / recv_async on the readiness fd, never blocking the loop."""

from __future__ import annotations

import asyncio
import threading
from typing import List

import pytest

import hakuban
from hakuban import ObjectState

T = 5.0


def run(coro: "asyncio.Future[object] | object") -> object:
    return asyncio.run(asyncio.wait_for(coro, 20))  # type: ignore[arg-type]


def test_async_for_receives_while_the_loop_keeps_running(exchange: hakuban.Exchange) -> None:
    async def main() -> List[int]:
        obs = exchange.observe_object("a")
        exp = exchange.expose_object("a")
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.001)

        async def produce() -> None:
            sink = await exp.recv_async(timeout=T)
            for i in range(1, 6):
                sink.send(ObjectState.from_json(i))
                await asyncio.sleep(0.005)

        tick_task = asyncio.create_task(ticker())
        prod_task = asyncio.create_task(produce())
        seen: List[int] = []
        async for state in obs:
            seen.append(state.json())
            if seen[-1] == 5:
                break
        await prod_task
        tick_task.cancel()
        assert ticks > 5, "the loop ran other tasks while waiting"
        return seen

    seen = run(main())
    assert seen[-1] == 5 and seen == sorted(seen)  # latest wins: some may be skipped


def test_recv_async_timeout(exchange: hakuban.Exchange) -> None:
    async def main() -> None:
        obs = exchange.observe_object("nothing")
        with pytest.raises(hakuban.Timeout):
            await obs.recv_async(timeout=0.05)
        with pytest.raises(TimeoutError):  # Timeout is a TimeoutError too
            await obs.recv_async(timeout=0)
        # the contract still works after a timeout
        sink_task = asyncio.create_task(exchange.expose_object("nothing").recv_async(timeout=T))
        sink = await sink_task
        sink.send(b"x")
        assert (await obs.recv_async(timeout=T)).data == b"x"

    run(main())


def test_close_ends_async_for_from_the_loop_and_from_a_thread(exchange: hakuban.Exchange) -> None:
    async def main() -> None:
        a = exchange.observe_object("c1")
        b = exchange.observe_object("c2")

        async def drain(c: hakuban.ObjectObserveContract) -> int:
            n = 0
            async for _ in c:
                n += 1
            return n

        ta, tb = asyncio.create_task(drain(a)), asyncio.create_task(drain(b))
        await asyncio.sleep(0)  # let both start waiting on their fds
        a.close()  # from the loop's own thread
        threading.Thread(target=b.close).start()  # from another thread
        assert await asyncio.wait_for(ta, T) == 0
        assert await asyncio.wait_for(tb, T) == 0
        assert a.closed and b.closed
        with pytest.raises(hakuban.ClosedError):
            await a.recv_async()

    run(main())


def test_several_coroutines_on_one_contract(exchange: hakuban.Exchange) -> None:
    async def main() -> None:
        tags = exchange.observe_tag("many")
        exp = exchange.expose_tag("many")
        observers = [exchange.observe_object(hakuban.ObjectDescriptor(i, tags=["many"]))
                     for i in range(4)]
        got: List[hakuban.ObjectEvent] = []

        async def reader() -> None:
            while True:
                ev = await tags.recv_async()
                if ev.state is not None and ev.state.data:
                    got.append(ev)

        readers = [asyncio.create_task(reader()) for _ in range(3)]
        for _ in observers:
            sink = await exp.recv_async(timeout=T)
            sink.send(b"hello")
        while len({ev.descriptor for ev in got}) < 4:
            await asyncio.sleep(0.001)
        for r in readers:
            r.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
        # cancelled waiters left no reader behind on the fd
        assert tags._aw is not None and not tags._aw.registered and not tags._aw.futures

    run(main())


def test_sink_wait_revoked_async(exchange: hakuban.Exchange) -> None:
    async def main() -> None:
        obs = exchange.observe_object("r")
        sink = await exchange.expose_object("r").recv_async(timeout=T)
        assert await sink.wait_revoked_async(timeout=0.02) is False
        waiter = asyncio.create_task(sink.wait_revoked_async())
        await asyncio.sleep(0)
        obs.close()
        assert await asyncio.wait_for(waiter, T) is True

    run(main())
