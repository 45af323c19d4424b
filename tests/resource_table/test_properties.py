"""Properties: round trips for generated tables, and only our own error for any bytes at all."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from resource_table import (
    Dialect,
    ResourceTable,
    ResourceTableError,
    build,
    check,
    from_dict,
    parse,
    to_dict,
    to_json,
    to_v1,
    to_v2,
)
from tests.resource_table.strategies import tables

FUZZ = settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])


@given(tables(1))
def test_v1_round_trip(table: ResourceTable) -> None:
    data = build(table)
    assert parse(data) == table
    assert build(parse(data)) == data


@given(tables(2))
def test_v2_round_trip(table: ResourceTable) -> None:
    data = build(table)
    assert parse(data) == table
    assert build(parse(data)) == data


@given(tables(1))
def test_v1_to_v2_and_back_is_lossless(table: ResourceTable) -> None:
    try:
        v2 = to_v2(table)
    except ResourceTableError:
        assert table.reserved[0] != 0  # the one thing v2 has no place for
        return
    assert to_v1(parse(build(v2))) == table


@given(st.one_of(tables(1), tables(2)))
def test_description_round_trip(table: ResourceTable) -> None:
    assert from_dict(to_dict(table)) == table
    assert from_dict(json.loads(to_json(table))) == table


def _only_our_error(data: bytes) -> None:
    for dialect in Dialect:
        try:
            table = parse(data, dialect=dialect)
        except ResourceTableError:
            pass
        else:
            build(table)  # whatever parses can be built again
        check(data, dialect=dialect)  # never raises: problems are findings


@FUZZ
@given(st.binary(max_size=512))
@example(b"\x01\x00\x00\x00")
@example(b"\x02\x00\x00\x00" + b"\xff" * 12)
def test_random_bytes_raise_only_our_error(data: bytes) -> None:
    _only_our_error(data)


@FUZZ
@given(st.one_of(tables(1), tables(2)), st.data())
def test_mutated_tables_raise_only_our_error(table: ResourceTable, data: st.DataObject) -> None:
    blob = bytearray(build(table))
    for _ in range(data.draw(st.integers(1, 8))):
        if not blob:
            break
        pos = data.draw(st.integers(0, len(blob) - 1))
        blob[pos] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(blob)))
    _only_our_error(bytes(blob[:cut]))
    _only_our_error(bytes(blob))


def test_many_entries_at_one_offset_stay_cheap() -> None:
    """Linux allows repeated offsets; a hostile table repeating one big opaque entry must not blow up."""
    num = 16000
    header = (1).to_bytes(4, "little") + num.to_bytes(4, "little") + bytes(8)
    first = 16 + 4 * num
    data = header + first.to_bytes(4, "little") * num + (42).to_bytes(4, "little") + bytes(64 * 1024)
    table = parse(data)
    assert len(table.entries) == num
    assert all(e is table.entries[0] for e in table.entries)
