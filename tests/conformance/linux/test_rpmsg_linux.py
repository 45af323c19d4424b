"""rproc as the remote of the Linux kernel's own rpmsg stack (virtio_rpmsg_bus, rpmsg_ns, rpmsg_char,
rpmsg_ctrl of Debian's Linux 6.1, unmodified) running in User-Mode Linux, connected through rproc's vhost-user
back-end. Only UML itself is patched (tests/conformance/linux/*.patch: vring interrupts delivered from a
workqueue as real remoteproc drivers do, and the host's XSAVE size).

Each test boots a guest whose script drives /dev/rpmsg* with ``rpmsg-probe`` (guest/rpmsg_probe.c) and prints
one result line per check; the test reads them from the console, checks what the remote saw, and fails on any
"BUG:", "Oops" or panic the kernel prints.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from remoteproc.conformance.linux.build import UmlImages, ensure_uml
from remoteproc.conformance.linux.uml import BACKEND_DEATH_WARNINGS, UmlGuest
from rpmsg.wiring import VhostUserRemote
from tests.conformance.linux.remote_service import ECHO_ADDR, ECHO_NAME, EchoService
from virtio.features import VIRTIO_F_VERSION_1, VIRTIO_RING_F_EVENT_IDX

pytestmark = pytest.mark.conformance

VIRTIO_ID_RPMSG = 7
BOOT_TIMEOUT = 60.0

# Finds the channel's device node and keeps it in $DEV for the rest of the script.
WAIT_CHANNEL = f"""
rpmsg-probe wait-channel {ECHO_NAME} 30000 | tee /host/channel.txt
DEV=$(sed -n 's/.* dev=\\([^ ]*\\).*/\\1/p' /host/channel.txt)
"""


@pytest.fixture(scope="module")
def images() -> UmlImages:
    return ensure_uml()


@dataclass
class Booted:
    guest: UmlGuest
    remote: VhostUserRemote
    service: EchoService

    def results(self) -> list[str]:
        return [line for line in self.guest.lines if re.match(r"^[a-z-]+ .*\b(ok|fail)\b", line)]

    def finish(self, timeout: float = BOOT_TIMEOUT) -> list[str]:
        """Wait for the guest script to end; the result lines; no failure, no kernel complaint."""
        self.guest.wait_for(r"rproc-guest: exit \d+", timeout)
        self.guest.check_console_clean()
        assert self.service.failure is None, self.service.failure
        results = self.results()
        failed = [line for line in results if re.search(r"\bfail\b", line)]
        assert not failed, "\n".join(self.guest.lines[-60:])
        return results


Boot = Callable[..., Booted]


@pytest.fixture
def boot(images: UmlImages, tmp_path: Path) -> Iterator[Boot]:
    started: list[Booted] = []

    def _boot(script: str, *, ns: bool = True, version_1: bool = True, event_idx: bool = False) -> Booted:
        sock = tmp_path / "rpmsg.sock"
        remote = VhostUserRemote(sock, ns=ns, version_1=version_1, event_idx=event_idx)
        share = tmp_path / "share"
        share.mkdir(exist_ok=True)
        guest = UmlGuest(images, share, devices=[(sock, VIRTIO_ID_RPMSG)])
        guest.start(script)
        try:
            remote.accept(timeout=BOOT_TIMEOUT)
            device = remote.start(timeout=BOOT_TIMEOUT)
        except BaseException:
            guest.kill()
            remote.close()
            print("\n".join(guest.lines[-60:]))
            raise
        b = Booted(guest, remote, EchoService(device))
        started.append(b)
        return b

    yield _boot
    for b in started:
        b.service.stop()
        b.guest.kill()
        b.remote.close()


def _expect(results: list[str], *patterns: str) -> None:
    for pattern in patterns:
        assert any(re.search(pattern, line) for line in results), f"no result line matches {pattern!r}: {results}"


def test_name_service_echo_sizes_limit_and_stream(boot: Boot) -> None:
    b = boot(
        WAIT_CHANNEL
        + """
rpmsg-probe echo $DEV 1 16 300 496
rpmsg-probe write-expect-errno $DEV 497 EMSGSIZE
rpmsg-probe stream $DEV 3000 496 64
rpmsg-probe stream $DEV 3000 4 200
""",
        event_idx=True,
    )
    results = b.finish()
    _expect(
        results,
        rf"wait-channel name={ECHO_NAME} dev=/dev/rpmsg\d+ .*ok",
        r"echo size=1 ok",
        r"echo size=16 ok",
        r"echo size=300 ok",
        r"echo size=496 ok",
        r"EMSGSIZE.* ok|ok.*EMSGSIZE",
        r"stream count=3000 size=496 .*ok",
        r"stream count=3000 size=4 .*ok",
    )
    features = b.remote.features
    assert features >> VIRTIO_F_VERSION_1 & 1 and features >> VIRTIO_RING_F_EVENT_IDX & 1
    assert b.service.echoed == 4 + 3000 + 3000  # every message reached the remote and came back


def test_legacy_negotiation(boot: Boot) -> None:
    script = WAIT_CHANNEL + "rpmsg-probe echo $DEV 1 496\nrpmsg-probe stream $DEV 1000 64 32\n"
    b = boot(script, version_1=False)
    results = b.finish()
    _expect(results, r"echo size=496 ok", r"stream count=1000 size=64 .*ok")
    assert not b.remote.features >> VIRTIO_F_VERSION_1 & 1


def test_ctrl_endpoint_and_device_announcements(boot: Boot) -> None:
    b = boot(
        WAIT_CHANNEL
        + f"""
rpmsg-probe ctrl-ept /dev/rpmsg_ctrl0 conformance-ept 0x500 {ECHO_ADDR:#x}
rpmsg-probe ctrl-dev /dev/rpmsg_ctrl0 create {ECHO_NAME} 0x600 0xffffffff
echo "step device-created"
sleep 2
rpmsg-probe ctrl-dev /dev/rpmsg_ctrl0 release {ECHO_NAME} 0x600 0xffffffff
"""
    )
    results = b.finish()
    _expect(
        results, r"ctrl-ept dev=/dev/rpmsg\d+ .*ok", r"ctrl-ept reply=hello from conformance-ept.* ok", r"destroyed ok"
    )
    # The kernel announced the device it created to the remote (NS create), and withdrew it (NS destroy).
    assert b.service.wait_channel_event((ECHO_NAME, 0x600, True), 5), b.service.channel_events
    assert b.service.wait_channel_event((ECHO_NAME, 0x600, False), 5), b.service.channel_events


def test_remote_closing_its_endpoint_removes_the_device_node(boot: Boot) -> None:
    b = boot(WAIT_CHANNEL + "rpmsg-probe send $DEV close\nrpmsg-probe wait-gone $DEV 10000\n")
    results = b.finish()
    _expect(results, r"wait-gone dev=/dev/rpmsg\d+ ok")
    assert b.service.closed_by_request.is_set()


def test_without_name_service(boot: Boot) -> None:
    b = boot(
        f"""
for i in $(seq 300); do [ -e /dev/rpmsg_ctrl0 ] && break; sleep 0.1; done
rpmsg-probe wait-channel {ECHO_NAME} 1000 || echo "no-channel ok"
rpmsg-probe ctrl-ept /dev/rpmsg_ctrl0 no-ns-ept 0x501 {ECHO_ADDR:#x}
""",
        ns=False,
    )
    b.guest.wait_for(r"rproc-guest: exit \d+", BOOT_TIMEOUT)
    b.guest.check_console_clean()
    lines = b.guest.lines
    assert any("no-channel ok" in line for line in lines), lines[-40:]
    assert any(re.search(r"ctrl-ept reply=hello from no-ns-ept.* ok", line) for line in lines), lines[-40:]
    assert not b.remote.features & 1  # VIRTIO_RPMSG_F_NS not negotiated


def test_remote_process_death_removes_the_device(images: UmlImages, tmp_path: Path) -> None:
    sock = tmp_path / "rpmsg.sock"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.conformance.linux.remote_service", "--socket", str(sock)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "listening"
        share = tmp_path / "share"
        share.mkdir()
        with UmlGuest(images, share, devices=[(sock, VIRTIO_ID_RPMSG)]) as guest:
            guest.start(
                WAIT_CHANNEL
                + """
rpmsg-probe echo $DEV 16
echo "step ready-for-death"
rpmsg-probe wait-gone $DEV 20000
ls /sys/bus/virtio/devices/ | wc -l | sed 's/^/virtio-devices /'
"""
            )
            guest.wait_for("step ready-for-death", BOOT_TIMEOUT)
            proc.kill()
            proc.wait(5)
            guest.wait_for(r"rproc-guest: exit \d+", BOOT_TIMEOUT)
            # Linux 6.1's virtio_uml WARNs when its back-end vanishes (a call pipe at end of file, then failed
            # requests while it removes the device); any BUG, Oops or panic still fails.
            guest.check_console_clean(allow=BACKEND_DEATH_WARNINGS)
            _expect(guest.lines, r"echo size=16 ok", r"wait-gone dev=/dev/rpmsg\d+ ok", r"^virtio-devices 0$")
    finally:
        proc.kill()
        proc.wait(5)


def test_remote_role_catalogue_against_the_kernel() -> None:
    """`rproc conformance --peer linux`: the remote-role scenarios with the kernel as host (index wrap included:
    the guest streams 70,000 messages)."""
    from remoteproc.conformance.linux.peer import LinuxHostPeer
    from remoteproc.conformance.remote_role import run_remote_role

    report = run_remote_role(LinuxHostPeer(), timeout=10.0)
    outcomes = {r.scenario: r.outcome.value for r in report.results}
    assert report.passed, report.table()
    assert outcomes.pop("status-handshake") == "n/a"  # vhost-user has no status byte
    assert set(outcomes.values()) == {"pass"}, report.table()
