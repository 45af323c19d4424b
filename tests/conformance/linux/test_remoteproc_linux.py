"""Linux's own remoteproc core (remoteproc_core.c, remoteproc_elf_loader.c, remoteproc_virtio.c of Debian's Linux
6.1 and 6.12, unmodified) loads an rproc-built firmware ELF into memory it shares with a remote processor on the host,
boots it, and talks rpmsg to it through its own virtio_rpmsg_bus and rpmsg_char.

The kernel is the conformance UML kernel with the uml_rproc driver (remoteproc/conformance/linux/kernel-tree/):
the remote's memory is a host file the guest maps with iomem=, the doorbell a host UNIX socket. The remote is
host/uml_remote.c, the firmware's C rpmsg library (firmware/lib/rpmsg_remote.c) in a host process on that file.
It copies the file when DRIVER_OK appears and when Linux stops it; those copies are compared byte by byte with
what rproc's own loader and vdev sequence produce for the same ELF and memory map (docs/linux-conformance.md,
"remoteproc core").

Every scenario of the catalogue (remoteproc_peer.CATALOGUE, what `rproc conformance --peer linux-remoteproc`
runs) is one test here per kernel and remote, judged by the same function on a boot shared by its scenarios; a
new catalogue entry is a new test without an edit here.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from remoteproc.conformance.linux.build import KERNELS, UmlImages, ensure_uml
from remoteproc.conformance.linux.catalogue_types import Scenario
from remoteproc.conformance.linux.guest_run import QEMU, REMOTES, Run
from remoteproc.conformance.linux.remoteproc_peer import (
    BOOTS,
    BREAKS,
    CATALOGUE,
    CORE_BOOTS,
    boot_for,
    not_applicable,
)
from remoteproc.conformance.linux.rproc_uml import REPO
from remoteproc.conformance.report import Outcome

pytestmark = pytest.mark.conformance


@pytest.fixture(scope="module", params=KERNELS)
def images(request: pytest.FixtureRequest) -> UmlImages:
    """Linux 6.1 and 6.12."""
    return ensure_uml(kernel=request.param)


@pytest.fixture(scope="module", params=REMOTES)
def remote(request: pytest.FixtureRequest) -> str:
    """The remote processor: the firmware's C rpmsg library (host/uml_remote.c) or rproc's Python remote
    (uml_py_remote.py); the same command line, socket protocol and output lines."""
    return str(request.param)


class Boots:
    """The boots of one kernel and remote, each made when a scenario first needs it and kept for the others."""

    def __init__(self, images: UmlImages, remote: str, tmp: pytest.TempPathFactory) -> None:
        self.images, self.remote, self.tmp = images, remote, tmp
        self.stack = contextlib.ExitStack()
        self.runs: dict[str, Run | BaseException] = {}

    def get(self, name: str) -> Run:
        if name not in self.runs:
            try:
                self.runs[name] = self.stack.enter_context(
                    boot_for(self.images, name, self.remote, self.tmp.mktemp(name))
                )
            except BaseException as exc:  # every scenario of this boot fails with the boot's error
                self.runs[name] = exc
        run = self.runs[name]
        if isinstance(run, BaseException):
            raise run
        return run


@pytest.fixture(scope="module")
def boots(images: UmlImages, remote: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Boots]:
    made = Boots(images, remote, tmp_path_factory)
    with made.stack:
        yield made


# The boots of sysfs_boots.py and in_guest_boot.py per kernel and remote; the boots of lifecycle.py, tables.py,
# rsc_mutations.py and m33_boot.py have their own pytest files (test_lifecycle_linux.py, test_remoteproc_tables.py,
# test_rsc_mutations_linux.py, test_remoteproc_qemu.py) calling the same checks, and run here through the CLI.
CORE = tuple(e for e in CATALOGUE if e.boot in CORE_BOOTS)
CORE_NAMES = frozenset(e.name for e in CORE)


@pytest.mark.parametrize("entry", CORE, ids=lambda e: e.name)
def test_scenario(boots: Boots, entry: Scenario) -> None:
    """One catalogue scenario, judged as `rproc conformance --peer linux-remoteproc` judges it."""
    reason = not_applicable(entry, boots.remote)
    if reason is not None:
        pytest.skip(reason)
    entry.check(boots.get(entry.boot), "")


RPROC_SIDE_BREAKS = sorted(name for name, b in BREAKS.items() if not b.in_boot and b.fails <= CORE_NAMES)


@pytest.mark.parametrize("mode", RPROC_SIDE_BREAKS)
@pytest.mark.parametrize("entry", CORE, ids=lambda e: e.name)
def test_break_modes_fail_exactly_their_scenarios(boots: Boots, entry: Scenario, mode: str) -> None:
    """Each break mode makes rproc's side wrong on purpose: the scenarios it names must fail on the same boot,
    the others still pass."""
    if not_applicable(entry, boots.remote) is not None:
        pytest.skip("n/a")
    run = boots.get(entry.boot)
    if entry.name in BREAKS[mode].fails:
        with pytest.raises(AssertionError, match="bytes differ"):
            entry.check(run, mode)
    else:
        entry.check(run, mode)


def test_every_break_names_scenarios_of_the_catalogue() -> None:
    names = {e.name for e in CATALOGUE}
    assert {e.boot for e in CATALOGUE} == set(BOOTS)
    for mode, b in BREAKS.items():
        assert b.fails and b.fails <= names, mode


# ---- the same as a catalogue: rproc conformance --peer linux-remoteproc ----------------------------------------

LIFECYCLE = [e.name for e in CATALOGUE if e.boot == "lifecycle"]


def _conformance(*args: str, timeout: float = 900) -> tuple[dict[str, str], subprocess.CompletedProcess[str]]:
    command = [sys.executable, "-m", "remoteproc", "conformance", "--peer", "linux-remoteproc", "--json", *args]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=timeout, check=False)
    report = json.loads(done.stdout)
    return {r["scenario"]: r["outcome"] for r in report["results"]}, done


def test_rproc_conformance_runs_the_whole_catalogue(tmp_path: Path) -> None:
    """Every boot of the catalogue through the CLI (JSON and JUnit reports, exit status 0)."""
    ensure_uml()  # built outside the timed command
    outcomes, done = _conformance("--junit", str(tmp_path / "junit.xml"), timeout=1800)
    expected = {e.name: "pass" if not_applicable(e, "c") is None else "n/a" for e in CATALOGUE}
    assert outcomes == expected, done.stdout + done.stderr
    assert set(expected.values()) == {"pass", "n/a"} and {n for n, o in expected.items() if o == "n/a"} == {
        "da-not-pa",  # the Python remote's (it maps the physical address too)
        "table-da-not-pa",
        "m33-rpmsg",  # the Cortex-M33's
        "m33-table-after-boot",
    }
    assert done.returncode == 0
    junit = (tmp_path / "junit.xml").read_text()
    assert junit.count("<testcase ") == len(CATALOGUE) and "<failure" not in junit


@pytest.mark.parametrize(
    ("mode", "only"),
    [
        ("no-zero-fill", LIFECYCLE),
        ("send-waits-for-pollout", ["guest-linux-platform", "guest-cli"]),
        ("invert-rproc", ["broken-tables", "broken-tables-console"]),
        ("stop-after-remote", ["coredump", "status-sequence"]),
        ("unregistered", ["table-two-vdevs"]),
    ],
)
def test_rproc_conformance_break_modes(mode: str, only: list[str]) -> None:
    """A break mode fails exactly the scenarios it names (exit status 1), whether it changes rproc's side of a
    comparison or what runs in the guest."""
    ensure_uml()
    outcomes, done = _conformance("--break", mode, "--only", ",".join(only))
    assert set(outcomes) == set(only), done.stdout
    assert {name for name, outcome in outcomes.items() if outcome != "pass"} == BREAKS[mode].fails & set(only), (
        done.stdout + done.stderr
    )
    assert done.returncode == 1


@pytest.mark.skipif(
    not (shutil.which("qemu-system-arm") and shutil.which("arm-none-eabi-gcc")),
    reason="needs qemu-system-arm and gcc-arm-none-eabi (./scripts/setup)",
)
def test_rproc_conformance_qemu_remote() -> None:
    """`--remote qemu`: the M33's scenarios pass (Linux loads the ARM firmware QEMU runs); the others are made for
    the host remotes' firmware and map: n/a with the reason; exit status 0."""
    ensure_uml()
    outcomes, done = _conformance("--remote", QEMU, timeout=600)
    m33 = {e.name for e in CATALOGUE if e.boot == "m33"}
    assert m33 == {"m33-rpmsg", "m33-table-after-boot"}
    assert outcomes == {e.name: "pass" if e.name in m33 else Outcome.NOT_APPLICABLE.value for e in CATALOGUE}, (
        done.stdout + done.stderr
    )
    assert "Cortex-M33" in done.stdout and done.returncode == 0


def test_rproc_conformance_list() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "remoteproc", "conformance", "--peer", "linux-remoteproc", "--list"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    for entry in CATALOGUE:
        assert re.search(rf"^  {re.escape(entry.name)}\s+\[{entry.boot}\]", done.stdout, re.M), done.stdout
    for mode in BREAKS:
        assert mode in done.stdout
