"""The catalogue's boot with the emulated Cortex-M33 as the remote (``m33``; uml_qemu.py, host/uml_m33_fw.c;
docs/linux-conformance.md, "The Cortex-M33 as the remote"): Linux loads ARM firmware into the M33's RAM, QEMU
runs it from there, and Linux's virtio_rpmsg_bus talks rpmsg to the firmware's C library on the M33.
"""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path

from remoteproc.conformance.linux.build import UmlImages
from remoteproc.conformance.linux.catalogue_types import Boot, Break, Scenario, only
from remoteproc.conformance.linux.guest_run import CHANNELS, GUEST_MEM, QEMU, Run, boot, expect_results, remote_command
from remoteproc.conformance.linux.rproc_uml import Layout
from remoteproc.conformance.linux.sysfs_boots import (
    FIRST_START,
    FIRST_START_RESULTS,
    RESTART_RESULTS,
    TRACE_AND_RESTART,
    check_table_after_boot,
)
from remoteproc.conformance.linux.uml_qemu import M33_BASE, M33_RAM
from remoteproc.elf import read_elf

# The guest-physical address of the iomem= file with mem=64M and ASLR off (rproc_uml.py): 0x4001000.
GUEST_PHYS = Layout.for_guest_mem(GUEST_MEM).base

SCRIPT = (
    CHANNELS
    + FIRST_START
    + TRACE_AND_RESTART
    + """
rpmsg-probe send $DEV crash
channel 3
rpmsg-probe echo $DEV 8
echo "rproc-sysfs recovered state=$(cat $R/state)"
echo stop > $R/state
echo "rproc-sysfs stopped-again state=$(cat $R/state)"
"""
)
"""The lifecycle boot's script (sysfs_boots.py) without rpmsg_ctrl, then a crash and Linux's recovery."""


def check_m33_rpmsg(run: Run, break_mode: str = "") -> str:
    """Linux loads the ARM firmware, the M33 runs it: the channel, echoes, EMSGSIZE, a stream, the trace, stop,
    restart, a crash and Linux's recovery into a fresh QEMU; the host side saw HELLO at the M33's address, PHYS
    at the guest's, START at the ELF's entry three times."""
    results = expect_results(
        run,
        [
            *FIRST_START_RESULTS,
            r"rproc-trace uml-m33: rpmsg-raw announced by the Cortex-M33",
            *RESTART_RESULTS,
            r"rproc-channels announced=3",
            r"echo size=8 ok",
            r"rproc-sysfs recovered state=running",
            r"rproc-sysfs stopped-again state=offline",
        ],
    )
    # The host side: HELLO at the M33's address of the file, PHYS at the guest's, START at the ELF's entry (the
    # reset handler in the vector table the boot stub hands over to), three QEMU runs: two starts and the
    # recovery after the crash the firmware's fault handler caused (QEMU exits through semihosting).
    remote = run.remote
    assert remote.proc.returncode == 0, remote.lines
    entry = read_elf(run.firmware).entry
    remote.wait_for(rf"uml-remote: hello da={M33_BASE:#x} size={M33_RAM:#x}", 1)
    remote.wait_for(rf"uml-remote: phys pa={GUEST_PHYS:#x}", 1)
    assert not [line for line in remote.lines if "error" in line], remote.lines
    starts = [line for line in remote.lines if line.startswith("uml-remote: start ")]
    assert starts == [f"uml-remote: start boot={entry:#x}"] * 3, remote.lines
    assert len([line for line in remote.lines if "qemu started" in line]) == 3, remote.lines
    assert len([line for line in remote.lines if "driver-ok status=0x07" in line]) == 3, remote.lines
    assert len([line for line in remote.lines if "crash sent: QEMU exited rc=1" in line]) == 1, remote.lines
    assert len([line for line in remote.lines if line.startswith("uml-remote: stop ")]) == 3, remote.lines
    return f"{len(results)} guest results as expected; 3 QEMU runs, HELLO da={M33_BASE:#x}, PHYS {GUEST_PHYS:#x}"


def _m33(images: UmlImages, _remote: str, tmp: Path, _break: str) -> contextlib.AbstractContextManager[Run]:
    return boot(images, remote_command(QEMU, tmp / "remote"), tmp, SCRIPT, timeout=240, m33=True)


def _no_qemu() -> str | None:
    if shutil.which("qemu-system-arm") and shutil.which("arm-none-eabi-gcc"):
        return None
    return "needs qemu-system-arm and gcc-arm-none-eabi (./scripts/setup)"


BOOTS = (Boot("m33", "the emulated Cortex-M33 runs the ARM firmware Linux loaded", runner=_m33, unavailable=_no_qemu),)

SCENARIOS = (
    Scenario(
        "m33-rpmsg",
        "Linux loads ARM firmware the emulated M33 runs, and talks rpmsg to it",
        "m33",
        check_m33_rpmsg,
        applies=only(QEMU),
    ),
    Scenario(
        "m33-table-after-boot",
        "the table Linux negotiated holds the M33's addresses",
        "m33",
        check_table_after_boot,
        applies=only(QEMU),
    ),
)

BREAKS: dict[str, Break] = {}
