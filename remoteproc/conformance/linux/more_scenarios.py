"""The catalogue's boots beyond remoteproc_peer's own (docs/linux-conformance.md, "The catalogue"): the lifecycle
boot (coredumps, the vdev status sequence: lifecycle.py), da != pa through uml_rproc.da= and carveouts=, the
inline coredump, the tables rproc emits (tables.py), the corpus of broken tables (rsc_mutations.py) and the
emulated Cortex-M33 as the remote (uml_qemu.py). Its import adds :data:`BOOTS`, :data:`CATALOGUE` and :data:`BREAKS` to
remoteproc_peer's (which imports it last); each check is the function the dedicated pytest file calls."""

from __future__ import annotations

import contextlib
import re
import shutil
from pathlib import Path
from typing import Any

from remoteproc.conformance.linux import lifecycle as lc
from remoteproc.conformance.linux import remoteproc_peer as rp
from remoteproc.conformance.linux import rsc_mutations as rm
from remoteproc.conformance.linux import tables as tb
from remoteproc.conformance.linux.build import UmlImages
from remoteproc.conformance.linux.remoteproc_peer import (
    GUEST_MEM,
    QEMU,
    Boot,
    Break,
    Run,
    Scenario,
    boot,
    check_table_after_boot,
    remote_command,
)
from remoteproc.conformance.linux.rproc_uml import FIRMWARE_NAME, Layout
from remoteproc.conformance.linux.uml_qemu import M33_BASE, M33_RAM
from remoteproc.elf import read_elf

LIFECYCLE_TIMEOUT = 180.0
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


def check_m33_rpmsg(run: Run, break_mode: str = "") -> str:
    """Linux loads the ARM firmware, the M33 runs it: the channel, echoes, EMSGSIZE, a stream, the trace, stop,
    restart, a crash and Linux's recovery into a fresh QEMU; the host side saw HELLO at the M33's address, PHYS
    at the guest's, START at the ELF's entry three times."""
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
    return f"{len(results)} guest results as expected; 3 QEMU runs, HELLO da={M33_BASE:#x}, PHYS {GUEST_PHYS:#x}"


# ---- the boots -----------------------------------------------------------------------------------------------


def _lifecycle(images: UmlImages, remote: str, tmp: Path, _break: str) -> contextlib.AbstractContextManager[Run]:
    layout = Layout.for_guest_mem(GUEST_MEM)
    command = remote_command(remote, tmp / "remote")
    return lc.boot_with(images, command, tmp, lc.LIFECYCLE_SCRIPT, layout, layout.kernel_args, LIFECYCLE_TIMEOUT)


def _da_not_pa(images: UmlImages, remote: str, tmp: Path, _break: str) -> contextlib.AbstractContextManager[Run]:
    layout = lc.params_layout()
    command = remote_command(remote, tmp / "remote")
    return lc.boot_with(images, command, tmp, lc.PARAMS_SCRIPT, layout, lc.carveouts_kernel_args(layout))


def _inline(images: UmlImages, remote: str, tmp: Path, _break: str) -> contextlib.AbstractContextManager[Run]:
    layout = Layout.for_guest_mem(GUEST_MEM)
    command = remote_command(remote, tmp / "remote")
    return lc.boot_with(images, command, tmp, lc.INLINE_SCRIPT, layout, layout.kernel_args)


def _table(table: str) -> Any:
    def run(images: UmlImages, remote: str, tmp: Path, _break: str) -> contextlib.AbstractContextManager[Run]:
        return tb.boot_table(images, remote_command(remote, tmp / "remote"), tmp, table)

    return run


def _corpus(images: UmlImages, _remote: str, tmp: Path, _break: str) -> contextlib.AbstractContextManager[Any]:
    return rm.boot_corpus(images, tmp, tmp / "remote")


def _m33(images: UmlImages, _remote: str, tmp: Path, _break: str) -> contextlib.AbstractContextManager[Run]:
    return boot(images, remote_command(QEMU, tmp / "remote"), tmp, SCRIPT, timeout=240, m33=True)


def _no_qemu() -> str | None:
    if shutil.which("qemu-system-arm") and shutil.which("arm-none-eabi-gcc"):
        return None
    return "needs qemu-system-arm and gcc-arm-none-eabi (./scripts/setup)"


def _only(*remotes: str) -> Any:
    def applies(remote: str) -> str | None:
        return None if remote in remotes else f"runs with the {' or '.join(remotes)} remote only"

    return applies


# devmem never starts a remote; da != pa needs the remote that maps the physical address too (the C remote's
# library resolves descriptors as device addresses: host/uml_remote.c, PHYS).
TABLE_REMOTES = {"devmem": ("c",), "da-not-pa": ("python",)}
TABLE_RULES = {
    "vendor": "vendor and unknown entries, two traces, config space: Linux and rproc's loader write the same bytes",
    "carveouts": "carveouts no platform registered: Linux allocates them, rproc places them (the difference known)",
    "devmem": "a devmem entry without an IOMMU: Linux and rproc both refuse the firmware",
    "two-vdevs": "two vdevs on uml_rproc's named carveouts: notify ids run on, the same bytes as rproc's loader",
    "da-not-pa": "memory whose device address is not its physical one: carveout pa written as rproc's to_pa",
    "unbound-vdev": "a vdev no driver binds: reset and ACKNOWLEDGE, notify ids assigned, vring da left ANY",
}

BOOTS: tuple[Boot, ...] = (
    Boot(
        "lifecycle-crashes",
        "three crashes with coredumps enabled, dynamic debug on the status bytes",
        lambda _b: "",
        runner=_lifecycle,
    ),
    Boot(
        "da-not-pa",
        "uml_rproc.da=0x10000000, the vdev0 carveouts given through carveouts=",
        lambda _b: "",
        runner=_da_not_pa,
    ),
    Boot("inline-coredump", "a crash with the coredump mode 'inline'", lambda _b: "", runner=_inline),
    *(Boot(f"table-{t}", f"the firmware carrying the '{t}' table", lambda _b: "", runner=_table(t)) for t in tb.CHECKS),
    Boot(
        "broken-tables",
        f"the corpus of broken tables ({len(rm.corpus(Layout.for_guest_mem(GUEST_MEM)))} mutations) tried one by one",
        lambda _b: "",
        runner=_corpus,
    ),
    Boot(
        "m33",
        "the emulated Cortex-M33 runs the ARM firmware Linux loaded",
        lambda _b: "",
        runner=_m33,
        unavailable=_no_qemu,
    ),
)

CATALOGUE: tuple[Scenario, ...] = (
    Scenario(
        "coredump",
        "a crash's devcoredump is an ELF core of the remote's memory, byte for byte",
        "lifecycle-crashes",
        lc.check_coredump,
    ),
    Scenario(
        "status-sequence",
        "the vdev status bytes in Linux's order (0 1 3 7; 0 1 before STOP), and rproc's",
        "lifecycle-crashes",
        lc.check_status_sequence,
    ),
    Scenario(
        "da-not-pa",
        "carveouts= found by name, da != pa, descriptors at physical addresses",
        "da-not-pa",
        lc.check_da_is_not_pa,
        applies=_only("python"),
    ),
    Scenario(
        "inline-coredump",
        "an inline coredump holds recovery until it is read",
        "inline-coredump",
        lc.check_inline_coredump,
    ),
    *(
        Scenario(f"table-{t}", TABLE_RULES.get(t, t), f"table-{t}", check, applies=_only(*TABLE_REMOTES[t]))
        if t in TABLE_REMOTES
        else Scenario(f"table-{t}", TABLE_RULES.get(t, t), f"table-{t}", check)
        for t, check in tb.CHECKS.items()
    ),
    Scenario(
        "broken-tables",
        "each broken table gets Linux's verdict from rproc, or the difference is recorded",
        "broken-tables",
        rm.check_mutations,
        applies=_only("c"),
    ),
    Scenario(
        "broken-tables-console",
        "the kernel goes through the corpus without a BUG, Oops or WARNING",
        "broken-tables",
        rm.check_console,
        applies=_only("c"),
    ),
    Scenario(
        "m33-rpmsg",
        "Linux loads ARM firmware the emulated M33 runs, and talks rpmsg to it",
        "m33",
        check_m33_rpmsg,
        applies=_only(QEMU),
    ),
    Scenario(
        "m33-table-after-boot",
        "the table Linux negotiated holds the M33's addresses",
        "m33",
        check_table_after_boot,
        applies=_only(QEMU),
    ),
)

BREAKS: dict[str, Break] = {
    "stop-after-remote": Break(
        "rproc's stop stops the remote before the vdev reset (its old order)", frozenset({"status-sequence"})
    ),
    "invert-rproc": Break(rm.BREAKS["invert-rproc"], frozenset({"broken-tables"})),
    **{name: Break(what, frozenset({f"table-{table}"})) for name, (table, what) in tb.BREAKS.items()},
}


def _register() -> None:
    """Into remoteproc_peer's registry (its functions read these names when they run)."""
    rp.BOOTS.update((b.name, b) for b in BOOTS)
    rp.CATALOGUE = rp.CATALOGUE + CATALOGUE
    rp.BREAKS.update(BREAKS)


_register()
