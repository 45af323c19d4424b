"""Firmware the loader must also take: a version-2 (64-bit) resource table, and big-endian ELF files."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from remoteproc.boards import MPS2_AN505
from remoteproc.elf import read_elf
from remoteproc.errors import FirmwareError
from remoteproc.firmware import firmware_info
from remoteproc.loader import load_segments
from remoteproc.platforms.sim import SimPlatform
from remoteproc.rproc import RemoteProc
from resource_table import FW_RSC_ADDR_ANY64, Vdev
from transports.memory import MappedRegion, RegionMemory

REPO = Path(__file__).resolve().parents[2]
FIRMWARE = REPO / "firmware"


@pytest.fixture(scope="module")
def v2_firmware(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cc = shutil.which("arm-none-eabi-gcc")
    assert cc, "arm-none-eabi-gcc missing: run ./scripts/setup"
    out = tmp_path_factory.mktemp("v2") / "table_v2.elf"
    board = FIRMWARE / "boards" / "mps2-an505"
    subprocess.run([cc, "-mcpu=cortex-m33", "-mthumb", "-Os", "-std=c11", "-ffreestanding", "-nostdlib",
                    f"-I{FIRMWARE / 'include'}", "-T", str(board / "link.ld"), "-o", str(out),
                    str(Path(__file__).parent / "fw" / "table_v2.c"), str(board / "startup.c"), "-lgcc"],
                   check=True)  # fmt: skip
    return out


def test_v2_table_is_read(v2_firmware: Path) -> None:
    info = firmware_info(v2_firmware)
    assert info.table is not None and info.table.version == 2
    [vdev] = info.table.vdevs
    assert [r.da for r in vdev.vrings] == [FW_RSC_ADDR_ANY64] * 2
    assert info.findings == ()


def test_v2_firmware_boots_on_the_sim_platform(v2_firmware: Path) -> None:
    with RemoteProc(SimPlatform(MPS2_AN505)) as rp:
        rp.load(v2_firmware)
        assert rp.resources is not None
        vdev = rp.resources.table.entries[2]
        assert isinstance(vdev, Vdev) and all(r.da != FW_RSC_ADDR_ANY64 for r in vdev.vrings)
        rp.start()
        assert rp.rpmsg is not None
        ep = rp.rpmsg.open("rpmsg-echo", timeout=10)
        ep.settimeout(10)
        ep.send(b"over a v2 table")
        assert ep.recv() == b"over a v2 table"  # the remote found its vrings through the v2 table too


def test_big_endian_elf(tmp_path: Path) -> None:
    cc = shutil.which("arm-none-eabi-gcc")
    assert cc
    here = Path(__file__).parent / "fw"
    big = tmp_path / "big-endian.elf"
    subprocess.run(
        [
            cc,
            "-mbig-endian",
            "-marm",
            "-mcpu=cortex-r5",
            "-O1",
            "-nostdlib",
            f"-I{FIRMWARE / 'include'}",
            "-T",
            str(here / "big_endian.ld"),
            "-o",
            str(big),
            str(here / "big_endian.c"),
        ],
        check=True,
    )
    image = read_elf(big)
    assert not image.little_endian and image.elf_class == 32 and image.machine == "ARM"
    mem = RegionMemory(
        [
            MappedRegion("code", 0x10000000, 0x1000, bytearray(0x1000)),
            MappedRegion("shared", 0x80000000, 0x1000, bytearray(0x1000)),
        ]
    )
    load_segments(big, image, mem)
    data = big.read_bytes()
    for seg in image.segments:
        if seg.loadable and seg.filesz:
            assert mem.read(seg.paddr, seg.filesz) == data[seg.offset : seg.offset + seg.filesz]
    with pytest.raises(FirmwareError, match=r"section \.resource_table is big-endian \(version 1"):
        firmware_info(big)
