"""JSON/TOML descriptions: what users write, with errors that point at the key."""

from __future__ import annotations

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
