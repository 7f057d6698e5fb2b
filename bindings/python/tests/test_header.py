"""The binding against include/hakuban.h: result codes, enums, versions,
structs and function prototypes. A drift between the header and the
binding fails here, not in a user's process."""

from __future__ import annotations

import re
from typing import Dict, List

import pytest

import hakuban
from hakuban import _errors, _lib
from conftest import HEADER

TEXT = HEADER.read_text()


def _enum(name: str) -> Dict[str, int]:
    m = re.search(r"enum %s \{(.*?)\};" % name, TEXT, re.S)
    assert m, f"enum {name} not in the header"
    body = re.sub(r"/\*.*?\*/", "", m.group(1), flags=re.S)
    return {k: int(v) for k, v in re.findall(r"(HAKUBAN_\w+)\s*=\s*(-?\d+)", body)}


def _struct_fields(name: str) -> List[str]:
    m = re.search(r"typedef struct %s \{(.*?)\} %s;" % (name, name), TEXT, re.S)
    assert m, f"struct {name} not in the header"
    body = re.sub(r"/\*.*?\*/", "", m.group(1), flags=re.S)
    return re.findall(r"(\w+);", body)


def test_result_code_table_matches_header() -> None:
    header = _enum("hakuban_result")
    table = {"HAKUBAN_" + info.c_name: info.code for info in _errors.CODES}
    table["HAKUBAN_OK"] = 0
    assert table == header


def test_one_exception_class_per_code() -> None:
    assert len(set(info.py_name for info in _errors.CODES)) == len(_errors.CODES)
    for info in _errors.CODES:
        cls = getattr(hakuban, info.py_name)
        assert cls is _errors.BY_CODE[info.code]
        assert issubclass(cls, hakuban.HakubanError)
        assert cls.code == info.code and cls.name == info.c_name
        assert info.py_name in hakuban.__all__
        for base in info.bases:
            assert issubclass(cls, base)
    # and no exception class that is not in the table
    exported = {n for n in hakuban.__all__
                if isinstance(getattr(hakuban, n), type)
                and issubclass(getattr(hakuban, n), hakuban.HakubanError)}
    assert exported == set(_errors.ERROR_NAMES) | {"HakubanError", "LibraryError",
                                                  "ForkedChildError"}


def test_unknown_code_is_still_a_hakuban_error() -> None:
    err = _errors.error_for(-999, "boom")
    assert type(err) is hakuban.HakubanError and err.code == -999 and "boom" in str(err)


def test_status_enum_matches_header() -> None:
    header = _enum("hakuban_status")
    assert {"HAKUBAN_STATUS_" + s.name: s.value for s in hakuban.Status} == header


def test_log_levels_match_header() -> None:
    header = _enum("hakuban_log_level")
    assert {"HAKUBAN_LOG_" + lv.name: lv.value for lv in hakuban.LogLevel} == header


def test_versions_match_header() -> None:
    abi = int(re.search(r"#define HAKUBAN_ABI_VERSION (\d+)", TEXT).group(1))  # type: ignore[union-attr]
    version = re.search(r'#define HAKUBAN_VERSION "([^"]+)"', TEXT).group(1)  # type: ignore[union-attr]
    assert hakuban.EXPECTED_ABI_VERSION == abi
    assert hakuban.abi_version() == abi
    assert hakuban.version() == version
    assert hakuban.__version__ == version


@pytest.mark.parametrize("struct, cls", [
    ("hakuban_exchange_options", _lib.ExchangeOptions),
    ("hakuban_object_event", _lib.ObjectEventStruct),
    ("hakuban_connector_options", _lib.ConnectorOptions),
    ("hakuban_connector_status_info", _lib.ConnectorStatusInfo),
    ("hakuban_listener_options", _lib.ListenerOptions),
])
def test_structs_match_header(struct: str, cls: type) -> None:
    if "typedef struct %s {" % struct not in TEXT:
        pytest.skip(f"{struct} is not in this header yet")
    assert [f[0] for f in cls._fields_] == _struct_fields(struct)  # type: ignore[attr-defined]


def test_connector_states_match_header() -> None:
    if "enum hakuban_connector_state" not in TEXT:
        pytest.skip("the header has no network section yet")
    header = _enum("hakuban_connector_state")
    assert {"HAKUBAN_CONNECTOR_" + s.name: s.value for s in hakuban.ConnectorState} == header


def test_prototypes_match_header() -> None:
    text = re.sub(r"/\*.*?\*/", "", TEXT, flags=re.S)
    protos = {}
    for m in re.finditer(r"[\w\s\*]+?\b(hakuban_\w+)\s*\(([^)]*)\)\s*;", text):
        params = m.group(2).strip()
        protos[m.group(1)] = 0 if params in ("", "void") else params.count(",") + 1
    network = "hakuban_connector_new" in protos
    for name, _restype, argtypes, _blocking in list(_lib._PROTOTYPES) + (
            list(_lib._NETWORK_PROTOTYPES) if network else []) + (
            [_lib._STATUS_FD_PROTOTYPE] if "hakuban_connector_status_fd" in protos else []) + (
            list(_lib._LISTENER_AUTH_PROTOTYPES) if "hakuban_listener_set_auth" in protos else []):
        assert name in protos, f"{name} is not in the header"
        assert len(argtypes) == protos[name], f"{name}: {len(argtypes)} args, header {protos[name]}"
