"""Shared fixtures: compilers and the example firmware, both real (installed and built by scripts/setup)."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
FIRMWARE = REPO / "firmware"
COMPILERS = ("gcc", "arm-none-eabi-gcc")


def _require(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.fail(f"{tool} is not installed: run ./scripts/setup (it installs the Debian packages)")
    return path


@pytest.fixture(scope="session")
def compile_c(tmp_path_factory: pytest.TempPathFactory) -> Callable[[Path, str], Path]:
    """Compile one C file to an object with ``cc`` (gcc -> ELF64 x86-64, arm-none-eabi-gcc -> ELF32 ARM)."""
    out_dir = tmp_path_factory.mktemp("objects")

    def run(source: Path, cc: str) -> Path:
        compiler = _require(cc)
        arch = ["-mcpu=cortex-m33", "-mthumb"] if cc.startswith("arm-") else []
        target = out_dir / f"{source.stem}.{cc}.o"
        subprocess.run(
            [
                compiler,
                *arch,
                "-std=c11",
                "-Wall",
                "-Wextra",
                "-Werror",
                "-c",
                f"-I{FIRMWARE / 'include'}",
                "-o",
                str(target),
                str(source),
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        return target

    return run


@pytest.fixture(scope="session")
def services_firmware(example_firmware: Path) -> Path:
    """firmware/build/services.elf (echo, sensor and command services on the rpmsg remote library)."""
    elf = FIRMWARE / "build" / "services.elf"
    assert elf.is_file()
    return elf


@pytest.fixture(scope="session")
def polling_services_firmware(example_firmware: Path) -> Path:
    """firmware/build/poll/services.elf: the same services polling their vrings instead of sleeping until the
    doorbell's interrupt (RPROC_IDLE_POLL, docs/mcu.md "Sleeping")."""
    elf = FIRMWARE / "build" / "poll" / "services.elf"
    assert elf.is_file()
    return elf


@pytest.fixture(scope="session")
def example_firmware() -> Path:
    """firmware/build/minimal.elf, built by make from the sources (make is a no-op when it is up to date)."""
    _require("arm-none-eabi-gcc")
    subprocess.run(["make", "-s", "-C", str(FIRMWARE)], check=True, capture_output=True, text=True)
    elf = FIRMWARE / "build" / "minimal.elf"
    assert elf.is_file()
    return elf
