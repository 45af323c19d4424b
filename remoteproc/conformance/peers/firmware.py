"""The services firmware on an emulated board as a remote peer (host role): loaded and started by remoteproc's
QEMU platform, serving ``rpmsg-echo`` from the firmware's C remote library (firmware/lib)."""

from __future__ import annotations

from pathlib import Path

from remoteproc.conformance.common import ECHO_CHANNEL, CountingDoorbell, NotApplicable
from remoteproc.conformance.host_role import HostContext, TableFacts
from remoteproc.errors import RemoteprocError


class _NoLifecycle:
    def __init__(self, what: str) -> None:
        self.what = what

    def kill(self) -> None:
        raise NotApplicable(f"{self.what} cannot be killed from here")

    def exit_code(self, timeout: float) -> int | None:
        raise NotApplicable(f"{self.what} does not end on its own")

    def reap(self) -> None:
        pass


class FirmwarePeer:
    """The services firmware (``rpmsg-echo`` channel) loaded and started on an emulated board."""

    def __init__(self, firmware: Path, board: str = "mps2-an505") -> None:
        self.firmware = firmware
        self.board = board
        self.description = f"firmware {firmware.name} on QEMU {board}"

    def start(self, timeout: float) -> HostContext:
        from remoteproc.boards import BOARDS
        from remoteproc.platforms.qemu import QemuPlatform
        from remoteproc.rproc import RemoteProc

        if self.board not in BOARDS:
            raise RemoteprocError(f"unknown board {self.board!r} (known: {', '.join(sorted(BOARDS))})")
        rp = RemoteProc(QemuPlatform(BOARDS[self.board]))
        try:
            rp.load(self.firmware)
            rp.start()
        except BaseException:
            rp.close()
            raise
        device = rp.rpmsg
        assert device is not None
        device.doorbell = CountingDoorbell(device.doorbell)
        vdev = rp.vdevs[0]
        # Linux's order ends with ACKNOWLEDGE | DRIVER | DRIVER_OK = 0x07 and the features both sides have.
        table = TableFacts(vdev.gfeatures_da, vdev.status_da, vdev.dfeatures & 1, 0x07)
        return HostContext(
            device, ECHO_CHANNEL, _NoLifecycle(self.description), table=table, timeout=timeout, closers=[rp.close]
        )
