"""Transports by URL: schemes, errors, third-party schemes, spy+, and start order over shm://."""

from __future__ import annotations

import importlib.metadata
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from rpmsg import PeerLost, Profile
from rpmsg.wiring import host_on, remote_on
from transports import TransportError
from transports.spy import SpyLink
from transports.url import Link, ParsedUrl, open_link, parse_url

REPO = Path(__file__).resolve().parents[2]


def test_parse() -> None:
    url = parse_url("devmem://0x80000000?size=0x1000&uio=/dev/uio0&mailbox=0x40003000")
    assert (url.scheme, url.target) == ("devmem", "0x80000000")
    assert url.int_param("size") == 0x1000 and url.params["uio"] == "/dev/uio0"
    with pytest.raises(TransportError, match="needs"):
        parse_url("loop://x").int_param("size")
    with pytest.raises(TransportError, match="no scheme"):
        parse_url("/dev/shm/x")


def test_unknown_scheme_lists_the_known_ones() -> None:
    with pytest.raises(
        TransportError, match=r"no transport for bogus:// \(known: devmem://, loop://, openamp://, shm://"
    ):
        open_link("bogus://x", role="host")
    with pytest.raises(TransportError, match="role"):
        open_link("loop://x", role="driver")


def test_third_party_scheme_through_an_entry_point(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[ParsedUrl] = []

    class Fake(importlib.metadata.EntryPoint):
        def load(self):  # type: ignore[no-untyped-def, override]
            def opener(url: ParsedUrl, role: str, **kw: object) -> Link:
                made.append(url)
                return open_link("loop://third-party?size=4096", role=role)

            return opener

    ep = Fake(name="acme", value="acme:open", group="rproc.transports")
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda group=None: [ep] if group else [])
    link = open_link("acme://board7?speed=fast", role="host")
    assert made[0].target == "board7" and made[0].params == {"speed": "fast"}
    assert len(link.memory.read(0, 16)) == 16
    link.close()


def test_spy_traces_kicks_and_ring_changes() -> None:
    lines: list[str] = []
    p = Profile(num=16, rx_count=16, tx_count=16)
    name = f"spy-{uuid.uuid4().hex[:6]}"
    host_link = open_link(f"spy+loop://{name}?size={p.size}", role="host", trace=lines.append)
    remote_link = open_link(f"loop://{name}?size={p.size}", role="remote")
    assert isinstance(host_link, SpyLink)
    host_link.watch_vring("vring0", p.rx_layout.desc, p.rx_layout.avail, p.rx_layout.used, 16)
    host = host_on(host_link, p)
    remote = remote_on(remote_link, p)
    echo = remote.endpoint("echo")
    ep = host.open("echo", timeout=2)
    ep.settimeout(2)
    ep.send(b"ping")
    data, src = echo.recvfrom()
    echo.sendto(data, src)
    assert ep.recv() == b"ping"
    host.close()
    remote.close()
    host_link.close()
    remote_link.close()
    assert "vring0.avail.idx: ? -> 16" in lines  # the 16 receive buffers posted at start
    assert "kick -> queue 0" in lines  # the start kick
    assert any(line.startswith("vring0.used.idx: ") for line in lines)  # the remote's messages arriving


@pytest.mark.parametrize("first", ["host", "remote"])
def test_shm_either_side_may_start_first(first: str) -> None:
    name = f"rproc-order-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    p = Profile(num=16, rx_count=16, tx_count=16)
    script = (
        "import sys; from rpmsg import Profile; from rpmsg.wiring import remote_on; from transports.url import "
        f"open_link; link = open_link('shm://{name}', role='remote', timeout=20); "
        "dev = remote_on(link, Profile(num=16, rx_count=16, tx_count=16)); ep = dev.endpoint('echo'); "
        "data, src = ep.recvfrom(); ep.sendto(data, src); dev.close(); link.close()"
    )
    holder: dict[str, object] = {}

    def start_host() -> None:
        link = open_link(f"shm://{name}?size={p.size}", role="host")
        holder["link"] = link
        holder["dev"] = host_on(link, p, timeout=20)

    if first == "remote":
        remote = subprocess.Popen([sys.executable, "-c", script], cwd=REPO)
        time.sleep(0.5)  # the remote waits for a host that is not there yet
        start_host()
    else:
        t = threading.Thread(target=start_host)
        t.start()
        time.sleep(0.5)  # the host waits for a remote that is not there yet
        remote = subprocess.Popen([sys.executable, "-c", script], cwd=REPO)
        t.join(30)
    dev, link = holder["dev"], holder["link"]
    ep = dev.open("echo", timeout=20)  # type: ignore[attr-defined]
    ep.settimeout(20)
    ep.send(b"order")
    assert ep.recv() == b"order"
    assert remote.wait(20) == 0
    dev.close()  # type: ignore[attr-defined]
    link.close()  # type: ignore[attr-defined]
    assert not Path(f"/dev/shm/{name}").exists() and not Path(f"/dev/shm/{name}.sock").exists()


def test_shm_files_are_owner_only() -> None:
    name = f"rproc-mode-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    link = open_link(f"shm://{name}?size=4096", role="host")
    t = threading.Thread(target=lambda: link.connect(timeout=5))
    t.start()
    deadline = time.monotonic() + 5
    sock = Path(f"/dev/shm/{name}.sock")
    while not sock.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert Path(f"/dev/shm/{name}").stat().st_mode & 0o777 == 0o600
    assert sock.stat().st_mode & 0o077 == 0  # nobody else may connect to the doorbell
    remote = open_link(f"shm://{name}", role="remote", timeout=5)
    t.join(5)
    remote.close()
    link.close()


def test_a_peer_of_another_user_is_refused() -> None:
    """Even with the socket made world-writable (a careless umask or directory), SO_PEERCRED keeps a process of
    another uid out; the host goes on waiting for its own remote."""
    if os.geteuid() != 0:
        pytest.skip("needs root to run a process as another user")  # CI and this machine run as root
    name = f"rproc-uid-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    link = open_link(f"shm://{name}?size=4096", role="host")
    result: dict[str, object] = {}
    t = threading.Thread(target=lambda: result.update(bell=link.connect(timeout=10)))
    t.start()
    sock = Path(f"/dev/shm/{name}.sock")
    deadline = time.monotonic() + 5
    while not sock.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    sock.chmod(0o777)
    Path(f"/dev/shm/{name}").chmod(0o666)
    intruder = (
        "import os, socket, sys; os.setgid(65534); os.setuid(65534); s = socket.socket(socket.AF_UNIX); "
        f"s.connect('/dev/shm/{name}.sock'); sys.exit(0 if s.recv(1) == b'' else 1)"
    )
    assert subprocess.run([sys.executable, "-c", intruder], timeout=10).returncode == 0  # connected, then dropped
    assert t.is_alive()  # still waiting: the intruder was not taken for the remote
    remote = open_link(f"shm://{name}", role="remote", timeout=5)
    t.join(5)
    assert "bell" in result
    remote.close()
    link.close()


def test_another_user_connecting_in_a_loop(caplog: pytest.LogCaptureFixture) -> None:
    """A process of another uid connecting as fast as it can for the whole wait: the host ends with its
    TransportError at the timeout (not BlockingIOError from a zero timeout) and logs the first refusal, then
    counts (it logged 77,000 warnings in 3 s)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to run a process as another user")
    name = f"rproc-uidloop-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    link = open_link(f"shm://{name}?size=4096", role="host")
    result: dict[str, object] = {}

    def accept() -> None:
        try:
            link.connect(timeout=3)
        except BaseException as exc:  # the test looks at what it was
            result["error"] = exc

    sock = Path(f"/dev/shm/{name}.sock")
    intruder = (
        "import os, socket, sys, time; os.setgid(65534); os.setuid(65534)\n"
        "while True:\n"
        "    s = socket.socket(socket.AF_UNIX)\n"
        f"    try: s.connect('{sock}')\n"
        "    except OSError: time.sleep(0.001)\n"
        "    s.close()\n"
    )
    with caplog.at_level("WARNING", logger="transports.shm"):
        t = threading.Thread(target=accept)
        t.start()
        deadline = time.monotonic() + 5
        while not sock.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        sock.chmod(0o777)
        loop = subprocess.Popen([sys.executable, "-c", intruder])
        try:
            t.join(20)
        finally:
            loop.kill()
            loop.wait()
    link.close()
    assert not t.is_alive()
    error = result.get("error")
    assert isinstance(error, TransportError) and "no remote connected" in str(error), repr(error)
    refusals = [r.getMessage() for r in caplog.records if r.name == "transports.shm"]
    assert refusals[0].startswith(f"refused a connection to {sock} from pid {loop.pid} of uid 65534")
    assert 2 <= len(refusals) <= 3, refusals  # the first; the rest counted (at most one interval in 3 s)
    assert f"from pid {loop.pid} of uid 65534" in refusals[-1] and " more connections " in refusals[-1]
    assert sum(int(r.split()[1]) for r in refusals[1:]) >= 10  # it did try again and again


def test_a_leftover_of_another_user_is_named_not_removed() -> None:
    """A stale file and socket of another uid under the name we want: a TransportError naming the file, its
    owner and what to do, for root (which could remove it, and must not) and for an ordinary user (for whom
    the probe and the removal failed with a bare PermissionError)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to make files of another user")
    name = f"rproc-stale-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    path, sock = Path(f"/dev/shm/{name}"), Path(f"/dev/shm/{name}.sock")
    try:
        path.write_bytes(b"\0" * 4096)
        path.chmod(0o600)
        server = socket.socket(socket.AF_UNIX)
        server.bind(str(sock))
        server.close()  # a socket file nobody listens on: the leftover of a killed host
        sock.chmod(0o600)
        with pytest.raises(TransportError, match=rf"{path} belongs to uid 0, not to us \(uid 65534\).*remove it"):
            _as_nobody(lambda: open_link(f"shm://{name}?size=4096", role="host"))
        with pytest.raises(TransportError, match=rf"{sock}: permission denied \(it belongs to uid 0"):
            _as_nobody(lambda: open_link(f"shm://{name}", role="remote", timeout=1))
        os.chown(path, 65534, 65534)
        os.chown(sock, 65534, 65534)
        with pytest.raises(TransportError, match=rf"{path} belongs to uid 65534, not to us \(uid 0\)"):
            open_link(f"shm://{name}?size=4096", role="host")
        assert path.exists() and sock.exists()  # not removed
    finally:
        path.unlink(missing_ok=True)
        sock.unlink(missing_ok=True)


def _as_nobody(action: Callable[[], object]) -> None:
    """Run ``action`` in a forked child as uid/gid 65534; re-raise its TransportError here (message only)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        try:
            os.setgid(65534)
            os.setuid(65534)
            action()
        except TransportError as exc:
            os.write(write, b"T" + str(exc).encode())
        except BaseException as exc:  # reported to the parent
            os.write(write, f"X{type(exc).__name__}: {exc}".encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as f:
        message = f.read().decode()
    os.waitpid(pid, 0)
    if message.startswith("T"):
        raise TransportError(message[1:])
    raise AssertionError(message or "no error")


@pytest.mark.parametrize("doorbell", ["socket", "eventfd", "dgram"])
def test_shm_doorbells_between_processes(doorbell: str) -> None:
    """Each kick mechanism of shm:// carries an echo between two processes, and reports the remote's death."""
    name = f"rproc-bell-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    p = Profile(num=16, rx_count=16, tx_count=16)
    script = (
        "from rpmsg import Profile; from rpmsg.wiring import remote_on; from transports.url import open_link; "
        f"link = open_link('shm://{name}', role='remote', timeout=20); "
        "dev = remote_on(link, Profile(num=16, rx_count=16, tx_count=16)); ep = dev.endpoint('echo'); "
        "[ep.sendto(*ep.recvfrom()) for _ in range(3)]; import time; time.sleep(30)"
    )
    remote = subprocess.Popen([sys.executable, "-c", script], cwd=REPO)
    link = open_link(f"shm://{name}?size={p.size}&doorbell={doorbell}&memfd=1", role="host")
    dev = host_on(link, p, wait="block", timeout=20)
    try:
        ep = dev.open("echo", timeout=20)
        ep.settimeout(20)
        for word in (b"one", b"two", b"three"):
            ep.send(word)
            assert ep.recv() == word  # blocking mode: every reply arrived by a kick
        remote.kill()
        remote.wait()
        start = time.monotonic()
        with pytest.raises(PeerLost):
            ep.recv()
        assert time.monotonic() - start < 5
    finally:
        dev.close()
        link.close()
        if remote.poll() is None:
            remote.kill()
