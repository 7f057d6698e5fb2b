"""Descriptors and states: Python values in, identity computed by the core."""

from __future__ import annotations

import pickle

import pytest

import hakuban
from hakuban import ObjectDescriptor, ObjectState, TagDescriptor


def test_descriptor_identity_is_by_value() -> None:
    a = ObjectDescriptor({"a": 1, "b": [1, 2]}, tags=["t", {"room": 12}])
    b = ObjectDescriptor({"b": [1, 2], "a": 1}, tags=[{"room": 12}, "t", "t"])
    assert a == b and hash(a) == hash(b)
    assert a.key == '{"json":{"a":1,"b":[1,2]},"tags":["t",{"room":12}]}'
    assert a.canonical_json == '{"a":1,"b":[1,2]}'
    assert a.value == {"a": 1, "b": [1, 2]}
    assert a.tags == {TagDescriptor("t"), TagDescriptor({"room": 12})}
    assert len({a, b}) == 1


def test_same_json_other_tags_is_another_object() -> None:
    assert ObjectDescriptor("x") != ObjectDescriptor("x", tags=["t"])
    assert ObjectDescriptor("x", tags=["t"]) != ObjectDescriptor("x", tags=["u"])
    assert ObjectDescriptor("x") != TagDescriptor("x")


def test_tag_identity() -> None:
    assert TagDescriptor({"b": 2, "a": 1}) == TagDescriptor({"a": 1, "b": 2})
    assert TagDescriptor({"a": 1}).canonical_json == '{"a":1}'
    assert TagDescriptor([1, "x", None, True, 1.5]).value == [1, "x", None, True, 1.5]
    assert repr(TagDescriptor("s")) == 'TagDescriptor("s")'


def test_integers_stay_exact_beyond_2_to_53() -> None:
    big = 2 ** 53 + 1
    d = ObjectDescriptor({"id": big})
    assert d.value["id"] == big
    assert str(big) in d.key


def test_invalid_values_are_rejected_at_the_call() -> None:
    with pytest.raises(hakuban.InvalidDescriptorError):
        ObjectDescriptor({1, 2})  # a set is not JSON
    with pytest.raises(ValueError):  # InvalidDescriptorError is a ValueError too
        TagDescriptor(float("nan"))
    with pytest.raises(TypeError):
        ObjectDescriptor("x", tags="t")  # a string is not a list of tags


def test_limits() -> None:
    with pytest.raises(hakuban.TooManyTagsError):
        ObjectDescriptor("x", tags=list(range(65)))
    ObjectDescriptor("x", tags=list(range(64)))
    with pytest.raises(hakuban.DescriptorTooLargeError):
        ObjectDescriptor("x" * (70 * 1024))


def test_exchange_limits(exchange: hakuban.Exchange) -> None:
    small = hakuban.Exchange(max_tags=2, max_descriptor_size=100)
    try:
        with pytest.raises(hakuban.TooManyTagsError):
            small.observe_object(ObjectDescriptor("x", tags=["a", "b", "c"]))
        with pytest.raises(hakuban.DescriptorTooLargeError):
            small.observe_object("y" * 200)
        small.observe_object(ObjectDescriptor("x", tags=["a", "b"])).close()
    finally:
        small.close()
    with pytest.raises(hakuban.InvalidConfigError):
        hakuban.Exchange(rebalance_threshold=2.0)


def test_descriptors_pickle() -> None:
    d = ObjectDescriptor({"a": 1}, tags=["t"])
    assert pickle.loads(pickle.dumps(d)) == d
    t = TagDescriptor({"x": [1]})
    assert pickle.loads(pickle.dumps(t)) == t


def test_state_values() -> None:
    s = ObjectState(b"abc", format=("raw",), version=(1, 2))
    assert (s.data, s.format, s.version, s.synchronized) == (b"abc", ("raw",), (1, 2), False)
    assert s.unsynchronized_age == 0.0
    assert s == ObjectState(bytearray(b"abc"), ["raw"], [1, 2])
    assert s != ObjectState(b"abc", ("raw",), (1, 3))
    assert ObjectState().version == () and ObjectState().data == b""
    assert pickle.loads(pickle.dumps(s)) == s
    with pytest.raises(TypeError):
        ObjectState(b"", format="JSON")
    with pytest.raises(hakuban.InvalidArgumentError):
        ObjectState(b"", version=(2 ** 63,))


def test_state_json_helpers() -> None:
    s = ObjectState.from_json({"t": 21.5, "ok": True}, version=(7,))
    assert s.format == ("JSON",) and s.version == (7,)
    assert s.json() == {"t": 21.5, "ok": True}
    assert ObjectState.from_json([1], format=("utf8",)).format == ("utf8", "JSON")
    with pytest.raises(hakuban.WrongFormatError):
        ObjectState(b"{}", format=("JSON", "zstd")).json()
    with pytest.raises(hakuban.WrongFormatError):
        ObjectState(b"{}").json()
    with pytest.raises(hakuban.InvalidArgumentError):
        ObjectState.from_json(object())


def test_received_state_fields(exchange: hakuban.Exchange) -> None:
    obs = exchange.observe_object("o")
    sink = exchange.expose_object("o").recv(timeout=5)
    payload = bytes(range(256)) * 300  # over the small-data threshold: the copy path
    sink.send(ObjectState(payload, format=("bin", "x"), version=(3, 4)))
    got = obs.recv(timeout=5)
    assert got.data == payload
    assert got.format == ("bin", "x")
    assert got.version == (3, 4)
    assert got.synchronized is True
    sink.send(b"")
    empty = obs.recv(timeout=5)
    assert empty.data == b"" and empty.format == () and empty.version > (3, 4)
