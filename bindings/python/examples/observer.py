"""An observer: "I want the temperature of the kitchen". Prints the newest
reading whenever it changes; a slow observer skips readings, never queues
them. While the link to the exposer is down it gets the last reading again,
marked stale. See exposer.py.

    python examples/observer.py [ws://127.0.0.1:3001/] [readings, default 10]
"""

import sys

import hakuban

KITCHEN = hakuban.ObjectDescriptor({"room": "kitchen"}, tags=["temperatures"])

url = sys.argv[1] if len(sys.argv) > 1 else "ws://127.0.0.1:3001/"
readings = int(sys.argv[2]) if len(sys.argv) > 2 else 10
with hakuban.Exchange("python-observer") as exchange:
    exchange.connect(url)
    try:
        with exchange.observe_object(KITCHEN) as contract:
            for n, state in enumerate(contract, 1):
                stale = "" if state.synchronized else f" (stale for {state.unsynchronized_age:.1f} s)"
                print(f"observer: kitchen is {state.json()}{stale}", flush=True)
                if n == readings:
                    break
    except KeyboardInterrupt:
        pass
