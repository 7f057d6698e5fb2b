"""Benchmarks of the Python binding (``make bench-python``).

receive
    States per second a Python observer receives (``recv()`` and reading
    ``.data``) while states are always pending: an exposer fills 1,000
    objects with 64-byte states, the observer takes one from each, round
    after round; only the taking is timed.
live
    The same from a fast exposer writing one object without pause: native
    code (bench_exposer.c, compiled here with the C compiler cgo uses) on its
    own thread in the same process. A Python exposer thread would share the
    GIL with the observer (see below). This number needs both threads to run
    at once, which a shared 2-CPU machine often does not give: it varies a
    lot.
over a link
    The same native exposer in another process, linked to the observer's
    exchange over a loopback WebSocket (listener and connector).
send
    The cost of one ``sink.send(ObjectState(data))`` with 64-byte data while
    an observer contract is open (so every send is delivered), and of the
    shortcut ``sink.send(data)``.
Python exposer (informational)
    The receive benchmark with the exposer in a Python thread of the same
    process: shows the GIL hand-over limit described above.

Every measurement runs RUNS times; medians are reported. Targets (issue 4):
receive >= 200,000 states/s, send <= 3 us.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable, List, Optional

import hakuban
from hakuban import ObjectState, _lib

DATA = b"x" * 64
HERE = Path(__file__).resolve().parent


def build_native_exposer(tmp: str) -> Optional[ctypes.CDLL]:
    lib, _ = build_native_exposer_path(tmp)
    return lib


def build_native_exposer_path(tmp: str) -> "tuple[Optional[ctypes.CDLL], str]":
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if not cc:
        return None, ""
    out = os.path.join(tmp, "bench_exposer.so")
    r = subprocess.run([cc, "-O2", "-shared", "-fPIC", "-pthread", "-o", out,
                        str(HERE / "bench_exposer.c")], capture_output=True, text=True)
    if r.returncode != 0:
        print(f"cannot compile bench_exposer.c: {r.stderr.strip()}")
        return None, ""
    lib = ctypes.CDLL(out)
    lib.bench_exposer_start.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p,
                                        ctypes.c_uint64, ctypes.c_size_t, ctypes.c_uint64]
    lib.bench_exposer_start.restype = ctypes.c_int
    lib.bench_exposer_stop.argtypes = []
    lib.bench_exposer_stop.restype = ctypes.c_int64
    return lib, out


def _fn(name: str) -> int:
    return ctypes.cast(getattr(_lib.L, name), ctypes.c_void_p).value or 0


def observe(obs: hakuban.ObjectObserveContract, duration: float) -> float:
    """Receives for duration seconds; returns states per second."""
    received = 0
    start = time.perf_counter()
    end = start + duration
    for state in obs:
        state.data  # read it, as a real observer would
        received += 1
        if received & 255 == 0 and time.perf_counter() >= end:
            break
    return received / (time.perf_counter() - start)


def bench_receive_native(helper: ctypes.CDLL, duration: float, rate: int) -> "tuple[float, float]":
    """(received/s, sent/s) with the native exposer."""
    with hakuban.Exchange("bench") as ex:
        obs = ex.observe_object("bench-receive")
        sink = ex.expose_object("bench-receive").recv(timeout=5)
        rc = helper.bench_exposer_start(_fn("hakuban_object_state_new"),
                                        _fn("hakuban_object_state_sink_send"),
                                        _fn("hakuban_object_state_drop"), sink._h, len(DATA),
                                        rate)
        assert rc == 0, f"pthread_create: {rc}"
        start = time.perf_counter()
        try:
            rate = observe(obs, duration)
        finally:
            sent = helper.bench_exposer_stop()
        elapsed = time.perf_counter() - start
        assert sent >= 0, f"the native exposer failed with code {sent}"
        return rate, sent / elapsed


def bench_receive_capacity(duration: float, objects: int = 1000) -> float:
    """States per second of observer time when states are always pending:
    an exposer fills `objects` objects, then the observer takes one state
    from each (recv + .data + freeing the state), round after round. Only
    the taking is timed, so the number does not depend on two threads
    running at once (which a shared 2-CPU machine often does not give)."""
    with hakuban.Exchange("bench") as ex:
        descriptors = [hakuban.ObjectDescriptor(i, tags=["bench"]) for i in range(objects)]
        contracts = [ex.observe_object(d) for d in descriptors]
        tag = ex.expose_tag("bench")
        sinks = [tag.recv(timeout=5) for _ in descriptors]
        received = 0
        spent = 0.0
        while spent < duration:
            for sink in sinks:
                sink.send(DATA)
            start = time.perf_counter()
            for c in contracts:
                c.recv().data
            spent += time.perf_counter() - start
            received += objects
        return received / spent


NETWORK_EXPOSER = """
import ctypes, sys, time, hakuban
from hakuban import _lib
helper = ctypes.CDLL(sys.argv[2])
helper.bench_exposer_start.argtypes = [ctypes.c_void_p] * 3 + [ctypes.c_uint64, ctypes.c_size_t,
                                                               ctypes.c_uint64]
helper.bench_exposer_stop.restype = ctypes.c_int64
fn = lambda name: ctypes.cast(getattr(_lib.L, name), ctypes.c_void_p).value
with hakuban.Exchange("bench-exposer") as ex:
    ex.connect(sys.argv[1]).wait_connected(timeout=10)
    sink = ex.expose_object("bench-network").recv(timeout=10)
    helper.bench_exposer_start(fn("hakuban_object_state_new"), fn("hakuban_object_state_sink_send"),
                               fn("hakuban_object_state_drop"), sink._h, 64, 0)
    start = time.perf_counter()
    sys.stdin.read()  # until the benchmark closes our stdin
    sent = helper.bench_exposer_stop()
    print(sent / (time.perf_counter() - start), flush=True)
"""


def bench_receive_network(helper_path: str, duration: float) -> "tuple[float, float]":
    """(received/s, sent/s): the native exposer in another process, linked to
    the observer's exchange over a loopback WebSocket (listener/connector)."""
    with hakuban.Exchange("bench") as ex:
        listener = ex.listen("127.0.0.1:0")
        obs = ex.observe_object("bench-network")
        proc = subprocess.Popen([sys.executable, "-c", NETWORK_EXPOSER, listener.url, helper_path],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            obs.recv(timeout=20)  # the link is up and states flow
            rate = observe(obs, duration)
        finally:
            out, _ = proc.communicate("", timeout=30)
        return rate, float(out.strip() or 0)


def bench_receive_python(duration: float) -> "tuple[float, float]":
    """(received/s, sent/s) with an exposer in a Python thread."""
    with hakuban.Exchange("bench") as ex:
        obs = ex.observe_object("bench-receive-py")
        sink = ex.expose_object("bench-receive-py").recv(timeout=5)
        stop = threading.Event()
        sent = 0

        def expose() -> None:
            nonlocal sent
            send = sink.send
            while not stop.is_set():
                for _ in range(100):
                    send(ObjectState(DATA))
                sent += 100

        t = threading.Thread(target=expose)
        start = time.perf_counter()
        t.start()
        rate = observe(obs, duration)
        stop.set()
        t.join()
        return rate, sent / (time.perf_counter() - start)


def bench_send(n: int, make: Callable[[], object]) -> float:
    """Seconds per send."""
    with hakuban.Exchange("bench") as ex:
        obs = ex.observe_object("bench-send")  # noqa: F841 - keeps the object observed
        sink = ex.expose_object("bench-send").recv(timeout=5)
        send = sink.send
        for _ in range(1000):
            send(make())  # type: ignore[arg-type]
        start = time.perf_counter()
        for _ in range(n):
            send(make())  # type: ignore[arg-type]
        elapsed = time.perf_counter() - start
        return elapsed / n


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--duration", type=float, default=2.0, help="seconds per receive run")
    p.add_argument("--sends", type=int, default=200_000, help="sends per send run")
    p.add_argument("--rate", type=int, default=0,
                   help="states/s the native exposer offers (0: as fast as it can)")
    args = p.parse_args()

    print(f"hakuban {hakuban.version()} from {hakuban.library_path()}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.2f}")
    med = statistics.median
    capacity: List[float] = []
    native: List[float] = []
    native_sent: List[float] = []
    py: List[float] = []
    py_sent: List[float] = []
    sends: List[float] = []
    sends_bytes: List[float] = []
    network: List[float] = []
    network_sent: List[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        helper, helper_path = build_native_exposer_path(tmp)
        for run in range(1, args.runs + 1):
            capacity.append(bench_receive_capacity(args.duration))
            line = f"run {run}: receive {capacity[-1]:,.0f}/s;"
            if helper is not None:
                r, s = bench_receive_native(helper, args.duration, args.rate)
                native.append(r)
                native_sent.append(s)
                line += f" live {r:,.0f}/s (native exposer sent {s:,.0f}/s);"
                if hakuban._lib.L.has_network:
                    r, s = bench_receive_network(helper_path, args.duration)
                    network.append(r)
                    network_sent.append(s)
                    line += f" over a link {r:,.0f}/s (sent {s:,.0f}/s);"
            sends.append(bench_send(args.sends, lambda: ObjectState(DATA)))
            sends_bytes.append(bench_send(args.sends, lambda: DATA))
            r, s = bench_receive_python(args.duration)
            py.append(r)
            py_sent.append(s)
            print(f"{line} send {sends[-1] * 1e6:.2f} us, send(bytes) {sends_bytes[-1] * 1e6:.2f} us;"
                  f" Python exposer: {r:,.0f}/s (sent {s:,.0f}/s)", flush=True)

    print(f"\nmedians of {args.runs} runs, 64-byte states, load average now "
          f"{os.getloadavg()[0]:.2f}:")
    ok = "OK" if med(capacity) >= 200_000 else "BELOW TARGET"
    print(f"  observer receives (recv + .data)  {med(capacity):>10,.0f} states/s  "
          f"(target >= 200,000: {ok})")
    if native:
        print(f"  live, from the native exposer     {med(native):>10,.0f} states/s  "
              f"(it sent {med(native_sent):,.0f}/s; both threads must run at once)")
    if network:
        print(f"  live, exposer process over a link {med(network):>10,.0f} states/s  "
              f"(it sent {med(network_sent):,.0f}/s; loopback WebSocket, latest wins)")
    ok = "OK" if med(sends) <= 3e-6 else "ABOVE TARGET"
    print(f"  sink.send(ObjectState(data))      {med(sends) * 1e6:>10.2f} us        "
          f"(target <= 3 us: {ok})")
    print(f"  sink.send(data)                   {med(sends_bytes) * 1e6:>10.2f} us")
    print(f"  from a Python exposer thread      {med(py):>10,.0f} states/s  "
          f"(it sent {med(py_sent):,.0f}/s: the GIL hand-over limit, informational)")


if __name__ == "__main__":
    main()
