"""The catalogue's first boots of Linux's remoteproc core as a peer, driven through sysfs (docs/linux-conformance.md,
"The catalogue"): start, rpmsg, trace, stop and restart (``lifecycle``); crashes the remote reports, with
recovery on and off (``crash``); a firmware change (``firmware-change``).

Each check takes a :class:`~remoteproc.conformance.linux.guest_run.Run` of its boot, reads the console, the
remote's lines and the memory copies, compares them with what rproc's own loader and vdev sequence write for the
same ELF and memory map (rproc_side.py), and returns its evidence or raises AssertionError saying what differs.
``break_mode`` makes rproc's side wrong on purpose (:data:`BREAKS`), to show that a check can fail.
"""

from __future__ import annotations

import re
import struct
from pathlib import Path

from remoteproc.conformance.linux.catalogue_types import Boot, Break, Scenario
from remoteproc.conformance.linux.guest_run import CHANNELS, FILL, GUEST_MEM, Run, expect_results
from remoteproc.conformance.linux.rproc_side import RSC_TRACE, differences, rproc_image, table_entries, vdev_entry
from remoteproc.conformance.linux.rproc_uml import FIRMWARE_NAME, Layout, build_firmware
from remoteproc.elf import read_elf

FIRST_START = """
R=/sys/class/remoteproc/remoteproc0
echo "rproc-sysfs name=$(cat $R/name) state=$(cat $R/state) firmware=$(cat $R/firmware)"
echo start > $R/state
echo "rproc-sysfs started state=$(cat $R/state)"
channel 1
rpmsg-probe echo $DEV 1 16 300 496
rpmsg-probe write-expect-errno $DEV 497 EMSGSIZE
rpmsg-probe stream $DEV 300 496 32
"""
"""The guest's first start through sysfs: the channel, echoes, EMSGSIZE, a stream (CHANNELS before it)."""
TRACE_AND_RESTART = """
mount -t debugfs none /sys/kernel/debug
echo "rproc-trace $(cat /sys/kernel/debug/remoteproc/remoteproc0/trace0)"
echo stop > $R/state
echo "rproc-sysfs stopped state=$(cat $R/state)"
echo start > $R/state
echo "rproc-sysfs restarted state=$(cat $R/state)"
channel 2
rpmsg-probe echo $DEV 2 496
"""
"""Then the trace buffer, a stop, a start and an echo on the channel announced again."""
GUEST_SCRIPT = (
    CHANNELS
    + FIRST_START
    + "rpmsg-probe ctrl-ept /dev/rpmsg_ctrl0 rpmsg-raw any 1024\n"
    + TRACE_AND_RESTART
    + """
echo stop > $R/state
echo "rproc-sysfs stopped-again state=$(cat $R/state)"
"""
)


FIRST_START_RESULTS = (
    rf"rproc-sysfs name=uml-rproc state=offline firmware={FIRMWARE_NAME}",
    r"rproc-sysfs started state=running",
    r"wait-channel name=rpmsg-raw dev=/dev/rpmsg\d+ src=1024 dst=1024 ok",
    r"echo size=1 ok",
    r"echo size=496 ok",
    r"write-expect-errno size=497 .*ok",
    r"stream .*ok",
)
"""What :data:`FIRST_START` prints when all goes well (patterns of guest_run.expect_results)."""
RESTART_RESULTS = (r"rproc-sysfs stopped state=offline", r"rproc-sysfs restarted state=running", r"echo size=2 ok")
"""What :data:`TRACE_AND_RESTART` prints after the trace line."""


def check_boot_and_rpmsg(run: Run, break_mode: str = "") -> str:
    """sysfs start/stop twice, the channel announced, echoes, EMSGSIZE, a stream, rpmsg_ctrl, the trace buffer;
    the remote saw HELLO at the region's da, START at the ELF's entry, DRIVER_OK 0x07, every message echoed."""
    results = expect_results(
        run,
        [
            *FIRST_START_RESULTS,
            r"ctrl-ept .*ok",
            r"rproc-trace uml-remote: rpmsg-raw announced",
            *RESTART_RESULTS,
            r"rproc-sysfs stopped-again state=offline",
        ],
    )
    # The remote saw the driver's messages in order, and the exit after STOP is clean.
    assert run.remote.proc.returncode == 0, run.remote.lines
    base = run.layout.base
    entry = read_elf(run.firmware).entry
    run.remote.wait_for(rf"uml-remote: hello da={base:#x} size={run.layout.size:#x}", 1)
    run.remote.wait_for(rf"uml-remote: start boot={entry:#x}", 1)
    run.remote.wait_for(r"uml-remote: driver-ok status=0x07", 1)
    assert not [line for line in run.remote.lines if "error" in line], run.remote.lines
    stops = [line for line in run.remote.lines if line.startswith("uml-remote: stop ")]
    assert len(stops) == 2, run.remote.lines
    assert all(line.endswith(" dropped=0") for line in stops if "dropped=" in line), stops  # the C library's count
    echoed = [int(re.sub(r".* echoed=(\d+)( .*)?$", r"\1", line)) for line in stops]
    assert echoed[0] >= 4 + 300 + 1 and echoed[1] == echoed[0] + 2
    # rproc's Python remote echoes every other message by a zero-copy send (into Linux's receive buffer, in place)
    zero_copy = [int(m.group(1)) for line in stops if (m := re.search(r" zero_copy=(\d+)", line))]
    python_remote = "uml_py_remote" in " ".join(map(str, run.remote.proc.args))  # type: ignore[arg-type]
    assert zero_copy == ([echoed[0] // 2, echoed[1] // 2] if python_remote else []), stops
    by = f", {zero_copy[1]} of them by zero-copy sends" if zero_copy else ""
    return f"{len(results)} guest checks passed; the remote echoed {echoed[1]} messages over two boots{by}"


def check_table_after_boot(run: Run, break_mode: str = "") -> str:
    """Vring da and notify ids, gfeatures, status, trace and the vdev's own notifyid, as Linux left them."""
    layout = run.layout
    image = run.boot_image(1)
    section = read_elf(run.firmware).resource_table
    assert section is not None
    entries = table_entries(image, section.addr - layout.base)
    vdev = vdev_entry(image, section.addr - layout.base)
    _type, vid, notifyid, dfeatures, gfeatures, config_len, status, nvrings = struct.unpack_from(
        "<IIIIIIBB", image, vdev
    )
    assert (vid, dfeatures, config_len, nvrings) == (7, 1, 0, 2)
    assert status == 0x07  # ACKNOWLEDGE | DRIVER | DRIVER_OK: Linux sets no FEATURES_OK for a legacy device
    assert gfeatures == 1  # VIRTIO_RPMSG_F_NS, what both offer
    assert notifyid == layout.vdev_notifyid  # remoteproc_core.c rproc_alloc_vring: "TODO: assign a notifyid for rvdev"
    rings = [struct.unpack_from("<IIIII", image, vdev + 28 + 20 * n) for n in range(2)]
    assert rings == [
        (layout.da(layout.vring0[0]), layout.vring_align, layout.vring_num, 0, 0),
        (layout.da(layout.vring1[0]), layout.vring_align, layout.vring_num, 1, 0),
    ]
    trace = entries[RSC_TRACE]
    assert struct.unpack_from("<III", image, trace + 4) == (layout.da(layout.trace[0]), layout.trace[1], 0)
    return f"status 0x07, gfeatures 1, vrings at {rings[0][0]:#x}/{rings[1][0]:#x} with notify ids 0/1"


def check_image(run: Run, break_mode: str = "") -> str:
    """The firmware's part of the file (segments, zero-fill, the table as negotiated, bytes no segment covers)
    after Linux booted it equals what rproc's loader and vdev sequence write for the same ELF and map."""
    layout = run.layout
    linux = run.boot_image(1)
    differ = differences(run, linux, rproc_image(run, break_mode=break_mode).bytes())
    assert not differ, f"{len(differ)} bytes differ, first at {differ[:8]}"
    start, size = layout.firmware
    # and the image is not trivially equal: segments, zero-fill and untouched bytes are all there
    elf = read_elf(run.firmware)
    bss = next(s for s in elf.segments if s.loadable and s.memsz > s.filesz)
    zero_at = bss.paddr + bss.filesz - layout.base
    assert linux[zero_at : zero_at + bss.memsz - bss.filesz] == bytes(bss.memsz - bss.filesz)
    assert linux[start + size - 1] == FILL
    # Linux leaves the trace buffer alone and zeroes vring_size() bytes of each vring (rp_find_vq).
    assert linux[layout.trace[0] : layout.trace[0] + layout.trace[1]] == bytes([FILL]) * layout.trace[1]
    return f"{size} bytes equal, {bss.memsz - bss.filesz} of them zero-fill"


def check_table_after_stop(run: Run, break_mode: str = "") -> str:
    """On stop Linux resets the vdev and acknowledges it again (status 1 in device memory: drivers/virtio/virtio.c
    virtio_dev_remove), then works on its cached copy of the table: the vring da and notify ids stay in device
    memory as they were (remoteproc_core.c rproc_stop, rproc_reset_rsc_table_on_stop, rproc_free_vring).
    rproc's stop (VdevControl.reset_for_stop) leaves the same bytes."""
    layout = run.layout
    image = run.stop_image(1)
    section = read_elf(run.firmware).resource_table
    assert section is not None
    vdev = vdev_entry(image, section.addr - layout.base)
    status = image[vdev + 24]
    rings = [struct.unpack_from("<IIIII", image, vdev + 28 + 20 * n) for n in range(2)]
    assert status == 0x01
    assert [(r[0], r[3]) for r in rings] == [(layout.da(layout.vring0[0]), 0), (layout.da(layout.vring1[0]), 1)]
    ours = rproc_image(run)
    ours.stop(break_mode)
    differ = differences(run, image, ours.bytes())
    assert not differ, f"{len(differ)} bytes differ after stop, first at {differ[:8]}"
    return "status 0x01, vrings kept; rproc's stop leaves the same bytes"


def check_restart(run: Run, break_mode: str = "") -> str:
    """A second start reloads the segments and the table: the firmware's memory at the second DRIVER_OK is what
    it was at the first, and the second stop leaves what the first did."""
    start, size = run.layout.firmware
    assert run.boot_image(2)[start : start + size] == run.boot_image(1)[start : start + size]
    assert run.stop_image(2)[start : start + size] == run.stop_image(1)[start : start + size]
    return "the second boot and stop leave the bytes of the first"


# ---- a crash reported by the remote: Linux's recovery, on and off ---------------------------------------------

CRASH_SCRIPT = (
    CHANNELS
    + """
R=/sys/class/remoteproc/remoteproc0
echo start > $R/state
channel 1
echo "rproc-sysfs recovery=$(cat $R/recovery)"
rpmsg-probe send $DEV crash
channel 2
rpmsg-probe echo $DEV 8
echo "rproc-sysfs recovered state=$(cat $R/state)"
echo disabled > $R/recovery
rpmsg-probe send $DEV crash
i=0
while [ "$(cat $R/state)" != crashed ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done
echo "rproc-sysfs crashed state=$(cat $R/state) recovery=$(cat $R/recovery)"
echo recover > $R/recovery
channel 3
rpmsg-probe echo $DEV 16
echo "rproc-sysfs recovered-by-hand state=$(cat $R/state)"
echo stop > $R/state
echo "rproc-sysfs stopped state=$(cat $R/state)"
"""
)


def check_crash_recovery(run: Run, break_mode: str = "") -> str:
    """CRASH -> rproc_report_crash: with recovery enabled (the default) Linux stops the remote, reloads the
    firmware and starts it again at once (remoteproc_core.c rproc_crash_handler_work, rproc_boot_recovery);
    disabled, the state stays "crashed" until "recover" is written to the recovery file."""
    expect_results(
        run,
        [
            r"rproc-sysfs recovery=enabled",
            r"rproc-channels announced=2",
            r"echo size=8 ok",
            r"rproc-sysfs recovered state=running",
            r"rproc-sysfs crashed state=crashed recovery=disabled",
            r"rproc-channels announced=3",
            r"echo size=16 ok",
            r"rproc-sysfs recovered-by-hand state=running",
            r"rproc-sysfs stopped state=offline",
        ],
    )
    lines = run.remote.lines
    assert not [line for line in lines if "error" in line], lines
    events = [line.split()[1] for line in lines if line.split()[1] in ("start", "crash", "stop")]
    # two crashes, each followed by Linux's stop and a new start; then the final stop
    assert events == ["start", "crash", "stop", "start", "crash", "stop", "start", "stop"], lines
    assert run.remote.proc.returncode == 0
    assert any(re.search(r"crash detected in uml-rproc: type fatal error", line) for line in run.guest.lines)
    return "recovered at once with recovery enabled; 'crashed' with it disabled until 'recover'; " + " ".join(events)


def check_recovery_image(run: Run, break_mode: str = "") -> str:
    """Each recovery reloads the firmware: the memory at the recovered boots' DRIVER_OK equals what rproc's
    loader and vdev sequence write for the ELF, as the first boot's does."""
    ours = rproc_image(run, break_mode=break_mode).bytes()
    for n in (1, 2, 3):
        differ = differences(run, run.boot_image(n), ours)
        assert not differ, f"boot {n}: {len(differ)} bytes differ, first at {differ[:8]}"
    return f"the first boot and both recoveries: {run.layout.firmware[1]} bytes equal to rproc's loader"


# ---- a firmware change through sysfs -------------------------------------------------------------------------

SECOND_FIRMWARE = "rproc-uml-fw2.elf"
FIRMWARE_CHANGE_SCRIPT = (
    CHANNELS
    + f"""
R=/sys/class/remoteproc/remoteproc0
echo start > $R/state
rpmsg-probe wait-channel rpmsg-raw 30000
if echo {SECOND_FIRMWARE} > $R/firmware; then echo "rproc-sysfs firmware-while-running accepted"
else echo "rproc-sysfs firmware-while-running refused"; fi
echo "rproc-sysfs firmware=$(cat $R/firmware)"
echo stop > $R/state
echo {SECOND_FIRMWARE} > $R/firmware
echo "rproc-sysfs firmware=$(cat $R/firmware)"
echo start > $R/state
channel 2
rpmsg-probe echo $DEV 8
echo stop > $R/state
echo "rproc-sysfs stopped state=$(cat $R/state)"
"""
)


def prepare_second_firmware(share: Path) -> None:
    build_firmware(Layout.for_guest_mem(GUEST_MEM), share, SECOND_FIRMWARE, banner=2)


def check_firmware_change(run: Run, break_mode: str = "") -> str:
    """The firmware file can only be changed while offline (remoteproc_sysfs.c firmware_store ->
    rproc_set_firmware: EBUSY); the next start loads the new one and the channel comes back."""
    expect_results(
        run,
        [
            "rproc-sysfs firmware-while-running refused",
            f"rproc-sysfs firmware={FIRMWARE_NAME}",
            f"rproc-sysfs firmware={SECOND_FIRMWARE}",
            "echo size=8 ok",
            "rproc-sysfs stopped state=offline",
        ],
    )
    start, size = run.layout.firmware
    assert run.boot_image(1)[start : start + size] != run.boot_image(2)[start : start + size]  # the banner differs
    return f"EBUSY while running, {SECOND_FIRMWARE} taken offline and booted"


def check_firmware_change_image(run: Run, break_mode: str = "") -> str:
    """The second firmware's memory after Linux booted it: byte for byte what rproc's loader writes for it."""
    second = run.firmware.parent / SECOND_FIRMWARE
    ours = rproc_image(run, run.firmware if break_mode == "stale-firmware" else second, break_mode).bytes()
    differ = differences(run, run.boot_image(2), ours)
    assert not differ, f"{len(differ)} bytes differ, first at {differ[:8]}"
    return f"{run.layout.firmware[1]} bytes of {SECOND_FIRMWARE} equal to rproc's loader"


# ---- the catalogue's entries -----------------------------------------------------------------------------------

BOOTS = (
    Boot("lifecycle", "start, rpmsg, trace, stop, start, stop", lambda _break: GUEST_SCRIPT),
    Boot("crash", "two crashes: recovery enabled, then disabled and 'recover'", lambda _break: CRASH_SCRIPT),
    Boot(
        "firmware-change",
        "the firmware changed through sysfs",
        lambda _break: FIRMWARE_CHANGE_SCRIPT,
        prepare=prepare_second_firmware,
    ),
)

SCENARIOS = (
    Scenario(
        "boot-and-rpmsg",
        "Linux boots the firmware via sysfs and talks rpmsg to the remote",
        "lifecycle",
        check_boot_and_rpmsg,
    ),
    Scenario(
        "table-after-boot",
        "the table Linux negotiated: vring da, notify ids, gfeatures, status",
        "lifecycle",
        check_table_after_boot,
    ),
    Scenario(
        "image-equals-rproc-loader",
        "the loaded memory equals rproc's loader on the same ELF and map",
        "lifecycle",
        check_image,
    ),
    Scenario(
        "table-after-stop",
        "stop leaves status 1 and the vrings, as rproc's stop does",
        "lifecycle",
        check_table_after_stop,
    ),
    Scenario("restart", "a second start and stop leave the same bytes", "lifecycle", check_restart),
    Scenario(
        "crash-recovery",
        "a crash the remote reports is recovered (recovery on) or waits for 'recover' (off)",
        "crash",
        check_crash_recovery,
    ),
    Scenario(
        "recovery-reloads-the-image",
        "each recovery loads what rproc's loader writes",
        "crash",
        check_recovery_image,
    ),
    Scenario(
        "firmware-change",
        "sysfs refuses a firmware change while running (EBUSY), takes it offline",
        "firmware-change",
        check_firmware_change,
    ),
    Scenario(
        "firmware-change-image",
        "the second firmware's memory equals rproc's loader on it",
        "firmware-change",
        check_firmware_change_image,
    ),
)
# An unprompted message from the remote (RpmsgCharEndpoint.recv without a request) is not a scenario: both
# remotes only answer (uml_remote.c, uml_py_remote.py).

BREAKS = {
    "no-zero-fill": Break(
        "rproc's side leaves memsz - filesz unwritten",
        frozenset({"image-equals-rproc-loader", "recovery-reloads-the-image", "firmware-change-image"}),
    ),
    "stop-reset-vrings": Break("rproc's stop also writes vring da 0 / notifyid -1", frozenset({"table-after-stop"})),
    "stale-firmware": Break(
        "rproc's loader is given the first firmware after the change", frozenset({"firmware-change-image"})
    ),
}
