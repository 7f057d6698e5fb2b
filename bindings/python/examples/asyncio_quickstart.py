"""The quickstart with asyncio: the waits are on file descriptors
(loop.add_reader), so one event loop serves every contract.

    python examples/asyncio_quickstart.py [--count N]
"""

import argparse
import asyncio

import hakuban


async def expose(exchange: hakuban.Exchange, descriptor: hakuban.ObjectDescriptor) -> None:
    with exchange.expose_object(descriptor) as contract:
        async for sink in contract:
            n = 0
            try:
                while not sink.revoked:
                    n += 1
                    sink.send_json({"tick": n})
                    await sink.wait_revoked_async(timeout=0.1)
            except hakuban.RevokedError:  # revoked between the check and the send
                pass


async def main(count: int) -> None:
    descriptor = hakuban.ObjectDescriptor({"clock": "asyncio"})
    with hakuban.Exchange("asyncio") as exchange:
        producer = asyncio.create_task(expose(exchange, descriptor))
        with exchange.observe_object(descriptor) as contract:
            n = 0
            async for state in contract:
                print(state.json(), "synchronized" if state.synchronized else "stale", flush=True)
                n += 1
                if n == count:
                    break
        producer.cancel()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=0, help="stop after N states (0: Ctrl-C)")
    try:
        asyncio.run(main(parser.parse_args().count))
    except KeyboardInterrupt:
        pass
