"""The installed product: version, ``rproc doctor``, and an install without a C compiler (pure-Python engines)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from types import SimpleNamespace

import pytest

import remoteproc
from remoteproc.cli import main
from remoteproc.doctor import diagnose

REPO = Path(__file__).resolve().parent.parent.parent


def test_version_is_the_distributions(capsys: pytest.CaptureFixture[str]) -> None:
    expected = metadata.version("rproc")
    assert remoteproc.__version__ == expected
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"rproc {expected}"


def test_pyproject_license_is_an_spdx_string() -> None:
    if sys.version_info >= (3, 11):
        import tomllib
    else:
        import tomli as tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["license"] == "BSD-3-Clause"
    assert (REPO / "LICENSE").read_text().startswith("BSD 3-Clause License")


def _fake_root(tmp_path: Path) -> Path:
    rp = tmp_path / "sys/class/remoteproc/remoteproc0"
    rp.mkdir(parents=True)
    (rp / "name").write_text("m33\n")
    (rp / "state").write_text("running\n")
    (tmp_path / "sys/class/uio/uio0").mkdir(parents=True)
    dev = tmp_path / "dev"
    dev.mkdir()
    for name in ("rpmsg_ctrl0", "rpmsg0", "mem"):
        (dev / name).write_bytes(b"")
    return tmp_path


def test_doctor_reports_engines_and_the_kernels_devices(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _fake_root(tmp_path)
    assert main(["doctor", "--json", "--root", str(root)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["version"] == metadata.version("rproc")
    checks = {c["name"]: c for c in report["checks"]}
    # CI requires the C engines (as tests/virtio/test_backend.py does): a broken build must show here.
    assert checks["virtio engine"]["ok"] and checks["virtio engine"]["detail"].startswith("c (")
    assert checks["rpmsg C path"]["ok"] and checks["endpoint C methods"]["ok"]
    assert checks["remoteproc devices"]["detail"] == "remoteproc0 (m33, running)"
    assert checks["rpmsg char devices"]["detail"] == "rpmsg_ctrl0, rpmsg0"
    assert checks["UIO devices"]["detail"] == "uio0"
    assert checks["/dev/mem"]["ok"]
    for check in checks.values():
        assert check["enables"], check  # every check says what it is for

    assert main(["doctor", "--root", str(tmp_path / "empty")]) == 0
    text = capsys.readouterr().out
    assert "-- remoteproc devices" in text and "missing: rproc status/start/stop" in text


def test_doctor_says_what_a_missing_tool_would_enable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no qemu, no compilers
    checks = {c.name: c for c in diagnose(tmp_path).checks}
    qemu = checks["qemu-system-arm"]
    assert not qemu.ok and "apt-get install qemu-system-arm" in qemu.detail and "Cortex-M33" in qemu.enables
    assert not checks["arm-none-eabi-gcc"].ok


def test_doctor_says_why_an_engine_is_off() -> None:
    env = dict(os.environ, RPROC_VIRTIO_BACKEND="python", RPROC_RPMSG_FASTPATH="0")
    out = subprocess.run(
        [sys.executable, "-m", "remoteproc", "doctor", "--json"], env=env, capture_output=True, text=True, check=True
    )
    checks = {c["name"]: c for c in json.loads(out.stdout)["checks"]}
    assert checks["virtio engine"]["detail"] == "python: chosen by RPROC_VIRTIO_BACKEND=python"
    assert checks["rpmsg C path"]["detail"] == "off: RPROC_RPMSG_FASTPATH=0"
    assert out.stderr == ""  # chosen on purpose: no warning


def test_doctor_names_a_c_path_built_with_another_layout(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A stale build of one of the two C modules (another struct rp_vq): the check says so and how to fix it;
    before, doctor caught only ImportError and ended in a traceback."""
    from rpmsg import _native, fastpath

    def stale() -> object:
        built = [0x1234, 0x5678]  # the two modules' rp_vq_layout(): different
        _native.check_layout(
            SimpleNamespace(rp_vq_layout=lambda: built[0]), SimpleNamespace(rp_vq_layout=lambda: built[1])
        )
        return None

    monkeypatch.setenv("RPROC_RPMSG_FASTPATH", "1")
    monkeypatch.setattr(fastpath, "_module", stale)
    check = {c.name: c for c in diagnose(tmp_path).checks}["rpmsg C path"]
    assert not check.ok
    assert "different struct rp_vq layouts (0x1234 != 0x5678): rebuild both" in check.detail


_SKIP = shutil.ignore_patterns(".venv", ".git", "build", "*.so", "__pycache__", "*.egg-info", ".hypothesis", ".*cache")

_EXCHANGE = """
import warnings, sys
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    import virtio
    import rpmsg
assert virtio.BACKEND == "python", virtio.BACKEND
assert [str(w.message) for w in caught if "not built" in str(w.message)], caught
host, remote = rpmsg.loopback_pair()
served = remote.endpoint("rpmsg-echo")
ep = host.open("rpmsg-echo", timeout=5)
ep.settimeout(5)
for size in (0, 1, 100, 496):
    payload = bytes((i * 7) & 0xFF for i in range(size))
    ep.send(payload)
    data, src = served.recvfrom()
    served.sendto(data[::-1][:495] + b"!", src)
    assert ep.recv() == payload[::-1][:495] + b"!"
host.close(); remote.close()
print("exchanged")
"""


@pytest.mark.toolchain
def test_install_without_a_c_compiler_runs_the_python_engines(tmp_path: Path) -> None:
    """A wheel built where the compiler fails (CC=false) installs into a fresh venv, warns once at import that
    the C engine is missing, runs a loopback exchange on the Python engines, and `rproc doctor` says why."""
    src = tmp_path / "src"
    shutil.copytree(REPO, src, ignore=_SKIP)
    shutil.rmtree(src / "firmware" / "build", ignore_errors=True)
    env = dict(os.environ, CC="false", CXX="false")
    env.pop("RPROC_VIRTIO_BACKEND", None)
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(src)],
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=600,
    )
    (wheel,) = wheels.glob("rproc-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    subprocess.run(
        [str(venv / "bin/python"), "-m", "pip", "install", "-q", str(wheel)],
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=600,
    )
    away = tmp_path / "elsewhere"  # not the checkout: nothing may be imported from the source tree
    away.mkdir()
    run = subprocess.run(
        [str(venv / "bin/python"), "-c", _EXCHANGE], cwd=away, env=env, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "exchanged"
    doctor = subprocess.run(
        [str(venv / "bin/rproc"), "doctor", "--json"], cwd=away, env=env, capture_output=True, text=True, timeout=120
    )
    assert doctor.returncode == 0, doctor.stderr
    assert doctor.stderr.count("the C virtqueue engine is not built") == 1  # loudly, once
    checks = {c["name"]: c for c in json.loads(doctor.stdout)["checks"]}
    assert checks["virtio engine"]["detail"].startswith("python: the C module is not built")
    assert checks["rpmsg C path"]["detail"].startswith("off: the C module is not built")
    assert checks["endpoint C methods"]["detail"] == "off: rpmsg._endpoint_c is not built"
