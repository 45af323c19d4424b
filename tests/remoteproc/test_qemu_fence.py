"""The vring engine's full fence (rp_mb, virtio/csrc/vring_fence.h) holds between the emulated Cortex-M33 and
this host: a store-buffering litmus test (firmware/tests/fence_litmus, tests/remoteproc/fence_litmus_host.c).

A round where neither side sees the other's store is the reordering that loses a notification (the firmware's
used index and the host's avail.flags in place of x and y). QEMU up to 8.0 translates the core's DMB into nothing
on this one-CPU board, so the board brings its own fence (firmware/boards/mps2-an505/fence.c); docs/mcu.md "Fences
on the emulated board"."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from remoteproc.elf import read_elf
from remoteproc.platforms.qemu import QemuPlatform

REPO = Path(__file__).resolve().parents[2]
# Enough rounds that the control sees hundreds of reordered rounds (8-10 % of rounds here, idle or loaded).
ROUNDS = 200_000
SPREAD = 200  # the host's delay before its store: 0..199 loop iterations, so the two sides meet at every distance

BUILDS = {
    "library": "",  # as the services firmware is built: rp_mb() is the board's fence
    "dmb-only": "BOARD_CFLAGS_mps2-an505=",  # rp_mb() the architecture's DMB alone, as before the board's fence
    "no-fence": "EXTRA_CFLAGS=-DLITMUS_NO_FENCE=1",  # the control
}


@pytest.fixture(scope="module")
def litmus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The litmus firmware in each build, and the host program (key "host")."""
    out = {}
    for name, flags in BUILDS.items():
        build = tmp_path_factory.mktemp(f"litmus-{name}")
        args = ["make", "-s", "-C", str(REPO / "firmware"), f"BUILD={build}", f"{build}/fence_litmus.elf"]
        subprocess.run(args + ([flags] if flags else []), check=True, capture_output=True, text=True, timeout=300)
        out[name] = build / "fence_litmus.elf"
    host = tmp_path_factory.mktemp("litmus-host") / "fence_litmus_host"
    source = REPO / "tests" / "remoteproc" / "fence_litmus_host.c"
    subprocess.run(
        ["gcc", "-O2", "-std=c11", "-D_POSIX_C_SOURCE=200809L", "-Wall", "-Wextra", "-Werror",
         f"-I{REPO / 'virtio' / 'csrc'}", f"-I{REPO / 'firmware' / 'tests' / 'fence_litmus'}", "-o", str(host),
         str(source)],
        check=True, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    out["host"] = host
    return out


def booted(firmware: Path) -> Iterator[QemuPlatform]:
    """The firmware running on QEMU's mps2-an505, its shared RAM a file here (no resource table: not RemoteProc)."""
    if not shutil.which("qemu-system-arm"):
        pytest.fail("qemu-system-arm is not installed: run ./scripts/setup")
    board = QemuPlatform()
    try:
        board.load(firmware, read_elf(firmware), None)
        board.prepare()
        board.start(0, 0)
        yield board
    finally:
        board.close()


def reordered_rounds(litmus: dict[str, Path], build: str) -> int:
    firmware = litmus[build]
    with open(firmware, "rb") as f:
        symtab = ELFFile(f).get_section_by_name(".symtab")
        assert symtab is not None
        (sym,) = symtab.get_symbol_by_name("litmus")
    for board in booted(firmware):
        offset = int(sym["st_value"]) - board.shared.da
        run = subprocess.run(
            [str(litmus["host"]), str(board.ram_path), hex(offset), str(ROUNDS), str(SPREAD)],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert run.returncode == 0, (run.returncode, run.stderr, board.log_text())
        rounds, reordered = map(int, run.stdout.split())
        assert rounds == ROUNDS
        return reordered
    raise AssertionError("not booted")


def test_the_control_without_a_fence_shows_reordered_rounds(litmus: dict[str, Path]) -> None:
    """The test sees the reordering when a side has no fence (else its zero below would say nothing)."""
    assert reordered_rounds(litmus, "no-fence") > 0


def test_the_library_fence_keeps_a_store_before_a_later_load(litmus: dict[str, Path]) -> None:
    assert reordered_rounds(litmus, "library") == 0


def qemu_version() -> tuple[int, int]:
    out = subprocess.run(["qemu-system-arm", "--version"], capture_output=True, text=True, check=True).stdout
    m = re.search(r"version (\d+)\.(\d+)", out)
    assert m, out
    return int(m.group(1)), int(m.group(2))


def test_why_the_board_brings_its_own_fence(litmus: dict[str, Path]) -> None:
    """QEMU before 8.1 drops the DMB on a one-CPU machine: the architecture's fence alone lets rounds reorder
    (8-10 % here, QEMU 7.2). From 8.1 on it must hold like the board's fence."""
    reordered = reordered_rounds(litmus, "dmb-only")
    if qemu_version() < (8, 1):
        assert reordered > 0
    else:
        assert reordered == 0
