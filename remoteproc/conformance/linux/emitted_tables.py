"""The resource tables rproc emits for the Linux peer (issue 19, item 4; checked by tables.py): each a
:class:`resource_table.ResourceTable` (:data:`TABLES`) turned into C by rproc's own emitter
(:func:`resource_table.emit_c.emit_c`) and linked with a small firmware (:data:`FIRMWARE_C`) at the addresses of
:class:`~remoteproc.conformance.linux.rproc_uml.Layout`, with the carveouts uml_rproc registers for it
(:data:`EXTRA`) and, where it is not the physical one, the memory's device address (:data:`DEVICE_BASE`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from remoteproc.conformance.linux.guest_run import GUEST_MEM
from remoteproc.conformance.linux.rproc_uml import FIRMWARE_NAME, Layout, link_firmware
from resource_table import (
    FW_RSC_ADDR_ANY,
    Carveout,
    Devmem,
    RawEntry,
    ResourceTable,
    Trace,
    Vdev,
    VendorEntry,
    Vring,
)
from resource_table.emit_c import emit_c

# The firmware around an emitted table: initialised data and zero-fill, as host/uml_fw.c (its code never runs).
FIRMWARE_C = """\
#include <stdint.h>
const char uml_fw_banner[] = "rproc uml_rproc table firmware";
volatile uint32_t uml_fw_counter = 0x12345678u;
uint8_t uml_fw_zero[4096];
void _start(void)
{
\tfor (;;)
\t\tuml_fw_counter += uml_fw_zero[uml_fw_counter & 4095] + (uint8_t)uml_fw_banner[0];
}
"""

CONFIG = bytes(range(0x10, 0x20))  # the rpmsg vdev's config space (Linux's virtio_rpmsg_bus never reads it)
FIXED_CARVEOUT = (0x30000, 0x1000)  # a carveout with a fixed da inside the file, not registered by the driver
ANY_CARVEOUT_LEN = 0x2000


def _rpmsg_vdev(layout: Layout, config: bytes = b"") -> Vdev:
    ring = Vring(align=layout.vring_align, num=layout.vring_num)
    return Vdev(
        id=7,
        notifyid=layout.vdev_notifyid,
        dfeatures=1,
        vrings=(
            Vring(da=layout.da(layout.vring0[0]), align=ring.align, num=ring.num),
            Vring(da=layout.da(layout.vring1[0]), align=ring.align, num=ring.num),
        ),
        config=config,
    )


def table_vendor(layout: Layout) -> ResourceTable:
    """Two trace buffers, a vendor entry (128), reserved types (5, and 600 past the vendor range), an rpmsg vdev
    with 16 bytes of config space: no carveout, so the driver's three registered ones suffice."""
    return ResourceTable(
        entries=(
            Trace(da=layout.da(layout.trace[0]), len=layout.trace[1] // 2, name="trace0"),
            VendorEntry(type=128, data=b"rproc-vendor-128"),
            RawEntry(type=5, data=bytes(range(8))),
            Trace(da=layout.da(layout.trace[0] + layout.trace[1] // 2), len=layout.trace[1] // 2, name="trace1"),
            RawEntry(type=600, data=b"\xff" * 4),
            _rpmsg_vdev(layout, CONFIG),
        )
    )


def table_carveouts(layout: Layout) -> ResourceTable:
    """Carveouts uml_rproc does not register: one with a fixed da inside the memory file, one with da ANY."""
    return ResourceTable(
        entries=(
            Carveout(da=layout.da(FIXED_CARVEOUT[0]), pa=0, len=FIXED_CARVEOUT[1], name="fw-fixed"),
            Carveout(da=FW_RSC_ADDR_ANY, pa=FW_RSC_ADDR_ANY, len=ANY_CARVEOUT_LEN, name="fw-any"),
            Trace(da=layout.da(layout.trace[0]), len=layout.trace[1], name="trace0"),
            _rpmsg_vdev(layout),
        )
    )


def table_devmem(layout: Layout) -> ResourceTable:
    """A devmem entry: Linux maps it only through an IOMMU domain, which uml_rproc has not."""
    return ResourceTable(
        entries=(
            Devmem(da=0x50000000, pa=0x50000000, len=0x1000, name="regs"),
            Trace(da=layout.da(layout.trace[0]), len=layout.trace[1], name="trace0"),
            _rpmsg_vdev(layout),
        )
    )


# Extra carveouts uml_rproc registers for the two-vdev table (uml_rproc.carveouts=NAME@DA+LEN): name, offset, len.
EXTRA_CARVEOUTS = (
    ("vdev1vring0", 0x24000, 0x2000),
    ("vdev1vring1", 0x26000, 0x2000),
    ("fw-carveout", 0x28000, 0x4000),
    ("vdev1buffer", 0x30000, 0x10000),  # 2 * 64 buffers of 512 bytes
)
FW_CARVEOUT_LEN = 0x1000  # what the table asks of fw-carveout: Linux writes the registered 0x4000 back


def table_two_vdevs(layout: Layout) -> ResourceTable:
    """Two rpmsg vdevs, the second on the driver's vdev1vring0/1 and vdev1buffer carveouts (its vrings at ANY),
    and a carveout "fw-carveout" at ANY the driver registered: Linux gives it the registered da, pa and len."""
    ring = Vring(align=layout.vring_align, num=layout.vring_num)
    return ResourceTable(
        entries=(
            Carveout(da=FW_RSC_ADDR_ANY, pa=FW_RSC_ADDR_ANY, len=FW_CARVEOUT_LEN, name="fw-carveout"),
            Trace(da=layout.da(layout.trace[0]), len=layout.trace[1], name="trace0"),
            _rpmsg_vdev(layout),
            Vdev(id=7, notifyid=layout.vdev_notifyid + 1, dfeatures=1, vrings=(ring, ring)),
        )
    )


DA_BASE = 0x10000000  # the "da-not-pa" table: uml_rproc.da= puts the file's offset 0 here for the remote
DA_CARVEOUTS = (("fw-carveout", 0x28000, 0x4000),)


def table_da_not_pa(layout: Layout) -> ResourceTable:
    """The memory at device address :data:`DA_BASE`, not at its guest-physical address: a carveout the driver
    registered ("fw-carveout", asked for at ANY) gets its da and, as pa, the physical address."""
    return ResourceTable(
        entries=(
            Carveout(da=FW_RSC_ADDR_ANY, pa=FW_RSC_ADDR_ANY, len=FW_CARVEOUT_LEN, name="fw-carveout"),
            Trace(da=layout.da(layout.trace[0]), len=layout.trace[1], name="trace0"),
            _rpmsg_vdev(layout),
        )
    )


UNBOUND_ID = 42  # a virtio device id no Linux driver takes


def table_unbound_vdev(layout: Layout) -> ResourceTable:
    """The rpmsg vdev, then a vdev of an id no driver binds, its vrings at ANY (no vdev1 carveouts registered)."""
    ring = Vring(align=layout.vring_align, num=layout.vring_num)
    return ResourceTable(
        entries=(
            Trace(da=layout.da(layout.trace[0]), len=layout.trace[1], name="trace0"),
            _rpmsg_vdev(layout),
            Vdev(id=UNBOUND_ID, notifyid=layout.vdev_notifyid + 1, vrings=(ring, ring)),
        )
    )


TABLES: dict[str, Callable[[Layout], ResourceTable]] = {
    "vendor": table_vendor,
    "carveouts": table_carveouts,
    "devmem": table_devmem,
    "two-vdevs": table_two_vdevs,
    "da-not-pa": table_da_not_pa,
    "unbound-vdev": table_unbound_vdev,
}
EXTRA: dict[str, tuple[tuple[str, int, int], ...]] = {"two-vdevs": EXTRA_CARVEOUTS, "da-not-pa": DA_CARVEOUTS}
"""Per table, the carveouts uml_rproc registers besides vdev0vring0/1 and vdev0buffer."""
DEVICE_BASE = {"da-not-pa": DA_BASE}
"""Per table, the device address of the file's offset 0 when it is not the guest-physical one (uml_rproc.da=)."""


def table_layout(table: str) -> Layout:
    """The memory map of ``table``'s boot: at the guest-physical address of the iomem region, or at
    :data:`DEVICE_BASE` for the device."""
    physical = Layout.for_guest_mem(GUEST_MEM)
    return Layout(base=DEVICE_BASE[table]) if table in DEVICE_BASE else physical


def carveouts_arg(layout: Layout, extra: tuple[tuple[str, int, int], ...]) -> list[str]:
    """``uml_rproc.carveouts=NAME@DA+LEN,...`` (DRIVER_CONTRACT.md), or nothing."""
    if not extra:
        return []
    return ["uml_rproc.carveouts=" + ",".join(f"{n}@{layout.da(off):#x}+{size:#x}" for n, off, size in extra)]


def build_table_firmware(layout: Layout, out_dir: Path, table: ResourceTable, name: str = FIRMWARE_NAME) -> Path:
    """``out_dir/name``: :data:`FIRMWARE_C` with ``table`` as rproc emits it (emit_c), linked at ``layout``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "fw.c").write_text(FIRMWARE_C)
    (out_dir / "table.c").write_text(emit_c(table))
    sources = [out_dir / "fw.c", out_dir / "table.c"]
    return link_firmware(layout, out_dir, name, sources, "building a uml_rproc table firmware", [])
