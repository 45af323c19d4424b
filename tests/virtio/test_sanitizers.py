"""The C engine built with AddressSanitizer and UndefinedBehaviorSanitizer, driven by the queue, hostile,
differential and fuzz tests in a child interpreter. Any invalid access or undefined behaviour aborts it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SANITIZE = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer", "-g", "-O1"]


def runtime(name: str) -> str:
    path = subprocess.run(["gcc", f"-print-file-name={name}"], capture_output=True, text=True, check=True).stdout
    path = path.strip()
    if not os.path.isabs(path):
        pytest.fail(f"gcc has no {name}: install libasan/libubsan (they come with Debian's gcc)")
    return path


def test_c_engine_under_asan_and_ubsan(tmp_path: Path) -> None:
    build = (
        "import sys; from virtio._build_vring import make_ffibuilder; "
        f"make_ffibuilder({SANITIZE!r}, relative=False).compile(tmpdir={str(tmp_path)!r})"
    )
    subprocess.run([sys.executable, "-c", build], check=True, capture_output=True, cwd=tmp_path)
    [module] = list(tmp_path.glob("virtio/_vring_cffi*.so")) or list(tmp_path.glob("_vring_cffi*.so"))
    env = {
        **os.environ,
        "LD_PRELOAD": runtime("libasan.so"),
        "ASAN_OPTIONS": "detect_leaks=0:abort_on_error=1",
        "UBSAN_OPTIONS": "halt_on_error=1:print_stacktrace=1",
        "RPROC_VRING_MODULE": str(module),
        "RPROC_VIRTIO_BACKEND": "c",
        "RPROC_FUZZ_EXAMPLES": "300",
    }
    tests = [
        f"tests/virtio/{name}" for name in ("test_queue.py", "test_hostile.py", "test_differential.py", "test_fuzz.py")
    ]
    child = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x", *tests],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    tail = (child.stdout + child.stderr)[-4000:]
    assert child.returncode == 0, tail
    assert "passed" in child.stdout and "ERROR: AddressSanitizer" not in tail and "runtime error" not in tail


def test_firmware_library_under_asan_and_ubsan(tmp_path: Path) -> None:
    """The firmware's rpmsg remote (firmware/lib/rpmsg_remote.c on vring.c), built for this host with the
    sanitizers and driven by tests/firmware against the Python host (whose C engine is sanitized too)."""
    build = (
        "import sys; sys.path.insert(0, '.'); from tests.firmware.remote_lib import build; "
        f"from pathlib import Path; print(build(Path({str(tmp_path)!r}), {SANITIZE!r}))"
    )
    lib = subprocess.run([sys.executable, "-c", build], check=True, capture_output=True, text=True, cwd=REPO)
    remote_lib = lib.stdout.strip().splitlines()[-1]
    engine_dir = tmp_path / "engine"
    engine_dir.mkdir()
    subprocess.run([sys.executable, "-c",
                    "from virtio._build_vring import make_ffibuilder; "
                    f"make_ffibuilder({SANITIZE!r}, relative=False).compile(tmpdir={str(engine_dir)!r})"],
                   check=True, capture_output=True, cwd=engine_dir)  # fmt: skip
    [engine] = list(engine_dir.glob("virtio/_vring_cffi*.so")) or list(engine_dir.glob("_vring_cffi*.so"))
    env = {
        **os.environ,
        "LD_PRELOAD": runtime("libasan.so"),
        "ASAN_OPTIONS": "detect_leaks=0:abort_on_error=1",
        "UBSAN_OPTIONS": "halt_on_error=1:print_stacktrace=1",
        "RPROC_REMOTE_LIB": remote_lib,
        "RPROC_VRING_MODULE": str(engine),
        "RPROC_VIRTIO_BACKEND": "c",
    }
    child = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x", "tests/firmware"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    tail = (child.stdout + child.stderr)[-4000:]
    assert child.returncode == 0, tail
    assert "passed" in child.stdout and "runtime error" not in tail


def test_rpmsg_host_c_path_under_asan_and_ubsan(tmp_path: Path) -> None:
    """The rpmsg host's per-message C path (rpmsg/csrc/fastpath.c) and the engine under it, both sanitized,
    driven by the rpmsg suite (loop, shm with other processes, devmem; hostile vring 0) and the quirk tests."""
    modules = {}
    for name, builder in (("engine", "virtio._build_vring"), ("fastpath", "rpmsg._build_fastpath")):
        out = tmp_path / name
        out.mkdir()
        build = (
            f"from {builder} import make_ffibuilder; "
            f"make_ffibuilder({SANITIZE!r}, relative=False).compile(tmpdir={str(out)!r})"
        )
        subprocess.run([sys.executable, "-c", build], check=True, capture_output=True, cwd=REPO)
        [modules[name]] = [p for p in out.rglob("*.so")]
    env = {
        **os.environ,
        "LD_PRELOAD": runtime("libasan.so"),
        "ASAN_OPTIONS": "detect_leaks=0:abort_on_error=1",
        "UBSAN_OPTIONS": "halt_on_error=1:print_stacktrace=1",
        "RPROC_VRING_MODULE": str(modules["engine"]),
        "RPROC_RPMSG_FASTPATH_MODULE": str(modules["fastpath"]),
        "RPROC_VIRTIO_BACKEND": "c",
    }
    tests = ["tests/rpmsg/test_suite.py", "tests/rpmsg/test_fastpath.py", "tests/rpmsg/test_quirks.py"]
    child = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x", "-k", "c-path", *tests],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    tail = (child.stdout + child.stderr)[-4000:]
    assert child.returncode == 0, tail
    assert "passed" in child.stdout and "ERROR: AddressSanitizer" not in tail and "runtime error" not in tail
