"""The uml_rproc driver's parameters against Linux's remoteproc core: ``carveouts=`` (the vdev0 carveouts given by
name only) and ``da=`` (a device address other than the physical one, told to the remote as PHYS), and the
parameters the driver refuses at probe (docs/linux-conformance.md, "Lifecycle against the real core").
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from pathlib import Path

from remoteproc.conformance.linux.guest_run import CHANNELS, GUEST_MEM, Run, expect_results
from remoteproc.conformance.linux.rproc_side import vdev_entry
from remoteproc.conformance.linux.rproc_uml import Layout
from remoteproc.elf import read_elf

PARAMS_DA = 0x1000_0000
"""The device address of the memory's offset 0 in the da != pa boot (its pa stays 0x4001000 with mem=64M)."""


def params_layout() -> Layout:
    return Layout(base=PARAMS_DA)


def carveouts_kernel_args(layout: Layout) -> Callable[[Path, Path], list[str]]:
    """``uml_rproc.da=`` the layout's base and the three vdev0 carveouts given through ``uml_rproc.carveouts=``
    only (not vring0=/vring1=/buffer=): the core finds them by name or places the vrings elsewhere."""

    def args(memfile: Path, sock: Path) -> list[str]:
        def carveout(name: str, span: tuple[int, int]) -> str:
            return f"{name}@{layout.da(span[0]):#x}+{span[1]:#x}"

        spans = [("vdev0vring0", layout.vring0), ("vdev0vring1", layout.vring1), ("vdev0buffer", layout.buffer)]
        return [
            f"iomem=rproc,{memfile}",
            f"uml_rproc.socket={sock}",
            f"uml_rproc.da={layout.base:#x}",
            "uml_rproc.carveouts=" + ",".join(carveout(name, span) for name, span in spans),
        ]

    return args


PARAMS_SCRIPT = (
    CHANNELS
    + """
P=/sys/module/uml_rproc/parameters
echo "rproc-params da=$(cat $P/da) carveouts=$(cat $P/carveouts)"
R=/sys/class/remoteproc/remoteproc0
echo start > $R/state
channel 1
rpmsg-probe echo $DEV 1 16 300 496
rpmsg-probe stream $DEV 100 496 16
mount -t debugfs none /sys/kernel/debug
echo "rproc-trace $(cat /sys/kernel/debug/remoteproc/remoteproc0/trace0)"
echo stop > $R/state
echo "rproc-sysfs stopped state=$(cat $R/state)"
"""
)


def check_da_is_not_pa(run: Run, break_mode: str = "") -> str:
    """With ``uml_rproc.da=`` the remote is told the da of offset 0 (HELLO) and its physical address (PHYS); the
    ELF is loaded and the trace read at device addresses (da_to_va), the table gets the vring carveouts' da
    (registered through ``carveouts=`` only, found by name: remoteproc_core.c rproc_alloc_vring), and the
    receive buffers Linux posts come from the ``vdev0buffer`` carveout (the vdev's DMA pool:
    remoteproc_virtio.c rproc_add_virtio_dev) at physical addresses (virtio_rpmsg_bus.c rpmsg_sg_init:
    sg_phys), which the Python remote resolves through PHYS: rpmsg works."""
    layout = run.layout
    expect_results(
        run,
        [
            rf"rproc-params da={layout.base} carveouts=vdev0vring0@{layout.da(layout.vring0[0]):#x}\+",
            r"rproc-channels announced=1 dev=/dev/rpmsg",
            r"echo size=496 ok",
            r"stream .*ok",
            r"rproc-trace uml-remote: rpmsg-raw announced",
            r"rproc-sysfs stopped state=offline",
        ],
    )
    hello = run.remote.wait_for(r"uml-remote: hello da=(0x[0-9a-f]+) size=(0x[0-9a-f]+)", 1)
    phys = int(run.remote.wait_for(r"uml-remote: phys pa=(0x[0-9a-f]+)", 1).group(1), 16)
    assert (int(hello.group(1), 16), int(hello.group(2), 16)) == (layout.base, layout.size), hello.group(0)
    pa = Layout.for_guest_mem(GUEST_MEM).base  # where UML put the file: one page above the end of its RAM
    assert phys == pa != layout.base, (hex(phys), hex(pa))
    assert not [line for line in run.remote.lines if "error" in line], run.remote.lines
    assert run.remote.proc.returncode == 0, run.remote.lines
    image = run.boot_image(1)
    section = read_elf(run.firmware).resource_table
    assert section is not None and layout.base <= section.addr < layout.base + layout.size
    vdev = vdev_entry(image, section.addr - layout.base)
    rings = [struct.unpack_from("<IIIII", image, vdev + 28 + 20 * n) for n in range(2)]
    assert [(r[0], r[3]) for r in rings] == [(layout.da(layout.vring0[0]), 0), (layout.da(layout.vring1[0]), 1)]
    assert image[vdev + 24] == 0x07
    # Linux's receive buffers (the first half of the pool, 512 bytes each) in vring 0's descriptors: physical
    descriptors = [struct.unpack_from("<QIHH", image, layout.vring0[0] + 16 * i) for i in range(layout.vring_num)]
    buffers = pa + layout.buffer[0]
    assert [(d[0], d[1]) for d in descriptors] == [(buffers + 512 * i, 512) for i in range(layout.vring_num)], [
        hex(d[0]) for d in descriptors[:4]
    ]
    return (
        f"da {layout.base:#x}, pa {phys:#x}: vrings at da {rings[0][0]:#x}/{rings[1][0]:#x}, "
        f"receive buffers at pa {buffers:#x}.., rpmsg echoes"
    )


BAD_PARAMS = {
    "outside": (
        "uml_rproc.carveouts=vdev0vring0@0x10+0x2000",
        "carveout vdev0vring0 0x10+0x2000 is outside the memory",
    ),
    "syntax": (
        "uml_rproc.carveouts=vdev0vring0:0x4021000",
        'carveouts: "vdev0vring0:0x4021000" is not NAME@DA+LEN (a name of 1 to 31 characters)',
    ),
    "twice": (
        "uml_rproc.carveouts=fw@0x4001000+0x1000,fw@0x4002000+0x1000",
        "carveout fw is given twice",
    ),
}
"""Parameters uml_rproc refuses at probe (before it connects), and what it says."""

BAD_PARAMS_SCRIPT = """
echo "rproc-count $(ls /sys/class/remoteproc | wc -l)"
"""


def bad_params_kernel_args(param: str) -> Callable[[Path, Path], list[str]]:
    def args(memfile: Path, sock: Path) -> list[str]:
        return [f"iomem=rproc,{memfile}", f"uml_rproc.socket={sock}", param]

    return args


def check_bad_params(run: Run, message: str) -> str:
    """The driver refuses the parameter with ``message`` and registers no remote processor."""
    lines = run.guest.lines
    said = [line for line in lines if message in line]
    assert said, f"the kernel did not say {message!r}:\n" + "\n".join(lines[-40:])
    assert "rproc-count 0" in run.results(), run.results()
    return said[0]
