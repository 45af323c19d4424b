"""The ``qemu-an505`` platform: real firmware on an emulated Cortex-M33 (QEMU's mps2-an505), sharing its RAM
with this process.

- The board's ``mps.ram`` (16 MiB at 0x80000000) is backed by a /dev/shm file (``memory-backend-file``,
  ``share=on``) that the host maps too: real shared memory between firmware and host. The code and data SRAMs
  stay inside QEMU.
- QEMU starts paused (``-S``) and loads every PT_LOAD itself (``-kernel``); the host then writes the
  negotiated resource table into the shared RAM and continues the CPU through QMP.
- Doorbells are bytes on UART0 (``-serial`` on a unix socket chardev): one per kick each way; the firmware
  sleeps until UART0's receive interrupt (docs/mcu.md, "Sleeping").
- A firmware fault ends in a lockup (QEMU exits) or a stopped CPU; either is reported as a crash.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from pathlib import Path

from remoteproc import children
from remoteproc.boards import MPS2_AN505, Board
from remoteproc.elf import ElfImage
from remoteproc.errors import RemoteprocError
from remoteproc.loader import LoadedSegment, Progress, check_segments
from remoteproc.resources import Pool
from transports.doorbell import SocketDoorbell
from transports.qmp import Qmp, QmpError
from transports.shmfile import SharedFile, sweep_leftovers

SHARED = "mps.ram"


class QemuPlatform:
    name = "qemu-an505"

    def __init__(self, board: Board = MPS2_AN505, *, qemu: str | None = None) -> None:
        self.qemu = qemu or shutil.which("qemu-system-arm")
        if not self.qemu:
            raise RemoteprocError("qemu-system-arm is not installed: run ./scripts/setup (Debian qemu-system-arm)")
        self.board = board
        shared = next(r for r in board.regions if r.name == SHARED)
        self.shared = shared
        self.id = f"rproc-qemu-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        base = Path("/dev/shm") / self.id
        self.ram_path = base
        self.uart_path = base.with_name(self.id + ".uart")
        self.qmp_path = base.with_name(self.id + ".qmp")
        sweep_leftovers("rproc-qemu-")  # an earlier rproc killed with SIGKILL could not remove its files
        layout = [(shared.name, shared.da, shared.size)]
        self._file = SharedFile(base, shared.size, create=True, layout=layout, lock=True)
        self.memory = self._file.memory
        self.process: subprocess.Popen[bytes] | None = None
        self.qmp: Qmp | None = None
        self.firmware: Path | None = None
        self._uart: socket.socket | None = None
        self.log_path = base.with_name(self.id + ".log")

    def pool(self) -> Pool:
        return Pool([(self.shared.da, self.shared.end)])

    def load(self, path: str | os.PathLike[str], image: ElfImage, progress: Progress | None) -> list[LoadedSegment]:
        """Check the segments against the whole board; QEMU places them (``-kernel``) when it starts."""
        segments = check_segments(image, self.board.regions)
        self.firmware = Path(path)
        total = sum(s.memsz for s in segments)
        if progress:
            progress(total, total)
        return [LoadedSegment(s.index, s.paddr, s.filesz, s.memsz) for s in segments]

    def prepare(self) -> None:
        if self.firmware is None:
            raise RemoteprocError("no firmware loaded")
        for p in (self.uart_path, self.qmp_path):
            p.unlink(missing_ok=True)
        cmd = [
            self.qemu or "qemu-system-arm", "-machine", "mps2-an505,memory-backend=ram", "-m", "16M",
            "-object", f"memory-backend-file,id=ram,size=16M,mem-path={self.ram_path},share=on",
            "-kernel", str(self.firmware),
            "-chardev", f"socket,id=uart,path={self.uart_path},server=on,wait=off",
            "-serial", "chardev:uart",
            "-qmp", f"unix:{self.qmp_path},server=on,wait=off",
            "-semihosting-config", "enable=on,target=native",  # the fault handler exits through it
            "-display", "none", "-monitor", "none", "-S",
        ]  # fmt: skip
        with open(self.log_path, "wb") as log:
            self.process = children.start(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            self.qmp = Qmp(self.qmp_path)
            self._uart = self._connect_uart()
        except (QmpError, RemoteprocError):
            self.stop()
            raise RemoteprocError(f"QEMU did not come up: {self.log_text()}") from None
        # Paused, with the image loaded: the host may now write the table into the shared RAM.

    def _connect_uart(self, timeout: float = 10.0) -> socket.socket:
        deadline = time.monotonic() + timeout
        while True:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.connect(str(self.uart_path))
                return sock
            except (FileNotFoundError, ConnectionRefusedError):
                sock.close()
                if time.monotonic() > deadline:
                    raise RemoteprocError(f"no UART socket at {self.uart_path}") from None
                time.sleep(0.02)

    def start(self, table_da: int, table_size: int) -> None:
        if self.qmp is None:
            raise RemoteprocError("prepare() first")
        self.qmp.execute("cont")

    def connect(self, timeout: float = 10.0) -> SocketDoorbell:
        if self._uart is None:
            raise RemoteprocError("the board is not running")
        sock, self._uart = self._uart, None
        return SocketDoorbell(sock)

    def crashed(self) -> bool:
        if self.process is None:
            return False
        if self.process.poll() is not None:
            return True
        if self.qmp is not None:
            try:
                status = self.qmp.execute("query-status")
            except QmpError:
                return True
            return not status.get("running", False)
        return False

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace").strip()[-2000:] or "(no output)"
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        if self.qmp is not None:
            self.qmp.close()
            self.qmp = None
        if self._uart is not None:
            self._uart.close()
            self._uart = None
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None
        for p in (self.uart_path, self.qmp_path):
            p.unlink(missing_ok=True)

    def close(self) -> None:
        self.stop()
        self._file.close(unlink=True)
        self.log_path.unlink(missing_ok=True)
