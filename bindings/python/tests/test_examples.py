"""The examples run and print what their docstrings promise."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import hakuban
from conftest import PROJECT, REPO, subprocess_env, wait_until


@pytest.mark.parametrize("script, args, expect", [
    ("quickstart.py", ["--count", "3"], "{'celsius': 20.2}"),
    ("asyncio_quickstart.py", ["--count", "3"], "{'tick': 3} synchronized"),
    ("tags.py", [], "'failovers': 2"),
])
def test_example(script: str, args: "list[str]", expect: str) -> None:
    r = subprocess.run([sys.executable, str(PROJECT / "examples" / script), *args],
                       env=subprocess_env(), capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert expect in r.stdout, r.stdout


ROUTER = REPO / "build" / "hakuban-router"
C_EXPOSER = REPO / "build" / "examples" / "c" / "hakuban_example_exposer"


@pytest.mark.skipif(not ROUTER.exists() or not hakuban._lib.L.has_network,
                    reason="no build/hakuban-router (make router), or a library without network")
@pytest.mark.parametrize("exposer", ["python", "c"])
def test_observer_and_exposer_through_a_router(exposer: str, tmp_path: Path) -> None:
    if exposer == "c" and not C_EXPOSER.exists():
        pytest.skip("no C example exposer (make test-c builds it)")
    addr_file = tmp_path / "addr"
    router = subprocess.Popen([str(ROUTER), "-listen", "127.0.0.1:0", "-addr-file", str(addr_file),
                               "-log-level", "warn"], stderr=subprocess.DEVNULL)
    procs = [router]
    try:
        url = "ws://%s/" % wait_until(lambda: addr_file.exists() and addr_file.read_text().strip(),
                                      10, "the router's address").splitlines()[0]
        cmd = ([sys.executable, str(PROJECT / "examples" / "exposer.py"), url] if exposer == "python"
               else [str(C_EXPOSER), url])
        procs.append(subprocess.Popen(cmd, env=subprocess_env(), stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL))
        r = subprocess.run([sys.executable, str(PROJECT / "examples" / "observer.py"), url, "3"],
                           env=subprocess_env(), capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        lines = [ln for ln in r.stdout.splitlines() if ln.startswith("observer: kitchen is {'celsius'")]
        assert len(lines) == 3, r.stdout
    finally:
        for p in reversed(procs):
            p.terminate()
            p.wait(10)
