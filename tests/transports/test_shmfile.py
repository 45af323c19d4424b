"""Shared files: what a killed process left behind is swept, and nothing of a live owner ever is."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from transports.shmfile import SharedFile, sweep_leftovers


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_sweep_removes_only_what_a_dead_owner_left(tmp_path: Path) -> None:
    dead, alive = _dead_pid(), subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        stale = [tmp_path / f"rproc-sim-{dead}-aaaa", tmp_path / f"rproc-sim-{dead}-aaaa.sock"]
        live = [tmp_path / f"rproc-sim-{alive.pid}-bbbb", tmp_path / f"rproc-sim-{alive.pid}-bbbb.sock"]
        others = [tmp_path / "rproc-simx", tmp_path / "rproc-sim-x-1", tmp_path / f"rproc-qemu-{dead}-cccc"]
        for path in stale + live + others:
            path.write_bytes(b"x")
        # A dead pid whose file is locked: its owner lives in another pid namespace, so it stays.
        locked = SharedFile(tmp_path / f"rproc-sim-{dead}-dddd", 4096, create=True, lock=True)
        # A companion whose memory file is gone already (killed between the two removals).
        orphan = tmp_path / f"rproc-sim-{dead}-eeee.sock"
        orphan.write_bytes(b"")
        assert sorted(sweep_leftovers("rproc-sim-", tmp_path)) == sorted([*stale, orphan])
        assert all(p.exists() for p in live + others) and locked.path.exists()
        locked.close()
        assert sweep_leftovers("rproc-sim-", tmp_path) == [locked.path]  # unlocked now: its owner has gone
    finally:
        alive.kill()
        alive.wait()
