"""The C engine's shared-memory accesses are defined C11: a driver and a device in two threads on one ring, built
with ThreadSanitizer, report no data race. Every field the peer reads or writes concurrently (indices, flags,
event indices, descriptors, used entries) is a relaxed atomic, ordered by the engine's fences; they were plain
volatile accesses, each a data race (issue 17). The harness moves descriptors only (no payload copies: buffer
contents are ordered by the fences, which ThreadSanitizer does not model)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.virtio.test_sanitizers import runtime

REPO = Path(__file__).resolve().parents[2]


def test_driver_and_device_threads_race_on_nothing(tmp_path: Path) -> None:
    runtime("libtsan.so")  # fails with what to install when gcc has no ThreadSanitizer
    exe = tmp_path / "tsan_ring"
    sources = [str(REPO / "tests/virtio/tsan_ring.c"), str(REPO / "virtio/csrc/vring.c")]
    cmd = ["gcc", "-std=c11", "-O1", "-g", "-fsanitize=thread", "-Wno-tsan", f"-I{REPO / 'virtio/csrc'}", *sources,
           "-o", str(exe), "-lpthread"]  # fmt: skip
    subprocess.run(cmd, check=True, capture_output=True)
    run = subprocess.run([str(exe)], capture_output=True, text=True, timeout=300,
                         env={"TSAN_OPTIONS": "halt_on_error=1 exitcode=66"})  # fmt: skip
    if run.returncode == 66 and "unexpected memory mapping" in run.stderr:
        pytest.skip("ThreadSanitizer cannot run under this kernel's address-space layout")
    assert "WARNING: ThreadSanitizer" not in run.stderr, run.stderr[-3000:]
    assert run.returncode == 0 and run.stdout.strip() == "ok 20000", run.stdout + run.stderr[-2000:]
