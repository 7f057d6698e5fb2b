"""pip installs the package offline (--no-index) through the in-tree
backend: a regular install, an editable one, and a wheel built with go."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path
from typing import Dict, List

import pytest

from conftest import PROJECT, SRC

ROUND_TRIP = """
import hakuban
ex = hakuban.Exchange()
obs = ex.observe_object({"installed": True})
sink = ex.expose_object({"installed": True}).recv(timeout=5)
sink.send(hakuban.ObjectState.from_json("ok"))
print(hakuban.__file__)
print(hakuban.library_path())
print(obs.recv(timeout=5).json())
"""


def _clean_env(**extra: str) -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "HAKUBAN_LIBRARY", "HAKUBAN_PREBUILT_LIBRARY")}
    env["PIP_NO_INDEX"] = "1"  # offline: pip must not need any index
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env.update(extra)
    return env


def _pip(args: List[str], env: Dict[str, str]) -> None:
    r = subprocess.run([sys.executable, "-m", "pip", *args], env=env, capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, f"pip {' '.join(args)} failed:\n{r.stdout}\n{r.stderr}"


def test_pip_install_offline(tmp_path: Path) -> None:
    target = tmp_path / "site"
    env = _clean_env(HAKUBAN_PREBUILT_LIBRARY=os.environ["HAKUBAN_LIBRARY"])
    _pip(["install", "--no-index", "--target", str(target), str(PROJECT)], env)
    assert (target / "hakuban" / "libhakuban.so").is_file()
    assert (target / "hakuban" / "py.typed").is_file()
    r = subprocess.run([sys.executable, "-c", ROUND_TRIP], cwd=tmp_path, capture_output=True,
                       text=True, env=_clean_env(PYTHONPATH=str(target)), timeout=60)
    assert r.returncode == 0, r.stderr
    module, library, value = r.stdout.splitlines()
    assert module == str(target / "hakuban" / "__init__.py")
    assert library == str(target / "hakuban" / "libhakuban.so")
    assert value == "ok"


def test_pip_install_editable(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    env = _clean_env(HAKUBAN_PREBUILT_LIBRARY=os.environ["HAKUBAN_LIBRARY"])
    _pip(["--python", str(python), "install", "--no-index", "-e", str(PROJECT)], env)
    r = subprocess.run([str(python), "-c", ROUND_TRIP], cwd=tmp_path, capture_output=True,
                       text=True, env=_clean_env(), timeout=60)
    assert r.returncode == 0, r.stderr
    module, library, value = r.stdout.splitlines()
    assert module == str(SRC / "hakuban" / "__init__.py"), "imports the source tree"
    assert library == str(SRC / "hakuban" / "libhakuban.so")
    assert value == "ok"


@pytest.mark.skipif(shutil.which("go") is None, reason="needs go to build the library")
def test_pip_wheel_builds_the_library_with_go(tmp_path: Path) -> None:
    _pip(["wheel", "--no-index", "--no-deps", "-w", str(tmp_path), str(PROJECT)], _clean_env())
    (wheel,) = tmp_path.glob("hakuban-*.whl")
    assert wheel.name.endswith("-py3-none-linux_x86_64.whl") or "linux" in wheel.name
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        record = zf.read("hakuban-0.1.0.dist-info/RECORD").decode()
    assert {"hakuban/libhakuban.so", "hakuban/py.typed", "hakuban/__init__.py"} <= names
    assert all(name in record for name in names)


def test_sdist(tmp_path: Path) -> None:
    sys.path.insert(0, str(PROJECT / "build_backend"))
    try:
        import hakuban_build
    finally:
        sys.path.pop(0)
    name = hakuban_build.build_sdist(str(tmp_path))
    with tarfile.open(tmp_path / name) as tar:
        names = set(tar.getnames())
    assert {"hakuban-0.1.0/pyproject.toml", "hakuban-0.1.0/PKG-INFO",
            "hakuban-0.1.0/src/hakuban/__init__.py",
            "hakuban-0.1.0/build_backend/hakuban_build.py"} <= names
    assert not any(n.endswith(".so") for n in names)
