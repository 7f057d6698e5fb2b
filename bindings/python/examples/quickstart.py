"""An exposer and an observer of one object, in one process.

The exposer produces the object only while somebody observes it (lazy
exposing): it waits for an assignment (a sink), writes states through it
until the assignment ends, then waits again.

    python examples/quickstart.py [--count N]
"""

import argparse
import threading
import time

import hakuban

THERMOMETER = hakuban.ObjectDescriptor({"thermometer": "kitchen"}, tags=["thermometers"])


def expose(exchange: hakuban.Exchange) -> None:
    with exchange.expose_object(THERMOMETER) as contract:
        for sink in contract:  # one sink per assignment; ends when the contract closes
            celsius = 20.0
            try:
                while not sink.revoked:
                    sink.send(hakuban.ObjectState.from_json({"celsius": round(celsius, 1)}))
                    celsius += 0.1
                    sink.wait_revoked(timeout=0.1)  # a producer's pace; returns when revoked
            except hakuban.RevokedError:  # revoked between the check and the send
                pass


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=0, help="stop after N states (0: Ctrl-C)")
    args = parser.parse_args()
    with hakuban.Exchange("quickstart") as exchange:
        threading.Thread(target=expose, args=(exchange,), daemon=True).start()
        with exchange.observe_object(THERMOMETER) as contract:
            for n, state in enumerate(contract, 1):
                print(f"{time.strftime('%X')} {state.json()} version={state.version} "
                      f"synchronized={state.synchronized}", flush=True)
                if n == args.count:
                    break


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        pass
