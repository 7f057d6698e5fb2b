"""Process-level behaviour, each in a child Python: Ctrl-C while waiting,
fork after loading, lazy loading, a wrong or missing library."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from typing import Dict, Optional

import pytest

import hakuban

from conftest import subprocess_env, wait_until

POLL, FUTEX, EPOLL_WAIT, PPOLL, EPOLL_PWAIT, EPOLL_PWAIT2 = 7, 202, 232, 271, 281, 441  # x86_64


def run_script(code: str, env: Optional[Dict[str, str]] = None,
               timeout: float = 30) -> subprocess.CompletedProcess:  # type: ignore[type-arg]
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=subprocess_env(env),
                          capture_output=True, text=True, timeout=timeout)


def _blocked_in(pid: int, syscalls: "set[int]") -> bool:
    """Whether the main thread of pid sleeps in one of the syscalls."""
    try:
        with open(f"/proc/{pid}/task/{pid}/syscall") as f:
            fields = f.read().split()
    except OSError:
        return False
    return bool(fields) and fields[0].isdigit() and int(fields[0]) in syscalls


WAITS = {
    "recv": ("obs.recv()", {POLL, PPOLL}),
    "iterate": ("for _ in obs: pass", {POLL, PPOLL}),
    "recv_timeout": ("obs.recv(timeout=3600)", {POLL, PPOLL}),
    "wait_revoked": ("sink.wait_revoked()", {FUTEX}),
    "asyncio": ("asyncio.run(obs.recv_async())", {EPOLL_WAIT, EPOLL_PWAIT, EPOLL_PWAIT2}),
}


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("how", sorted(WAITS))
def test_ctrl_c_interrupts_a_wait_within_half_a_second(how: str) -> None:
    call, syscalls = WAITS[how]
    code = textwrap.dedent(f"""
        import asyncio, sys, time, hakuban
        ex = hakuban.Exchange()
        obs = ex.observe_object("never exposed")
        o2 = ex.observe_object("exposed")
        sink = ex.expose_object("exposed").recv(timeout=10)
        print("ready", flush=True)
        try:
            {call}
        except KeyboardInterrupt:
            print("KeyboardInterrupt", time.monotonic(), flush=True)
            sys.exit(42)
        print("returned without an interrupt", flush=True)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], env=subprocess_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        # Interrupt only once the main thread really sleeps in the wait.
        wait_until(lambda: _blocked_in(proc.pid, syscalls), 10, f"the child to block in {how}")
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=10)
        elapsed = time.monotonic() - sent
        out = proc.stdout.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 42 and "KeyboardInterrupt" in out, (proc.returncode, out,
                                                                  proc.stderr.read())  # type: ignore[union-attr]
    # CLOCK_MONOTONIC is system-wide: the child's clock reading is comparable
    interrupted = float(out.split()[1]) - sent
    assert interrupted < 0.5 and elapsed < 0.5, \
        f"KeyboardInterrupt after {interrupted:.3f} s, exit after {elapsed:.3f} s"


def test_forked_child_gets_a_clear_error() -> None:
    r = run_script("""
        import os, sys, time, hakuban
        ex = hakuban.Exchange()
        obs = ex.observe_object("x")
        pid = os.fork()
        if pid == 0:
            results = []
            for use in (hakuban.Exchange, obs.try_recv, lambda: hakuban.ObjectDescriptor(1)):
                try:
                    use()
                    results.append("no error")
                except hakuban.ForkedChildError as e:
                    results.append("ForkedChildError" if "fork" in str(e) else str(e))
                except BaseException as e:
                    results.append(repr(e))
            print("child:", ",".join(results), flush=True)
            sys.exit(0)  # a normal exit: finalizers must not call the library
        deadline = time.monotonic() + 10
        while os.waitpid(pid, os.WNOHANG) == (0, 0):
            if time.monotonic() > deadline:
                os.kill(pid, 9)
                print("child hung")
                sys.exit(1)
            time.sleep(0.01)
        # the parent is unaffected
        sink = ex.expose_object("x").recv(timeout=5)
        sink.send(b"parent")
        assert obs.recv(timeout=5).data == b"parent"
        print("parent ok")
    """)
    assert r.returncode == 0, r.stderr
    assert "child: ForkedChildError,ForkedChildError,ForkedChildError" in r.stdout, r.stdout
    assert "parent ok" in r.stdout


def test_fork_before_loading_is_fine() -> None:
    r = run_script("""
        import os, sys, hakuban
        pid = os.fork()
        ex = hakuban.Exchange()
        obs = ex.observe_object("x")
        ex.expose_object("x").recv(timeout=5).send(b"ok")
        line = ("parent " if pid else "child ") + obs.recv(timeout=5).data.decode() + "\\n"
        os.write(1, line.encode())  # one write: the two processes share stdout
        if pid:
            _, status = os.waitpid(pid, 0)
            sys.exit(os.waitstatus_to_exitcode(status))
    """)
    assert r.returncode == 0, r.stderr
    assert sorted(r.stdout.split("\n")[:2]) == ["child ok", "parent ok"]


def test_multiprocessing_fork_child_gets_the_error() -> None:
    r = run_script("""
        import multiprocessing as mp, hakuban
        def child(q):
            try:
                hakuban.Exchange()
                q.put("no error")
            except hakuban.ForkedChildError:
                q.put("ForkedChildError")
        if __name__ == "__main__":
            ex = hakuban.Exchange()
            ctx = mp.get_context("fork")
            q = ctx.Queue()
            p = ctx.Process(target=child, args=(q,))
            p.start()
            print(q.get(timeout=10))
            p.join(10)
    """)
    assert r.stdout.strip() == "ForkedChildError", (r.stdout, r.stderr)


def test_import_does_not_load_the_library() -> None:
    r = run_script("""
        import hakuban
        def threads():
            for line in open("/proc/self/status"):
                if line.startswith("Threads:"):
                    return int(line.split()[1])
        print(hakuban._lib.loaded() is None, threads())
        hakuban.version()
        print(hakuban._lib.loaded() is not None, threads())
    """)
    assert r.returncode == 0, r.stderr
    before, after = r.stdout.split("\n")[:2]
    assert before == "True 1", "import hakuban loaded the library or started threads"
    assert after.startswith("True ") and int(after.split()[1]) > 1


def test_wrong_abi_is_refused() -> None:
    r = run_script("""
        import hakuban
        hakuban._lib.EXPECTED_ABI_VERSION = 99
        try:
            hakuban.Exchange()
        except hakuban.LibraryError as e:
            print(e)
    """)
    assert "ABI version 0, this binding needs 99" in r.stdout, (r.stdout, r.stderr)


def test_missing_library_is_a_clear_error() -> None:
    r = run_script("""
        import hakuban
        try:
            hakuban.ObjectDescriptor(1)
        except hakuban.LibraryError as e:
            print(e)
    """, env={"HAKUBAN_LIBRARY": "/nonexistent/libhakuban.so"})
    assert "libhakuban not found at /nonexistent/libhakuban.so" in r.stdout, (r.stdout, r.stderr)
    assert "HAKUBAN_LIBRARY" in r.stdout


def test_environment_overrides_the_packaged_library(tmp_path: "os.PathLike[str]") -> None:
    lib = os.environ["HAKUBAN_LIBRARY"]
    link = os.path.join(str(tmp_path), "libhakuban-copy.so")
    os.symlink(lib, link)
    r = run_script("import hakuban; hakuban.version(); print(hakuban.library_path())",
                   env={"HAKUBAN_LIBRARY": link})
    assert r.stdout.strip() == link, r.stderr


def test_exit_with_a_daemon_thread_waiting_is_clean() -> None:
    r = run_script("""
        import threading, hakuban
        ex = hakuban.Exchange()
        obs = ex.observe_object(1)
        sink = ex.expose_object(1).recv(timeout=5)
        sink.send(b"x")
        kept = obs.recv(timeout=5)  # a state alive at exit
        waiting = ex.observe_object(2)
        t = threading.Thread(target=lambda: list(waiting), daemon=True)
        t.start()
        print("exiting", flush=True)
    """)
    assert r.returncode == 0 and r.stdout.strip() == "exiting"
    assert r.stderr == "", r.stderr


def test_exit_while_the_library_logs_to_python() -> None:
    if not hakuban._lib.L.has_network:
        pytest.skip("needs the connector to make log records")
    r = run_script("""
        import logging, hakuban
        logging.basicConfig(level=logging.WARNING, format="%(name)s %(message)s")
        hakuban.log_to_python()
        ex = hakuban.Exchange()
        c = ex.connect("ws://127.0.0.1:1/", min_backoff=0.001, max_backoff=0.002)
        c.wait(hakuban.ConnectorState.DISCONNECTED, timeout=10)
        print("exiting", flush=True)  # records keep coming while we exit
    """)
    assert r.returncode == 0 and r.stdout.strip() == "exiting", r.stderr
    assert "upstream link ended" in r.stderr and "Traceback" not in r.stderr
