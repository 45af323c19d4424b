"""Every constant the C code and the Python code share, held to the C headers.

The values are read from the headers themselves (their ``#define`` lines and ``enum`` bodies, no compiler
needed) and compared with the Python constant of the same meaning: the vring flags, roles and return codes
(virtio/csrc/vring.h vs virtio/status.py), the rpmsg C path's return codes (rpmsg/csrc/fastpath.h vs the compiled
module and rpmsg/fastpath.py's stand-ins), the virtio status and feature bits, the rpmsg header, addresses and
name service (firmware/include/rproc/*.h vs rpmsg/protocol.py, virtio/features.py, resource_table/), the serial
link's and the mirror's wire constants. A header changed without its Python twin (or the other way round) fails
here, by name."""

from __future__ import annotations

import importlib
import re
from functools import cache
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
VRING_H = "virtio/csrc/vring.h"
FASTPATH_H = "rpmsg/csrc/fastpath.h"
CPATH_H = "rpmsg/csrc/endpoint_cpath.h"
RSC_H = "firmware/include/rproc/resource_table.h"
REMOTE_H = "firmware/include/rproc/rpmsg_remote.h"
LINK_H = "firmware/include/rproc/serial_link.h"
MIRROR_H = "firmware/include/rproc/mirror.h"

_DEFINE = re.compile(r"^\s*#\s*define\s+(\w+)\s+\(?\s*(-?\s*(?:0[xX][0-9a-fA-F]+|\d+))[uUlL]*\s*\)?\s*(?:/[*/].*)?$")
_ENUM = re.compile(r"\benum\s+\w*\s*\{(.*?)\}", re.S)
_ENUM_ITEM = re.compile(r"^\s*(\w+)\s*(?:=\s*(-?\s*(?:0[xX][0-9a-fA-F]+|\d+))[uUlL]*)?\s*$")


@cache
def header(path: str) -> dict[str, int]:
    """The integer constants of a C header: ``#define NAME <integer>`` and the members of its enums."""
    text = (REPO / path).read_text()
    found: dict[str, int] = {}
    for line in text.splitlines():
        m = _DEFINE.match(line)
        if m:
            found[m[1]] = int(m[2].replace(" ", ""), 0)
    body = re.sub(r"/\*.*?\*/|//[^\n]*", "", text, flags=re.S)
    for enum in _ENUM.finditer(body):
        value = -1
        for item in enum[1].split(","):
            if not item.strip():
                continue
            m = _ENUM_ITEM.match(item)
            assert m, f"{path}: cannot read the enum member {item.strip()!r}"
            value = int(m[2].replace(" ", ""), 0) if m[2] is not None else value + 1
            found[m[1]] = value
    return found


def python_value(ref: str) -> int:
    """``module:attr`` or ``module:attr.member`` or ``module:attr[key]`` (a dict) as an int."""
    module, _, path = ref.partition(":")
    obj: object = importlib.import_module(module)
    key = None
    if "[" in path:
        path, key = path[:-1].split("[")
    for part in path.split("."):
        obj = getattr(obj, part)
    if key is not None:
        assert isinstance(obj, dict)
        obj = obj[key.strip("'\"")]
    if hasattr(obj, "size") and not isinstance(obj, int):  # a struct.Struct: its size
        obj = obj.size
    assert isinstance(obj, int), f"{ref} is {obj!r}, not an int"
    return int(obj)


# (header, C name, Python constant of the same meaning)
SHARED = [
    # the vring: descriptor and suppression flags, roles, return codes (the engine and its Python twin)
    (VRING_H, "RP_DESC_F_NEXT", "virtio.status:DESC_F_NEXT"),
    (VRING_H, "RP_DESC_F_WRITE", "virtio.status:DESC_F_WRITE"),
    (VRING_H, "RP_DESC_F_INDIRECT", "virtio.status:DESC_F_INDIRECT"),
    (VRING_H, "RP_AVAIL_F_NO_INTERRUPT", "virtio.status:AVAIL_F_NO_INTERRUPT"),
    (VRING_H, "RP_USED_F_NO_NOTIFY", "virtio.status:USED_F_NO_NOTIFY"),
    (VRING_H, "RP_ROLE_DRIVER", "virtio.status:ROLE_DRIVER"),
    (VRING_H, "RP_ROLE_DEVICE", "virtio.status:ROLE_DEVICE"),
    *[
        (VRING_H, name, f"virtio.status:{name}")
        for name in sorted(header(VRING_H))
        if name == "RP_OK" or name.startswith("RP_ERR_")
    ],
    # the rpmsg C path's return codes: the Python stand-ins used when the C module is not built
    *[(FASTPATH_H, name, f"rpmsg._native:FALLBACK_CONSTANTS['{name}']") for name in sorted(header(FASTPATH_H))],
    (FASTPATH_H, "RPF_NOTIFY", "rpmsg.fastpath:NOTIFY"),
    (FASTPATH_H, "RPF_MORE", "rpmsg.fastpath:MORE"),
    (FASTPATH_H, "RPF_MSG_MAX", "rpmsg.protocol:MAX_MESSAGE"),
    (FASTPATH_H, "RPF_GENERAL", "rpmsg.fastpath:GENERAL"),
    (FASTPATH_H, "RPF_DEV_MAX", "rpmsg.fastpath:DEV_MAX"),
    (FASTPATH_H, "RPF_DEV_MAX", "rpmsg.fastpath:RemoteFastPath.max_payload"),
    (FASTPATH_H, "RPF_TIMEOUT", "rpmsg.fastpath:TIMEOUT"),
    (FASTPATH_H, "RPF_READY", "rpmsg.fastpath:READY"),
    (FASTPATH_H, "RPF_KICKED", "rpmsg.fastpath:KICKED"),
    (FASTPATH_H, "RPF_DOORBELL", "rpmsg.fastpath:DOORBELL"),
    (FASTPATH_H, "RPF_WOKEN", "rpmsg.fastpath:WOKEN"),
    (FASTPATH_H, "RPF_EINTR", "rpmsg.fastpath:EINTR"),
    # how the C path kicks each doorbell kind (transports.doorbell.CDoorbell) and the kick word's layout
    (FASTPATH_H, "RPF_KICK_EVENTFD", "transports.doorbell:KICK_EVENTFD"),
    (FASTPATH_H, "RPF_KICK_STREAM", "transports.doorbell:KICK_STREAM_BYTE"),
    (FASTPATH_H, "RPF_KICK_DGRAM", "transports.doorbell:KICK_DATAGRAM"),
    (FASTPATH_H, "RPF_KICK_EPOLL", "transports.doorbell:KICK_EPOLL"),
    (FASTPATH_H, "RPF_KICK_MIRROR", "transports.doorbell:KICK_MIRROR"),
    (FASTPATH_H, "RPF_KICK_SHIFT", "rpmsg.fastpath:KICK_SHIFT"),
    # virtio device status bits (virtio 1.2 2.1) and the rpmsg feature bit
    (RSC_H, "VIRTIO_CONFIG_S_ACKNOWLEDGE", "virtio.features:STATUS_ACKNOWLEDGE"),
    (RSC_H, "VIRTIO_CONFIG_S_DRIVER", "virtio.features:STATUS_DRIVER"),
    (RSC_H, "VIRTIO_CONFIG_S_DRIVER_OK", "virtio.features:STATUS_DRIVER_OK"),
    (RSC_H, "VIRTIO_CONFIG_S_FEATURES_OK", "virtio.features:STATUS_FEATURES_OK"),
    (RSC_H, "VIRTIO_CONFIG_S_DRIVER_OK", "rpmsg.protocol:VIRTIO_CONFIG_S_DRIVER_OK"),
    (RSC_H, "VIRTIO_RPMSG_F_NS", "rpmsg.protocol:VIRTIO_RPMSG_F_NS"),
    (RSC_H, "VIRTIO_RPMSG_F_NS", "resource_table.model:VIRTIO_RPMSG_F_NS"),
    (RSC_H, "VIRTIO_ID_RPMSG", "rpmsg.protocol:VIRTIO_ID_RPMSG"),
    (RSC_H, "VIRTIO_ID_RPMSG", "resource_table.model:VirtioId.RPMSG"),
    # the resource table (remoteproc_elf / OpenAMP remoteproc.h)
    (RSC_H, "RSC_CARVEOUT", "resource_table.model:ResourceType.CARVEOUT"),
    (RSC_H, "RSC_DEVMEM", "resource_table.model:ResourceType.DEVMEM"),
    (RSC_H, "RSC_TRACE", "resource_table.model:ResourceType.TRACE"),
    (RSC_H, "RSC_VDEV", "resource_table.model:ResourceType.VDEV"),
    (RSC_H, "RSC_VENDOR_START", "resource_table.model:VENDOR_START"),
    (RSC_H, "RSC_VENDOR_END", "resource_table.model:VENDOR_END"),
    (RSC_H, "FW_RSC_ADDR_ANY", "resource_table.model:FW_RSC_ADDR_ANY"),
    (RSC_H, "FW_RSC_ADDR_ANY64", "resource_table.model:FW_RSC_ADDR_ANY64"),
    (RSC_H, "FW_RSC_NOTIFY_ID_ANY", "resource_table.model:FW_RSC_NOTIFY_ID_ANY"),
    (RSC_H, "RSC_FLAG_OPTIONAL", "resource_table.model:RSC_FLAG_OPTIONAL"),
    # the rpmsg header and addresses (Linux rpmsg_hdr, RPMSG_NS_ADDR, RPMSG_ADDR_ANY)
    (REMOTE_H, "RPMSG_HDR_SIZE", "rpmsg.protocol:HEADER_SIZE"),
    (REMOTE_H, "RPMSG_HDR_SIZE", "resource_table.layout:RPMSG_HEADER_SIZE"),
    (CPATH_H, "RPC_HDR", "rpmsg.protocol:HEADER_SIZE"),
    (REMOTE_H, "RPMSG_NS_ADDR", "rpmsg.protocol:NS_ADDR"),
    (REMOTE_H, "RPMSG_ADDR_ANY", "rpmsg.protocol:ADDR_ANY"),
    # the serial link's frame types and version, the mirror's message kinds
    (LINK_H, "SL_VERSION", "transports.serial_link:VERSION"),
    (LINK_H, "SL_HELLO", "transports.serial_link:T_HELLO"),
    (LINK_H, "SL_HELLO_ACK", "transports.serial_link:T_HELLO_ACK"),
    (LINK_H, "SL_DATA", "transports.serial_link:T_DATA"),
    (LINK_H, "SL_ACK", "transports.serial_link:T_ACK"),
    (LINK_H, "SL_HEADER", "transports.serial_link:HEADER"),
    (LINK_H, "SL_BOUND", "transports.serial_link:BOUND"),
    (MIRROR_H, "MIRROR_WRITE", "transports.mirror:WRITE"),
    (MIRROR_H, "MIRROR_KICK", "transports.mirror:KICK"),
    (MIRROR_H, "MIRROR_BLOCK", "transports.mirror:BLOCK"),
    (MIRROR_H, "MIRROR_WRITE_HEAD", "transports.mirror:WRITE_HEAD"),
]


@pytest.mark.parametrize(("path", "name", "ref"), SHARED, ids=[f"{n}={r}" for _, n, r in SHARED])
def test_the_python_constant_is_the_headers(path: str, name: str, ref: str) -> None:
    defined = header(path)
    assert name in defined, f"{path} no longer defines {name}"
    assert python_value(ref) == defined[name], f"{ref} = {python_value(ref)}, but {path} says {name} = {defined[name]}"


def test_the_status_bits_rproc_prints_are_the_headers() -> None:
    from resource_table.pretty import STATUS_BITS

    defined = header(RSC_H)
    shown = {f"VIRTIO_CONFIG_S_{name}": bit for bit, name in STATUS_BITS.items()}
    assert {n for n in defined if n.startswith("VIRTIO_CONFIG_S_")} <= set(shown)
    for name, bit in shown.items():
        if name in defined:
            assert bit == defined[name], name


def test_every_return_code_of_the_c_paths_has_a_python_twin() -> None:
    """A code added to a header is added to its Python twin (else it is reported as a bare number)."""
    names = {name for _, name, _ in SHARED}
    vring = {n for n in header(VRING_H) if n.startswith(("RP_ERR_", "RP_DESC_F_", "RP_ROLE_"))}
    fast = set(header(FASTPATH_H))
    assert vring | fast <= names, sorted((vring | fast) - names)
    from virtio.status import DESCRIPTIONS

    codes = {v for n, v in header(VRING_H).items() if n.startswith("RP_ERR_")}
    assert codes == set(DESCRIPTIONS), "virtio.status.DESCRIPTIONS describes every RP_ERR_* code, and only those"


def test_the_compiled_modules_export_the_headers_values() -> None:
    """The cffi modules take their constants from the same headers: what Python reads from them is the header's."""
    from rpmsg import fastpath
    from virtio import cring

    try:
        fast, engine = fastpath._module().lib, cring.load().lib
    except ImportError:
        pytest.skip("the C modules are not built")
    for name, value in header(FASTPATH_H).items():
        assert getattr(fast, name) == value, name
    for name, value in header(VRING_H).items():
        if not name.startswith("RPROC_"):
            assert getattr(engine, name) == value, name


def test_the_header_reader_reads_what_the_headers_hold() -> None:
    """The reader itself: defines with suffixes, parentheses and comments; enums with and without values."""
    assert header(VRING_H)["RP_ERR_SPACE"] == -13 and header(VRING_H)["RP_ROLE_DEVICE"] == 1
    assert header(REMOTE_H)["RPMSG_ERR_NO_BUFFER"] == -20 and header(RSC_H)["FW_RSC_ADDR_ANY64"] == 2**64 - 1
    assert header(LINK_H)["SL_ACK"] == 4 and header(FASTPATH_H)["RPF_GENERAL"] == -1000
