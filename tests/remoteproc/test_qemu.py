"""Real firmware (firmware/examples/services, the C rpmsg remote library on virtio/csrc/vring.c) on QEMU's
emulated Cortex-M33, its RAM shared with this process: loaded, started, talked to, crashed, recovered; both the
build that sleeps between doorbells and the polling one (test_qemu_sleep.py shows which one sleeps)."""

from __future__ import annotations

import shutil
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from remoteproc.lifecycle import State
from remoteproc.platforms.qemu import QemuPlatform
from remoteproc.rproc import RemoteProc
from rpmsg import MessageTooLong

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(params=["sleeping", "polling"])
def rp(
    request: pytest.FixtureRequest, services_firmware: Path, polling_services_firmware: Path
) -> Iterator[RemoteProc]:
    """The services firmware as built (asleep between doorbells) and its polling build (docs/mcu.md, "Sleeping")."""
    if not shutil.which("qemu-system-arm"):
        pytest.fail("qemu-system-arm is not installed: run ./scripts/setup")
    proc = RemoteProc(QemuPlatform())
    proc.load(services_firmware if request.param == "sleeping" else polling_services_firmware)
    proc.start()
    yield proc
    proc.close()
    assert not proc.platform.ram_path.exists()  # type: ignore[attr-defined]


def test_every_size_both_ways_zero_copy_on_the_host(rp: RemoteProc) -> None:
    assert rp.rpmsg is not None
    ep = rp.rpmsg.open("rpmsg-echo", timeout=10, zero_copy=True)
    ep.settimeout(10)
    for size in range(1, 497):
        buf = ep.get_buffer()  # host -> firmware without a copy on the host
        for i in range(0, size, 64):
            chunk = bytes((size + j) & 0xFF for j in range(i, min(size, i + 64)))
            buf.view[i : i + len(chunk)] = chunk
        ep.send_buffer(buf, size)
        with ep.recv_message() as msg:  # firmware -> host, read in place in shared memory
            assert len(msg.payload) == size
            assert bytes(msg.payload) == bytes((size + j) & 0xFF for j in range(size))
    with pytest.raises(MessageTooLong):
        ep.send(b"x" * 497)


def test_sensor_stream_sample_by_sample(rp: RemoteProc) -> None:
    assert rp.rpmsg is not None
    ep = rp.rpmsg.open("rpmsg-sensor", timeout=10)
    ep.settimeout(10)
    ep.send(b"start 5000")
    for seq in range(5000):
        assert struct.unpack("<ii", ep.recv()) == (seq, seq * 37 - 1000)


def test_command_service_writes_the_trace_buffer(rp: RemoteProc) -> None:
    assert rp.rpmsg is not None
    ep = rp.rpmsg.open("rpmsg-cmd", timeout=10)
    ep.settimeout(10)
    ep.send(b"trace hello from the host")
    assert ep.recv() == b"ok"
    assert rp.read_trace().splitlines() == [
        "services: up, waiting for DRIVER_OK",
        "services: rpmsg-echo, rpmsg-sensor, rpmsg-cmd announced",
        "hello from the host",
    ]


def echo_once(rp: RemoteProc, payload: bytes) -> bytes:
    assert rp.rpmsg is not None
    ep = rp.rpmsg.open("rpmsg-echo", timeout=10)
    ep.settimeout(10)
    ep.send(payload)
    return ep.recv()


def test_stop_and_restart(rp: RemoteProc) -> None:
    assert rp.rpmsg is not None
    cmd = rp.rpmsg.open("rpmsg-cmd", timeout=10)
    cmd.settimeout(10)
    cmd.send(b"trace first run")
    assert cmd.recv() == b"ok"
    rp.stop()
    assert rp.state is State.OFFLINE
    rp.start()
    assert echo_once(rp, b"two") == b"two"
    assert "first run" not in rp.read_trace()  # a fresh firmware run, not a resumed one
    assert rp.read_trace().startswith("services: up")


def test_fault_is_a_crash_and_recovery_works(rp: RemoteProc) -> None:
    assert rp.rpmsg is not None
    cmd = rp.rpmsg.open("rpmsg-cmd", timeout=10)
    cmd.send(b"fault")
    deadline = time.monotonic() + 10
    while rp.state is not State.CRASHED:
        assert time.monotonic() < deadline, "the fault was not noticed"
        time.sleep(0.02)
    rp.recover()
    assert rp.state is State.RUNNING
    assert echo_once(rp, b"after the crash") == b"after the crash"


def test_firmware_uses_the_same_vring_source_as_the_python_package(services_firmware: Path) -> None:
    with open(services_firmware, "rb") as f:
        units = {cu.get_top_DIE().get_full_path() for cu in ELFFile(f).get_dwarf_info().iter_CUs()}
    same = [u for u in units if Path(u).resolve() == (REPO / "virtio" / "csrc" / "vring.c").resolve()]
    assert same, f"vring.c not among the firmware's compile units: {sorted(units)}"
    assert not list((REPO / "firmware").rglob("vring*.c")), "a copy of the engine crept into firmware/"


def test_rproc_load_command(services_firmware: Path) -> None:
    import subprocess
    import sys

    res = subprocess.run(
        [sys.executable, "-m", "remoteproc", "load", str(services_firmware), "--platform", "qemu-an505", "--send",
         "rpmsg-echo:hello", "--send", "rpmsg-cmd:trace via the cli", "--trace"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert "channel rpmsg-echo at 0x400" in lines
    assert "rpmsg-echo <- hello" in lines and "rpmsg-cmd <- ok" in lines
    assert "  via the cli" in lines


def test_rproc_trace_follows_the_buffer(services_firmware: Path) -> None:
    import subprocess
    import sys

    res = subprocess.run(
        [sys.executable, "-m", "remoteproc", "trace", str(services_firmware), "--seconds", "1", "--send",
         "rpmsg-cmd:trace written while followed"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == [
        "services: up, waiting for DRIVER_OK",
        "services: rpmsg-echo, rpmsg-sensor, rpmsg-cmd announced",
        "written while followed",
    ]


def test_ping_listen_send_commands(services_firmware: Path) -> None:
    import subprocess
    import sys

    def rproc(*args: str) -> list[str]:
        res = subprocess.run([sys.executable, "-m", "remoteproc", *args], capture_output=True, text=True, timeout=120)
        assert res.returncode == 0, res.stderr
        return res.stdout.splitlines()

    fw = str(services_firmware)
    lines = rproc("ping", fw, "-c", "3", "-s", "32")
    assert [line.split(" time=")[0] for line in lines[:3]] == [
        f"32 bytes from rpmsg-echo (0x400): seq={n}" for n in (1, 2, 3)
    ]
    assert lines[3].startswith("3 round trips: min ")
    lines = rproc("listen", fw, "rpmsg-sensor", "--send", "start 2", "--seconds", "1")
    assert lines == ["rpmsg-sensor <- 00 00 00 00 18 fc ff ff", "rpmsg-sensor <- 01 00 00 00 3d fc ff ff"]
    assert rproc("send", fw, "rpmsg-echo", "a", "b")[-2:] == ["rpmsg-echo <- a", "rpmsg-echo <- b"]


def test_session_commands_speak_json(services_firmware: Path) -> None:
    import json
    import subprocess
    import sys

    def rproc(*args: str) -> object:
        res = subprocess.run([sys.executable, "-m", "remoteproc", *args], capture_output=True, text=True, timeout=120)
        assert res.returncode == 0, res.stderr
        return json.loads(res.stdout)

    fw = str(services_firmware)
    ping = rproc("ping", "--json", fw, "-c", "3")
    assert isinstance(ping, dict) and len(ping["times_us"]) == 3 and ping["min_us"] <= ping["max_us"]
    sent = rproc("send", "--json", fw, "rpmsg-echo", "hi")
    assert isinstance(sent, dict) and sent["replies"] == [{"channel": "rpmsg-echo", "reply": "6869"}]
    assert sent["channels"]["rpmsg-echo"] == "0x400"
    heard = rproc("listen", "--json", fw, "rpmsg-sensor", "--send", "start 1", "--seconds", "1")
    assert heard == {"channel": "rpmsg-sensor", "messages": ["0000000018fcffff"]}
