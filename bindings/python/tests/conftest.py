"""Shared fixtures. The tests import hakuban from src/ and load the library
named by $HAKUBAN_LIBRARY (`make test-python` sets both); run directly, they
fall back to the library `make lib` builds."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, Optional

import pytest

PROJECT = Path(__file__).resolve().parent.parent  # bindings/python
REPO = PROJECT.parent.parent
SRC = PROJECT / "src"
HEADER = REPO / "include" / "hakuban.h"

for path in (SRC, PROJECT):  # the package, and bench.py for the tests that use it
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))
if not os.environ.get("HAKUBAN_LIBRARY"):
    for candidate in (REPO / "build" / "python" / "libhakuban.so",
                      REPO / "build" / "lib" / "libhakuban.so"):
        if candidate.exists():
            os.environ["HAKUBAN_LIBRARY"] = str(candidate)
            break

import hakuban  # noqa: E402


def wait_until(predicate: Callable[[], Any], timeout: float = 5.0, what: str = "condition") -> Any:
    """Polls predicate until it returns something true, or fails after
    timeout seconds (the test-side twin of nats-server's checkFor)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.001)


def subprocess_env(extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """The environment for a child Python that imports hakuban from src/."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(SRC) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("PYTHONFAULTHANDLER", None)
    if extra:
        env.update(extra)
    return env


@pytest.fixture
def exchange() -> Iterator[hakuban.Exchange]:
    ex = hakuban.Exchange("test")
    try:
        yield ex
    finally:
        ex.close()


def pytest_report_header(config: Any) -> str:
    return f"hakuban library: {os.environ.get('HAKUBAN_LIBRARY', '(inside the package)')}"
