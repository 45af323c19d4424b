"""Resource tables rproc emits (emitted_tables.py), loaded by Linux's remoteproc core (issue 19, item 4): accepted
or refused as rproc's loader accepts or refuses them, and the memory after Linux booted them equal byte for byte
to what rproc's loader and vdev sequence write (rproc_side.py).

One boot per table (:func:`boot_table`) runs a guest script against a host remote (the C or the Python one);
the checks below read what the remote copied of the memory file and the kernel's console, and return their
evidence or raise AssertionError. Every rule they check is in docs/linux-conformance.md, "What Linux and rproc
still do differently", with its kernel source line.
"""

from __future__ import annotations

import contextlib
import re
import struct
from collections.abc import Callable, Iterator
from pathlib import Path

from remoteproc.conformance.linux.build import UmlImages
from remoteproc.conformance.linux.catalogue_types import Boot, Break, Runner, Scenario, only
from remoteproc.conformance.linux.emitted_tables import (
    ANY_CARVEOUT_LEN,
    CONFIG,
    DA_CARVEOUTS,
    DEVICE_BASE,
    EXTRA,
    EXTRA_CARVEOUTS,
    FIXED_CARVEOUT,
    TABLES,
    build_table_firmware,
    carveouts_arg,
    table_layout,
)
from remoteproc.conformance.linux.guest_run import (
    BOOT_TIMEOUT,
    CHANNELS,
    GUEST_MEM,
    Run,
    boot_firmware,
    remote_command,
)
from remoteproc.conformance.linux.rproc_side import differences, registered, rproc_load
from remoteproc.conformance.linux.rproc_uml import Layout
from remoteproc.resources import ResourceError
from resource_table import FW_RSC_ADDR_ANY, Vdev

# The guest: start; if Linux took the firmware, an echo over the channel, every trace buffer, stop.
GUEST_SCRIPT = (
    CHANNELS
    + """
R=/sys/class/remoteproc/remoteproc0
if echo start > $R/state; then echo "rproc-table start accepted"; else echo "rproc-table start refused"; fi
echo "rproc-table state=$(cat $R/state)"
if [ "$(cat $R/state)" = running ]; then
    channel 1
    rpmsg-probe echo $DEV 1 496
    mount -t debugfs none /sys/kernel/debug
    for t in /sys/kernel/debug/remoteproc/remoteproc0/trace*; do
        echo "rproc-table trace $(basename $t) bytes=$(wc -c < $t) [$(head -c 64 $t | tr -cd 'a-zA-Z0-9 :-')]"
    done
    echo stop > $R/state
    echo "rproc-table stopped state=$(cat $R/state)"
fi
"""
)


@contextlib.contextmanager
def boot_table(
    images: UmlImages, remote_command: list[str], tmp: Path, table: str, timeout: float = BOOT_TIMEOUT
) -> Iterator[Run]:
    """Boot the guest with :data:`GUEST_SCRIPT` and the firmware carrying :data:`TABLES`\\ [``table``]; yields once
    UML has exited (the same remote protocol and snapshots as guest_run.boot)."""
    layout = table_layout(table)
    firmware = build_table_firmware(layout, tmp / "share", TABLES[table](layout))
    extra = [
        *carveouts_arg(layout, EXTRA.get(table, ())),
        *([f"uml_rproc.da={layout.base:#x}"] if table in DEVICE_BASE else []),
    ]
    args = lambda memfile, sock: [*layout.kernel_args(memfile, sock), *extra]  # noqa: E731
    # a refused firmware never started the remote: end_remote ends it
    with boot_firmware(images, remote_command, tmp, GUEST_SCRIPT, layout, firmware, args, timeout, True) as run:
        yield run


def _started(run: Run) -> None:
    results = run.results()
    assert "rproc-table start accepted" in results and "rproc-table state=running" in results, "\n".join(
        run.guest.lines[-40:]
    )
    assert any(re.search(r"echo size=496 ok", line) for line in results), "\n".join(results)
    assert "rproc-table stopped state=offline" in results, "\n".join(results)


# ---- the checks ----------------------------------------------------------------------------------------------


def check_vendor_table(run: Run, break_mode: str = "") -> str:
    """Linux hands a vendor type (128..512) to the driver's handle_rsc and, without one, warns "unsupported vendor
    resource" and goes on; any other type it does not know (4..127, above 512) it warns "unsupported resource"
    about and skips (remoteproc_core.c rproc_handle_rsc_entry). rproc's handle_resources skips them with a
    warning too: the firmware runs, both trace buffers show, and the memory (segments, the table with its vendor
    bytes and config space as negotiated) equals rproc's loader byte for byte."""
    run.guest.check_console_clean()
    _started(run)
    console = "\n".join(run.guest.lines)
    for warning in ("unsupported vendor resource 128", "unsupported resource 5", "unsupported resource 600"):
        assert warning in console, f"no {warning!r} from Linux:\n{console[-3000:]}"
    traces = [line for line in run.results() if line.startswith("rproc-table trace ")]
    assert [t.split()[2] for t in traces] == ["trace0", "trace1"], traces
    assert "uml-remote: rpmsg-raw announced" in traces[0], traces
    ours = rproc_load(run.layout, run.firmware, registered(run.layout))
    linux = run.boot_image(1)
    differ = differences(run, linux, ours.bytes())
    assert not differ, f"{len(differ)} bytes differ, first at {differ[:8]}"
    [vdev] = [e for e in ours.resources.table.entries if isinstance(e, Vdev)]
    assert vdev.config == CONFIG
    return "vendor 128, types 5 and 600 skipped with Linux's warnings; two traces; every firmware byte equal"


def check_unregistered_carveouts(run: Run, break_mode: str = "") -> str:
    """A carveout no platform carveout of its name covers is allocated by Linux with dma_alloc_coherent() in its
    own RAM (remoteproc_core.c rproc_alloc_carveout): da ANY becomes that address, a fixed da stays as it was
    with the warning "Allocated carveout doesn't fit device address request" (no IOMMU domain), and pa is the
    RAM's (rproc_alloc_registered_carveouts writes pa, da, len). rproc places both in the remote's memory (the
    fixed one at its da) and writes pa = da. Every other byte of the firmware's memory is equal."""
    run.guest.check_console_clean()
    _started(run)
    console = "\n".join(run.guest.lines)
    assert "Allocated carveout doesn't fit device address request" in console, console[-3000:]
    ours = rproc_load(run.layout, run.firmware, registered(run.layout), keep_pa=break_mode == "firmware-pa")
    linux = run.boot_image(1)
    table_off = ours.table_da - run.layout.base
    spans = ours.resources.spans
    layout = run.layout
    fixed_at, any_at = (table_off + spans[i].offset for i in (0, 1))
    fixed = struct.unpack_from("<IIII", linux, fixed_at)
    anyc = struct.unpack_from("<IIII", linux, any_at)
    in_file = range(layout.base, layout.base + layout.size)
    assert fixed[1] == layout.da(FIXED_CARVEOUT[0]) and fixed[3] == FIXED_CARVEOUT[1], fixed
    assert fixed[2] not in in_file and fixed[2] != 0, f"fixed carveout pa {fixed[2]:#x}: expected Linux's RAM"
    assert anyc[1] not in in_file and anyc[2] == anyc[1] and anyc[3] == ANY_CARVEOUT_LEN, anyc
    # rproc: the fixed one at its da, pa = da; the ANY one from the file's pool, pa = da
    [ofixed, oany] = ours.resources.carveouts
    assert (ofixed.da, ofixed.pa) == (fixed[1], fixed[1]), (
        f"rproc's fixed carveout: da {ofixed.da:#x} pa {ofixed.pa:#x}"
    )
    assert oany.da in in_file and oany.pa == oany.da, f"rproc's ANY carveout: da {oany.da:#x} pa {oany.pa:#x}"
    # With Linux's da and pa written into rproc's table, every byte is equal.
    expected = bytearray(ours.bytes())
    for at, values in ((fixed_at, fixed), (any_at, anyc)):
        struct.pack_into("<IIII", expected, at, *values)
    differ = differences(run, linux, bytes(expected))
    assert not differ, f"{len(differ)} bytes differ, first at {differ[:8]}"
    return (
        f"fixed da {fixed[1]:#x} kept with pa {fixed[2]:#x} (Linux RAM, warned); ANY got {anyc[1]:#x}; rproc: "
        f"{ofixed.da:#x}/{oany.da:#x} in the remote's memory; the rest equal"
    )


def check_devmem_refused(run: Run, break_mode: str = "") -> str:
    """Without an IOMMU domain Linux refuses a devmem entry and with it the boot (remoteproc_core.c
    rproc_handle_devmem: -EINVAL; rproc_fw_boot: "Failed to process resources"); the write to sysfs state fails
    and the remote is never started. rproc's handle_resources refuses it too, naming the entry."""
    results = run.results()
    console = "\n".join(run.guest.lines)
    assert "rproc-table start refused" in results and "rproc-table state=offline" in results, console[-3000:]
    assert "Failed to process resources: -22" in console, console[-3000:]
    assert not any(line.startswith("uml-remote: start ") for line in run.remote.lines), run.remote.lines
    try:
        rproc_load(run.layout, run.firmware, registered(run.layout), devmem_ok=break_mode == "devmem-ok")
    except ResourceError as exc:
        ours = str(exc)
    else:
        raise AssertionError("rproc's loader took the devmem entry Linux refused")
    assert "entry 0: devmem 'regs'" in ours, ours
    return f"Linux: Failed to process resources: -22; rproc: {ours}"


def check_two_vdevs(run: Run, break_mode: str = "") -> str:
    """Linux handles every vdev entry (remoteproc_core.c rproc_handle_vdev: index rproc->nb_vdev++): vdev 1 takes
    the driver's vdev1vring0/1 carveouts (rproc_alloc_vring; rp_find_vq writes their da) and vdev1buffer
    (rproc_add_virtio_dev), its vrings get notify ids 2 and 3 from the one IDR, virtio_rpmsg_bus drives it to
    DRIVER_OK too; the table carveout "fw-carveout" gets the registered carveout's da, pa and len
    (rproc_handle_carveout, rproc_alloc_registered_carveouts). rproc's loader with the same registered carveouts
    writes the same bytes."""
    run.guest.check_console_clean()
    _started(run)
    layout = run.layout
    ours = rproc_load(layout, run.firmware, registered(layout, () if break_mode == "unregistered" else EXTRA_CARVEOUTS))
    linux = run.boot_image(1)
    table_off = ours.table_da - layout.base
    spans = ours.resources.spans
    carveout = struct.unpack_from("<IIII", linux, table_off + spans[0].offset)
    fw = layout.da(EXTRA_CARVEOUTS[2][1])
    assert carveout[1:] == (fw, fw, EXTRA_CARVEOUTS[2][2]), [hex(v) for v in carveout]
    vdev1 = table_off + spans[3].offset
    # The boot copy is taken at vdev 0's DRIVER_OK; Linux then probes vdev 1 (rproc_start_subdevices, in order),
    # so its gfeatures, status and vring da (written by rp_find_vq) may not be there yet: every other byte is
    # compared. Its notify ids are (rproc_alloc_vring, at rproc_handle_resources time).
    moving = (
        {vdev1 + 16 + i for i in range(4)} | {vdev1 + 24} | {vdev1 + 28 + 20 * n + i for n in (0, 1) for i in range(4)}
    )
    differ = [d for d in differences(run, linux, ours.bytes()) if int(d, 16) - layout.base not in moving]
    assert not differ, f"{len(differ)} bytes differ at boot, first at {differ[:8]}"
    # Both vdevs were negotiated before `echo start` returned (virtio_rpmsg_bus probes synchronously) and reset
    # + acknowledged on stop (status 1; gfeatures and vring da/notifyid kept): the stop copy, every byte.
    stopped = run.stop_image(1)
    assert (stopped[vdev1 + 24], struct.unpack_from("<I", stopped, vdev1 + 16)[0]) == (1, 1), "vdev 1 after stop"
    rings = [struct.unpack_from("<IIIII", stopped, vdev1 + 28 + 20 * n) for n in range(2)]
    assert [(r[0], r[3]) for r in rings] == [(layout.da(0x24000), 2), (layout.da(0x26000), 3)], rings
    for control in ours.controls:
        control.reset_for_stop()
    differ = differences(run, stopped, ours.bytes())
    assert not differ, f"{len(differ)} bytes differ after stop, first at {differ[:8]}"
    return "vdev 1 on vdev1vring0/1 with notify ids 2/3, negotiated (gfeatures 1); fw-carveout registered; bytes equal"


def check_da_not_pa(run: Run, break_mode: str = "") -> str:
    """With the memory at another device address than its physical one (uml_rproc.da=), Linux writes a carveout's
    da and, as pa, the physical address (rproc_alloc_registered_carveouts: pa from entry->dma); vring da stay
    device addresses (rp_find_vq: mem->da). rproc's loader with ``to_pa`` (the platform's physical address of a
    device address) writes the same bytes; the remote, told the physical address (PHYS), serves Linux's
    descriptors."""
    run.guest.check_console_clean()
    _started(run)
    layout = run.layout
    physical = Layout.for_guest_mem(GUEST_MEM).base
    run.remote.wait_for(rf"uml-remote: phys pa={physical:#x}", 1)
    to_pa = None if break_mode == "pa-is-da" else (lambda da: da - layout.base + physical)
    ours = rproc_load(layout, run.firmware, registered(layout, DA_CARVEOUTS), to_pa)
    linux = run.boot_image(1)
    carveout = struct.unpack_from("<IIII", linux, ours.table_da - layout.base + ours.resources.spans[0].offset)
    off, size = DA_CARVEOUTS[0][1:]
    assert carveout[1:] == (layout.da(off), physical + off, size), [hex(v) for v in carveout]
    differ = differences(run, linux, ours.bytes())
    assert not differ, f"{len(differ)} bytes differ, first at {differ[:8]}"
    return f"carveout da {carveout[1]:#x}, pa {carveout[2]:#x}; every byte equal with to_pa"


def check_unbound_vdev(run: Run, break_mode: str = "") -> str:
    """A vdev no driver binds: Linux assigns its vrings' notify ids while handling the table (rproc_alloc_vring)
    but writes their da only in rp_find_vq, which only a driver calls, so a vring asked at ANY stays ANY in the
    table; register_virtio_device resets it and sets ACKNOWLEDGE, and that is all (status 1, also after stop:
    no driver, no virtio_dev_remove). rproc's loader writes the da it allocated: the one difference, every other
    byte of the stop copy is equal."""
    run.guest.check_console_clean()
    _started(run)
    layout = run.layout
    ours = rproc_load(layout, run.firmware, registered(layout))
    stopped = run.stop_image(1)
    vdev1 = ours.table_da - layout.base + ours.resources.spans[2].offset
    rings = [struct.unpack_from("<IIIII", stopped, vdev1 + 28 + 20 * n) for n in range(2)]
    assert stopped[vdev1 + 24] == 1, f"unbound vdev status {stopped[vdev1 + 24]}"
    assert [(r[0], r[3]) for r in rings] == [(FW_RSC_ADDR_ANY, 2), (FW_RSC_ADDR_ANY, 3)], rings
    for control in ours.controls[:1]:
        control.reset_for_stop()
    ours_rings = [r.da for r in ours.resources.vdevs[1].vrings]
    assert FW_RSC_ADDR_ANY not in ours_rings, ours_rings  # rproc writes what it allocated
    expected = bytearray(ours.bytes())
    if break_mode != "unbound-da":
        for n in range(2):
            struct.pack_into("<I", expected, vdev1 + 28 + 20 * n, FW_RSC_ADDR_ANY)
    differ = differences(run, stopped, bytes(expected))
    assert not differ, f"{len(differ)} bytes differ after stop, first at {differ[:8]}"
    return f"unbound vdev: status 1, vring da ANY with notify ids 2/3 (rproc: {[hex(d) for d in ours_rings]})"


CHECKS: dict[str, Callable[[Run, str], str]] = {
    "unbound-vdev": check_unbound_vdev,
    "da-not-pa": check_da_not_pa,
    "two-vdevs": check_two_vdevs,
    "vendor": check_vendor_table,
    "carveouts": check_unregistered_carveouts,
    "devmem": check_devmem_refused,
}
"""Per table of emitted_tables.TABLES, its check (and its scenario ``table-NAME`` in the catalogue)."""


# ---- the catalogue's entries -----------------------------------------------------------------------------------

BREAKS = {
    name: Break(what, frozenset({f"table-{table}"}))
    for name, (table, what) in {
        "unbound-da": ("unbound-vdev", "the comparison without putting Linux's ANY into rproc's vring da"),
        "firmware-pa": ("carveouts", "rproc keeps the firmware's pa in a fixed carveout, as it did before"),
        "devmem-ok": ("devmem", "rproc's loader takes the devmem entry"),
        "unregistered": ("two-vdevs", "rproc's loader without uml_rproc's registered carveouts"),
        "pa-is-da": ("da-not-pa", "rproc's loader writes pa = da"),
    }.items()
}
"""Break modes: rproc's side wrong on purpose; the table's scenario must then fail."""

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


def _runner(table: str) -> Runner:
    def run(images: UmlImages, remote: str, tmp: Path, _break: str) -> contextlib.AbstractContextManager[Run]:
        return boot_table(images, remote_command(remote, tmp / "remote"), tmp, table)

    return run


BOOTS = tuple(Boot(f"table-{t}", f"the firmware carrying the '{t}' table", runner=_runner(t)) for t in CHECKS)
SCENARIOS = tuple(
    Scenario(f"table-{t}", TABLE_RULES[t], f"table-{t}", check, applies=only(*TABLE_REMOTES[t]))
    if t in TABLE_REMOTES
    else Scenario(f"table-{t}", TABLE_RULES[t], f"table-{t}", check)
    for t, check in CHECKS.items()
)
