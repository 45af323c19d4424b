"""``rproc doctor``: what this installation and this machine can do, and what each missing piece would enable.

Every check is a :class:`Check`: a name, whether it is there, what was found (or why not), and what it enables.
Nothing here changes the machine; the only processes started are ``--version`` queries of the tools found.
``root`` points the kernel checks (/sys, /dev) at another tree, as ``rproc status --root`` does.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from remoteproc.version import version


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    enables: str
    group: str = "rproc"


@dataclass(frozen=True)
class Report:
    version: str
    checks: tuple[Check, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        return {"version": self.version, "checks": [asdict(c) for c in self.checks]}


def _virtio_engine() -> Check:
    enables = "the virtqueue engine in C (every ring operation; ~10x the Python twin)"
    wanted = os.environ.get("RPROC_VIRTIO_BACKEND", "")
    if wanted == "python":
        return Check("virtio engine", False, "python: chosen by RPROC_VIRTIO_BACKEND=python", enables, "engines")
    try:
        from virtio.cring import load

        module = load()
    except ImportError as exc:
        return Check("virtio engine", False, f"python: the C module is not built ({exc})", enables, "engines")
    return Check("virtio engine", True, f"c ({Path(module.__file__).name})", enables, "engines")


def _rpmsg_fastpath() -> Check:
    enables = "rpmsg's per-message C path (send/receive/wait without the interpreter)"
    from rpmsg import fastpath

    if not fastpath.enabled():
        return Check("rpmsg C path", False, "off: RPROC_RPMSG_FASTPATH=0", enables, "engines")
    try:
        module = fastpath._module()
    except ImportError as exc:
        return Check("rpmsg C path", False, f"off: the C module is not built ({exc})", enables, "engines")
    except RuntimeError as exc:  # built, but not with the virtio engine's struct layout (_native.check_layout)
        return Check("rpmsg C path", False, f"off: {exc}", enables, "engines")
    return Check("rpmsg C path", True, f"on ({Path(module.__file__).name})", enables, "engines")


def _endpoint_methods() -> Check:
    enables = "the endpoints' send/recv as C methods (blocking round trips near a raw eventfd ping-pong)"
    from rpmsg import fastpath

    module = fastpath.endpoint_module()
    if module is None:
        return Check("endpoint C methods", False, "off: rpmsg._endpoint_c is not built", enables, "engines")
    if not fastpath.enabled():
        return Check("endpoint C methods", False, "built, unused: they run on the rpmsg C path", enables, "engines")
    return Check("endpoint C methods", True, f"on ({Path(module.__file__).name})", enables, "engines")


def _tool(name: str, enables: str, package: str, run: Callable[..., Any] = subprocess.run) -> Check:
    path = shutil.which(name)
    if path is None:
        return Check(name, False, f"not found (apt-get install {package})", enables, "tools")
    try:
        out = run([path, "--version"], capture_output=True, text=True, timeout=10, check=False).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        return Check(name, False, f"{path}: does not run ({exc})", enables, "tools")
    first = out.strip().splitlines()[0] if out.strip() else "(no version)"
    return Check(name, True, f"{path}: {first}", enables, "tools")


def _uml_cache() -> Check:
    from remoteproc.conformance.linux.build import cache_root

    enables = "the Linux-kernel conformance peers (rproc conformance --peer linux; pytest -m conformance)"
    root = cache_root()
    kernels = sorted(p.parent.name for p in root.glob("*/linux")) if root.is_dir() else []
    if not kernels:
        return Check(
            "UML kernel cache", False, f"{root}: no kernel built yet (built on first use, minutes)", enables, "tools"
        )
    return Check("UML kernel cache", True, f"{root}: {len(kernels)} kernel(s)", enables, "tools")


def _example_firmware() -> Check:
    from remoteproc.demo import DEFAULT_FIRMWARE

    enables = "rproc demo / bench with the example Cortex-M33 firmware"
    if DEFAULT_FIRMWARE.is_file():
        return Check("example firmware", True, str(DEFAULT_FIRMWARE), enables, "rproc")
    return Check("example firmware", False, f"{DEFAULT_FIRMWARE} is missing (make -C firmware)", enables, "rproc")


def _kernel_checks(root: Path) -> list[Check]:
    checks = []
    rproc_dir = root / "sys/class/remoteproc"
    procs = sorted(rproc_dir.iterdir()) if rproc_dir.is_dir() else []
    described = []
    for p in procs:
        name = _read(p / "name") or "?"
        state = _read(p / "state") or "?"
        described.append(f"{p.name} ({name}, {state})")
    checks.append(
        Check(
            "remoteproc devices",
            bool(procs),
            ", ".join(described) if procs else f"none under {rproc_dir}",
            "rproc status/start/stop/trace on the kernel's remote processors (the linux platform)",
            "kernel",
        )
    )
    dev = root / "dev"
    ctrls = sorted(p.name for p in dev.glob("rpmsg_ctrl*")) if dev.is_dir() else []
    chars = sorted(p.name for p in dev.glob("rpmsg[0-9]*")) if dev.is_dir() else []
    checks.append(
        Check(
            "rpmsg char devices",
            bool(ctrls or chars),
            ", ".join(ctrls + chars) if ctrls or chars else f"no {dev}/rpmsg_ctrl* or {dev}/rpmsgN",
            "endpoints on the kernel's rpmsg bus from Python (remoteproc.platforms.linux)",
            "kernel",
        )
    )
    uio = sorted(p.name for p in (root / "sys/class/uio").glob("uio*")) if (root / "sys/class/uio").is_dir() else []
    checks.append(
        Check(
            "UIO devices",
            bool(uio),
            ", ".join(uio) if uio else "none (modprobe uio_pdrv_genirq and a device-tree node)",
            "interrupts from a remote on an SoC (devmem platform doorbells)",
            "kernel",
        )
    )
    mem = dev / "mem"
    if not mem.exists():
        detail, ok = f"{mem} does not exist", False
    elif os.access(mem, os.R_OK | os.W_OK):
        detail, ok = f"{mem}: readable and writable (CONFIG_STRICT_DEVMEM may still refuse RAM ranges)", True
    else:
        detail, ok = f"{mem}: no access (run as root)", False
    checks.append(Check("/dev/mem", ok, detail, "the devmem:// transport and platform (physical memory)", "kernel"))
    return checks


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def diagnose(root: str | Path = "/") -> Report:
    """Everything ``rproc doctor`` reports."""
    root = Path(root)
    checks = [
        _virtio_engine(),
        _rpmsg_fastpath(),
        _endpoint_methods(),
        _example_firmware(),
        _tool("qemu-system-arm", "the emulated Cortex-M33 (rproc demo, --peer firmware)", "qemu-system-arm"),
        _tool("arm-none-eabi-gcc", "building the example firmware (make -C firmware)", "gcc-arm-none-eabi"),
        _tool("gcc", "building the C engines at install time, and the C remote used by benchmarks", "gcc"),
        _uml_cache(),
        *_kernel_checks(root),
    ]
    return Report(version(), tuple(checks))


def format_report(report: Report) -> str:
    lines = [f"rproc {report.version}"]
    group = ""
    for c in report.checks:
        if c.group != group:
            group = c.group
            lines.append(f"{group}:")
        mark = "ok" if c.ok else "--"
        lines.append(f"  {mark} {c.name:<20} {c.detail}")
        if not c.ok:
            lines.append(f"     {'':<20} missing: {c.enables}")
    return "\n".join(lines)
