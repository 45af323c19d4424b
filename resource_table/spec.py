"""Tables as plain data: the JSON/TOML description ``rproc rsc build`` reads and ``--json`` writes.

One format both ways, so ``from_dict(to_dict(t)) == t``::

    version = 1
    [[entries]]
    type = "carveout"           # carveout devmem trace vdev vendor raw rproc_mem fw_chksum intmem custom
    da = "any"                  # an int, "0x..." or "any" (FW_RSC_ADDR_ANY of the table's version)
    pa = "any"
    len = 0x40000
    name = "vdev0buffer"
    [[entries]]
    type = "vdev"
    id = 7
    dfeatures = 1
    [[entries.vrings]]
    da = "any"
    align = 0x1000
    num = 256

Vendor and unknown entries carry ``rsc_type`` and ``data`` (hex); ``config`` and ``chksum`` are hex too.
"""

from __future__ import annotations

import dataclasses
import json
import reprlib
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from resource_table.errors import SpecError
from resource_table.files import read_regular
from resource_table.model import (
    FW_RSC_NOTIFY_ID_ANY,
    Carveout,
    CustomEntry,
    Devmem,
    Entry,
    FwChksum,
    Intmem,
    RawEntry,
    ResourceTable,
    RprocMem,
    Trace,
    Vdev,
    VendorEntry,
    Vring,
    addr_any,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

KINDS: dict[str, type[Any]] = {
    cls.kind: cls
    for cls in (Carveout, Devmem, Trace, Vdev, VendorEntry, RawEntry, RprocMem, FwChksum, Intmem, CustomEntry)
}
_ADDRESS_FIELDS = {"da", "pa"}
_HEX_FIELDS = {"da", "pa", "len", "flags", "dfeatures", "gfeatures", "align", "status"}
_BYTES_FIELDS = {"config", "data", "chksum"}


# ---------------------------------------------------------------------------------------------------------
# model -> data


def to_dict(table: ResourceTable, offsets: Sequence[int] | None = None) -> dict[str, Any]:
    """The table as JSON/TOML-ready data: addresses as "0x..." strings, "any" where the host chooses. Every field
    of the C structs is there by its C name, the implied ones too (num, num_of_vrings, config_len), and the
    header's ``offset`` array when ``offsets`` (where a parsed table had its entries) is given."""
    out: dict[str, Any] = {"version": table.version, "num": len(table.entries), "reserved": list(table.reserved)}
    if offsets is not None:
        out["offset"] = [f"{o:#x}" for o in offsets]
    out["entries"] = [_entry_to_dict(e, table.version) for e in table.entries]
    return out


def to_json(table: ResourceTable) -> str:
    return json.dumps(to_dict(table), indent=2)


def _entry_to_dict(entry: Entry, version: int) -> dict[str, Any]:
    out: dict[str, Any] = {"type": entry.kind}
    if isinstance(entry, VendorEntry | RawEntry):
        out["rsc_type"] = entry.type
    for f in dataclasses.fields(entry):
        value = getattr(entry, f.name)
        if f.name == "optional":
            if value:
                out["optional"] = True
        elif f.name == "vrings":
            out["vrings"] = [_vring_to_dict(r, version) for r in value]

        elif f.name == "type":
            continue
        else:
            if isinstance(entry, Vdev) and f.name == "status":  # C order: ..., config_len, status, num_of_vrings
                out["config_len"] = len(entry.config)
            if isinstance(entry, Vdev) and f.name == "reserved":
                out["num_of_vrings"] = len(entry.vrings)
            out[f.name] = _scalar_out(f.name, value, version)
    return out


def _vring_to_dict(ring: Vring, version: int) -> dict[str, Any]:
    return {f.name: _scalar_out(f.name, getattr(ring, f.name), version) for f in dataclasses.fields(ring)}


def _scalar_out(name: str, value: Any, version: int) -> Any:
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, tuple):
        return list(value)
    if name in _ADDRESS_FIELDS and value == addr_any(version):
        return "any"
    if name == "notifyid" and value == FW_RSC_NOTIFY_ID_ANY:
        return "any"
    if name in _HEX_FIELDS and isinstance(value, int):
        return f"{value:#x}"
    return value


# ---------------------------------------------------------------------------------------------------------
# data -> model


def load_spec(path: str | Path) -> ResourceTable:
    """Read a ``.json`` or ``.toml`` description."""
    path = Path(path)
    try:
        raw = read_regular(path)
    except OSError as exc:
        raise SpecError(f"{path}: {exc.strerror}") from None
    fmt = "toml" if path.suffix.lower() == ".toml" else "json"
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(f"{path}: not UTF-8 text (byte {exc.start:#x} is {raw[exc.start]:#04x})") from None
    try:
        return loads_spec(text, fmt)
    except SpecError as exc:
        raise SpecError(f"{path}: {exc.message}", field=exc.field) from None


def loads_spec(text: str, fmt: str = "json") -> ResourceTable:
    """Parse a description given as text, ``fmt`` "json" or "toml"."""
    try:
        data = tomllib.loads(text) if fmt == "toml" else json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise SpecError(f"not valid {fmt.upper()}: {exc}") from None
    except RecursionError:  # the decoders recurse per level: a few thousand brackets exhaust the stack
        raise SpecError(_TOO_DEEP) from None
    return from_dict(data)


MAX_DEPTH = 5
"""Levels of arrays and objects a description can have: the top object, ``entries``, an entry, its ``vrings``
and a vring. Anything deeper is refused before it is read (deep data makes recursive code overflow the stack)."""
_TOO_DEEP = (
    f"nested deeper than the {MAX_DEPTH} levels a table description has (top, entries, an entry, vrings, a vring)"
)


def _check_depth(data: Any) -> None:
    """Refuse data nested deeper than :data:`MAX_DEPTH`, naming where; iterative, so it cannot overflow itself."""
    stack: list[tuple[Any, int, str]] = [(data, 1, "")]
    while stack:
        value, depth, where = stack.pop()
        if isinstance(value, Mapping):
            children = [(v, f"{where}.{k}" if where else str(k)) for k, v in value.items()]
        elif isinstance(value, list):
            children = [(v, f"{where}[{i}]") for i, v in enumerate(value)]
        else:
            continue
        if depth > MAX_DEPTH:
            raise SpecError(_TOO_DEEP, field=where)
        stack.extend((v, depth + 1, w) for v, w in children)


def from_dict(data: Any) -> ResourceTable:
    """Build the model from data shaped like :func:`to_dict`'s output."""
    if not isinstance(data, Mapping):
        raise SpecError("the description must be an object/table at the top level")
    _check_depth(data)
    # "offset" (to_dict's record of where a parsed table had its entries) is not an input: the builder lays the
    # entries out (packed, or aligned on request). Its length is checked like num's.
    _no_unknown_keys(data, {"version", "num", "offset", "reserved", "entries"}, "")
    version = _int(data.get("version", 1), "version", version=1)
    if version not in (1, 2):
        raise SpecError(f"version {version} is not 1 or 2", field="version")
    reserved = data.get("reserved", [0, 0])
    if not isinstance(reserved, list) or len(reserved) != 2:
        raise SpecError("reserved must be a list of two integers", field="reserved")
    reserved_t = (_int(reserved[0], "reserved[0]", version), _int(reserved[1], "reserved[1]", version))
    entries_data = data.get("entries", [])
    if not isinstance(entries_data, list):
        raise SpecError("entries must be a list", field="entries")
    entries = tuple(_entry_from_dict(e, f"entries[{i}]", version) for i, e in enumerate(entries_data))
    _derived(data, "num", len(entries), "the number of entries", "", version)
    if "offset" in data and (not isinstance(data["offset"], list) or len(data["offset"]) != len(entries)):
        raise SpecError(f"offset must list one offset per entry ({len(entries)})", field="offset")
    return ResourceTable(version=version, entries=entries, reserved=reserved_t)


def _derived(data: Mapping[str, Any], key: str, actual: int, what: str, where: str, version: int) -> None:
    """A field of the C structs that the description implies (num, num_of_vrings, config_len): optional in a
    description (to_dict writes it, so that scripts read every C field by its name), checked when present."""
    if key not in data:
        return
    field = f"{where}.{key}" if where else key
    given = _int(data[key], field, version)
    if given != actual:
        raise SpecError(f"{key} is {given} but there are {actual} ({what})", field=field)


def _no_unknown_keys(data: Mapping[str, Any], allowed: set[str], where: str) -> None:
    for key in data:
        if key not in allowed:
            names = ", ".join(sorted(allowed))
            raise SpecError(f"unknown key {key!r} (known: {names})", field=f"{where}.{key}" if where else key)


def _entry_from_dict(data: Any, where: str, version: int) -> Entry:
    if not isinstance(data, Mapping):
        raise SpecError("each entry must be an object/table", field=where)
    kind = data.get("type")
    cls = KINDS.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise SpecError(f"type {reprlib.repr(kind)} is not one of {', '.join(KINDS)}", field=f"{where}.type")
    names = {f.name for f in dataclasses.fields(cls)}
    opaque = cls in (VendorEntry, RawEntry)
    derived = {"num_of_vrings", "config_len"} if cls is Vdev else set()
    _no_unknown_keys(data, names | {"type"} | derived | ({"rsc_type"} if opaque else set()), where)
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name == "type" or f.name not in data:
            continue
        kwargs[f.name] = _field_in(f.name, data[f.name], f"{where}.{f.name}", version)
    if cls is Vdev:
        _derived(data, "num_of_vrings", len(kwargs.get("vrings", ())), "vrings listed", where, version)
        _derived(data, "config_len", len(kwargs.get("config", b"")), "bytes of config", where, version)
    if opaque:
        if "rsc_type" not in data:
            raise SpecError("vendor and raw entries need rsc_type, their type number", field=f"{where}.rsc_type")
        kwargs["type"] = _int(data["rsc_type"], f"{where}.rsc_type", version)
    try:
        return cls(**kwargs)  # type: ignore[no-any-return]
    except TypeError as exc:
        missing = str(exc).split("argument", 1)[-1].strip(": ")
        raise SpecError(f"missing field {missing}", field=where) from None


def _field_in(name: str, value: Any, where: str, version: int) -> Any:
    if name == "vrings":
        if not isinstance(value, list):
            raise SpecError("vrings must be a list", field=where)
        return tuple(_vring_from_dict(r, f"{where}[{i}]", version) for i, r in enumerate(value))
    if name == "chksum":  # a fixed 64-byte field: shorter checksums are zero-padded, as in C
        raw = _hex_bytes(value, where)
        if len(raw) > 64:
            raise SpecError(f"{len(raw)} bytes do not fit the 64-byte chksum field", field=where)
        return raw.ljust(64, b"\0")
    if name in _BYTES_FIELDS:
        return _hex_bytes(value, where)
    if name in ("name", "algo"):
        if not isinstance(value, str):
            raise SpecError(f"expected a string, got {reprlib.repr(value)}", field=where)
        return value
    if name == "optional":
        if not isinstance(value, bool):
            raise SpecError(f"expected true or false, got {reprlib.repr(value)}", field=where)
        return value
    if name == "reserved" and isinstance(value, list):
        return tuple(_int(v, f"{where}[{i}]", version) for i, v in enumerate(value))
    return _int(
        value,
        where,
        version,
        allow_any=name in _ADDRESS_FIELDS or name == "notifyid",
        any_value=FW_RSC_NOTIFY_ID_ANY if name == "notifyid" else None,
    )


def _vring_from_dict(data: Any, where: str, version: int) -> Vring:
    if not isinstance(data, Mapping):
        raise SpecError("each vring must be an object/table", field=where)
    names = {f.name for f in dataclasses.fields(Vring)}
    _no_unknown_keys(data, names, where)
    kwargs = {k: _field_in(k, v, f"{where}.{k}", version) for k, v in data.items()}
    for required in ("align", "num"):
        if required not in kwargs:
            raise SpecError(f"missing field {required!r}", field=where)
    return Vring(**kwargs)


def _int(value: Any, where: str, version: int, *, allow_any: bool = False, any_value: int | None = None) -> int:
    if isinstance(value, bool):
        raise SpecError(f"expected an integer, got {reprlib.repr(value)}", field=where)
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        text = value.strip().lower().replace("_", "")
        if text == "any" and allow_any:
            return any_value if any_value is not None else addr_any(version)
        try:
            return int(text, 0)
        except ValueError:
            pass
    hint = ', "0x..." or "any"' if allow_any else ' or "0x..."'
    raise SpecError(f"expected an integer{hint}, got {reprlib.repr(value)}", field=where)


def _hex_bytes(value: Any, where: str) -> bytes:
    if isinstance(value, str):
        try:
            return bytes.fromhex(value)
        except ValueError:
            pass
    raise SpecError(f'expected a hex string such as "01ff", got {reprlib.repr(value)}', field=where)
