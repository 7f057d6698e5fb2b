"""Tag contracts and failover: two tag exposers share the "room" objects
that observers ask for; a tag observer watches them all. When one exposer
leaves, its objects fail over to the other, which continues from the last
state (sink.current()).

    python examples/tags.py
"""

import threading

import hakuban


def exposer(name: str, contract: hakuban.TagExposeContract) -> None:
    for sink in contract:  # one sink per object this exposer is elected for
        def produce(sink: hakuban.ObjectStateSink = sink) -> None:
            last = sink.current()
            count = last.json()["count"] if last is not None else 0
            while not sink.revoked:
                count += 1
                try:
                    sink.send_json({"count": count, "by": name})
                except hakuban.RevokedError:
                    break
                sink.wait_revoked(timeout=0.05)
        threading.Thread(target=produce, daemon=True).start()


def main() -> None:
    with hakuban.Exchange("tags") as exchange:
        monitor = exchange.observe_tag("room")
        a = exchange.expose_tag("room", capacity=1)
        b = exchange.expose_tag("room", capacity=1)
        for name, contract in (("a", a), ("b", b)):
            threading.Thread(target=exposer, args=(name, contract), daemon=True).start()

        rooms = [exchange.observe_object(hakuban.ObjectDescriptor({"room": i}, tags=["room"]))
                 for i in range(4)]
        seen = 0
        for event in monitor:
            if event.state is not None and event.state.data:
                print(event.descriptor.value, event.state.json(),
                      "" if event.state.synchronized else "(not synchronized)", flush=True)
                seen += 1
            if seen == 12:
                print("exposer a leaves: its rooms fail over to b", flush=True)
                a.close()
            if seen == 30:
                break
        print(exchange.snapshot()["counters"])
        del rooms


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        pass
