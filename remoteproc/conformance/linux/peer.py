"""The Linux kernel as the host of the remote-role catalogue: User-Mode Linux with Linux's own rpmsg drivers,
rproc's vhost-user device behind its virtio-rpmsg device, and a guest script that drives /dev/rpmsgN with
``rpmsg-probe`` (every size, then enough messages to wrap the 16-bit ring indices)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from remoteproc.conformance.common import CountingDoorbell
from remoteproc.conformance.linux.build import ensure_uml
from remoteproc.conformance.linux.uml import UmlError, UmlGuest
from remoteproc.conformance.remote_role import HostRun
from rpmsg.device import RpmsgDevice
from rpmsg.wiring import VhostUserRemote

CHANNEL = "rpmsg-raw"  # rpmsg_char (Linux 6.1) makes /dev/rpmsgN only for channels of this name
VIRTIO_ID_RPMSG = 7

SCRIPT = """
rpmsg-probe wait-channel {channel} 30000 | tee /host/channel.txt
DEV=$(sed -n 's/.* dev=\\([^ ]*\\).*/\\1/p' /host/channel.txt)
[ -n "$DEV" ] || exit 1
rpmsg-probe echo $DEV {sizes} || exit 1
rpmsg-probe stream $DEV {messages} 16 32 || exit 1
"""


class _UmlRun:
    def __init__(self, description: str, device: RpmsgDevice, guest: UmlGuest, remote: VhostUserRemote,
                 cleanup: Callable[[], None]) -> None:  # fmt: skip
        self.channel = CHANNEL
        self.channel_addr = 0x400
        self.table: tuple[int, int, int] | None = None  # vhost-user has no status byte in shared memory
        self.description = description
        self.device = device
        self.guest = guest
        self.remote = remote
        self._cleanup = cleanup

    def exit_code(self, timeout: float) -> int | None:
        try:
            code = self.guest.guest_exit_status(timeout)
        except UmlError:
            return None
        return code

    def complaints(self) -> list[str]:
        return self.guest.problems()

    def close(self) -> None:
        self.device.close()
        self.guest.kill()
        self.remote.close()
        self._cleanup()


class LinuxHostPeer:
    """Boots the cached UML kernel (built on first use: a few minutes) with ``messages`` in its stream."""

    def __init__(self, messages: int = 70_000, progress: Callable[[str], None] | None = None) -> None:
        self.messages = messages
        self.progress = progress
        self.description = "Linux 6.1 rpmsg (virtio_rpmsg_bus, rpmsg_char) in User-Mode Linux over vhost-user"

    def start(self, timeout: float) -> HostRun:
        images = ensure_uml(self.progress)
        work = Path(tempfile.mkdtemp(prefix="rproc-conformance-uml-"))
        share = work / "share"
        share.mkdir()
        sock = work / "rpmsg.sock"
        remote = VhostUserRemote(sock, event_idx=True)
        guest = UmlGuest(images, share, devices=[(sock, VIRTIO_ID_RPMSG)])
        sizes = " ".join(str(n) for n in (1, 2, 15, 16, 17, 100, 255, 256, 300, 495, 496))
        guest.start(SCRIPT.format(channel=CHANNEL, sizes=sizes, messages=self.messages))
        try:
            remote.accept(max(timeout, 60))
            device = remote.start(max(timeout, 60))
        except BaseException:
            guest.kill()
            remote.close()
            shutil.rmtree(work, ignore_errors=True)
            raise
        device.doorbell = CountingDoorbell(device.doorbell)
        return _UmlRun(self.description, device, guest, remote, lambda: shutil.rmtree(work, ignore_errors=True))
