"""Linux's remoteproc core boots the emulated Cortex-M33: the file UML maps with iomem= is the M33's RAM (QEMU
mps2-an505's mps.ram, a memory-backend-file shared with the guest), Linux's ELF loader writes ARM firmware into
it, QEMU runs it from there, and Linux's virtio_rpmsg_bus talks rpmsg to the firmware's C library on the M33
(remoteproc/conformance/linux/uml_qemu.py, m33_boot.py, host/uml_m33_fw.c; docs/linux-conformance.md, "The
Cortex-M33 as the remote").
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from remoteproc.conformance.linux.build import KERNELS, UmlImages, ensure_uml
from remoteproc.conformance.linux.guest_run import QEMU, Run, boot, remote_command
from remoteproc.conformance.linux.m33_boot import SCRIPT, check_m33_rpmsg
from remoteproc.conformance.linux.sysfs_boots import check_table_after_boot
from remoteproc.conformance.linux.uml_qemu import M33_BASE

pytestmark = [
    pytest.mark.conformance,
    pytest.mark.skipif(
        not (shutil.which("qemu-system-arm") and shutil.which("arm-none-eabi-gcc")),
        reason="needs qemu-system-arm and gcc-arm-none-eabi (./scripts/setup)",
    ),
]


@pytest.fixture(scope="module", params=KERNELS)
def images(request: pytest.FixtureRequest) -> UmlImages:
    return ensure_uml(kernel=request.param)


@pytest.fixture(scope="module")
def m33_run(images: UmlImages, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    """One boot: start, echo, stream, trace, stop, start, echo, a crash and Linux's recovery, stop."""
    command = remote_command(QEMU, tmp_path_factory.mktemp("uml-qemu"))
    with boot(images, command, tmp_path_factory.mktemp("remoteproc-m33"), SCRIPT, timeout=240, m33=True) as run:
        yield run


def test_linux_loads_arm_firmware_that_the_m33_runs_and_talks_rpmsg_to_it(m33_run: Run) -> None:
    check_m33_rpmsg(m33_run)


def test_the_table_linux_negotiated_holds_the_m33s_addresses(m33_run: Run) -> None:
    """The vring da Linux wrote back are the carveouts' device addresses, the M33's (uml_rproc.da=), not the
    guest-physical ones its descriptors hold."""
    check_table_after_boot(m33_run)
    assert m33_run.layout.base == M33_BASE
