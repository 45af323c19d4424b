"""devmem://: a regular file stands in for /dev/mem and a socket pair for /dev/uioN; the code path is the one
used on hardware (O_SYNC mmap from the page below the address, 32-bit register stores, UIO reads/enables)."""

from __future__ import annotations

import os
import socket
import struct
from pathlib import Path

import pytest

from transports.devmem import DevmemError, DevmemWindow, Register32, UioDoorbell, check_iomem
from transports.doorbell import PeerLostError
from transports.url import open_link


def fake_devmem(tmp_path: Path, size: int = 0x40000) -> Path:
    path = tmp_path / "mem"
    path.write_bytes(bytes(size))
    return path


def test_unaligned_physical_range(tmp_path: Path) -> None:
    path = fake_devmem(tmp_path)
    window = DevmemWindow(0x1234, 0x100, path=str(path))
    window.memory.write(0x1234, b"hello")
    window.close()
    assert path.read_bytes()[0x1234:0x1239] == b"hello"  # the bytes land at the physical offset


def test_register_is_one_32_bit_access(tmp_path: Path) -> None:
    path = fake_devmem(tmp_path)
    reg = Register32(0x2000, path=str(path))
    reg.write(0xA5A5_0001)
    assert reg.read() == 0xA5A5_0001
    reg.close()
    assert struct.unpack_from("<I", path.read_bytes(), 0x2000)[0] == 0xA5A5_0001
    with pytest.raises(DevmemError, match="not 4-byte aligned"):
        Register32(0x2002, path=str(path))


def test_permission_denied_says_what_to_do(tmp_path: Path) -> None:
    path = fake_devmem(tmp_path)
    path.chmod(0)
    if os.geteuid() == 0:
        # root ignores file modes: stand in with a path that only a restricted /dev/mem would refuse
        with pytest.raises(DevmemError, match="No such file"):
            DevmemWindow(0, 0x1000, path=str(tmp_path / "missing"))
        return
    with pytest.raises(DevmemError, match="CONFIG_STRICT_DEVMEM"):
        DevmemWindow(0, 0x1000, path=str(path))


def test_iomem_check(tmp_path: Path) -> None:
    iomem = tmp_path / "iomem"
    iomem.write_text("00001000-0009ffff : System RAM\n80000000-80ffffff : reserved\n")
    check_iomem(0x80000000, 0x1000, iomem)
    with pytest.raises(DevmemError, match="is not in /proc/iomem"):
        check_iomem(0x90000000, 0x1000, iomem)
    hidden = tmp_path / "hidden"
    hidden.write_text("00000000-00000000 : System RAM\n")
    check_iomem(0x90000000, 0x1000, hidden)  # addresses hidden from non-root: nothing to check against


def test_uio_doorbell_enables_reads_and_rings_the_mailbox(tmp_path: Path) -> None:
    path = fake_devmem(tmp_path)
    hw, dev = socket.socketpair()
    bell = UioDoorbell.open(f"fd:{dev.fileno()}", 0x3000, path=str(path))
    assert hw.recv(4) == struct.pack("<I", 1)  # opening enables the interrupt
    assert bell.wait(0.01) is False
    hw.send(struct.pack("<I", 7))  # the interrupt fires (count 7)
    assert bell.wait(1) is True
    assert hw.recv(4) == struct.pack("<I", 1)  # and is enabled again
    bell.notify(1)
    assert struct.unpack_from("<I", path.read_bytes(), 0x3000)[0] == 2  # queue 1 -> mailbox value 2
    hw.close()
    with pytest.raises(PeerLostError):
        bell.wait(1)
    bell.close()
    dev.close()


def test_devmem_url_needs_its_doorbell(tmp_path: Path) -> None:
    path = fake_devmem(tmp_path)
    with pytest.raises(Exception, match="needs uio="):
        open_link(f"devmem://0x0?size=0x1000&path={path}", role="host")
