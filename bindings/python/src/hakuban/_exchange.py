"""Exchange: the local meeting point of contracts."""

from __future__ import annotations

import json
import threading
import weakref
from ctypes import byref, c_char_p, c_uint64, c_void_p
from typing import Any, Dict, Optional, Sequence, Union

from . import _lib
from ._contracts import (ObjectExposeContract, ObjectObserveContract, TagExposeContract,
                         TagObserveContract)
from ._descriptor import ObjectDescriptorLike, TagLike
from ._network import Connector, Listener
from ._resource import Resource


class Exchange(Resource):
    """The local meeting point where contracts are made; one per process is
    typical. Objects are shared between the contracts of one exchange (and,
    once connected, with the network).

    ::

        with hakuban.Exchange() as exchange:
            with exchange.observe_object({"sensor": 7}) as contract:
                for state in contract:
                    print(state.json())

    Closing the exchange closes every contract, connector and listener made
    on it: their waits end, their sinks are revoked. The options mirror ``hakuban_exchange_options``
    (durations in seconds); None keeps the library's default.
    """

    __slots__ = ("_name", "_children", "_children_lock", "_links")
    _drop_name = "hakuban_exchange_drop"
    _what = "exchange"

    def __init__(self, name: Optional[str] = None, *,
                 max_descriptor_size: Optional[int] = None,
                 max_tags: Optional[int] = None,
                 rebalance_threshold: Optional[float] = None,
                 rebalance_interval: Optional[float] = None,
                 max_moves_per_interval: Optional[int] = None,
                 handover_timeout: Optional[float] = None) -> None:
        self._h = 0
        self._children: "weakref.WeakSet[Resource]" = weakref.WeakSet()
        self._children_lock = threading.Lock()
        # Connectors and listeners are kept until closed: `exchange.connect(url)`
        # as a statement means "stay linked", unlike a contract nobody keeps.
        self._links: "set[Resource]" = set()
        L = _lib.L
        opts = _lib.ExchangeOptions()
        L.hakuban_exchange_options_init(byref(opts))
        name_bytes = name.encode("utf-8") if name is not None else None
        opts.name = name_bytes
        if max_descriptor_size is not None:
            opts.max_descriptor_size = _non_negative(max_descriptor_size, "max_descriptor_size")
        if max_tags is not None:
            opts.max_tags = _non_negative(max_tags, "max_tags")
        if rebalance_threshold is not None:
            opts.rebalance_threshold = rebalance_threshold
        if rebalance_interval is not None:
            opts.rebalance_interval_ms = _ms(rebalance_interval)
        if max_moves_per_interval is not None:
            opts.max_moves_per_interval = max_moves_per_interval
        if handover_timeout is not None:
            opts.handover_timeout_ms = _ms(handover_timeout)
        out = c_uint64()
        _lib.check(L.hakuban_exchange_new(byref(out), byref(opts)))
        self._name = name if name is not None else "exchange"
        self._own(out)

    @property
    def name(self) -> str:
        """The exchange's name in snapshots and logs."""
        return self._name

    def observe_object(self, descriptor: ObjectDescriptorLike) -> ObjectObserveContract:
        """"I want this object": an ObjectObserveContract. ``descriptor`` is an
        ObjectDescriptor or a JSON value (a descriptor without tags)."""
        return ObjectObserveContract(self, descriptor)

    def expose_object(self, descriptor: ObjectDescriptorLike,
                      capacity: int = 1) -> ObjectExposeContract:
        """"I can produce this object": an ObjectExposeContract."""
        return ObjectExposeContract(self, descriptor, capacity)

    def observe_tag(self, tag: TagLike) -> TagObserveContract:
        """"I want every live object with this tag": a TagObserveContract.
        ``tag`` is a TagDescriptor or a JSON value."""
        return TagObserveContract(self, tag)

    def expose_tag(self, tag: TagLike, capacity: int = 1) -> TagExposeContract:
        """"I can produce any object with this tag": a TagExposeContract."""
        return TagExposeContract(self, tag, capacity)

    def connect(self, urls: Union[str, Sequence[str]], **options: Any) -> Connector:
        """Links this exchange to an upstream (a router, or another exchange's
        Listener): a Connector for ``urls`` in order of preference. The
        exchange keeps it until it (or the exchange) is closed. Options
        as for Connector (name, token, min_backoff, max_backoff,
        ping_interval, ping_timeout, tls_ca_file, tls_cert_file,
        tls_key_file)."""
        return Connector(self, urls, **options)

    def listen(self, address: str = "127.0.0.1:3001", **options: Any) -> Listener:
        """Accepts downstream links on ``address`` (port 0: any free port,
        see ``Listener.url``). The exchange keeps it until it (or the
        exchange) is closed. Options as for Listener (path, tls_cert_file,
        tls_key_file, tls_client_ca_file, ping_interval, ping_timeout,
        auth)."""
        return Listener(self, address, **options)

    def snapshot(self) -> Dict[str, Any]:
        """A structured picture of the exchange: objects (descriptor, liveness,
        elected exposer, version, size, synchronized), tags, contracts (kind,
        status, capacity, load), links and counters."""
        L = _lib.L
        out = c_void_p()
        _lib.check(L.hakuban_exchange_snapshot(byref(out), self._handle()))
        try:
            text = c_char_p(out.value).value or b"{}"
        finally:
            L.hakuban_string_free(out)
        result: Dict[str, Any] = json.loads(text)
        for key in ("objects", "tags", "contracts", "links"):
            if result.get(key) is None:  # the library writes null for an empty list
                result[key] = []
        return result

    def close(self) -> None:
        """Closes the exchange and every contract made on it. Idempotent."""
        with self._children_lock:
            children = list(self._children)
            self._links.clear()
        for child in children:
            child.close()
        Resource.close(self)

    def _adopt(self, child: Resource, keep: bool = False) -> None:
        with self._children_lock:
            self._children.add(child)
            if keep:
                self._links.add(child)

    def _forget(self, child: Resource) -> None:
        with self._children_lock:
            self._links.discard(child)

    def __repr__(self) -> str:
        return f"<Exchange {self._name!r}{' closed' if self.closed else ''}>"


def _ms(seconds: float) -> int:
    return int(round(seconds * 1000))


def _non_negative(v: int, what: str) -> int:
    if v < 0:
        # ctypes would wrap a negative size_t around; the library then
        # reports a confusing number.
        from ._errors import InvalidConfigError
        raise InvalidConfigError(f"{what} must not be negative, not {v}")
    return v
