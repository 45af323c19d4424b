"""The services firmware sleeps between doorbells on QEMU's emulated Cortex-M33 (docs/mcu.md, "Sleeping"): its
main loop waits in WFI for UART0's receive interrupt (the host's kick) instead of polling its vrings, and loses no
kick that lands between its look at the rings and the WFI. The firmware counts its loop passes, WFIs and doorbell
interrupts in shared memory (``idle_stats``, firmware/include/rproc/idle.h), read here while it runs."""

from __future__ import annotations

import shutil
import struct
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from remoteproc.platforms.qemu import QemuPlatform
from remoteproc.rproc import RemoteProc
from rpmsg import RpmsgTimeout

REPO = Path(__file__).resolve().parents[2]

MAGIC = 0x454C4449  # RPROC_IDLE_MAGIC
MODE_WFI, MODE_POLL = 1, 2
STATS = struct.Struct("<5I")


@dataclass(frozen=True)
class Stats:
    mode: int
    loops: int
    sleeps: int
    doorbells: int

    def __sub__(self, other: Stats) -> Stats:
        return Stats(self.mode, self.loops - other.loops, self.sleeps - other.sleeps, self.doorbells - other.doorbells)


def stats_address(firmware: Path) -> int:
    with open(firmware, "rb") as f:
        symtab = ELFFile(f).get_section_by_name(".symtab")
        assert symtab is not None
        (sym,) = symtab.get_symbol_by_name("idle_stats")
        return int(sym["st_value"])


def read_stats(rp: RemoteProc, address: int) -> Stats:
    magic, mode, loops, sleeps, doorbells = STATS.unpack(rp.platform.memory.read(address, STATS.size))
    assert magic == MAGIC, f"no idle_stats at {address:#x}"
    return Stats(mode, loops, sleeps, doorbells)


def over(rp: RemoteProc, address: int, seconds: float) -> Stats:
    """What the counters did in ``seconds`` of this process doing nothing with the remote."""
    before = read_stats(rp, address)
    time.sleep(seconds)
    return read_stats(rp, address) - before


@pytest.fixture
def sleeping(services_firmware: Path) -> Iterator[tuple[RemoteProc, int]]:
    yield from running(services_firmware)


@pytest.fixture
def polling(polling_services_firmware: Path) -> Iterator[tuple[RemoteProc, int]]:
    yield from running(polling_services_firmware)


def running(firmware: Path) -> Iterator[tuple[RemoteProc, int]]:
    if not shutil.which("qemu-system-arm"):
        pytest.fail("qemu-system-arm is not installed: run ./scripts/setup")
    with RemoteProc(QemuPlatform()) as rp:
        rp.load(firmware)
        rp.start()
        yield rp, stats_address(firmware)


def echo(rp: RemoteProc, payloads: list[bytes]) -> None:
    assert rp.rpmsg is not None
    ep = rp.rpmsg.open("rpmsg-echo", timeout=10)
    ep.settimeout(10)  # a lost wake-up is a recv that times out
    for p in payloads:
        ep.send(p)
    for p in payloads:
        assert ep.recv() == p


def test_an_idle_firmware_sleeps_instead_of_spinning(sleeping: tuple[RemoteProc, int]) -> None:
    rp, address = sleeping
    echo(rp, [b"set up"])
    idle = over(rp, address, 1.0)
    assert idle.mode == MODE_WFI
    # Connected and idle: no loop pass at all, so no WFI either (each pass that finds no work sleeps once).
    assert idle.loops <= 2 and idle.sleeps == idle.loops, idle
    woken = read_stats(rp, address)
    echo(rp, [b"wake"])
    # The kick's interrupt woke it, and it goes back to sleep: the counters move after the reply went out.
    deadline = time.monotonic() + 10
    while (after := read_stats(rp, address) - woken).sleeps < 1:
        assert time.monotonic() < deadline, after
        time.sleep(0.01)
    assert after.doorbells >= 1, after


def test_the_polling_build_spins_while_idle(polling: tuple[RemoteProc, int]) -> None:
    """The same measurement on the polling build (what the firmware did before): the counters see the spin."""
    rp, address = polling
    echo(rp, [b"set up"])
    idle = over(rp, address, 1.0)
    assert idle.mode == MODE_POLL
    assert idle.loops >= 1000 and idle.sleeps == 0 and idle.doorbells == 0, idle


PAUSES = (0.0, 0.0001, 0.0005, 0.001, 0.002)


def bursts(rp: RemoteProc, count: int, timeout: float = 10.0) -> int | None:
    """``count`` bursts of 1..7 echoed messages with pauses of 0 to 2 ms between them, so that kicks land at
    every point of the firmware's look at the rings and its WFI; the burst whose answer never came (a kick lost:
    the firmware sleeps on a message until a kick that never comes), or None when every message was answered."""
    assert rp.rpmsg is not None
    ep = rp.rpmsg.open("rpmsg-echo", timeout=10)
    ep.settimeout(timeout)
    for burst in range(count):
        payloads = [f"{burst}:{i}".encode() * (1 + i) for i in range(1 + burst % 7)]
        for p in payloads:
            ep.send(p)
        try:
            for p in payloads:
                assert ep.recv() == p
        except RpmsgTimeout:
            return burst
        time.sleep(PAUSES[burst % len(PAUSES)])
    return None


def test_no_kick_is_lost_between_the_look_and_the_sleep(sleeping: tuple[RemoteProc, int]) -> None:
    rp, address = sleeping
    echo(rp, [b"set up"])
    start = read_stats(rp, address)
    assert bursts(rp, 300) is None
    done = read_stats(rp, address) - start
    assert done.sleeps >= 150, done  # it did go to sleep between bursts: the race was there to lose


@pytest.fixture(scope="module")
def race_builds(tmp_path_factory: pytest.TempPathFactory, example_firmware: Path) -> dict[str, Path]:
    """The services firmware with 100,000 idle iterations between the look at the rings and the WFI (a window a
    kick falls into now and then): with PRIMASK set over the look, as built, and without (RPROC_IDLE_UNSAFE)."""
    out = {}
    for name, extra in (("primask", ""), ("unsafe", " -DRPROC_IDLE_UNSAFE=1")):
        build = tmp_path_factory.mktemp(f"race-{name}")
        flags = f"EXTRA_CFLAGS=-DRPROC_IDLE_RACE_WINDOW=100000{extra}"
        subprocess.run(
            ["make", "-s", "-C", str(REPO / "firmware"), f"BUILD={build}", flags, f"{build}/services.elf"],
            check=True, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        out[name] = build / "services.elf"
    return out


def test_primask_closes_a_widened_race_window(race_builds: dict[str, Path]) -> None:
    """The burst test sees a lost wake-up when there is one: with the window widened, the naive idle step (look
    with interrupts on, then WFI) loses a kick within 1,000 bursts (the doorbell's handler runs in the window,
    the WFI then waits for a kick that never comes); the same window with PRIMASK held over it loses none."""
    for rp, _ in running(race_builds["primask"]):
        assert bursts(rp, 300) is None
    for rp, _ in running(race_builds["unsafe"]):
        assert bursts(rp, 1000, timeout=2.0) is not None


@pytest.fixture(scope="module")
def early_kick_build(tmp_path_factory: pytest.TempPathFactory, example_firmware: Path) -> Path:
    """The services firmware with 3,000,000 iterations (~0.4 s here) between turning UART0's receiver on and its
    interrupt (BOARD_RX_IRQ_RACE_WINDOW, firmware/boards/mps2-an505/uart.c): the host's first kick, right after
    DRIVER_OK, lands in between. CI met that window once unwidened (the machine loaded, the vCPU preempted there)."""
    build = tmp_path_factory.mktemp("early-kick")
    subprocess.run(
        ["make", "-s", "-C", str(REPO / "firmware"), f"BUILD={build}",
         "EXTRA_CFLAGS=-DBOARD_RX_IRQ_RACE_WINDOW=3000000", f"{build}/services.elf"],
        check=True, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    return build / "services.elf"


def test_a_kick_before_the_doorbell_interrupt_is_on_is_not_lost(early_kick_build: Path) -> None:
    """The early kick holds the UART's one-byte buffer and raised no interrupt (the UART flags a byte as it arrives,
    and only with its interrupt enabled), so QEMU took no later kick either: before the fix the firmware slept
    through every message (three runs of three: the echo timed out). Enabling the interrupt now pends its handler
    when a byte is already there."""
    for rp, address in running(early_kick_build):
        early = read_stats(rp, address)
        assert early.loops == 0, early  # the host kicked (start() did) before the firmware's first idle step
        echo(rp, [b"first", b"second", b"third"])
        assert read_stats(rp, address).doorbells >= 1  # the early byte's interrupt was taken


def test_a_send_waiting_for_host_buffers_sleeps(sleeping: tuple[RemoteProc, int]) -> None:
    """The sensor streams more samples than the host has receive buffers posted while the host does not read:
    the firmware waits for a buffer asleep (vring 0's kicks turned on), and the host's re-posts wake it."""
    rp, address = sleeping
    assert rp.rpmsg is not None
    ep = rp.rpmsg.open("rpmsg-sensor", timeout=10)
    ep.settimeout(10)
    total = 3000
    ep.send(f"start {total}".encode())
    time.sleep(0.5)  # the firmware fills every posted buffer, then waits
    blocked = over(rp, address, 0.5)
    assert blocked.loops <= 2, blocked
    for seq in range(total):
        assert struct.unpack("<ii", ep.recv()) == (seq, seq * 37 - 1000)
