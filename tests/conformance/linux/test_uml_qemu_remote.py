"""The Cortex-M33 remote of uml_rproc (remoteproc/conformance/linux/uml_qemu.py) without the kernel: rproc plays
Linux on the socket protocol (HELLO, PHYS, START, KICK, STOP), loads the ARM ELF into the 16 MiB file itself and
runs rproc's rpmsg host with the file at a "physical" address other than the M33's 0x80000000, as Linux's
descriptors hold guest-physical addresses. The kernel test is test_remoteproc_qemu.py."""

from __future__ import annotations

import contextlib
import mmap
import os
import select
import selectors
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from remoteproc.conformance.linux.rproc_uml import REPO, Layout
from remoteproc.conformance.linux.uml_qemu import build_firmware, m33_layout
from remoteproc.conformance.linux.uml_socket import CRASH, HELLO, KICK, MSG, PHYS, START, STOP, STOPPED
from remoteproc.elf import read_bytes, read_elf
from rpmsg import HostCore, RpmsgDevice
from transports.doorbell import SocketDoorbell
from transports.memory import MappedRegion, RegionMemory
from virtio import VringLayout

pytestmark = pytest.mark.skipif(
    not (shutil.which("qemu-system-arm") and shutil.which("arm-none-eabi-gcc")),
    reason="needs qemu-system-arm and gcc-arm-none-eabi (./scripts/setup)",
)

PA = 0x04001000  # where "Linux" (rproc here) sees the file: every descriptor holds an address from here


@dataclass
class FakeKernel:
    layout: Layout
    mem: mmap.mmap
    sock: socket.socket
    remote: subprocess.Popen[str]
    entry: int
    table: int
    lines: list[str] = field(default_factory=list)
    messages: list[tuple[int, int]] = field(default_factory=list)
    bell: socket.socket | None = None

    def relay(self) -> None:
        """The remote's messages: KICK rings the rpmsg host's doorbell, the rest is recorded."""
        assert self.bell is not None
        while True:
            ready, _, _ = select.select([self.sock, self.bell], [], [])
            if self.sock in ready:
                data = self.sock.recv(MSG.size, socket.MSG_WAITALL)
                if len(data) < MSG.size:
                    return
                kind, arg, _ = MSG.unpack(data)
                if kind == KICK:
                    self.bell.sendall(bytes([arg]))
                else:
                    self.messages.append((kind, arg))
            if self.bell in ready:
                try:
                    kicks = self.bell.recv(64)
                except ConnectionResetError:
                    return  # the rpmsg host closed its doorbell (the test is ending)
                if not kicks:
                    return
                for queue in kicks:
                    self.sock.sendall(MSG.pack(KICK, queue, 0))

    def wait_message(self, kind: int, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while kind not in [k for k, _ in self.messages]:
            assert time.monotonic() < deadline, f"no message {kind}: {self.messages}"
            time.sleep(0.01)


def _vdev_entry(mem: mmap.mmap, table: int) -> int:
    (num,) = struct.unpack_from("<I", mem, table + 4)
    for n in range(num):
        (off,) = struct.unpack_from("<I", mem, table + 16 + 4 * n)
        if struct.unpack_from("<I", mem, table + off)[0] == 3:
            return table + off
    raise AssertionError("no vdev entry")


@pytest.fixture
def kernel(tmp_path: Path) -> Iterator[FakeKernel]:
    layout = m33_layout()
    elf_path = build_firmware(layout, tmp_path, "m33.elf")
    elf = read_elf(elf_path)
    assert elf.resource_table is not None
    memfile = tmp_path / "mem"
    memfile.write_bytes(b"\xa5" * layout.size)
    fd = os.open(memfile, os.O_RDWR)
    mem = mmap.mmap(fd, layout.size)
    os.close(fd)
    for seg in elf.segments:  # Linux's ELF loader: filesz copied, memsz - filesz zeroed
        if seg.loadable:
            off = seg.paddr - layout.base
            mem[off : off + seg.filesz] = read_bytes(elf_path, seg.offset, seg.filesz)
            mem[off + seg.filesz : off + seg.memsz] = bytes(seg.memsz - seg.filesz)
    path = tmp_path / "k.sock"
    remote = subprocess.Popen(
        [sys.executable, "-m", "remoteproc.conformance.linux.uml_qemu", str(memfile), str(path),
         hex(elf.resource_table.addr), str(tmp_path / "snap")],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    assert remote.stdout is not None
    assert remote.stdout.readline().strip() == "uml-remote: listening"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(str(path))
    k = FakeKernel(layout, mem, sock, remote, elf.entry, elf.resource_table.addr - layout.base)
    try:
        yield k
    finally:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()
        try:
            remote.wait(10)
        finally:
            if remote.poll() is None:
                remote.kill()
                remote.wait()
            k.lines[:] = remote.stdout.read().splitlines()
            with contextlib.suppress(BufferError):  # views of it may live on in a failed test's host
                mem.close()


def test_the_m33_runs_what_was_loaded_and_translates_the_hosts_addresses(kernel: FakeKernel) -> None:
    layout, mem = kernel.layout, kernel.mem
    kernel.sock.sendall(MSG.pack(HELLO, layout.size, layout.base) + MSG.pack(PHYS, 0, PA))
    kernel.sock.sendall(MSG.pack(START, 0, kernel.entry))
    ours, theirs = socket.socketpair()
    kernel.bell = theirs
    host_mem = RegionMemory([MappedRegion("pa", PA, layout.size, memoryview(mem))])
    rx = VringLayout.legacy(PA + layout.vring0[0], layout.vring_num, layout.vring_align)
    tx = VringLayout.legacy(PA + layout.vring1[0], layout.vring_num, layout.vring_align)
    core = HostCore(host_mem, rx, tx, pool_da=PA + layout.buffer[0], rx_count=64, tx_count=64)
    host = RpmsgDevice(core, SocketDoorbell(ours), wait="block")
    host.start()
    vdev = _vdev_entry(mem, kernel.table)
    struct.pack_into("<I", mem, vdev + 16, 1)  # gfeatures: NS
    mem[vdev + 24] = 0x07  # DRIVER_OK, after the receive buffers are posted (as virtio_rpmsg_bus)
    threading.Thread(target=kernel.relay, daemon=True).start()
    try:
        assert host.wait_for_channel("rpmsg-raw", timeout=30) == 1024
        ep = host.open("rpmsg-raw", timeout=5)
        ep.settimeout(10)
        for size in (1, 16, 300, 496):
            payload = bytes((size + i) & 0xFF for i in range(size))
            ep.send(payload)
            assert ep.recv() == payload
        trace = bytes(mem[layout.trace[0] : layout.trace[0] + 64]).split(b"\0")[0]
        assert trace == b"uml-m33: rpmsg-raw announced by the Cortex-M33\n"
        ep.send(b"crash")  # the firmware faults, QEMU exits through semihosting: CRASH
        kernel.wait_message(CRASH)
        kernel.sock.sendall(MSG.pack(STOP, 0, 0))
        kernel.wait_message(STOPPED)
    finally:
        host.close()
    kernel.sock.shutdown(socket.SHUT_RDWR)
    kernel.remote.wait(10)
    assert kernel.remote.returncode == 0


def test_kicks_after_qemu_died_leave_the_crash_to_be_reported(tmp_path: Path) -> None:
    """Linux kicks the M33 just after its QEMU exited (a crash), before the remote read QEMU's end: the kick's write
    to the dead UART socket must not end the remote process (BrokenPipeError did, and Linux's recovery then found
    no remote: CI, stop 36); the UART is dropped and run()'s poll reports the crash."""
    from remoteproc.conformance.linux.uml_qemu import M33Remote

    memfile = tmp_path / "mem"
    memfile.write_bytes(bytes(4096))
    kernel_end, ours = socket.socketpair()
    remote = M33Remote(memfile, ours, 0, str(tmp_path / "snap"), tmp_path, tmp_path / "stub.elf")
    uart, qemu_end = socket.socketpair()
    remote.uart = uart
    remote.sel.register(uart, selectors.EVENT_READ, "uart")
    qemu_end.close()  # QEMU is gone
    for _ in range(3):  # the first write may still be taken; a later one meets the closed end
        remote.on_message(KICK, 1, 0)
    assert remote.uart is None and remote.kicks_in == 3
    uart.close()
    for sock in (kernel_end, ours):
        sock.close()
    remote.mem.close()


def test_a_start_at_another_entry_is_reported(kernel: FakeKernel) -> None:
    """The M33 boots from the vector table at the file's first word: a START value that is not its reset
    handler is an error line (and the core still boots from the vector table)."""
    kernel.sock.sendall(MSG.pack(HELLO, kernel.layout.size, kernel.layout.base) + MSG.pack(PHYS, 0, PA))
    kernel.sock.sendall(MSG.pack(START, 0, kernel.entry + 2) + MSG.pack(STOP, 0, 0))
    assert kernel.sock.recv(MSG.size, socket.MSG_WAITALL)[:4] == struct.pack("<I", STOPPED)
    kernel.sock.shutdown(socket.SHUT_RDWR)
    assert kernel.remote.wait(10) == 0
    assert kernel.remote.stdout is not None
    out = kernel.remote.stdout.read()
    assert f"error the ELF's entry {kernel.entry + 2:#x} is not the reset handler {kernel.entry:#x}" in out, out
