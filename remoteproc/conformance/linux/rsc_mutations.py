"""Broken resource tables: Linux's remoteproc core and rproc must give each the same verdict.

The corpus (mutation_corpus.py): named mutations of a good table, each a firmware ELF whose ``.resource_table``
holds the mutation's bytes.

The verdicts:

- **rproc** (:func:`rproc_verdict`): what ``RemoteProc.load`` does on its own platform with the same memory map:
  the table must parse (``firmware_info``), ``rproc rsc check --lenient`` must find no error, and the loader
  (``load_segments`` + ``handle_resources``) must place every resource.
- **Linux** (:func:`linux_verdicts`): one boot per kernel; the guest writes each firmware name to
  ``/sys/class/remoteproc/remoteproc0/firmware``, tries ``echo start > state``, records the result, the state,
  whether the rpmsg channel came up and the kernel log lines of that start, and stops the remote if it runs.
  *refused*: the start failed. *vdev refused*: the start succeeded but the vdev's ``rproc-virtio`` platform
  device (or the rpmsg driver on it) failed to probe: remoteproc_core.c ``rproc_handle_vdev`` registers it with
  ``platform_device_register_data``, which succeeds whatever the probe returns, so errors of
  remoteproc_virtio.c ``rproc_virtio_probe`` (``rproc_parse_vring``, ``rproc_alloc_vring``) only reach the log
  and the remote runs without its vdev: it counts as a refusal of the table. *accepted*: started, every vdev
  probed.

:func:`check_mutations` compares the two; a mutation whose verdicts differ must be listed in
:data:`DIFFERENCES` with the reason and the kernel source line, and a listed difference must still be one.
Each :class:`Mutation` also names the kernel log line Linux refuses it with (from the source), which the
comparison checks too, so a refusal for another reason shows.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from remoteproc.conformance.linux.build import UmlImages
from remoteproc.conformance.linux.catalogue_types import Boot, Break, Scenario, only
from remoteproc.conformance.linux.guest_run import GUEST_MEM, HostRemote, run_guest
from remoteproc.conformance.linux.mutation_corpus import Mutation, corpus, write_corpus
from remoteproc.conformance.linux.rproc_side import load_image
from remoteproc.conformance.linux.rproc_uml import Layout, build_remote
from remoteproc.conformance.linux.uml import UmlGuest
from remoteproc.elf import read_elf
from remoteproc.errors import RemoteprocError
from remoteproc.firmware import firmware_info
from remoteproc.resources import handle_resources
from resource_table import ResourceTableError, Severity

ACCEPTED, REFUSED, VDEV_REFUSED = "accepted", "refused", "vdev refused"
BOOT_TIMEOUT = 240.0


# ---- rproc's verdict -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    accepted: bool
    reason: str  # the first error rproc gives, "" when accepted
    stage: str = ""  # parse / check / loader
    warnings: tuple[str, ...] = ()


def rproc_verdict(elf: Path, layout: Layout) -> Verdict:
    """What RemoteProc.load does with the firmware on its own platform with ``layout``'s memory map: the table
    must parse, ``rproc rsc check --lenient`` must pass, the loader must place every resource."""
    try:
        info = firmware_info(elf)
    except RemoteprocError as exc:
        return Verdict(False, str(exc), "parse")
    warnings = tuple(str(f) for f in info.findings if f.severity is Severity.WARNING)
    errors = [str(f) for f in info.findings if f.severity is Severity.ERROR]
    if errors:
        return Verdict(False, errors[0], "check", warnings)
    section = info.elf.resource_table
    assert info.table is not None and section is not None
    try:
        memory, pool = load_image(layout, elf, info)
        data = elf.read_bytes()[section.offset : section.offset + section.size]
        handle_resources(data, info.table, info.spans, memory, pool)
    except (RemoteprocError, ResourceTableError) as exc:
        return Verdict(False, str(exc), "loader", warnings)
    return Verdict(True, "", "", warnings)


def rsc_check_cli(elf: Path) -> tuple[int, str]:
    """``rproc rsc check --lenient ELF``: exit status and output, run in this process."""
    from remoteproc.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(["rsc", "check", "--lenient", str(elf)])
    return status, out.getvalue() + err.getvalue()


# ---- Linux's verdict -----------------------------------------------------------------------------------------

GUEST_SCRIPT = r"""
R=/sys/class/remoteproc/remoteproc0
dmesg -c > /dev/null
for f in $(cat /host/mutations.txt); do
    echo rsc-$f.elf > $R/firmware
    if echo start > $R/state 2> /tmp/err; then rc=ok; else rc=fail; fi
    state=$(cat $R/state)
    channel=no
    if [ "$state" = running ] && ls /sys/bus/virtio/drivers/virtio_rpmsg_bus/ 2>/dev/null | grep -q virtio; then
        i=0
        while ! dmesg | grep -q 'creating channel rpmsg-raw' && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done
        dmesg | grep -q 'creating channel rpmsg-raw' && channel=yes
    fi
    if [ "$state" = running ]; then echo stop > $R/state; fi
    echo "rsc-mut $f start=$rc state=$state channel=$channel after=$(cat $R/state) err=$(tr -d '\n' < /tmp/err)"
    dmesg -c | sed "s/^/rsc-log $f /"
done
echo "rsc-mut-done"
"""


@dataclass(frozen=True)
class LinuxVerdict:
    name: str
    outcome: str  # ACCEPTED / REFUSED / VDEV_REFUSED
    started: bool
    channel: bool
    error: str
    log: tuple[str, ...]

    @property
    def accepted(self) -> bool:
        return self.outcome == ACCEPTED

    def reason(self) -> str:
        """The kernel's own words: the error lines of the start, else its warnings."""
        interesting = [line for line in self.log if re.search(ERROR_LINE, line) and not re.search(CHATTER, line)]
        return "; ".join(interesting) if interesting else ""


# the kernel log lines that explain a verdict (dev_err/dev_warn of the core, the driver core's probe failure)
ERROR_LINE = (
    r"(truncated|incomplete|unsupported|non zero|invalid|too many|Registered carveout|Failed|failed|can't|"
    r"header-less|doesn't fit|not available|Bad|error)"
)
# drivers/base/dd.c call_driver_probe: 6.1 pr_warn("%s: probe of %s failed with error %d"), 6.12 dev_err(dev,
# "probe with driver %s failed with error %d"), for the vdev's platform device or the rpmsg driver on it
PROBE_FAILED = re.compile(
    r"(rproc-virtio|virtio_rpmsg_bus): probe of \S+ failed with error"
    r"|probe with driver (rproc-virtio|virtio_rpmsg_bus) failed with error"
)
CHATTER = r"(direct-loading firmware|Booting fw image)"  # name the file, whose name may say "truncated"
_TIMESTAMP = re.compile(r"^\[\s*\d+\.\d+\]\s*")


def parse_guest(lines: list[str]) -> dict[str, LinuxVerdict]:
    """The guest's ``rsc-mut`` and ``rsc-log`` lines as verdicts by mutation name."""
    logs: dict[str, list[str]] = {}
    results: dict[str, tuple[bool, bool, str, str]] = {}
    for line in lines:
        got = re.match(r"rsc-log (\S+) (.*)$", line)
        if got:
            logs.setdefault(got.group(1), []).append(_TIMESTAMP.sub("", got.group(2)))
            continue
        got = re.match(r"rsc-mut (\S+) start=(\w+) state=(\S*) channel=(\w+) after=\S* err=(.*)$", line)
        if got:
            results[got.group(1)] = (got.group(2) == "ok", got.group(4) == "yes", got.group(3), got.group(5))
    verdicts = {}
    for name, (started, channel, _state, error) in results.items():
        log = tuple(logs.get(name, ()))
        probe_failed = any(PROBE_FAILED.search(x) for x in log)
        outcome = REFUSED if not started else VDEV_REFUSED if probe_failed else ACCEPTED
        verdicts[name] = LinuxVerdict(name, outcome, started, channel, error.strip(), log)
    return verdicts


@dataclass
class CorpusRun:
    layout: Layout
    mutations: list[Mutation]
    firmware: dict[str, Path]
    guest: UmlGuest
    remote: HostRemote
    linux: dict[str, LinuxVerdict] = field(default_factory=dict)


@contextlib.contextmanager
def boot_corpus(images: UmlImages, tmp: Path, remote_dir: Path | None = None) -> Iterator[CorpusRun]:
    """One UML boot that tries every mutation; yields once UML has exited."""
    layout = Layout.for_guest_mem(GUEST_MEM)
    share = tmp / "share"
    share.mkdir(parents=True, exist_ok=True)
    firmware = write_corpus(layout, share)
    mutations = corpus(layout)
    (share / "mutations.txt").write_text("".join(f"{m.name}\n" for m in mutations))
    table_da = read_elf(firmware["good"]).resource_table
    assert table_da is not None
    command = [str(build_remote(remote_dir or tmp / "remote"))]
    with run_guest(images, command, tmp, layout, table_da.addr, GUEST_SCRIPT, timeout=BOOT_TIMEOUT) as ran:
        yield CorpusRun(layout, mutations, firmware, ran.guest, ran.remote, parse_guest(ran.guest.lines))


# ---- the comparison ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Difference:
    """A mutation Linux and rproc judge differently, on purpose or by the platform: why, and the source."""

    linux: str  # Linux's outcome
    rproc_accepts: bool
    why: str
    source: str


_NOT_POW2 = (
    "rproc refuses on purpose: split-ring indices wrap with `& (num - 1)` (virtio_ring.c) and the used ring is "
    "placed with `& ~(align - 1)` (vring_init), which only work for powers of two (virtio 1.x 2.7: the queue size "
    "is a power of 2); the firmware's own C library (firmware/lib/rpmsg_remote.c) refuses the ring too, so the "
    "channel never comes up"
)
_NO_CHECK = (
    "remoteproc_core.c rproc_parse_vring checks only `!vring->num || !vring->align`; remoteproc_virtio.c "
    'rp_find_vq -> virtio_ring.c vring_new_virtqueue, which (unlike vring_alloc_queue_split: "Bad virtqueue '
    'length") checks nothing'
)
DIFFERENCES: dict[str, Difference] = {
    "offset-in-offsets": Difference(
        ACCEPTED,
        False,
        "rproc refuses on purpose: an entry that starts inside the offset array is made of offset words; Linux "
        "only skips it here because the word is no known type, but the same table with a small offset would be "
        "read (and written back: da, status) as a carveout or vdev over the offsets the remote reads",
        "include/linux/rsc_table.h rsc_table_for_each_entry: `offset < sizeof(*table)` (16 bytes: the header "
        'without its offset[] array); remoteproc_core.c rproc_handle_rsc_entry: "unsupported resource %d"',
    ),
    "trace-outside-memory": Difference(
        ACCEPTED,
        False,
        "rproc refuses on purpose at load: the firmware would write its log where the host never reads it (a "
        "wrong address); Linux notes the da and only fails at the first read of the trace file",
        "remoteproc_core.c rproc_handle_trace stores da and len unchecked; remoteproc_debugfs.c rproc_trace_read: "
        '"Trace %s not available"',
    ),
    "vring-num-48": Difference(ACCEPTED, False, _NOT_POW2, _NO_CHECK),
    "vring-align-0x1800": Difference(ACCEPTED, False, _NOT_POW2, _NO_CHECK),
    "vring-da-elsewhere": Difference(
        VDEV_REFUSED,
        True,
        "the platform: uml_rproc registers vdev0vring0 at a fixed da (as stm32_rproc and imx_rproc do from the "
        "device tree) and the vring must lie in it; rproc's own platforms have no such carveout, so a vring "
        "anywhere in the remote's memory is fine there",
        "remoteproc_core.c rproc_alloc_vring -> rproc_check_carveout_da: \"Registered carveout doesn't fit len "
        'request"',
    ),
}


@dataclass(frozen=True)
class Row:
    mutation: Mutation
    linux: LinuxVerdict
    rproc: Verdict
    difference: Difference | None

    @property
    def agree(self) -> bool:
        return self.linux.accepted == self.rproc.accepted


def compare(run: CorpusRun, break_mode: str = "") -> list[Row]:
    rows = []
    for mutation in run.mutations:
        linux = run.linux.get(mutation.name)
        if linux is None:
            raise AssertionError(f"{mutation.name}: the guest reported nothing (did the kernel stop early?)")
        ours = rproc_verdict(run.firmware[mutation.name], run.layout)
        if break_mode == "invert-rproc" and mutation.name == "ver-0":
            ours = dataclasses.replace(ours, accepted=not ours.accepted)
        rows.append(Row(mutation, linux, ours, DIFFERENCES.get(mutation.name)))
    return rows


def _has_rpmsg_vdev(elf: Path) -> bool:
    try:
        info = firmware_info(elf)
    except RemoteprocError:
        return False
    return info.table is not None and any(v.id == 7 for v in info.table.vdevs)


def check_console(run: CorpusRun, break_mode: str = "") -> str:
    """No BUG, Oops, panic or unexpected WARNING while the kernel went through the corpus."""
    run.guest.check_console_clean()
    done = [line for line in run.guest.lines if line == "rsc-mut-done"]
    assert done, "the guest did not get through the corpus:\n" + run.guest.tail()
    return f"{len(run.linux)} starts, the console clean"


def check_mutations(run: CorpusRun, break_mode: str = "") -> str:
    """Every mutation: Linux's verdict equals rproc's, or the difference is the one recorded in DIFFERENCES;
    Linux refused for the reason the source says (the mutation's log line); accepted tables with an rpmsg vdev
    got their channel (the remote ran). Another boot's break mode (the catalogue checked its name) breaks
    nothing here."""
    problems = []
    rows = compare(run, break_mode)
    for row in rows:
        name, linux, ours, diff = row.mutation.name, row.linux, row.rproc, row.difference
        if row.mutation.linux_reason and not any(re.search(row.mutation.linux_reason, x) for x in linux.log):
            problems.append(f"{name}: Linux did not log /{row.mutation.linux_reason}/: {list(linux.log)}")
        if diff is None and not row.agree:
            problems.append(
                f"{name}: Linux {linux.outcome} ({linux.reason() or linux.error}), rproc "
                f"{'accepts' if ours.accepted else 'refuses'} ({ours.reason})"
            )
        if linux.accepted and ours.accepted and _has_rpmsg_vdev(run.firmware[name]) and not linux.channel:
            problems.append(f"{name}: accepted by both, but the remote's rpmsg channel did not come up")
        if diff is not None and (linux.outcome != diff.linux or ours.accepted != diff.rproc_accepts):
            problems.append(
                f"{name}: the recorded difference no longer holds: Linux {linux.outcome}, rproc "
                f"{'accepts' if ours.accepted else 'refuses'} (recorded: Linux {diff.linux}, rproc "
                f"{'accepts' if diff.rproc_accepts else 'refuses'})"
            )
    assert not problems, f"{len(problems)} of {len(rows)} mutations: " + "\n".join(problems)
    agree = sum(row.agree for row in rows)
    return f"{len(rows)} mutations: {agree} same verdict, {len(rows) - agree} recorded differences"


def table_markdown(rows: list[Row]) -> str:
    """The doc table: mutation, Linux's verdict and log line, rproc's verdict and message."""
    out = ["| mutation | Linux | Linux's reason | rproc | rproc's message |", "| --- | --- | --- | --- | --- |"]
    for row in rows:
        reason = row.linux.reason() or row.linux.error or ""
        ours = "accepts" if row.rproc.accepted else f"refuses ({row.rproc.stage})"
        mark = "" if row.agree else " **(differs)**"
        out.append(
            f"| `{row.mutation.name}`: {row.mutation.what} | {row.linux.outcome}{mark} | {reason[:160]} | {ours} |"
            f" {row.rproc.reason[:200]} |"
        )
    return "\n".join(out)


# ---- the catalogue's entries -----------------------------------------------------------------------------------


def _corpus(images: UmlImages, _remote: str, tmp: Path, _break: str) -> contextlib.AbstractContextManager[CorpusRun]:
    return boot_corpus(images, tmp, tmp / "remote")


BOOTS = (
    Boot(
        "broken-tables",
        f"the corpus of broken tables ({len(corpus(Layout.for_guest_mem(GUEST_MEM)))} mutations) tried one by one",
        runner=_corpus,
    ),
)

SCENARIOS = (
    Scenario(
        "broken-tables",
        "each broken table gets Linux's verdict from rproc, or the difference is recorded",
        "broken-tables",
        check_mutations,
        applies=only("c"),
    ),
    Scenario(
        "broken-tables-console",
        "the kernel goes through the corpus without a BUG, Oops or WARNING",
        "broken-tables",
        check_console,
        applies=only("c"),
    ),
)

BREAKS = {
    "invert-rproc": Break(
        "rproc's verdict on ver-0 is inverted (the comparison must fail for that mutation)",
        frozenset({"broken-tables"}),
    ),
}


def main(argv: list[str] | None = None) -> int:
    """``python -m remoteproc.conformance.linux.rsc_mutations [--kernel 6.1|6.12]``: one boot, the table of
    verdicts (Markdown, as in docs/linux-conformance.md) and the comparison's outcome; exit 1 when it fails."""
    import argparse

    from remoteproc.conformance.linux.build import DEFAULT_KERNEL, KERNELS, ensure_uml

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--kernel", choices=KERNELS, default=DEFAULT_KERNEL)
    parser.add_argument("--break", dest="break_mode", choices=sorted(BREAKS), default="")
    args = parser.parse_args(argv)
    images = ensure_uml(kernel=args.kernel)
    with tempfile.TemporaryDirectory(prefix="rproc-rsc-mutations-") as tmp, boot_corpus(images, Path(tmp)) as run:
        print(table_markdown(compare(run, args.break_mode)))
        try:
            print(check_console(run))
            print(check_mutations(run, args.break_mode))
        except AssertionError as exc:
            print(f"FAIL: {exc}")
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
