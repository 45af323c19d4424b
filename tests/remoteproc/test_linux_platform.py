"""The linux platform's parsing, on a static fake sysfs tree: listing and finding processors, the states it
reads, where the firmware goes, the ioctl numbers of include/uapi/linux/rpmsg.h, and errno mapping. Nothing here
plays the kernel: what the kernel does with the writes (start, stop, firmware changes, rpmsg char and ctrl
devices) is checked against Linux 6.1 and 6.12 themselves by the ``rproc-in-the-guest`` boot
(remoteproc/conformance/linux/in_guest.py, tests/conformance/linux/test_remoteproc_linux.py)."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from remoteproc.errors import RemoteprocError
from remoteproc.lifecycle import State, StateError
from remoteproc.platforms.linux import (
    RPMSG_CREATE_DEV_IOCTL,
    RPMSG_CREATE_EPT_IOCTL,
    RPMSG_DESTROY_EPT_IOCTL,
    RPMSG_RELEASE_DEV_IOCTL,
    LinuxRemoteproc,
    RpmsgCharEndpoint,
    RpmsgCtrl,
)
from rpmsg import WouldBlock


def fake_sysfs(root: Path, *names: str) -> None:
    for i, name in enumerate(names):
        d = root / f"sys/class/remoteproc/remoteproc{i}"
        d.mkdir(parents=True)
        (d / "name").write_text(name + "\n")
        (d / "state").write_text("offline\n")
        (d / "firmware").write_text("rproc-m4-fw\n")


def test_ioctl_numbers_match_linux_uapi() -> None:
    # include/uapi/linux/rpmsg.h: _IOW(0xb5, 0x1, struct rpmsg_endpoint_info) with a 40-byte struct
    assert RPMSG_CREATE_EPT_IOCTL == 0x4028B501
    assert RPMSG_DESTROY_EPT_IOCTL == 0xB502
    assert RPMSG_CREATE_DEV_IOCTL == 0x4028B503
    assert RPMSG_RELEASE_DEV_IOCTL == 0x4028B504
    assert RpmsgCtrl.endpoint_info("rpmsg-raw", 0x400, 0x401) == b"rpmsg-raw".ljust(32, b"\0") + bytes.fromhex(
        "0004000001040000"
    )
    with pytest.raises(RemoteprocError, match="longer than 31"):
        RpmsgCtrl.endpoint_info("x" * 32)


def test_find_load_and_states(tmp_path: Path, example_firmware: Path) -> None:
    fake_sysfs(tmp_path, "m4", "dsp")
    assert [(d.index, d.name) for d in LinuxRemoteproc.list(tmp_path)] == [(0, "m4"), (1, "dsp")]
    rp = LinuxRemoteproc.find("dsp", tmp_path)
    assert rp.device.index == 1
    with pytest.raises(RemoteprocError, match=r"found: remoteproc0 \(m4\), remoteproc1 \(dsp\)"):
        LinuxRemoteproc.find("gpu", tmp_path)
    assert rp.firmware == "rproc-m4-fw"
    assert rp.load(example_firmware) == "minimal.elf"
    assert (tmp_path / "lib/firmware/minimal.elf").read_bytes() == example_firmware.read_bytes()
    assert (rp.device.path / "firmware").read_text() == "minimal.elf"
    (rp.device.path / "state").write_text("running\n")  # what the kernel reports
    assert rp.state is State.RUNNING
    (rp.device.path / "state").write_text("crashed\n")
    assert rp.wait_state(State.OFFLINE, timeout=0.05) is State.CRASHED


def test_the_state_read_decides_what_is_refused(tmp_path: Path, example_firmware: Path) -> None:
    """Refused before anything is written: start unless offline (Linux would count a second user and report
    success), stop while offline (EINVAL), a firmware change unless offline (EBUSY). The kernel's side of each
    is the guest-linux-platform scenario."""
    fake_sysfs(tmp_path, "m4")
    rp = LinuxRemoteproc.find(0, tmp_path)
    state = rp.device.path / "state"
    with pytest.raises(StateError, match=r"remoteproc0 \(m4\) is offline: nothing to stop"):
        rp.stop()
    state.write_text("running\n")
    with pytest.raises(StateError, match="is already running: stop it first"):
        rp.start()
    with pytest.raises(StateError, match="changes the firmware only while offline"):
        rp.load(example_firmware)
    assert not (tmp_path / "lib/firmware").exists()  # refused before the copy
    assert state.read_text() == "running\n" and (rp.device.path / "firmware").read_text() == "rproc-m4-fw\n"
    with pytest.raises(RemoteprocError, match="is not a firmware file name"):
        rp.set_firmware("a/b.elf")


def test_custom_firmware_path(tmp_path: Path, example_firmware: Path) -> None:
    fake_sysfs(tmp_path, "m4")
    param = tmp_path / "sys/module/firmware_class/parameters/path"
    param.parent.mkdir(parents=True)
    param.write_text("/opt/fw\n")
    LinuxRemoteproc.find(0, tmp_path).load(example_firmware)
    assert (tmp_path / "opt/fw/minimal.elf").exists()


def test_firmware_that_is_not_a_regular_file(tmp_path: Path) -> None:
    """Copied with shutil before: a FIFO blocked the copy until a writer came; now refused at once, naming it."""
    fake_sysfs(tmp_path, "m4")
    rp = LinuxRemoteproc.find(0, tmp_path)
    fifo = tmp_path / "fw.elf"
    os.mkfifo(fifo)
    with pytest.raises(RemoteprocError, match=r"fw.elf: a FIFO, not a regular file"):
        rp.load(fifo)
    with pytest.raises(RemoteprocError, match=r"missing.elf: No such file or directory"):
        rp.load(tmp_path / "missing.elf")
    assert not (tmp_path / "lib/firmware").exists()


def test_unknown_state_is_reported(tmp_path: Path) -> None:
    fake_sysfs(tmp_path, "m4")
    rp = LinuxRemoteproc.find(0, tmp_path)
    (rp.device.path / "state").write_text("confused\n")
    with pytest.raises(RemoteprocError, match="unknown state 'confused'"):
        _ = rp.state


def test_rpmsg_ctrl_on_something_that_is_not_one(tmp_path: Path) -> None:
    path = tmp_path / "rpmsg_ctrl0"
    path.write_bytes(b"")
    ctrl = RpmsgCtrl(path)
    with pytest.raises(RemoteprocError, match=r"ioctl 0x4028b501: Inappropriate ioctl"):
        ctrl.create_endpoint("rpmsg-raw")
    ctrl.close()
    with pytest.raises(RemoteprocError, match="is rpmsg_ctrl loaded"):
        RpmsgCtrl(tmp_path / "missing")


def test_cli_status_on_a_fake_sysfs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from remoteproc.cli import main

    fake_sysfs(tmp_path, "m4")
    assert main(["status", "--root", str(tmp_path)]) == 0
    assert "remoteproc0  m4" in capsys.readouterr().out
    assert main(["status", "--json", "--root", str(tmp_path)]) == 0
    assert '"state": "offline"' in capsys.readouterr().out
    assert main(["start", "gpu", "--root", str(tmp_path)]) == 1  # unknown: a clear error, exit 1
    assert "no remote processor 'gpu'" in capsys.readouterr().err


def test_rpmsg_char_send_maps_eagain_to_wouldblock() -> None:
    """Non-blocking, no transmit buffer is EAGAIN (rpmsg_char: trysend's ENOMEM): WouldBlock. (That send() does
    not wait for POLLOUT is the guest-linux-platform scenario, with its break mode send-waits-for-pollout.)"""
    kernel, user = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    ep = RpmsgCharEndpoint(fd=user.detach())
    ep.setblocking(False)
    with pytest.raises(WouldBlock):
        while True:  # fill the pair until a write would block
            ep.send(b"x" * 496)
    assert kernel.recv(512) == b"x" * 496
    ep.close()
    kernel.close()
