"""The devmem platform from a board file: boot a firmware through reset and shared memory, and attach to a
remote that a bootloader already started, then detach and attach again."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from remoteproc.errors import RemoteprocError
from remoteproc.firmware import firmware_info
from remoteproc.lifecycle import State
from remoteproc.platforms.devmem import DevmemBoard, DevmemPlatform
from remoteproc.rproc import RemoteProc
from resource_table import build
from tests.remoteproc.fake_soc import RESET, FakeSoc, board_toml


@pytest.fixture
def soc(tmp_path: Path) -> Iterator[FakeSoc]:
    fake = FakeSoc(tmp_path / "physical")
    yield fake
    fake.close()


def echo(rp: RemoteProc, text: bytes) -> bytes:
    assert rp.rpmsg is not None
    ep = rp.rpmsg.open("rpmsg-echo", timeout=10)
    ep.settimeout(10)
    ep.send(text)
    reply = ep.recv()
    ep.close()
    return reply


def test_boot_through_reset_and_devmem(soc: FakeSoc, tmp_path: Path, services_firmware: Path) -> None:
    board = tmp_path / "board.toml"
    board.write_text(board_toml(soc.path, soc.host_uio.fileno()))
    platform = DevmemPlatform(DevmemBoard.load(board))
    with RemoteProc(platform) as rp:
        rp.load(services_firmware)
        assert not platform.running  # held in reset while its memory was written
        soc.run_firmware(0x80000000, wait_for_reset=True)
        rp.start()
        assert platform.running and rp.state is State.RUNNING
        assert echo(rp, b"booted through /dev/mem") == b"booted through /dev/mem"
        rp.stop()
        assert not platform.running
        raw = soc.path.read_bytes()
        assert raw[RESET] == 1  # the reset register holds the core again


def test_attach_detach_attach(soc: FakeSoc, tmp_path: Path, services_firmware: Path) -> None:
    info = firmware_info(services_firmware)
    assert info.table is not None
    soc.run_firmware(0x80000000, wait_for_reset=False, table=build(info.table))  # started by a bootloader
    board = tmp_path / "board.toml"
    board.write_text(board_toml(soc.path, soc.host_uio.fileno(), attach_table=0x80000000))
    platform = DevmemPlatform(DevmemBoard.load(board))
    with RemoteProc(platform) as rp:
        rp.attach()
        assert rp.state is State.ATTACHED
        assert echo(rp, b"attached") == b"attached"
        rp.detach()
        assert rp.state is State.DETACHED
        assert platform.running  # detaching leaves the remote running
    platform2 = DevmemPlatform(DevmemBoard.load(board))
    with RemoteProc(platform2) as rp:
        rp.attach()
        assert echo(rp, b"attached again") == b"attached again"
        rp.detach()


def test_board_file_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\n[reset]\nregister = 0\n[doorbell]\nuio = "fd:0"\nmailbox = 4\n')
    with pytest.raises(RemoteprocError, match=r"no \[\[region\]\]"):
        DevmemBoard.load(bad)
    bad.write_text('[[region]]\nname = "r"\nda = 0\nsize = 16\n[doorbell]\nuio = "x"\nmailbox = 4\n')
    with pytest.raises(RemoteprocError, match="the board needs 'reset'"):
        DevmemBoard.load(bad)
    with pytest.raises(RemoteprocError, match=r"missing\.toml"):
        DevmemBoard.load(tmp_path / "missing.toml")


def test_cli_attach_and_load_on_a_board_file(
    soc: FakeSoc, tmp_path: Path, services_firmware: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from remoteproc.cli import main

    info = firmware_info(services_firmware)
    assert info.table is not None
    soc.run_firmware(0x80000000, wait_for_reset=False, table=build(info.table))
    board = tmp_path / "board.toml"
    board.write_text(board_toml(soc.path, soc.host_uio.fileno(), attach_table=0x80000000))
    assert main(["attach", "--board", str(board), "--send", "rpmsg-echo:from the cli"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "channel rpmsg-echo at 0x400" in out
    assert "rpmsg-echo <- from the cli" in out and out[-1] == "detached: the remote keeps running"
    assert main(["ping", str(services_firmware), "--platform", "devmem"]) == 1  # no board: a clear error
    assert "needs a board file" in capsys.readouterr().err
