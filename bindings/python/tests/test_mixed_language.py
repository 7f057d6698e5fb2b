"""A C exposer and a Python observer on one exchange (in one process, until
the C API can connect processes through a router): bench_exposer.c writes
through the C API on its own native thread, Python reads."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import hakuban

CC = shutil.which("cc") or shutil.which("gcc")


@pytest.mark.skipif(CC is None, reason="needs a C compiler")
def test_c_exposer_python_observer(tmp_path: Path) -> None:
    import bench  # bindings/python/bench.py builds and drives the C exposer

    helper = bench.build_native_exposer(str(tmp_path))
    assert helper is not None
    with hakuban.Exchange("mixed") as ex:
        obs = ex.observe_object("from C")
        sink = ex.expose_object("from C").recv(timeout=5)
        assert helper.bench_exposer_start(bench._fn("hakuban_object_state_new"),
                                          bench._fn("hakuban_object_state_sink_send"),
                                          bench._fn("hakuban_object_state_drop"),
                                          sink._h, 64, 2000) == 0
        try:
            versions = []
            for state in obs:
                assert state.data == b"x" * 64 and state.synchronized and state.format == ()
                versions.append(state.version)
                if len(versions) == 20:
                    break
        finally:
            sent = helper.bench_exposer_stop()
        assert sent >= 20
        assert versions == sorted(versions) and len(set(versions)) == 20
        # the C thread stops when the assignment ends: Python revokes it
        obs.close()
        assert sink.wait_revoked(timeout=5)
