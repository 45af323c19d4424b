"""A fake SoC for the devmem platform: a file standing in for /dev/mem, a mailbox turned into UIO interrupts,
and a "firmware" thread playing the remote core (it boots when its reset register is released, or is already
running for attach)."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

from resource_table import Vdev, parse_with_spans, vdev_field_offset
from rpmsg import EndpointClosed, PeerLost, RemoteCore, RpmsgDevice
from rpmsg.protocol import driver_ok
from tests.transports.fake_uio import FakeInterruptHardware
from transports.devmem import DevmemWindow, UioDoorbell
from transports.memory import RegionMemory
from virtio import VringLayout

# physical layout of the fake SoC (file offsets)
REGIONS = [
    ("ssram-0", 0x10000000, 0x0000000, 4 << 20),
    ("ssram-1", 0x38000000, 0x0400000, 2 << 20),
    ("mps.ram", 0x80000000, 0x0600000, 16 << 20),
]  # (name, da, pa, size)
RESET = 0x1600000
TO_REMOTE = 0x1600004  # the host's doorbell register
TO_HOST = 0x1600008  # the remote's
FILE_SIZE = 0x1601000


def board_toml(path: Path, host_uio: int, attach_table: int | None = None) -> str:
    lines = [f'name = "fake-soc"\npath = "{path}"']
    for name, da, pa, size in REGIONS:
        pool = "\npool = true" if name == "mps.ram" else ""
        lines.append(f'[[region]]\nname = "{name}"\nda = {da:#x}\npa = {pa:#x}\nsize = {size:#x}{pool}')
    lines.append(f"[reset]\nregister = {RESET:#x}\nhold = 1\nrun = 0")
    lines.append(f'[doorbell]\nuio = "fd:{host_uio}"\nmailbox = {TO_REMOTE:#x}')
    if attach_table is not None:
        lines.append(f"[attach]\ntable = {attach_table:#x}\nsize = 0x400")
    return "\n".join(lines) + "\n"


class FakeSoc:
    def __init__(self, path: Path) -> None:
        self.path = path
        with open(path, "wb") as f:
            f.truncate(FILE_SIZE)
        self.host_hw, self.host_uio = socket.socketpair()
        self.remote_hw, self.remote_uio = socket.socketpair()
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []
        self.interrupts = FakeInterruptHardware(path, {TO_REMOTE: self.remote_hw, TO_HOST: self.host_hw})

    def _spawn(self, target: object) -> None:
        t = threading.Thread(target=target, daemon=True)  # type: ignore[arg-type]
        t.start()
        self.threads.append(t)

    def run_firmware(self, table_da: int, *, wait_for_reset: bool, table: bytes | None = None) -> None:
        """The remote core: optionally boots only when its reset is released; serves rpmsg-echo. ``table``: what
        a bootloader left in memory, written before this returns (an attach may follow at once)."""
        if table is not None:
            window = DevmemWindow.regions([(n, pa, size, da) for n, da, pa, size in REGIONS], path=str(self.path))
            window.memory.write(table_da, table)
            window.close()
        self._spawn(lambda: self._firmware(table_da, wait_for_reset, None))

    def _firmware(self, table_da: int, wait_for_reset: bool, table: bytes | None) -> None:
        window = DevmemWindow.regions([(n, pa, size, da) for n, da, pa, size in REGIONS], path=str(self.path))
        mem = window.memory
        reset = DevmemWindow(RESET, 4, path=str(self.path))
        try:
            if table is not None:
                mem.write(table_da, table)  # a bootloader put the firmware (and its table) there
            while wait_for_reset and int.from_bytes(reset.memory.read(RESET, 4), "little") != 0:
                if self.stop.is_set():
                    return
                time.sleep(0.001)
            parsed, spans = parse_with_spans(mem.read(table_da, 0x400))
            index = next(i for i, e in enumerate(parsed.entries) if isinstance(e, Vdev))
            status = table_da + spans[index].offset + vdev_field_offset(parsed.version, "status")
            while not self.stop.is_set():  # one round per driver: a status of 0 resets the device (virtio 2.1)
                while not driver_ok(mem.read(status, 1)[0]):
                    if self.stop.is_set():
                        return
                    time.sleep(0.001)
                self._serve(mem, table_da, index, status)
        finally:
            reset.close()
            window.close()

    def _serve(self, mem: RegionMemory, table_da: int, index: int, status: int) -> None:
        parsed, _ = parse_with_spans(mem.read(table_da, 0x400))
        vdev = parsed.entries[index]
        assert isinstance(vdev, Vdev)
        rx = VringLayout.legacy(vdev.vrings[0].da, vdev.vrings[0].num, vdev.vrings[0].align)
        tx = VringLayout.legacy(vdev.vrings[1].da, vdev.vrings[1].num, vdev.vrings[1].align)
        bell = UioDoorbell.open(f"fd:{self.remote_uio.fileno()}", TO_HOST, path=str(self.path))
        device = RpmsgDevice(RemoteCore(mem, rx, tx), bell)
        ep = device.endpoint("rpmsg-echo")
        try:
            while not self.stop.is_set() and driver_ok(mem.read(status, 1)[0]):
                ep.settimeout(0.05)
                try:
                    data, src = ep.recvfrom()
                except TimeoutError:
                    continue
                ep.sendto(data, src)
        except (EndpointClosed, PeerLost):
            pass
        device.close()

    def close(self) -> None:
        self.stop.set()
        self.interrupts.stop.set()
        for t in [*self.threads, self.interrupts.thread]:
            t.join(5)
        for s in (self.host_hw, self.host_uio, self.remote_hw, self.remote_uio):
            s.close()
