"""The examples run and print what their docstrings promise."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import PROJECT, subprocess_env


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
