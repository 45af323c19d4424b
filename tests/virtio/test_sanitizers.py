"""The C engine built with AddressSanitizer and UndefinedBehaviorSanitizer, driven by the queue, hostile,
differential and fuzz tests in a child interpreter. Any invalid access or undefined behaviour aborts it."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
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


def build_sanitized(builder: str, out: Path) -> Path:
    """Compile the cffi module that ``builder`` ("virtio._build_vring", ...) describes with the sanitizers, in
    ``out``; its shared object."""
    out.mkdir(parents=True, exist_ok=True)
    code = (
        f"from {builder} import make_ffibuilder; "
        f"make_ffibuilder({SANITIZE!r}, relative=False).compile(tmpdir={str(out)!r})"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, cwd=REPO)
    [module] = list(out.rglob("*.so"))
    return module


def build_sanitized_endpoint(out: Path) -> Path:
    """rpmsg._endpoint_c (a CPython extension: setup.py's sources) compiled with the sanitizers in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    module = out / f"_endpoint_c{sysconfig.get_config_var('EXT_SUFFIX')}"
    sources = sorted(str(p.relative_to(REPO)) for p in (REPO / "rpmsg" / "csrc").glob("endpoint*.c"))
    include = [f"-I{sysconfig.get_paths()['include']}", "-Irpmsg/csrc", "-Ivirtio/csrc"]
    cmd = ["gcc", "-shared", "-fPIC", "-std=gnu11", *SANITIZE, *include, "-o", str(module), *sources]
    subprocess.run(cmd, check=True, capture_output=True, cwd=REPO)
    return module


def run_sanitized(env: dict[str, str], *pytest_args: str) -> str:
    """Run pytest in a child interpreter with the sanitizer runtime preloaded; its output, checked."""
    child = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x", *pytest_args],
        cwd=REPO,
        env={
            **os.environ,
            "LD_PRELOAD": runtime("libasan.so"),
            "ASAN_OPTIONS": "detect_leaks=0:abort_on_error=1",
            "UBSAN_OPTIONS": "halt_on_error=1:print_stacktrace=1",
            "RPROC_VIRTIO_BACKEND": "c",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=900,
    )
    tail = (child.stdout + child.stderr)[-4000:]
    assert child.returncode == 0, tail
    assert "passed" in child.stdout and "ERROR: AddressSanitizer" not in tail and "runtime error" not in tail
    return child.stdout


def test_c_engine_under_asan_and_ubsan(tmp_path: Path) -> None:
    engine = build_sanitized("virtio._build_vring", tmp_path / "engine")
    tests = [
        f"tests/virtio/{name}" for name in ("test_queue.py", "test_hostile.py", "test_differential.py", "test_fuzz.py")
    ]
    run_sanitized({"RPROC_VRING_MODULE": str(engine), "RPROC_FUZZ_EXAMPLES": "300"}, *tests)


def test_firmware_library_under_asan_and_ubsan(tmp_path: Path) -> None:
    """The firmware's rpmsg remote (firmware/lib/rpmsg_remote.c on vring.c) and mirror (mirror.c), built for this
    host with the sanitizers and driven by tests/firmware against the Python host and the Python remote and
    mirror (whose C engine is sanitized too)."""
    env = firmware_libs(tmp_path)
    env["RPROC_VRING_MODULE"] = str(build_sanitized("virtio._build_vring", tmp_path / "engine"))
    run_sanitized(env, "tests/firmware")


def firmware_libs(out: Path) -> dict[str, str]:
    """The firmware library's host builds (tests/firmware/remote_lib.py, mirror_lib.py) with the sanitizers: the
    environment that makes the tests and fuzz targets load them."""
    build = (
        "import sys; sys.path.insert(0, '.'); from pathlib import Path; "
        "from tests.firmware import remote_lib, mirror_lib; "
        f"print(remote_lib.build(Path({str(out / 'lib')!r}), {SANITIZE!r})); "
        f"print(remote_lib.build(Path({str(out / 'wide')!r}), {SANITIZE!r}, 'wide')); "
        f"print(mirror_lib.build(Path({str(out / 'mirror')!r}), {SANITIZE!r}))"
    )
    res = subprocess.run([sys.executable, "-c", build], check=True, capture_output=True, text=True, cwd=REPO)
    lib, wide, mirror = res.stdout.strip().splitlines()[-3:]
    return {"RPROC_REMOTE_LIB": lib, "RPROC_REMOTE_LIB_WIDE": wide, "RPROC_MIRROR_LIB": mirror}


@pytest.mark.parametrize("target", ["fwlib_ring", "mirror"])
def test_firmware_fuzz_targets_under_asan_and_ubsan(target: str, tmp_path: Path) -> None:
    """The atheris targets on the firmware library (ring setup from a hostile table and garbage rings; the mirror
    against its twin) with the library built with the sanitizers: an invalid access aborts the run."""
    pytest.importorskip("atheris", reason="atheris is installed by ./scripts/setup (test extras)")
    runs = os.environ.get("RPROC_ATHERIS_RUNS", "3000")
    env = {
        **os.environ,
        **firmware_libs(tmp_path),
        "LD_PRELOAD": runtime("libasan.so"),
        "ASAN_OPTIONS": "detect_leaks=0:abort_on_error=1",
        "UBSAN_OPTIONS": "halt_on_error=1:print_stacktrace=1",
    }
    res = subprocess.run([sys.executable, str(REPO / "fuzz" / "run.py"), target, f"-runs={runs}", "-max_len=8192",
                          f"-artifact_prefix={tmp_path}/"], capture_output=True, text=True, timeout=900, cwd=REPO,
                         env=env)  # fmt: skip
    tail = (res.stdout + res.stderr)[-3000:]
    assert res.returncode == 0 and f"Done {runs} runs" in tail, tail
    assert "ERROR: AddressSanitizer" not in tail and "runtime error" not in tail, tail


def test_rpmsg_c_path_under_asan_and_ubsan(tmp_path: Path) -> None:
    """The rpmsg per-message C path (rpmsg/csrc/fastpath.c), the endpoints' C methods (endpoint*.c) and the
    engine under them, all sanitized, driven by the rpmsg suite (loop, shm with other processes, devmem; hostile
    rings in either role), the C-path and C-method tests, the zero-copy lend, the remote's zero-copy sends and the
    device lock, the quirk tests and the ring rules."""
    env = {
        "RPROC_VRING_MODULE": str(build_sanitized("virtio._build_vring", tmp_path / "engine")),
        "RPROC_RPMSG_FASTPATH_MODULE": str(build_sanitized("rpmsg._build_fastpath", tmp_path / "fastpath")),
        "RPROC_RPMSG_ENDPOINT_MODULE": str(build_sanitized_endpoint(tmp_path / "endpoint")),
        "RPROC_WAKEUP_MESSAGES": "2000",  # the many-thread wake-up stress, sanitized: the C sleep under contention
    }
    tests = [
        "tests/rpmsg/test_suite.py",
        "tests/rpmsg/test_fastpath.py",
        "tests/rpmsg/test_endpoint_c.py",
        "tests/rpmsg/test_quirks.py",
        "tests/rpmsg/test_ring_rules.py",
        "tests/rpmsg/test_wakeup.py",
        "tests/rpmsg/test_big_buffers.py",
        "tests/rpmsg/test_batch_zero_copy.py",
        "tests/rpmsg/test_zero_copy_batches.py",
        "tests/rpmsg/test_doorbell_kinds.py",
        "tests/rpmsg/test_receive_c.py",
        "tests/rpmsg/test_lend_c.py",
        "tests/rpmsg/test_device_lock.py",
        "tests/rpmsg/test_remote_zero_copy.py",
        "tests/rpmsg/test_mirror_c_path.py",
    ]
    run_sanitized(env, "-k", "c-path", *tests)
