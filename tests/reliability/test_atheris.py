"""Every atheris target runs briefly in CI (coverage-guided, from the committed seeds, plus the built firmware
for the ELF target); a failure leaves its crashing input in the output. Longer runs: docs/reliability.md."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fuzz.targets import TARGETS

REPO = Path(__file__).resolve().parents[2]
RUNS = os.environ.get("RPROC_ATHERIS_RUNS", "1500")


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_fuzz_target(target: str, tmp_path: Path, example_firmware: Path) -> None:
    pytest.importorskip("atheris", reason="atheris is installed by ./scripts/setup (test extras)")
    extra = []
    if target == "elf":
        shutil.copy(example_firmware, tmp_path / "minimal.elf")
        extra = [str(tmp_path)]
    # -reload=0: libFuzzer re-reads its output corpus every second and runs what it finds again, counted as runs:
    # a run that took over a second on a loaded machine ended at "Done 1506 runs" (CI, stop 35, remote_sends)
    res = subprocess.run([sys.executable, str(REPO / "fuzz" / "run.py"), target, f"-runs={RUNS}", "-max_len=8192",
                          "-reload=0", f"-artifact_prefix={tmp_path}/", *extra],
                         capture_output=True, text=True, timeout=600, cwd=REPO)  # fmt: skip
    tail = (res.stdout + res.stderr)[-3000:]
    assert res.returncode == 0, tail
    assert f"Done {RUNS} runs" in tail
