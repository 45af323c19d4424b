"""fuzz/run.py leaves nothing in the temporary directory, whether the run ends by itself, finds a crash or is
ended by SIGTERM (then its fuzzing child ends too)."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _run(target: str, tmp: Path, *options: str) -> subprocess.Popen[str]:
    env = {**os.environ, "TMPDIR": str(tmp)}
    return subprocess.Popen(
        [sys.executable, str(REPO / "fuzz" / "run.py"), target, *options],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


@pytest.mark.parametrize("target", ["elf", "vhost_user"])  # the two targets that write files of their own
def test_a_finished_run_leaves_no_scratch_directory(target: str, tmp_path: Path) -> None:
    pytest.importorskip("atheris", reason="atheris is installed by ./scripts/setup (test extras)")
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    proc = _run(target, tmp, "-runs=200", f"-artifact_prefix={tmp_path}/")
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-2000:]
    assert "Done 200 runs" in err
    assert list(tmp.iterdir()) == []


def test_sigterm_ends_the_fuzzer_and_removes_its_directory(tmp_path: Path) -> None:
    pytest.importorskip("atheris", reason="atheris is installed by ./scripts/setup (test extras)")
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    proc = _run("elf", tmp, "-runs=100000000", f"-artifact_prefix={tmp_path}/")
    try:
        assert proc.stderr is not None
        deadline = time.monotonic() + 120
        seen = ""
        while "INITED" not in seen and time.monotonic() < deadline:  # libFuzzer has read its corpus: running
            if select.select([proc.stderr], [], [], 1)[0]:
                seen += proc.stderr.readline()
        assert "INITED" in seen, seen[-2000:]
        fuzzer = [int(p) for p in Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()]
        assert len(fuzzer) == 1 and list(tmp.iterdir())
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 128 + signal.SIGTERM
        assert list(tmp.iterdir()) == []
        deadline = time.monotonic() + 10
        while Path(f"/proc/{fuzzer[0]}").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not Path(f"/proc/{fuzzer[0]}").exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
