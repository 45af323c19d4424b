"""Linux's remoteproc core (6.1 or 6.12, in UML) as a peer: the catalogue that ``rproc conformance --peer
linux-remoteproc`` runs and tests/conformance/linux/test_remoteproc_linux.py tests, and running it.

The catalogue is every module of boots, in this order: sysfs_boots (lifecycle, crash, firmware change),
in_guest_boot (rproc's platform and CLI in the guest), lifecycle (coredumps, status bytes, da != pa, inline
coredump), tables (the tables rproc emits), rsc_mutations (the corpus of broken tables) and m33_boot (the emulated
Cortex-M33 as the remote). Each declares its ``BOOTS``, ``SCENARIOS`` and ``BREAKS`` (catalogue_types.py);
:data:`BOOTS`, :data:`CATALOGUE` and :data:`BREAKS` here are all of them, complete once this module is imported.
A boot (guest_run.py) runs a guest script next to a host remote; its scenarios are judged on it.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from remoteproc.conformance.linux import (
    in_guest_boot,
    lifecycle,
    m33_boot,
    rsc_mutations,
    sysfs_boots,
    tables,
)
from remoteproc.conformance.linux.build import UmlImages, ensure_uml
from remoteproc.conformance.linux.catalogue_types import Boot, Break, Scenario
from remoteproc.conformance.linux.guest_run import REMOTE_CHOICES, Run, boot, remote_command
from remoteproc.conformance.report import Outcome, Report, Result

PARTS = (sysfs_boots, in_guest_boot, lifecycle, tables, rsc_mutations, m33_boot)
"""The modules of boots, in the catalogue's order."""

BOOTS: dict[str, Boot] = {b.name: b for part in PARTS for b in part.BOOTS}
CATALOGUE: tuple[Scenario, ...] = tuple(s for part in PARTS for s in part.SCENARIOS)
BREAKS: dict[str, Break] = {name: b for part in PARTS for name, b in part.BREAKS.items()}

CORE_BOOTS = frozenset(b.name for part in (sysfs_boots, in_guest_boot) for b in part.BOOTS)
"""The boots tests/conformance/linux/test_remoteproc_linux.py runs per kernel and remote; the others have their
own pytest files."""


def scenario(name: str) -> Scenario:
    for s in CATALOGUE:
        if s.name == name:
            return s
    raise ValueError(f"no scenario {name!r}: {', '.join(s.name for s in CATALOGUE)}")


def not_applicable(entry: Scenario, remote: str) -> str | None:
    """Why ``entry`` cannot be judged with ``remote`` on this host, or None."""
    return entry.applies(remote) or BOOTS[entry.boot].unavailable()


@contextlib.contextmanager
def boot_for(images: UmlImages, which: str, remote: str, tmp: Path, break_mode: str = "") -> Iterator[Any]:
    """A run of the boot ``which`` (:data:`BOOTS`) with ``remote`` (``c`` or ``python``)."""
    spec = BOOTS[which]
    if spec.runner is not None:
        with spec.runner(images, remote, tmp, break_mode) as made:
            yield made
        return
    if spec.prepare is not None:
        spec.prepare(tmp / "share")
    with boot(
        images,
        remote_command(remote, tmp / "remote"),
        tmp,
        spec.script(break_mode),
        timeout=spec.timeout,
        firmware_subdir=spec.firmware_subdir,
    ) as run:
        yield run


def judge(entry: Scenario, run: Run, break_mode: str = "") -> Result:
    t0 = time.monotonic()
    try:
        outcome, evidence = Outcome.PASS, entry.check(run, break_mode)
    except AssertionError as exc:
        outcome, evidence = Outcome.FAIL, (str(exc) or "assertion failed").splitlines()[0][:300]
    return Result(entry.name, entry.rule, outcome, evidence, time.monotonic() - t0)


def run_catalogue(
    kernel: str = "6.1",
    remote: str = "c",
    *,
    break_mode: str = "",
    only: list[str] | None = None,
    progress: Callable[[str], None] | None = None,
    on_result: Callable[[Result], None] | None = None,
) -> Report:
    """Every scenario of :data:`CATALOGUE` (or those named in ``only``) with ``kernel`` and ``remote``: one
    boot of each :data:`BOOTS` entry they need, the scenarios judged on it; n/a with the reason where they
    cannot be judged (``--remote qemu``, a host without what a boot needs)."""
    if break_mode and break_mode not in BREAKS:
        raise ValueError(f"no break mode {break_mode!r}: {', '.join(sorted(BREAKS))}")
    if remote not in REMOTE_CHOICES:
        raise ValueError(f"no remote {remote!r}: {', '.join(REMOTE_CHOICES)}")
    selected = [scenario(name) for name in only] if only else list(CATALOGUE)
    broken = f" (break {break_mode})" if break_mode else ""
    report = Report(f"Linux {kernel}'s remoteproc core in UML, {remote} remote{broken}")

    def record(result: Result) -> None:
        report.results.append(result)
        if on_result is not None:
            on_result(result)

    judged = []
    for entry in selected:
        reason = not_applicable(entry, remote)
        if reason is not None:
            record(Result(entry.name, entry.rule, Outcome.NOT_APPLICABLE, reason, 0.0))
        else:
            judged.append(entry)
    if not judged:
        return report
    images: UmlImages = ensure_uml(progress, kernel=kernel)
    for name in BOOTS:
        entries = [e for e in judged if e.boot == name]
        if not entries:
            continue
        if progress is not None:
            progress(f"boot {name}: {BOOTS[name].what}")
        with tempfile.TemporaryDirectory(prefix="rproc-linux-remoteproc-") as tmp, contextlib.ExitStack() as stack:
            started = time.monotonic()
            try:
                run = stack.enter_context(boot_for(images, name, remote, Path(tmp), break_mode))
            except Exception as exc:  # the boot itself failed: each of its scenarios says so
                evidence = f"the boot {name!r} failed: {(str(exc) or type(exc).__name__).splitlines()[0][:300]}"
                for entry in entries:
                    record(Result(entry.name, entry.rule, Outcome.FAIL, evidence, time.monotonic() - started))
                continue
            for entry in entries:
                record(judge(entry, run, break_mode))
    return report
