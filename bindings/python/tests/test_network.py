"""Connector and Listener: exchanges linked in one process, and Python
processes linked through a real router (build/hakuban-router, `make router`)
started on port 0."""

from __future__ import annotations

import json
import logging
import selectors
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Iterator, List

import pytest

import hakuban
from hakuban import ConnectorState, ObjectDescriptor
from conftest import REPO, subprocess_env, wait_until

T = 10.0
ROUTER = REPO / "build" / "hakuban-router"
C_OBSERVER = REPO / "build" / "examples" / "c" / "hakuban_example_observer"

pytestmark = pytest.mark.skipif(not hakuban._lib.L.has_network,
                                reason="this libhakuban has no connector/listener yet")


@pytest.fixture
def linked() -> Iterator["tuple[hakuban.Exchange, hakuban.Exchange, hakuban.Listener, hakuban.Connector]"]:
    up, down = hakuban.Exchange("up"), hakuban.Exchange("down")
    try:
        listener = up.listen("127.0.0.1:0")
        connector = down.connect(listener.url, name="down", min_backoff=0.02, max_backoff=0.2)
        yield up, down, listener, connector
    finally:
        down.close()
        up.close()


def test_listener_and_connector_link_two_exchanges(linked) -> None:  # type: ignore[no-untyped-def]
    up, down, listener, connector = linked
    host, port = listener.address
    assert host == "127.0.0.1" and port > 0 and listener.url == f"ws://127.0.0.1:{port}/"
    status = connector.wait_connected(timeout=T)
    assert status.state is ConnectorState.CONNECTED and status.connects == 1
    assert status.url == listener.url and status.last_error is None

    # elections span the link: the upstream's exposer is asked for the
    # downstream's object, and its states flow down
    obs = down.observe_object(ObjectDescriptor({"net": 1}, tags=["t"]))
    exp = up.expose_object(ObjectDescriptor({"net": 1}, tags=["t"]))
    sink = exp.recv(timeout=T)
    sink.send_json("over the wire")
    st = obs.recv(timeout=T)
    assert st.json() == "over the wire" and st.synchronized

    # the link goes away: the observer keeps the last state, not synchronized
    listener.close()
    st = obs.recv(timeout=T)
    assert st.json() == "over the wire" and not st.synchronized
    status = connector.wait(ConnectorState.DISCONNECTED, timeout=T)
    assert status.failures >= 1 and status.last_error

    # it comes back on the same port: the connector reconnects by itself and
    # re-declares the contract; the exposer is asked again
    listener2 = up.listen(f"127.0.0.1:{port}")
    assert connector.wait_connected(timeout=T).connects == 2
    sink2 = wait_until(lambda: exp.try_recv() or (not sink.revoked and sink), T, "an assignment")
    sink2.send_json("back")
    st = obs.recv(timeout=T)
    while not st.synchronized:
        st = obs.recv(timeout=T)
    assert st.json() == "back"
    listener2.close()


def test_connector_to_nowhere(exchange: hakuban.Exchange) -> None:
    with exchange.connect(["ws://127.0.0.1:1/"], min_backoff=0.01, max_backoff=0.05) as c:
        with pytest.raises(hakuban.Timeout):
            c.wait_connected(timeout=0.3)
        status = c.wait(ConnectorState.DISCONNECTED, timeout=T)
        assert "refused" in (status.last_error or "") and status.connects == 0
        changes = c.changes(timeout=T)
        assert next(changes).failures >= 1
    assert c.closed
    with pytest.raises(hakuban.ClosedError):
        c.status


def test_bad_arguments(exchange: hakuban.Exchange) -> None:
    with pytest.raises(hakuban.InvalidArgumentError):
        exchange.connect(["http://example.invalid/"])
    with pytest.raises(hakuban.InvalidArgumentError):
        exchange.connect([])
    listener = exchange.listen("127.0.0.1:0")
    with pytest.raises(hakuban.ConnectionFailedError):  # the port is taken
        exchange.listen(f"127.0.0.1:{listener.address[1]}")
    exchange.close()
    assert listener.closed, "closing the exchange closes its listeners"


def test_connector_wait_async(linked) -> None:  # type: ignore[no-untyped-def]
    import asyncio
    _up, _down, _listener, connector = linked
    status = asyncio.run(connector.wait_async(ConnectorState.CONNECTED, timeout=T))
    assert status.state is ConnectorState.CONNECTED


def test_connector_fileno_readable_while_the_status_changed(linked) -> None:  # type: ignore[no-untyped-def]
    _up, _down, listener, connector = linked
    with selectors.DefaultSelector() as sel:
        sel.register(connector, selectors.EVENT_READ)
        # the link comes up: readable until the status is read
        assert sel.select(T), "the connector's fd did not become readable"
        status = connector.wait_connected(timeout=T)
        assert status.state is ConnectorState.CONNECTED and status.connects == 1
        assert sel.select(0) == []  # read (by the wait): not readable
        # the listener goes away: readable again, until read
        listener.close()
        assert sel.select(T), "the fd did not become readable when the link went down"
        assert connector.status.state is not ConnectorState.CONNECTED
        sel.unregister(connector)
    connector.close()
    with pytest.raises(hakuban.ClosedError):
        connector.fileno()


def test_connector_asyncio_waits_on_the_fd(linked) -> None:  # type: ignore[no-untyped-def]
    import asyncio
    up, _down, listener, connector = linked

    async def main() -> None:
        # the link comes up: wait_async wakes on the fd and returns the status
        status = await connector.wait_async(ConnectorState.CONNECTED, timeout=T)
        assert status.state is ConnectorState.CONNECTED and status.connects == 1
        # changes from the first __anext__ on (it reads the status CONNECTED)
        changes = connector.changes_async(timeout=T)
        nxt = asyncio.ensure_future(changes.__anext__())
        await asyncio.sleep(0)  # one loop turn: it has read the status and waits on the fd
        assert not nxt.done()
        # the upstream goes away: the next change leaves CONNECTED
        port = listener.address[1]
        listener.close()
        status = await asyncio.wait_for(nxt, T)
        assert status.state is not ConnectorState.CONNECTED
        # it comes back: wait_async returns the new status
        back = up.listen(f"127.0.0.1:{port}")
        status = await connector.wait_async(ConnectorState.CONNECTED, timeout=T)
        assert status.state is ConnectorState.CONNECTED and status.connects == 2
        # closing the connector ends both kinds of wait
        waiter = asyncio.ensure_future(connector.wait_async(ConnectorState.DISCONNECTED))
        following = asyncio.ensure_future(changes.__anext__())
        await asyncio.sleep(0)  # one loop turn: both wait on the fd
        assert not waiter.done() and not following.done()
        connector.close()
        with pytest.raises(hakuban.EndOfStream):
            await asyncio.wait_for(waiter, T)
        with pytest.raises(StopAsyncIteration):
            await asyncio.wait_for(following, T)
        back.close()

    asyncio.run(main())


# ---------------------------------------------------------------------------
# Through a real router, between processes

EXPOSER = """
import os, sys, hakuban
ex = hakuban.Exchange("exposer-%d" % os.getpid())
c = ex.connect(sys.argv[1], min_backoff=0.02, max_backoff=0.2)
c.wait_connected(timeout=10)
kitchen = hakuban.ObjectDescriptor({"room": "kitchen"}, tags=["temperatures"])
contract = ex.expose_object(kitchen)
print("ready", flush=True)
for sink in contract:
    current = sink.current()
    n = current.json()["n"] if current is not None else 0
    while not sink.revoked:
        n += 1
        try:
            sink.send(hakuban.ObjectState.from_json({"n": n, "pid": os.getpid(), "celsius": 21.5}))
        except hakuban.RevokedError:
            break
        sink.wait_revoked(timeout=0.02)
"""


class Router:
    def __init__(self, tmp: Path, *args: str) -> None:
        addr_file = tmp / "router.addr"
        self.proc = subprocess.Popen([str(ROUTER), "-listen", "127.0.0.1:0", "-addr-file",
                                      str(addr_file), "-log-level", "warn",
                                      "-ping-interval", "200ms", "-ping-timeout", "500ms", *args],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        addr = wait_until(lambda: addr_file.exists() and addr_file.read_text().strip(), T,
                          "the router's address")
        self.url = f"ws://{addr.splitlines()[0]}/"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(T)
            except subprocess.TimeoutExpired:  # pragma: no cover
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def router(tmp_path: Path) -> Iterator[Router]:
    if not ROUTER.exists():
        pytest.skip("no build/hakuban-router (make router)")
    r = Router(tmp_path)
    try:
        yield r
    finally:
        r.stop()


def start_exposer(url: str) -> subprocess.Popen:  # type: ignore[type-arg]
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(EXPOSER), url],
                            env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    assert line == "ready", (line, proc.stderr.read() if proc.stderr else "")
    return proc


def test_failover_between_python_processes_through_a_router(router: Router) -> None:
    procs: List[subprocess.Popen] = []  # type: ignore[type-arg]

    def kill(p: subprocess.Popen) -> None:  # type: ignore[type-arg]
        p.send_signal(signal.SIGKILL)
        p.wait(T)

    try:
        with hakuban.Exchange("observer") as ex:
            ex.connect(router.url, min_backoff=0.02)
            kitchen = ObjectDescriptor({"room": "kitchen"}, tags=["temperatures"])
            obs = ex.observe_object(kitchen)

            def fresh_from(pid: int) -> hakuban.ObjectState:
                while True:
                    st = obs.recv(timeout=T)
                    if st.synchronized and st.json()["pid"] == pid:
                        return st

            a = start_exposer(router.url)
            procs.append(a)
            fresh_from(a.pid)
            b = start_exposer(router.url)  # a hot standby: a stays elected
            procs.append(b)
            last_a = fresh_from(a.pid)

            # the elected process dies: the standby takes over at once;
            # versions go on increasing
            kill(a)
            from_b = fresh_from(b.pid)
            assert from_b.version > last_a.version

            # the last exposer dies: observers keep its last state, marked
            # not synchronized, and learn why nothing comes
            kill(b)
            stale = obs.recv(timeout=T)
            while stale.synchronized:
                stale = obs.recv(timeout=T)
            assert stale.json()["pid"] == b.pid
            # (behind the router as in one process: nobody can expose it)
            wait_until(lambda: obs.status == hakuban.Status.WAITING_FOR_EXPOSER, T, "waiting_for_exposer")
            wait_until(lambda: stale.unsynchronized_age > 0.05, T, "the age to grow")

            # a new process is elected, and observers get fresh states again
            c = start_exposer(router.url)
            procs.append(c)
            from_c = fresh_from(c.pid)
            assert from_c.version > stale.version
    finally:
        for p in procs:
            if p.poll() is None:
                kill(p)


def test_new_exposer_reads_the_last_state_over_the_network(router: Router) -> None:
    kitchen = ObjectDescriptor({"room": "kitchen"}, tags=["temperatures"])
    observer, a, b = (hakuban.Exchange(n) for n in ("observer", "a", "b"))
    try:
        for ex in (observer, a, b):
            ex.connect(router.url).wait_connected(timeout=T)
        obs = observer.observe_object(kitchen)
        exposers = {a: a.expose_object(kitchen), b: b.expose_object(kitchen)}
        # The router elects whichever declaration it saw first.
        elected, sink = wait_until(lambda: next(((ex, s) for ex, c in exposers.items()
                                                 if (s := c.try_recv()) is not None), None),
                                   T, "an elected exposer")
        sink.send_json({"n": 7})
        assert obs.recv(timeout=T).json() == {"n": 7}
        elected.close()
        successor = exposers[b if elected is a else a]
        current = wait_until(successor.recv(timeout=T).current, 2.0, "the last state at the new exposer")
        assert current.json() == {"n": 7}
    finally:
        for ex in (observer, a, b):
            ex.close()


def test_python_exposer_c_observer_through_a_router(router: Router) -> None:
    if not C_OBSERVER.exists():
        pytest.skip("no C example observer (make test-c builds it)")
    a = start_exposer(router.url)
    try:
        r = subprocess.run([str(C_OBSERVER), router.url, "3"], capture_output=True, text=True,
                           timeout=60)
        assert r.returncode == 0, r.stderr
        lines = [ln for ln in r.stdout.splitlines() if "kitchen is" in ln]
        assert len(lines) >= 3 and f'"pid":{a.pid}' in lines[-1], r.stdout
    finally:
        a.kill()
        a.wait()


def test_library_log_goes_to_python_logging(exchange: hakuban.Exchange,
                                            caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="hakuban")
    hakuban.log_to_python()
    try:
        with exchange.connect(["ws://127.0.0.1:1/"], min_backoff=0.01, max_backoff=0.05):
            record = wait_until(lambda: next((r for r in caplog.records
                                              if "upstream link ended" in r.getMessage()), None),
                                T, "a log record")
        assert record.name == "hakuban" and record.levelno == logging.WARNING
        assert "connection refused" in record.getMessage()
    finally:
        hakuban.log_to_stderr()
    n = len(caplog.records)
    with exchange.connect(["ws://127.0.0.1:1/"], min_backoff=0.01) as c:
        c.wait(ConnectorState.DISCONNECTED, timeout=T)
    assert len(caplog.records) == n, "back on standard error"


def test_contract_refused_by_router_permissions(tmp_path: Path) -> None:
    """A router with an auth file refuses a contract outside the token's
    permissions: recv raises RefusedError (once) with the router's reason,
    the status is REFUSED, the contract stays open."""
    if not ROUTER.exists():
        pytest.skip("no build/hakuban-router (make router)")
    auth = tmp_path / "auth.json"
    auth.write_text(json.dumps({"clients": [
        {"name": "py-reader", "token": "py-token", "observe": {"tags": ["public"]}}]}))
    r = Router(tmp_path, "-auth-file", str(auth))
    try:
        with hakuban.Exchange("py-reader") as ex:
            ex.connect(r.url, token="py-token").wait_connected(timeout=T)
            with ex.observe_object(ObjectDescriptor("secret", tags=["private"])) as c:
                with pytest.raises(hakuban.RefusedError, match='permission denied: "py-reader"') as e:
                    c.recv(timeout=T)
                assert e.value.code == -13 and e.value.name == "ERR_REFUSED"
                assert c.status is hakuban.Status.REFUSED
                assert c.try_recv() is None
    finally:
        r.stop()


# ---------------------------------------------------------------------------
# Token permissions on a listener (auth=, set_auth): the router's auth file
# format, without a router

WRITER = {"name": "writer", "token": "w", "observe": "*", "expose": "*"}


def expect_refused(contract: hakuban.ObjectObserveContract) -> None:
    """recv raises RefusedError within T; states may come first (the last
    one, no longer synchronized)."""
    deadline = time.monotonic() + T
    while True:
        left = deadline - time.monotonic()
        assert left > 0, f"no refusal within {T} s"
        try:
            st = contract.recv(timeout=left)
        except hakuban.RefusedError:
            return
        except hakuban.Timeout:
            continue
        assert st.json() == "for everyone" and not st.synchronized


def test_listener_auth(exchange: hakuban.Exchange) -> None:
    """A listener with rules: the reader may observe tag "public" only.
    set_auth then takes that from the reader on its open link, rejects bad
    rules keeping the current ones, and finally drops the reader's token,
    which disconnects it for good while the writer stays."""
    writer, reader = hakuban.Exchange("writer"), hakuban.Exchange("reader")
    try:
        listener = exchange.listen("127.0.0.1:0", auth={"clients": [
            WRITER, {"name": "reader", "token": "r", "observe": {"tags": ["public"]}}]})
        cw = writer.connect(listener.url, token="w", min_backoff=0.02, max_backoff=0.2)
        cr = reader.connect(listener.url, token=b"r", min_backoff=0.02, max_backoff=0.2)
        cw.wait_connected(timeout=T)
        cr.wait_connected(timeout=T)

        pub = ObjectDescriptor("pub", tags=["public"])
        exp = writer.expose_object(pub)
        obs = reader.observe_object(pub)
        denied = reader.observe_object(ObjectDescriptor("priv", tags=["private"]))
        sink = exp.recv(timeout=T)
        sink.send_json("for everyone")
        st = obs.recv(timeout=T)
        assert st.json() == "for everyone" and st.synchronized
        with pytest.raises(hakuban.RefusedError, match='permission denied: "reader"'):
            denied.recv(timeout=T)
        assert denied.status is hakuban.Status.REFUSED

        # narrower rules (as JSON text) apply to the open link at once
        listener.set_auth(json.dumps({"clients": [WRITER, {"name": "reader", "token": "r"}]}))
        expect_refused(obs)
        assert obs.status is hakuban.Status.REFUSED

        # bad rules are rejected, and the narrowed ones stay: the reader is
        # still linked, and a new contract on a public object is refused too
        with pytest.raises(hakuban.InvalidConfigError, match="auth_json"):
            listener.set_auth('{"clients": 7}')
        with pytest.raises(hakuban.InvalidConfigError):
            listener.set_auth("{not json")
        with pytest.raises(hakuban.InvalidConfigError, match="not a JSON value"):
            listener.set_auth({"clients": {"a set"}})
        with reader.observe_object(ObjectDescriptor("pub2", tags=["public"])) as again:
            with pytest.raises(hakuban.RefusedError):
                again.recv(timeout=T)
        assert cr.state is ConnectorState.CONNECTED

        # the reader's token goes: its link closes with 4002 and is not
        # retried; the writer's stays, and still exposes
        listener.set_auth({"clients": [WRITER]})
        status = cr.wait(ConnectorState.REFUSED, timeout=T)
        assert "4002" in (status.last_error or ""), status
        with pytest.raises(hakuban.EndOfStream, match="REFUSED"):
            cr.wait_connected(timeout=T)
        assert cw.state is ConnectorState.CONNECTED
        local = exchange.observe_object(pub)
        sink = wait_until(lambda: exp.try_recv() or (not sink.revoked and sink), T,
                          "an assignment")
        sink.send_json("still here")
        st = local.recv(timeout=T)
        while st.json() != "still here":
            st = local.recv(timeout=T)
        assert st.synchronized and cw.state is ConnectorState.CONNECTED
    finally:
        reader.close()
        writer.close()


def test_listener_auth_none_and_bad_rules(exchange: hakuban.Exchange) -> None:
    """Rules refuse a client without a token (no "anonymous"); set_auth(None)
    lets everyone in again. Bad rules fail the listener at once (nothing
    stays bound), set_auth on a closed listener raises ClosedError."""
    with pytest.raises(hakuban.InvalidConfigError, match="auth_json"):
        exchange.listen("127.0.0.1:0", auth=[WRITER])  # JSON, but not an auth file
    with pytest.raises(hakuban.InvalidConfigError, match="auth_json"):
        exchange.listen("127.0.0.1:0", auth='{"clients": [{"token": "nameless"}]}')
    listener = exchange.listen("127.0.0.1:0", auth=b'{"clients": []}')
    with hakuban.Exchange("guest") as guest:
        c = guest.connect(listener.url, min_backoff=0.02, max_backoff=0.2)
        status = c.wait(ConnectorState.REFUSED, timeout=T)
        assert "4002" in (status.last_error or ""), status
        c.close()
        listener.set_auth(None)  # no rules: everyone may do everything
        guest.connect(listener.url, min_backoff=0.02).wait_connected(timeout=T)
    listener.close()
    with pytest.raises(hakuban.ClosedError):
        listener.set_auth(None)


def test_listener_auth_needs_a_library_that_knows_it(exchange: hakuban.Exchange,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """With a library older than listener rules (no
    hakuban_listener_new_with_auth or hakuban_listener_set_auth), rules raise
    LibraryError instead of being dropped."""
    monkeypatch.setattr(hakuban._lib.L, "has_listener_auth", False)
    with pytest.raises(hakuban.LibraryError, match="hakuban_listener_set_auth"):
        exchange.listen("127.0.0.1:0", auth={"clients": []})
    with exchange.listen("127.0.0.1:0") as listener:  # no rules: fine
        with pytest.raises(hakuban.LibraryError):
            listener.set_auth({"clients": []})
