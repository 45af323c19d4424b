"""Linux's remoteproc core boots the emulated Cortex-M33: the file UML maps with iomem= is the M33's RAM (QEMU
mps2-an505's mps.ram, a memory-backend-file shared with the guest), Linux's ELF loader writes ARM firmware into
it, QEMU runs it from there, and Linux's virtio_rpmsg_bus talks rpmsg to the firmware's C library on the M33
(remoteproc/conformance/linux/uml_qemu.py, host/uml_m33_fw.c; docs/linux-conformance.md, "The Cortex-M33 as the
remote").
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator

import pytest

from remoteproc.conformance.linux.build import KERNELS, UmlImages, ensure_uml
from remoteproc.conformance.linux.remoteproc_peer import (
    GUEST_MEM,
    QEMU,
    Run,
    boot,
    check_table_after_boot,
    remote_command,
)
from remoteproc.conformance.linux.rproc_uml import FIRMWARE_NAME, Layout
from remoteproc.conformance.linux.uml_qemu import M33_BASE, M33_RAM
from remoteproc.elf import read_elf

pytestmark = [
    pytest.mark.conformance,
    pytest.mark.skipif(
        not (shutil.which("qemu-system-arm") and shutil.which("arm-none-eabi-gcc")),
        reason="needs qemu-system-arm and gcc-arm-none-eabi (./scripts/setup)",
    ),
]

# The guest-physical address of the iomem= file with mem=64M and ASLR off (rproc_uml.py): 0x4001000.
GUEST_PHYS = Layout.for_guest_mem(GUEST_MEM).base

SCRIPT = """
wait_channels() {
    i=0
    while [ "$(dmesg | grep -c 'creating channel rpmsg-raw')" -lt $1 ] && [ $i -lt 600 ]; do
        sleep 0.05; i=$((i+1))
    done
    echo "rproc-channels announced=$(dmesg | grep -c 'creating channel rpmsg-raw')"
}
channel() {
    wait_channels $1
    rpmsg-probe wait-channel rpmsg-raw 30000 | tee /host/channel.txt
    DEV=$(sed -n 's/.* dev=\\([^ ]*\\).*/\\1/p' /host/channel.txt)
}
R=/sys/class/remoteproc/remoteproc0
echo "rproc-sysfs name=$(cat $R/name) state=$(cat $R/state) firmware=$(cat $R/firmware)"
echo start > $R/state
echo "rproc-sysfs started state=$(cat $R/state)"
channel 1
rpmsg-probe echo $DEV 1 16 300 496
rpmsg-probe write-expect-errno $DEV 497 EMSGSIZE
rpmsg-probe stream $DEV 300 496 32
mount -t debugfs none /sys/kernel/debug
echo "rproc-trace $(cat /sys/kernel/debug/remoteproc/remoteproc0/trace0)"
echo stop > $R/state
echo "rproc-sysfs stopped state=$(cat $R/state)"
echo start > $R/state
echo "rproc-sysfs restarted state=$(cat $R/state)"
channel 2
rpmsg-probe echo $DEV 2 496
rpmsg-probe send $DEV crash
channel 3
rpmsg-probe echo $DEV 8
echo "rproc-sysfs recovered state=$(cat $R/state)"
echo stop > $R/state
echo "rproc-sysfs stopped-again state=$(cat $R/state)"
"""


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
    run = m33_run
    run.guest.check_console_clean()
    results = run.results()
    failed = [line for line in results if re.search(r"\bfail\b", line)]
    assert not failed, "\n".join(run.guest.lines[-60:])
    expected = [
        rf"rproc-sysfs name=uml-rproc state=offline firmware={FIRMWARE_NAME}",
        r"rproc-sysfs started state=running",
        r"wait-channel name=rpmsg-raw dev=/dev/rpmsg\d+ src=1024 dst=1024 ok",
        r"echo size=1 ok",
        r"echo size=496 ok",
        r"write-expect-errno size=497 .*ok",
        r"stream .*ok",
        r"rproc-trace uml-m33: rpmsg-raw announced by the Cortex-M33",
        r"rproc-sysfs stopped state=offline",
        r"rproc-sysfs restarted state=running",
        r"echo size=2 ok",
        r"rproc-channels announced=3",
        r"echo size=8 ok",
        r"rproc-sysfs recovered state=running",
        r"rproc-sysfs stopped-again state=offline",
    ]
    for pattern in expected:
        assert any(re.search(pattern, line) for line in results), f"no line matches {pattern!r}:\n" + "\n".join(results)
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


def test_the_table_linux_negotiated_holds_the_m33s_addresses(m33_run: Run) -> None:
    """The vring da Linux wrote back are the carveouts' device addresses, the M33's (uml_rproc.da=), not the
    guest-physical ones its descriptors hold."""
    check_table_after_boot(m33_run)
    assert m33_run.layout.base == M33_BASE
