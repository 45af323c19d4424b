"""The ``devmem`` platform: a Linux host that runs a coprocessor itself through /dev/mem, described by a board
file (TOML):

    name = "soc-m4"
    path = "/dev/mem"            # or a file standing in for it
    [[region]]                   # the remote's memory: its device address, where the host finds it, its size
    name = "tcm"
    da = 0x1ffe0000
    pa = 0x007e0000
    size = 0x20000
    [[region]]
    name = "ddr"
    da = 0x80000000
    pa = 0x80000000
    size = 0x01000000
    pool = true                  # carveouts and vrings are allocated here
    [reset]                      # a 32-bit register: hold the core in reset, or let it run
    register = 0x30390000
    hold = 0x1
    run = 0x0
    [doorbell]
    uio = "/dev/uio0"            # interrupts from the remote (or "fd:N")
    mailbox = 0x30aa0000         # written with queue + 1 to kick it
    [attach]                     # for a remote already running (started by a bootloader): its live table
    table = 0x80000000
    size = 0x400

Only the ranges the board declares are ever mapped. The code path is the one used on hardware; the tests run it
on a regular file standing in for /dev/mem and socket pairs standing in for UIO.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from remoteproc.boards import Board, BoardRegion
from remoteproc.elf import ElfImage
from remoteproc.errors import RemoteprocError
from remoteproc.loader import LoadedSegment, Progress, load_segments
from remoteproc.resources import Pool
from resource_table.files import read_regular
from transports.devmem import DevmemWindow, Register32, UioDoorbell
from transports.doorbell import Doorbell
from transports.errors import TransportError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


@dataclass(frozen=True)
class DevmemBoard:
    board: Board
    physical: dict[str, int]  # region name -> physical address on the host
    path: str
    reset_register: int
    reset_hold: int
    reset_run: int
    uio: str
    mailbox: int
    attach_table: int | None = None
    attach_size: int = 0x400

    @classmethod
    def load(cls, file: str | Path) -> DevmemBoard:
        path = Path(file)
        try:
            data = tomllib.loads(read_regular(path).decode("utf-8"))
        except OSError as exc:
            raise RemoteprocError(f"{path}: {exc.strerror}") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise RemoteprocError(f"{path}: not a valid TOML board file: {exc}") from None
        except RecursionError:
            raise RemoteprocError(f"{path}: not a board file: nested thousands of levels deep") from None
        try:
            return cls.from_dict(data, str(path))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            # a value of the wrong kind (a string where a number goes, a table where a list goes)
            raise RemoteprocError(f"{path}: a value of the wrong kind ({type(exc).__name__}: {exc})") from None

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "board") -> DevmemBoard:
        def need(table: dict[str, Any], key: str, ctx: str) -> Any:
            if key not in table:
                raise RemoteprocError(f"{where}: {ctx} needs {key!r}")
            return table[key]

        regions = []
        physical = {}
        for i, r in enumerate(data.get("region", [])):
            ctx = f"region[{i}]"
            name = str(need(r, "name", ctx))
            regions.append(BoardRegion(name, int(need(r, "da", ctx)), int(need(r, "size", ctx)), bool(r.get("pool"))))
            physical[name] = int(r.get("pa", r["da"]))
        if not regions:
            raise RemoteprocError(f"{where}: no [[region]]: the remote's memory must be declared")
        reset = need(data, "reset", "the board")
        bell = need(data, "doorbell", "the board")
        attach = data.get("attach", {})
        return cls(
            board=Board(str(data.get("name", Path(where).stem)), tuple(regions)),
            physical=physical,
            path=str(data.get("path", "/dev/mem")),
            reset_register=int(need(reset, "register", "[reset]")),
            reset_hold=int(reset.get("hold", 1)),
            reset_run=int(reset.get("run", 0)),
            uio=str(need(bell, "uio", "[doorbell]")),
            mailbox=int(need(bell, "mailbox", "[doorbell]")),
            attach_table=int(attach["table"]) if "table" in attach else None,
            attach_size=int(attach.get("size", 0x400)),
        )


class DevmemPlatform:
    name = "devmem"

    def __init__(self, board: DevmemBoard) -> None:
        self.spec = board
        ranges = [(r.name, board.physical[r.name], r.size, r.da) for r in board.board.regions]
        try:
            self._window = DevmemWindow.regions(ranges, path=board.path)
            self._reset = Register32(board.reset_register, path=board.path)
        except TransportError as exc:
            raise RemoteprocError(str(exc)) from None
        self.memory = self._window.memory

    def pool(self) -> Pool:
        return Pool([(r.da, r.end) for r in self.spec.board.regions if r.pool])

    def load(self, path: str | os.PathLike[str], image: ElfImage, progress: Progress | None) -> list[LoadedSegment]:
        self._reset.write(self.spec.reset_hold)  # never write a running core's memory
        return load_segments(path, image, self.memory, progress=progress)

    def prepare(self) -> None:
        self._reset.write(self.spec.reset_hold)

    def start(self, table_da: int, table_size: int) -> None:
        self._reset.write(self.spec.reset_run)

    def connect(self, timeout: float = 10.0) -> Doorbell:
        try:
            return UioDoorbell.open(self.spec.uio, self.spec.mailbox, path=self.spec.path)
        except TransportError as exc:
            raise RemoteprocError(str(exc)) from None

    @property
    def running(self) -> bool:
        return self._reset.read() == self.spec.reset_run

    def crashed(self) -> bool:
        return False  # no crash signal on a bare register interface: a watchdog or a status register would say

    def stop(self) -> None:
        self._reset.write(self.spec.reset_hold)

    def detach(self) -> None:
        """Leave the remote running; only our side lets go."""

    def close(self) -> None:
        self._reset.close()
        self._window.close()
