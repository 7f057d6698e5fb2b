"""hakuban's in-tree PEP 517 build backend: no build requirements at all.

Why not setuptools: a wheel that ships a .so needs setuptools *and* the
``wheel`` package, which a fresh machine without network may not have. This
backend needs only the standard library, so ``pip install ./bindings/python``
(and ``pip install -e``, ``pip wheel``) work offline.

Where the library comes from, first match wins:

1. ``HAKUBAN_PREBUILT_LIBRARY`` (or ``--config-settings prebuilt-library=``):
   the path of a built libhakuban.so;
2. ``go build -buildmode=c-shared ./capi`` when this package sits in the
   hakuban source tree and ``go`` is on PATH (or ``$HAKUBAN_GO`` names it);
   the Go modules must be in the module cache for an offline build;
3. a library already built in the tree: ``build/lib/libhakuban.so*``,
   ``build/libhakuban.so*``, ``build/python/libhakuban.so``.

The library's ABI version is checked (in a subprocess) before it is packaged.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import zipfile
from pathlib import Path
from typing import Dict, List, Optional, Tuple

NAME = "hakuban"
HERE = Path(__file__).resolve().parent
PROJECT = HERE.parent  # bindings/python
SRC = PROJECT / "src" / NAME
LIBRARY_FILE = "libhakuban.so"


def _read(pattern: str, path: Path) -> str:
    m = re.search(pattern, path.read_text(encoding="utf-8"), re.M)
    if not m:
        raise RuntimeError(f"hakuban build: cannot find {pattern!r} in {path}")
    return m.group(1)


def _version() -> str:
    return _read(r'^__version__ = "([^"]+)"', SRC / "__init__.py")


def _expected_abi() -> int:
    return int(_read(r"^EXPECTED_ABI_VERSION = (\d+)", SRC / "_lib.py"))


def _repo() -> Optional[Path]:
    """The hakuban source tree this package sits in, if it does."""
    repo = PROJECT.parent.parent
    if (repo / "go.mod").is_file() and (repo / "capi").is_dir():
        return repo
    return None


def _log(msg: str) -> None:
    print(f"hakuban build: {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------
# The library


def _check_abi(lib: Path) -> None:
    code = ("import ctypes, sys; l = ctypes.CDLL(sys.argv[1]); "
            "l.hakuban_abi_version.restype = ctypes.c_uint32; print(l.hakuban_abi_version())")
    # A subprocess: loading the Go runtime into pip's own process would make
    # any later fork in it hang.
    r = subprocess.run([sys.executable, "-c", code, str(lib)], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"hakuban build: cannot load {lib}: {r.stderr.strip()}")
    got, want = int(r.stdout.strip()), _expected_abi()
    if got != want:
        raise RuntimeError(f"hakuban build: {lib} has ABI version {got}, this binding "
                           f"needs {want}")


def _go_build(repo: Path, out: Path) -> None:
    go = os.environ.get("HAKUBAN_GO") or shutil.which("go")
    assert go
    abi = _read(r"^#define HAKUBAN_ABI_VERSION (\d+)", repo / "include" / "hakuban.h")
    extld = f"-Wl,-soname,libhakuban.so.{abi}"
    vscript = repo / "capi" / "hakuban.map"
    if vscript.is_file():
        extld += f",--version-script={vscript}"
    cmd = [go, "build", "-buildmode=c-shared", "-trimpath", f"-ldflags=-extldflags={extld}",
           "-o", str(out), "./capi"]
    _log(f"building the library: {' '.join(cmd)} (in {repo})")
    r = subprocess.run(cmd, cwd=repo)
    if r.returncode != 0:
        raise RuntimeError(
            "hakuban build: `go build` of the library failed (see above). Offline, the Go "
            "modules must already be in the module cache; or build libhakuban.so elsewhere "
            "and set HAKUBAN_PREBUILT_LIBRARY to its path")


def _prebuilt_in_tree(repo: Path) -> Optional[Path]:
    build = repo / "build"
    for pattern in ("lib/libhakuban.so", "lib/libhakuban.so.*", "libhakuban.so",
                    "libhakuban.so.*", "python/libhakuban.so"):
        for p in sorted(build.glob(pattern)):
            if p.is_file():
                return p
    return None


def _obtain_library(dest: Path, config_settings: Optional[Dict[str, str]]) -> None:
    """Puts a checked libhakuban.so at dest."""
    prebuilt = (config_settings or {}).get("prebuilt-library") or \
        os.environ.get("HAKUBAN_PREBUILT_LIBRARY")
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp_lib = Path(tmp) / LIBRARY_FILE
        repo = _repo()
        if prebuilt:
            src = Path(prebuilt)
            if not src.is_file():
                raise RuntimeError(f"hakuban build: HAKUBAN_PREBUILT_LIBRARY={prebuilt} "
                                   "is not a file")
            _log(f"using the prebuilt library {src}")
            shutil.copyfile(src, tmp_lib)
        elif repo is not None and (os.environ.get("HAKUBAN_GO") or shutil.which("go")):
            _go_build(repo, tmp_lib)
        else:
            found = _prebuilt_in_tree(repo) if repo is not None else None
            if found is None:
                raise RuntimeError(
                    "hakuban build: no libhakuban.so. Set HAKUBAN_PREBUILT_LIBRARY to a built "
                    "library, or install Go so the build can compile it from the hakuban "
                    "source tree (this package must then stay inside that tree)")
            _log(f"no Go on PATH: using the library built in the tree, {found}")
            shutil.copyfile(found, tmp_lib)
        _check_abi(tmp_lib)
        shutil.copyfile(tmp_lib, dest)
        os.chmod(dest, 0o755)


# ---------------------------------------------------------------------------
# Wheels


def _platform_tag() -> str:
    return re.sub(r"[-.]", "_", sysconfig.get_platform())


def _dist_info_name() -> str:
    return f"{NAME}-{_version()}.dist-info"


def _metadata() -> str:
    readme = PROJECT / "README.md"
    body = readme.read_text(encoding="utf-8") if readme.is_file() else ""
    return (
        "Metadata-Version: 2.1\n"
        f"Name: {NAME}\n"
        f"Version: {_version()}\n"
        "Summary: Share data objects between processes: expose, observe, elect, fail over "
        "(ctypes binding of libhakuban)\n"
        "License: see LICENSE in the hakuban source tree\n"
        "Requires-Python: >=3.8\n"
        "Classifier: Programming Language :: Python :: 3\n"
        "Classifier: Operating System :: POSIX :: Linux\n"
        "Classifier: Typing :: Typed\n"
        "Description-Content-Type: text/markdown\n"
        "\n" + body)


def _wheel_file() -> str:
    return ("Wheel-Version: 1.0\n"
            f"Generator: hakuban_build {_version()}\n"
            "Root-Is-Purelib: false\n"
            f"Tag: py3-none-{_platform_tag()}\n")


def _dist_info_files() -> List[Tuple[str, bytes]]:
    di = _dist_info_name()
    return [(f"{di}/METADATA", _metadata().encode()),
            (f"{di}/WHEEL", _wheel_file().encode()),
            (f"{di}/top_level.txt", f"{NAME}\n".encode())]


def _write_wheel(wheel_directory: str, files: List[Tuple[str, bytes]]) -> str:
    name = f"{NAME}-{_version()}-py3-none-{_platform_tag()}.whl"
    files = files + _dist_info_files()
    record_lines = []
    for arcname, data in files:
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record_lines.append(f"{arcname},sha256={digest},{len(data)}")
    record = f"{_dist_info_name()}/RECORD"
    record_lines.append(f"{record},,")
    files.append((record, ("\n".join(record_lines) + "\n").encode()))
    path = Path(wheel_directory) / name
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for arcname, data in files:
            info = zipfile.ZipInfo(arcname, date_time=(2020, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            mode = 0o755 if arcname.endswith(".so") else 0o644
            info.external_attr = (0o100000 | mode) << 16
            zf.writestr(info, data)
    return name


def _package_files() -> List[Tuple[str, bytes]]:
    files = []
    for p in sorted(SRC.rglob("*")):
        if not p.is_file() or "__pycache__" in p.parts or p.suffix == ".pyc":
            continue
        if p.name == LIBRARY_FILE:
            continue  # left there by an editable install; the wheel gets a fresh one
        files.append((f"{NAME}/{p.relative_to(SRC).as_posix()}", p.read_bytes()))
    return files


def _write_metadata_dir(metadata_directory: str) -> str:
    di = Path(metadata_directory) / _dist_info_name()
    di.mkdir(parents=True, exist_ok=True)
    for arcname, data in _dist_info_files():
        (Path(metadata_directory) / arcname).write_bytes(data)
    return di.name


# ---------------------------------------------------------------------------
# PEP 517 / PEP 660 hooks


def get_requires_for_build_wheel(config_settings: Optional[Dict[str, str]] = None) -> List[str]:
    return []


def get_requires_for_build_sdist(config_settings: Optional[Dict[str, str]] = None) -> List[str]:
    return []


def get_requires_for_build_editable(config_settings: Optional[Dict[str, str]] = None) -> List[str]:
    return []


def prepare_metadata_for_build_wheel(metadata_directory: str,
                                     config_settings: Optional[Dict[str, str]] = None) -> str:
    return _write_metadata_dir(metadata_directory)


def prepare_metadata_for_build_editable(metadata_directory: str,
                                        config_settings: Optional[Dict[str, str]] = None) -> str:
    return _write_metadata_dir(metadata_directory)


def build_wheel(wheel_directory: str, config_settings: Optional[Dict[str, str]] = None,
                metadata_directory: Optional[str] = None) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        lib = Path(tmp) / LIBRARY_FILE
        _obtain_library(lib, config_settings)
        files = _package_files() + [(f"{NAME}/{LIBRARY_FILE}", lib.read_bytes())]
    return _write_wheel(wheel_directory, files)


def build_editable(wheel_directory: str, config_settings: Optional[Dict[str, str]] = None,
                   metadata_directory: Optional[str] = None) -> str:
    # The package is imported from src/ through a .pth file; the library is
    # put next to the sources (ignored by git), where importlib.resources
    # finds it. Rebuild (pip install -e again) after changing the Go code.
    _obtain_library(SRC / LIBRARY_FILE, config_settings)
    pth = (str(SRC.parent) + "\n").encode()
    return _write_wheel(wheel_directory, [(f"__editable__.{NAME}-{_version()}.pth", pth)])


def build_sdist(sdist_directory: str, config_settings: Optional[Dict[str, str]] = None) -> str:
    """A source archive of this directory. Building a wheel from it needs
    HAKUBAN_PREBUILT_LIBRARY (the Go sources are not in it)."""
    base = f"{NAME}-{_version()}"
    name = f"{base}.tar.gz"
    with tarfile.open(Path(sdist_directory) / name, "w:gz") as tar:
        def add(arcname: str, data: bytes) -> None:
            info = tarfile.TarInfo(f"{base}/{arcname}")
            info.size = len(data)
            info.mtime = 1577836800
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
        for p in sorted(PROJECT.rglob("*")):
            rel = p.relative_to(PROJECT)
            if not p.is_file() or rel.parts[0] in ("build", "dist") or "__pycache__" in rel.parts \
                    or p.name == LIBRARY_FILE or p.suffix == ".pyc" or ".pytest_cache" in rel.parts:
                continue
            add(rel.as_posix(), p.read_bytes())
        add("PKG-INFO", _metadata().encode())
    return name
