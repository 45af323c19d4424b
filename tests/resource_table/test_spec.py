"""JSON/TOML descriptions: what users write, with errors that point at the key."""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path
from typing import Any

import pytest

from resource_table import (
    FW_RSC_ADDR_ANY,
    FW_RSC_ADDR_ANY64,
    Carveout,
    SpecError,
    Vdev,
    from_dict,
    load_spec,
    loads_spec,
    to_dict,
)

TOML = """
version = 1
[[entries]]
type = "carveout"
da = "any"
pa = 0x1000
len = "0x2000"
name = "pool"
[[entries]]
type = "vdev"
id = 7
dfeatures = 1
[[entries.vrings]]
align = 4096
num = 256
"""


def test_toml_and_json_describe_the_same_table(tmp_path: Path) -> None:
    table = loads_spec(TOML, "toml")
    assert table.entries[0] == Carveout(da=FW_RSC_ADDR_ANY, pa=0x1000, len=0x2000, name="pool")
    assert isinstance(table.entries[1], Vdev) and table.entries[1].vrings[0].num == 256
    (tmp_path / "t.json").write_text(__import__("json").dumps(to_dict(table)))
    assert load_spec(tmp_path / "t.json") == table


def test_any_means_the_versions_any() -> None:
    v2 = from_dict({"version": 2, "entries": [{"type": "trace", "da": "any", "len": 1}]})
    assert v2.entries[0].da == FW_RSC_ADDR_ANY64  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("data", "field", "words"),
    [
        ([], None, "top level"),
        ({"version": 3}, "version", "not 1 or 2"),
        ({"entries": {}}, "entries", "must be a list"),
        ({"entries": [{"type": "bogus"}]}, "entries[0].type", "is not one of"),
        ({"entries": [{"type": "trace", "da": "x", "len": 1}]}, "entries[0].da", "expected an integer"),
        ({"entries": [{"type": "trace", "da": 1, "len": 1, "colour": 2}]}, "entries[0].colour", "unknown key"),
        ({"entries": [{"type": "trace", "len": 1}]}, "entries[0]", "missing field"),
        ({"entries": [{"type": "vdev", "id": 7, "vrings": [{"num": 8}]}]}, "entries[0].vrings[0]", "'align'"),
        ({"entries": [{"type": "vdev", "id": 7, "config": "zz"}]}, "entries[0].config", "hex string"),
        ({"entries": [{"type": "vendor", "data": ""}]}, "entries[0].rsc_type", "rsc_type"),
        ({"entries": [{"type": "trace", "da": True, "len": 1}]}, "entries[0].da", "expected an integer"),
        ({"entries": [{"type": "trace", "da": 1, "len": 1, "name": 5}]}, "entries[0].name", "string"),
        ({"entries": [{"type": "fw_chksum", "algo": "x", "chksum": "00" * 65}]}, "entries[0].chksum", "64"),
    ],
)
def test_errors_name_the_key(data: object, field: str | None, words: str) -> None:
    with pytest.raises(SpecError) as err:
        from_dict(data)
    assert err.value.field == field
    assert words in str(err.value)


def test_file_errors_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("version = [")
    with pytest.raises(SpecError) as err:
        load_spec(bad)
    assert "bad.toml" in str(err.value) and "not valid TOML" in str(err.value)
    with pytest.raises(SpecError) as err:
        load_spec(tmp_path / "missing.json")
    assert "missing.json" in str(err.value)


def test_json_carries_every_c_field_by_its_c_name() -> None:
    """A script reads num, offset, config_len, num_of_vrings and reserved straight from the JSON; none is derived."""
    config = bytes(range(12))
    table = from_dict(
        {
            "version": 1,
            "entries": [
                {"type": "carveout", "da": "any", "pa": 0x1000, "len": 0x2000, "name": "pool"},
                {
                    "type": "vdev",
                    "id": 7,
                    "dfeatures": 1,
                    "vrings": [{"align": 0x1000, "num": 16}, {"align": 0x1000, "num": 16}],
                    "config": config.hex(),
                },
            ],
        }
    )
    data = to_dict(table, [0x18, 0x50])
    assert (data["num"], data["reserved"], data["offset"]) == (2, [0, 0], ["0x18", "0x50"])
    vdev = data["entries"][1]
    assert list(vdev) == [
        "type", "id", "notifyid", "dfeatures", "gfeatures", "config_len", "status", "num_of_vrings", "reserved",
        "vrings", "config",
    ]  # fmt: skip
    assert (vdev["config_len"], vdev["num_of_vrings"], vdev["reserved"]) == (12, 2, [0, 0])
    assert set(data["entries"][0]) == {"type", "da", "pa", "len", "flags", "reserved", "name"}
    assert from_dict(data) == table  # what to_dict writes reads back


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda d: d.update(num=3), "num"),
        (lambda d: d.update(offset=["0x10", "0x40"]), "offset"),
        (lambda d: d["entries"][0].update(config_len=1), "entries[0].config_len"),
        (lambda d: d["entries"][0].update(num_of_vrings=1), "entries[0].num_of_vrings"),
    ],
)
def test_implied_c_fields_that_disagree_are_refused(change: Any, field: str) -> None:
    data: dict[str, Any] = {
        "version": 1,
        "num": 1,
        "entries": [{"type": "vdev", "id": 7, "vrings": [{"align": 16, "num": 4}] * 2, "config": "0102"}],
    }
    from_dict(data)  # consistent: accepted
    change(data)
    with pytest.raises(SpecError) as err:
        from_dict(data)
    assert err.value.field == field


@pytest.mark.parametrize(
    ("text", "fmt", "field"),
    [
        ("[" * 100_000 + "]" * 100_000, "json", None),  # the decoder itself overflows
        ("a = " + "[" * 100_000 + "]" * 100_000, "toml", None),
        ("a = " + "{b=" * 10_000 + "1" + "}" * 10_000, "toml", None),
        (
            '{"entries": [{"type": "trace", "len": 1, "da": ' + "[" * 900 + "]" * 900 + "}]}",
            "json",
            "entries[0].da[0][0]",
        ),
        ('{"entries": [{"type": "vdev", "id": 7, "vrings": [{"num": [[1]]}]}]}', "json", "entries[0].vrings[0].num"),
    ],
)
def test_deep_nesting_is_a_spec_error(text: str, fmt: str, field: str | None) -> None:
    """Deeper than a description can be (5 levels): a SpecError naming where, never a RecursionError."""
    with pytest.raises(SpecError, match="nested deeper than the 5 levels a table description has") as err:
        loads_spec(text, fmt)
    assert err.value.field == field


def test_long_values_are_shortened_in_messages() -> None:
    with pytest.raises(SpecError) as err:
        from_dict({"entries": [{"type": "trace", "da": 1, "len": 1, "name": list(range(100_000))}]})
    assert "got [0, 1, 2, 3, 4, 5, ...]" in str(err.value) and len(str(err.value)) < 200


def _open_for_writing(fifo: Path) -> None:
    """Unblock a reader waiting in open() on ``fifo`` (it then reads end of file); nothing if none waits."""
    with contextlib.suppress(OSError):
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))


def test_a_fifo_or_a_device_is_refused_at_once(tmp_path: Path) -> None:
    """A FIFO would block the open until a writer comes: refused before reading, naming the file and what it is."""
    fifo = tmp_path / "spec.json"
    os.mkfifo(fifo)
    watchdog = threading.Timer(10, _open_for_writing, (fifo,))  # a regression fails instead of hanging
    watchdog.start()
    try:
        with pytest.raises(SpecError, match=r"spec.json: a FIFO, not a regular file"):
            load_spec(fifo)
    finally:
        watchdog.cancel()
    with pytest.raises(SpecError, match="/dev/null: a character device, not a regular file"):
        load_spec("/dev/null")
    big = tmp_path / "big.json"
    with big.open("wb") as f:
        f.truncate((16 << 20) + 1)
    with pytest.raises(SpecError, match=r"big.json: 16777217 bytes, larger than the 16777216 bytes \(16 MiB\)"):
        load_spec(big)
    latin = tmp_path / "latin.json"
    latin.write_bytes(b'{"entries": [], "x": "\xe9"}')
    with pytest.raises(SpecError, match=r"latin.json: not UTF-8 text \(byte 0x16 is 0xe9\)"):
        load_spec(latin)
