"""Run inside the UML guest by the ``rproc-in-the-guest`` boot (remoteproc_peer.py) with the host's Python
(through hostfs): rproc's ``linux`` platform — :class:`LinuxRemoteproc`, :class:`RpmsgCtrl`,
:class:`RpmsgCharEndpoint` — against the real /sys/class/remoteproc, /dev/rpmsg_ctrlN and /dev/rpmsgN.

    python -m remoteproc.conformance.linux.in_guest FIRMWARE [CHANNEL]

The processor must be offline with a firmware name set; FIRMWARE is an ELF to load (copied where
``firmware_class.path`` points). Prints one ``in-guest NAME ok EVIDENCE`` or ``in-guest NAME fail REASON`` line
per step (:data:`STEPS`), in order, and leaves the processor offline. ``RPROC_BREAK=send-waits-for-pollout`` in
the environment makes :meth:`RpmsgCharEndpoint.send` wait for POLLOUT first, as it did before it met the real
rpmsg_char: the echo steps must then fail.
"""

from __future__ import annotations

import errno
import os
import selectors
import sys
import time
from collections.abc import Callable
from pathlib import Path

from remoteproc.errors import RemoteprocError
from remoteproc.lifecycle import State
from remoteproc.platforms.linux import LinuxRemoteproc, RpmsgCharEndpoint, RpmsgCtrl
from rpmsg.errors import EndpointClosed, MessageTooLong, RpmsgTimeout, WouldBlock

RPMSG_CLASS = Path("/sys/class/rpmsg")
NAME = "uml-rproc"
REMOTE_ADDR = 1024  # the remote's echo endpoint (uml_remote.c, uml_py_remote.py)

# Every step, in the order they run; the host side expects an "ok" line for each.
STEPS = (
    "list-and-find",
    "offline-facts",
    "stop-while-offline",
    "start-missing-firmware",
    "load-and-start",
    "start-while-running",
    "firmware-change-while-running",
    "char-timeouts",
    "char-echo",
    "char-too-long",
    "char-selectors",
    "char-destroy-channel-device",
    "ctrl-create-echo-destroy",
    "ctrl-name-too-long",
    "stop-with-endpoint-open",
    "stop-again",
)


def find_channel(name: str, timeout: float) -> Path | None:
    """/dev/rpmsgN of the channel ``name`` announced by the remote (its parent device has ``announce``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for entry in sorted(RPMSG_CLASS.glob("rpmsg[0-9]*")):
            try:
                found = (entry / "name").read_text().strip() == name
            except OSError:
                continue
            if found and (entry / "device" / "announce").exists() and (Path("/dev") / entry.name).exists():
                return Path("/dev") / entry.name
        time.sleep(0.05)
    return None


def raises(kind: type[BaseException], call: Callable[[], object], *, match: str = "") -> str:
    """The message of the ``kind`` exception ``call`` raises (containing ``match``); AssertionError otherwise."""
    try:
        call()
    except kind as exc:
        assert match in str(exc), f"{type(exc).__name__}: {exc} (expected {match!r} in it)"
        return f"{type(exc).__name__}: {exc}"
    except Exception as exc:
        raise AssertionError(f"{type(exc).__name__}: {exc} instead of {kind.__name__}") from None
    raise AssertionError(f"no {kind.__name__}")


def kernel_errno(path: Path, value: str) -> int:
    """The errno of the kernel's answer to writing ``value`` to ``path`` (0: accepted)."""
    try:
        path.write_text(value)
    except OSError as exc:
        return exc.errno or -1
    return 0


def echo(ep: RpmsgCharEndpoint, data: bytes) -> None:
    ep.send(data)
    got = ep.recv(512)
    assert got == data, f"sent {len(data)} bytes, got {len(got)} back"


def break_send() -> None:
    """The old send(): wait until poll() says writable (it never does on virtio rpmsg), then write."""
    original = RpmsgCharEndpoint.send

    def send(self: RpmsgCharEndpoint, data: bytes | bytearray | memoryview) -> int:
        self._ready(True)
        return original(self, data)

    RpmsgCharEndpoint.send = send  # type: ignore[method-assign]


def main(argv: list[str]) -> int:
    if len(argv) < 1:
        print("usage: python -m remoteproc.conformance.linux.in_guest FIRMWARE [CHANNEL]", file=sys.stderr)
        return 2
    firmware = Path(argv[0])
    channel_name = argv[1] if len(argv) > 1 else "rpmsg-raw"
    if os.environ.get("RPROC_BREAK") == "send-waits-for-pollout":
        break_send()
    failures = 0
    state: dict[str, object] = {}

    def step(name: str, body: Callable[[], str]) -> None:
        nonlocal failures
        try:
            evidence = body()
        except Exception as exc:  # each step reports, the next ones still run
            failures += 1
            text = f"{type(exc).__name__}: {exc}" if not isinstance(exc, AssertionError) else str(exc)
            print(f"in-guest {name} fail {text}".replace("\n", " | "), flush=True)
        else:
            print(f"in-guest {name} ok {evidence}", flush=True)

    def rp() -> LinuxRemoteproc:
        return LinuxRemoteproc.find(NAME)

    def list_and_find() -> str:
        devices = LinuxRemoteproc.list()
        assert [(d.index, d.name) for d in devices] == [(0, NAME)], devices
        for which in (0, "remoteproc0", NAME):
            assert LinuxRemoteproc.find(which).device.index == 0, which
        error = raises(RemoteprocError, lambda: LinuxRemoteproc.find("gpu"), match=f"found: remoteproc0 ({NAME})")
        return f"remoteproc0 {NAME}; find('gpu'): {error}"

    def offline_facts() -> str:
        r = rp()
        assert r.state is State.OFFLINE, r.state
        assert r.firmware_dir() == Path("/host"), r.firmware_dir()  # firmware_class.path=/host
        return f"state offline, firmware {r.firmware}, firmware dir {r.firmware_dir()}"

    def stop_while_offline() -> str:
        code = kernel_errno(rp().device.path / "state", "stop")
        assert code == errno.EINVAL, f"the kernel answered {code}"  # remoteproc_core.c rproc_shutdown
        return f"kernel EINVAL; rproc: {raises(RemoteprocError, rp().stop, match='offline: nothing to stop')}"

    def start_missing_firmware() -> str:
        r = rp()
        state["first_firmware"] = r.firmware
        r.set_firmware("rproc-missing.elf")
        error = raises(RemoteprocError, r.start, match="found no firmware file 'rproc-missing.elf'")
        assert r.state is State.OFFLINE, r.state
        return error

    def load_and_start() -> str:
        r = rp()
        name = r.load(firmware)
        assert r.firmware == name and (r.firmware_dir() / name).read_bytes() == firmware.read_bytes()
        r.start()
        assert r.wait_state(State.RUNNING, 10) is State.RUNNING
        return f"loaded {name} into {r.firmware_dir()}, running"

    def start_while_running() -> str:
        error = raises(RemoteprocError, rp().start, match="already running")
        assert rp().state is State.RUNNING
        return error

    def firmware_change_while_running() -> str:
        r = rp()
        code = kernel_errno(r.device.path / "firmware", "other.elf")
        assert code == errno.EBUSY, f"the kernel answered {code}"  # remoteproc_core.c rproc_set_firmware
        error = raises(RemoteprocError, lambda: r.set_firmware("other.elf"), match="only while offline")
        raises(RemoteprocError, lambda: r.load(firmware), match="only while offline")
        assert r.firmware == firmware.name, r.firmware
        return f"kernel EBUSY; rproc: {error}"

    def channel() -> RpmsgCharEndpoint:
        if "ep" not in state:
            dev = find_channel(channel_name, 30.0)
            assert dev is not None, f"no channel {channel_name} within 30 s"
            state["ep"] = RpmsgCharEndpoint(dev)
        ep = state["ep"]
        assert isinstance(ep, RpmsgCharEndpoint)
        return ep

    def char_timeouts() -> str:
        ep = channel()
        ep.settimeout(0.3)
        t0 = time.monotonic()
        timeout = raises(RpmsgTimeout, ep.recv)
        waited = time.monotonic() - t0
        assert waited >= 0.3, waited
        ep.setblocking(False)
        raises(WouldBlock, ep.recv)
        ep.settimeout(5.0)
        return f"{ep.path}: {timeout}; non-blocking: WouldBlock"

    def char_echo() -> str:
        ep = channel()
        for size in (1, 16, 300, 496):
            echo(ep, bytes((i * 7 + size) & 0xFF for i in range(size)))
        return f"{ep.path}: 1, 16, 300, 496 bytes echoed"

    def char_too_long() -> str:
        return raises(MessageTooLong, lambda: channel().send(bytes(497)))

    def char_selectors() -> str:
        ep = channel()
        with selectors.DefaultSelector() as sel:
            sel.register(ep, selectors.EVENT_READ)
            assert sel.select(0) == [], "readable before anything was sent"
            ep.send(b"selector")
            ready = sel.select(5.0)
            assert [key.fileobj for key, _ in ready] == [ep], ready
            assert ep.recv() == b"selector"
        return f"fileno {ep.fileno()} readable once the echo arrived"

    def char_destroy_channel_device() -> str:
        ep = channel()
        error = raises(RemoteprocError, ep.destroy, match="only endpoints made through rpmsg_ctrl")
        echo(ep, b"still there")
        return error

    def ctrl_create_echo_destroy() -> str:
        with RpmsgCtrl("/dev/rpmsg_ctrl0") as ctrl:
            dev = ctrl.create_endpoint(channel_name, dst=REMOTE_ADDR)
            assert dev.exists(), dev
            with RpmsgCharEndpoint(dev) as ep:
                ep.settimeout(5.0)
                echo(ep, b"through rpmsg_ctrl")
                ep.destroy()
            assert not dev.exists() and not (RPMSG_CLASS / dev.name).exists(), f"{dev} still there"
        return f"{dev} created, echoed, destroyed"

    def ctrl_name_too_long() -> str:
        with RpmsgCtrl("/dev/rpmsg_ctrl0") as ctrl:
            return raises(RemoteprocError, lambda: ctrl.create_endpoint("x" * 32), match="longer than 31")

    def stop_with_endpoint_open() -> str:
        ep = channel()
        r = rp()
        r.stop()
        assert r.wait_state(State.OFFLINE, 10) is State.OFFLINE
        ep.settimeout(5.0)
        t0 = time.monotonic()
        error = raises(EndpointClosed, ep.recv)
        assert time.monotonic() - t0 < 4.0, "recv waited for its timeout instead"
        raises(EndpointClosed, lambda: ep.send(b"x"))
        ep.close()
        return f"offline; recv: {error}"

    def stop_again() -> str:
        return raises(RemoteprocError, rp().stop, match="offline: nothing to stop")

    bodies: dict[str, Callable[[], str]] = {
        "list-and-find": list_and_find,
        "offline-facts": offline_facts,
        "stop-while-offline": stop_while_offline,
        "start-missing-firmware": start_missing_firmware,
        "load-and-start": load_and_start,
        "start-while-running": start_while_running,
        "firmware-change-while-running": firmware_change_while_running,
        "char-timeouts": char_timeouts,
        "char-echo": char_echo,
        "char-too-long": char_too_long,
        "char-selectors": char_selectors,
        "char-destroy-channel-device": char_destroy_channel_device,
        "ctrl-create-echo-destroy": ctrl_create_echo_destroy,
        "ctrl-name-too-long": ctrl_name_too_long,
        "stop-with-endpoint-open": stop_with_endpoint_open,
        "stop-again": stop_again,
    }
    assert tuple(bodies) == STEPS
    for name in STEPS:
        step(name, bodies[name])
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
