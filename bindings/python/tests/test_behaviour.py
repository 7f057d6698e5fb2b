"""SPEC §2 behaviours, seen from Python, on one in-process exchange."""

from __future__ import annotations

from typing import Dict, List

import pytest

import hakuban
from hakuban import ObjectDescriptor, ObjectState, Status
from conftest import wait_until

T = 5.0  # generous deadline for anything that should happen "at once"


def test_lazy_expose(exchange: hakuban.Exchange) -> None:
    exp = exchange.expose_object("lazy")
    assert exp.try_recv() is None, "no observer: no assignment"
    assert exp.status is Status.NO_OBSERVERS
    with pytest.raises(hakuban.Timeout):
        exp.recv(timeout=0.05)

    obs = exchange.observe_object("lazy")
    assert obs.status is Status.STALE  # an exposer is elected, no state yet
    sink = exp.recv(timeout=T)
    assert exp.status is Status.ACTIVE
    assert sink.descriptor == ObjectDescriptor("lazy") and not sink.revoked

    obs.close()  # nobody observes any more: the assignment ends
    assert sink.wait_revoked(timeout=T)
    assert exp.status is Status.NO_OBSERVERS
    with pytest.raises(hakuban.RevokedError):
        sink.send(b"nobody wants this")


def test_observer_without_exposer_waits(exchange: hakuban.Exchange) -> None:
    obs = exchange.observe_object("orphan")
    assert obs.status is Status.WAITING_FOR_EXPOSER
    assert obs.current() is None and obs.try_recv() is None


def test_election_tie_goes_to_longest_standing(exchange: hakuban.Exchange) -> None:
    first = exchange.expose_object("o")
    second = exchange.expose_object("o")
    observer = exchange.observe_object("o")  # kept: a dropped contract is closed
    first.recv(timeout=T)
    assert second.try_recv() is None
    assert (first.status, second.status) == (Status.ACTIVE, Status.STANDBY)
    assert observer.status is Status.STALE


def test_election_by_capacity(exchange: hakuban.Exchange) -> None:
    small = exchange.expose_tag("fleet", capacity=1)
    big = exchange.expose_tag("fleet", capacity=2)
    observers = [exchange.observe_object(ObjectDescriptor(i, tags=["fleet"])) for i in range(3)]
    got: Dict[str, List[hakuban.ObjectStateSink]] = {"small": [], "big": []}

    def collect() -> bool:
        for name, c in (("small", small), ("big", big)):
            s = c.try_recv()
            if s is not None:
                got[name].append(s)
        return len(got["small"]) + len(got["big"]) == 3

    wait_until(collect, T, "three assignments")
    # least loaded after taking the object wins, ties to the older: big,
    # small (tie 1/1 vs 2/2), big
    assert [s.descriptor.value for s in got["big"]] == [0, 2]
    assert [s.descriptor.value for s in got["small"]] == [1]
    assert len(observers) == 3


def test_failover_when_expose_contract_closes(exchange: hakuban.Exchange) -> None:
    obs = exchange.observe_object("f")
    a = exchange.expose_object("f")
    b = exchange.expose_object("f")
    sink_a = a.recv(timeout=T)
    sink_a.send(ObjectState.from_json({"n": 1}))
    assert obs.recv(timeout=T).json() == {"n": 1}

    a.close()
    stale = obs.recv(timeout=T)  # the last state, no longer synchronized
    assert stale.json() == {"n": 1} and not stale.synchronized
    assert sink_a.revoked
    with pytest.raises(hakuban.RevokedError):
        sink_a.send(b"late write from the old exposer")

    sink_b = b.recv(timeout=T)  # elected at once
    assert sink_b.token > sink_a.token
    current = sink_b.current()  # the successor continues from the last state
    assert current is not None and current.json() == {"n": 1}
    sink_b.send(ObjectState.from_json({"n": current.json()["n"] + 1}))
    fresh = obs.recv(timeout=T)
    assert fresh.json() == {"n": 2} and fresh.synchronized
    assert fresh.version > stale.version


def test_sync_flag_on_desynchronize(exchange: hakuban.Exchange) -> None:
    obs = exchange.observe_object("s")
    sink = exchange.expose_object("s").recv(timeout=T)
    sink.send(b"v1")
    first = obs.recv(timeout=T)
    assert first.synchronized and first.unsynchronized_age == 0.0

    sink.desynchronize()
    stale = obs.recv(timeout=T)  # same version, only the flag changed
    assert not stale.synchronized and stale.version == first.version and stale.data == b"v1"
    assert obs.status is Status.STALE
    wait_until(lambda: stale.unsynchronized_age >= 0.02, T, "the age to grow")

    sink.send(b"v2")
    again = obs.recv(timeout=T)
    assert again.synchronized and again.data == b"v2" and obs.status is Status.ACTIVE


def test_sync_flag_when_exposer_goes_away(exchange: hakuban.Exchange) -> None:
    obs = exchange.observe_object("gone")
    exp = exchange.expose_object("gone")
    exp.recv(timeout=T).send(b"last")
    assert obs.recv(timeout=T).synchronized
    exp.close()
    st = obs.recv(timeout=T)
    assert st.data == b"last" and not st.synchronized
    assert obs.status is Status.WAITING_FOR_EXPOSER
    assert obs.current() == st


def test_latest_wins_for_a_slow_consumer(exchange: hakuban.Exchange) -> None:
    obs = exchange.observe_object("fast")
    sink = exchange.expose_object("fast").recv(timeout=T)
    for i in range(1000):
        sink.send(ObjectState(b"%d" % i))
    got = obs.recv(timeout=T)
    assert got.data == b"999", "only the newest state is pending"
    assert obs.try_recv() is None, "no backlog"


def test_versions_never_go_backwards(exchange: hakuban.Exchange) -> None:
    obs = exchange.observe_object("v")
    sink = exchange.expose_object("v").recv(timeout=T)
    sink.send(ObjectState(b"5", version=(1, 5)))
    with pytest.raises(hakuban.StaleVersionError):
        sink.send(ObjectState(b"4", version=(1, 4)))
    sink.send(ObjectState(b"5", version=(1, 5)))  # same version: no-op
    sink.send(ObjectState(b"6", version=(2,)))  # [2] > [1,5]
    sink.send(b"auto")  # the sink picks a greater version
    seen = []
    while True:
        st = obs.try_recv()
        if st is None:
            break
        seen.append(st.version)
    assert seen and seen == sorted(seen) and seen[-1] > (2,)


def test_tag_contracts(exchange: hakuban.Exchange) -> None:
    tags = exchange.observe_tag("room")
    assert tags.status is Status.IDLE
    d = ObjectDescriptor({"lamp": 1}, tags=["room"])
    tag_exp = exchange.expose_tag("room")
    assert tag_exp.try_recv() is None, "tag contracts alone bring nothing to life"

    obs = exchange.observe_object(d)  # now it is live and observed
    sink = tag_exp.recv(timeout=T)
    assert sink.descriptor == d
    sink.send_json({"on": True})
    ev = tags.recv(timeout=T)
    while ev.state is None or ev.state.data == b"":  # the object may show up before its state
        ev = tags.recv(timeout=T)
    assert ev.descriptor == d and not ev.gone and ev.state.json() == {"on": True}
    assert tags.status is Status.ACTIVE

    obs.close()  # the last reason for the object to be live goes away
    ev = tags.recv(timeout=T)
    while not ev.gone:
        ev = tags.recv(timeout=T)
    assert ev.descriptor == d and ev.state is None
    assert sink.wait_revoked(timeout=T)


def test_object_exposer_plus_tag_observer_makes_object_live(exchange: hakuban.Exchange) -> None:
    d = ObjectDescriptor("thermometer", tags=["sensors"])
    exp = exchange.expose_object(d)
    assert exp.try_recv() is None
    tags = exchange.observe_tag("sensors")
    sink = exp.recv(timeout=T)
    sink.send_json(21.5)
    ev = wait_until(lambda: _state_event(tags), T, "the state event")
    assert ev.descriptor == d and ev.state.json() == 21.5


def _state_event(tags: hakuban.TagObserveContract) -> "hakuban.ObjectEvent | None":
    ev = tags.try_recv()
    return ev if ev is not None and ev.state is not None and ev.state.data else None


def test_snapshot(exchange: hakuban.Exchange) -> None:
    obs = exchange.observe_object({"snap": 1})
    exp = exchange.expose_object({"snap": 1}, capacity=3)
    exp.recv(timeout=T).send(b"12345")
    obs.recv(timeout=T)
    snap = exchange.snapshot()
    assert snap["name"] == "test"
    (obj,) = snap["objects"]
    assert obj["descriptor"]["json"] == {"snap": 1} and obj["size"] == 5 and obj["live"]
    kinds = sorted(c["kind"] for c in snap["contracts"])
    assert kinds == ["object_expose", "object_observe"]
    assert [c["capacity"] for c in snap["contracts"] if c["kind"] == "object_expose"] == [3]


def test_capacity_is_checked(exchange: hakuban.Exchange) -> None:
    for bad in (0, -1, 2 ** 30 + 1, 1.5, True):
        with pytest.raises(hakuban.InvalidCapacityError):
            exchange.expose_object("c", capacity=bad)  # type: ignore[arg-type]
    assert exchange.expose_tag("c", capacity=2 ** 30).capacity == 2 ** 30


def test_gap_free_handover_when_an_exposer_joins() -> None:
    with hakuban.Exchange(rebalance_interval=0.01) as ex:
        a = ex.expose_tag("r")
        observers = [ex.observe_object(ObjectDescriptor(i, tags=["r"])) for i in range(4)]
        sinks_a = {}
        for _ in observers:
            s = a.recv(timeout=T)
            sinks_a[s.descriptor] = s
            s.send_json("a")
        for o in observers:
            assert o.recv(timeout=T).synchronized

        b = ex.expose_tag("r")  # loads 4:0, so the rebalancer moves two objects to b
        moved = [b.recv(timeout=T) for _ in range(2)]
        for s in moved:
            assert not sinks_a[s.descriptor].revoked, "the old exposer keeps writing until b writes"
            s.send_json("b")
            assert sinks_a[s.descriptor].wait_revoked(timeout=T)
        assert b.try_recv() is None
        seen = []
        for o in observers:
            st = o.try_recv()
            while st is not None:
                seen.append(st)
                st = o.try_recv()
        assert seen and all(st.synchronized for st in seen), "no gap in synchronized"
        assert sorted(o.current().json() for o in observers) == ["a", "a", "b", "b"]  # type: ignore[union-attr]
