"""The entries of the catalogue of Linux's remoteproc core as a peer (remoteproc_peer.py): a :class:`Boot` (one
guest boot), the :class:`Scenario` judged on it and the :class:`Break` modes that must make scenarios fail. Each
module of boots (sysfs_boots, in_guest_boot, lifecycle, tables, rsc_mutations, m33_boot) declares its own as
``BOOTS``, ``SCENARIOS`` and ``BREAKS``; remoteproc_peer.py puts them together.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from remoteproc.conformance.linux.build import UmlImages
from remoteproc.conformance.linux.guest_run import BOOT_TIMEOUT, QEMU

Check = Callable[[Any, str], str]
Runner = Callable[[UmlImages, str, Path, str], contextlib.AbstractContextManager[Any]]
"""A boot of its own kind: ``runner(images, remote, tmp, break_mode)`` yields what its scenarios judge."""

QEMU_OTHER_FIRMWARE = (
    "made for the host remotes' firmware and memory map; the Cortex-M33 runs the m33 scenarios "
    "(its own ARM firmware at its own addresses, and it writes its own bss: no image comparison)"
)


def host_remotes_only(remote: str) -> str | None:
    return QEMU_OTHER_FIRMWARE if remote == QEMU else None


def only(*remotes: str) -> Callable[[str], str | None]:
    """A scenario's ``applies``: judged with these remotes only."""

    def applies(remote: str) -> str | None:
        return None if remote in remotes else f"runs with the {' or '.join(remotes)} remote only"

    return applies


@dataclass(frozen=True)
class Break:
    """A way to make rproc's side wrong on purpose, and the scenarios it must make fail. ``in_boot``: the break
    changes what runs in the guest (the boot is made with it), else only what the checks compare with."""

    what: str
    fails: frozenset[str]
    in_boot: bool = False


@dataclass(frozen=True)
class Boot:
    """One guest boot that some scenarios are judged on. ``script(break_mode)`` is the guest's script (booted with
    guest_run.boot); ``prepare(share)`` puts more files in the guest's /host before it boots; ``unavailable()``
    says why this host cannot run the boot (its scenarios are then n/a); ``runner``: a boot of its own kind,
    instead of ``script``."""

    name: str
    what: str
    script: Callable[[str], str] = lambda _break: ""
    timeout: float = BOOT_TIMEOUT
    firmware_subdir: str = ""
    prepare: Callable[[Path], None] | None = None
    unavailable: Callable[[], str | None] = lambda: None
    runner: Runner | None = None


@dataclass(frozen=True)
class Scenario:
    """One catalogue entry: ``check(run, break_mode)`` on a run of ``boot`` returns its evidence or raises
    AssertionError saying what differs. ``applies(remote)`` gives the reason it is n/a for that remote."""

    name: str
    rule: str
    boot: str
    check: Check
    applies: Callable[[str], str | None] = host_remotes_only
