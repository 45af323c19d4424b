"""`rproc listen` ended by a signal: SIGTERM and SIGHUP clean up as Ctrl-C does (no child left, no /dev/shm file
of the session left); after SIGKILL the kernel kills the children (their parent-death signal) and the next run
of the same platform removes the files the killed one could not."""

from __future__ import annotations

import os
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from remoteproc.session import make_platform

REPO = Path(__file__).resolve().parents[2]
PLATFORMS = ["sim", "qemu-an505"]
PREFIX = {"sim": "rproc-sim-", "qemu-an505": "rproc-qemu-"}


def _children(pid: int) -> list[int]:
    """Every descendant of ``pid`` (from /proc)."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        parents.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")  # a zombie has ended (its new parent may not reap it at once)


def _session_files(platform: str, pid: int) -> list[str]:
    return sorted(n for n in os.listdir("/dev/shm") if n.startswith(f"{PREFIX[platform]}{pid}-"))


def _wait_gone(pids: list[int], seconds: float) -> list[int]:
    deadline = time.monotonic() + seconds
    while (alive := [p for p in pids if _alive(p)]) and time.monotonic() < deadline:
        time.sleep(0.05)
    return alive


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGKILL], ids=lambda s: s.name)
@pytest.mark.parametrize("platform", PLATFORMS)
def test_a_signal_leaves_no_child_and_no_file(platform: str, sig: signal.Signals, services_firmware: Path) -> None:
    if platform == "qemu-an505" and not shutil.which("qemu-system-arm"):
        pytest.fail("qemu-system-arm is not installed: run ./scripts/setup")
    cmd = [sys.executable, "-m", "remoteproc", "listen", "--platform", platform, str(services_firmware)]
    cmd += ["rpmsg-echo", "--send", "up", "--seconds", "120", "--timeout", "30"]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    children: list[int] = []
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 60)
        line = proc.stdout.readline() if ready else b""
        assert line == b"rpmsg-echo <- up\n", proc.stderr.read() if proc.poll() is not None else line  # type: ignore[union-attr]
        children = _children(proc.pid)
        files = _session_files(platform, proc.pid)
        assert children and files  # the session is running: its remote, its memory file
        proc.send_signal(sig)
        status = proc.wait(30)
        assert _wait_gone(children, 10) == []  # no child outlives rproc, whatever ended it
        if sig == signal.SIGKILL:
            assert status == -signal.SIGKILL
            # Nothing could remove the files; the next session of this platform does.
            assert _session_files(platform, proc.pid) == files
            make_platform(platform).close()
        else:
            assert status == 128 + sig
        assert _session_files(platform, proc.pid) == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pid in children:  # a failed run leaves no orphan behind it
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
