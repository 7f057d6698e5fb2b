"""An exposer: "I can produce the temperature of the kitchen". It produces
readings only while somebody observes them (it holds an assignment, a sink).
Interoperates with the C examples (examples/c) through a router:

    hakuban-router &                       (make router: build/hakuban-router)
    python examples/exposer.py [ws://127.0.0.1:3001/]
    python examples/observer.py [ws://127.0.0.1:3001/] [readings]
"""

import sys

import hakuban

KITCHEN = hakuban.ObjectDescriptor({"room": "kitchen"}, tags=["temperatures"])

with hakuban.Exchange("python-exposer") as exchange:
    exchange.connect(sys.argv[1] if len(sys.argv) > 1 else "ws://127.0.0.1:3001/")
    celsius = 20.0
    try:
        for sink in exchange.expose_object(KITCHEN):  # waits for an assignment
            try:
                while not sink.revoked:              # until nobody observes
                    celsius = round(celsius + 0.1, 1)
                    sink.send_json({"celsius": celsius})
                    print("exposer: sent", celsius, flush=True)
                    sink.wait_revoked(timeout=0.5)
            except hakuban.RevokedError:             # it ended between check and send
                pass
    except KeyboardInterrupt:
        pass
