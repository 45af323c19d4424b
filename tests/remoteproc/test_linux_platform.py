"""The linux platform on a fake sysfs tree (the real kernel is the Linux-conformance issue's): the same file
writes and reads that /sys/class/remoteproc takes, the ioctl numbers of include/uapi/linux/rpmsg.h, and the
rpmsg char device's one-message-per-read/write semantics on a SOCK_SEQPACKET pair."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from remoteproc.errors import RemoteprocError
from remoteproc.lifecycle import State
from remoteproc.platforms.linux import (
    RPMSG_CREATE_DEV_IOCTL,
    RPMSG_CREATE_EPT_IOCTL,
    RPMSG_DESTROY_EPT_IOCTL,
    RPMSG_RELEASE_DEV_IOCTL,
    LinuxRemoteproc,
    RpmsgCharEndpoint,
    RpmsgCtrl,
)
from rpmsg import RpmsgTimeout, WouldBlock


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


def test_find_load_start_stop(tmp_path: Path, example_firmware: Path) -> None:
    fake_sysfs(tmp_path, "m4", "dsp")
    assert [(d.index, d.name) for d in LinuxRemoteproc.list(tmp_path)] == [(0, "m4"), (1, "dsp")]
    rp = LinuxRemoteproc.find("dsp", tmp_path)
    assert rp.device.index == 1
    with pytest.raises(RemoteprocError, match=r"found: remoteproc0 \(m4\), remoteproc1 \(dsp\)"):
        LinuxRemoteproc.find("gpu", tmp_path)
    assert rp.load(example_firmware) == "minimal.elf"
    assert (tmp_path / "lib/firmware/minimal.elf").read_bytes() == example_firmware.read_bytes()
    assert (rp.device.path / "firmware").read_text() == "minimal.elf"
    rp.start()
    assert (rp.device.path / "state").read_text() == "start"  # what the kernel is asked
    (rp.device.path / "state").write_text("running\n")  # what the kernel reports
    assert rp.state is State.RUNNING
    (rp.device.path / "state").write_text("crashed\n")
    assert rp.wait_state(State.OFFLINE, timeout=0.05) is State.CRASHED


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


def test_rpmsg_char_endpoint_semantics() -> None:
    kernel, user = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)  # message boundaries kept
    ep = RpmsgCharEndpoint(fd=user.detach())
    ep.settimeout(1)
    ep.send(b"hello")
    assert kernel.recv(512) == b"hello"
    kernel.send(b"one")
    kernel.send(b"two")
    assert ep.recv() == b"one" and ep.recv() == b"two"  # one read, one message
    ep.setblocking(False)
    with pytest.raises(WouldBlock):
        ep.recv()
    ep.settimeout(0.05)
    with pytest.raises(RpmsgTimeout):
        ep.recv()
    ep.close()
    kernel.close()


def test_rpmsg_ctrl_on_something_that_is_not_one(tmp_path: Path) -> None:
    path = tmp_path / "rpmsg_ctrl0"
    path.write_bytes(b"")
    ctrl = RpmsgCtrl(path)
    with pytest.raises(RemoteprocError, match=r"ioctl 0x4028b501: Inappropriate ioctl"):
        ctrl.create_endpoint("rpmsg-raw")
    ctrl.close()
    with pytest.raises(RemoteprocError, match="is rpmsg_ctrl loaded"):
        RpmsgCtrl(tmp_path / "missing")


def test_cli_status_start_stop_on_a_fake_sysfs(
    tmp_path: Path, example_firmware: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import threading
    import time

    from remoteproc.cli import main

    fake_sysfs(tmp_path, "m4")
    state = tmp_path / "sys/class/remoteproc/remoteproc0/state"

    def kernel(request: str, answer: str) -> None:  # plays the kernel: waits for the request, reports the state
        deadline = time.monotonic() + 5
        while state.read_text() != request and time.monotonic() < deadline:
            time.sleep(0.005)
        time.sleep(0.01)
        state.write_text(answer + "\n")

    assert main(["status", "--root", str(tmp_path)]) == 0
    assert "remoteproc0  m4" in capsys.readouterr().out
    t = threading.Thread(target=kernel, args=("start", "running"))
    t.start()
    assert main(["start", "m4", str(example_firmware), "--root", str(tmp_path)]) == 0
    t.join()
    assert "remoteproc0 (m4): running" in capsys.readouterr().out
    t = threading.Thread(target=kernel, args=("stop", "offline"))
    t.start()
    assert main(["stop", "0", "--root", str(tmp_path)]) == 0
    t.join()
    assert main(["status", "--json", "--root", str(tmp_path)]) == 0
    assert '"state": "offline"' in capsys.readouterr().out
    assert main(["start", "gpu", "--root", str(tmp_path)]) == 1  # unknown: a clear error, exit 1


def test_rpmsg_char_send_does_not_wait_for_pollout() -> None:
    """Linux 6.1's rpmsg_char never reports POLLOUT on a virtio rpmsg device (no poll op): send() writes at once
    and, non-blocking, maps EAGAIN (no transmit buffer) to WouldBlock."""
    kernel, user = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    ep = RpmsgCharEndpoint(fd=user.detach())
    ep.setblocking(False)
    with pytest.raises(WouldBlock):
        while True:  # fill the pair until a write would block
            ep.send(b"x" * 496)
    assert kernel.recv(512) == b"x" * 496
    ep.close()
    kernel.close()
