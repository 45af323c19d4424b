"""The C engine is built and active: a missing build must fail loudly, not fall back silently."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import virtio

CSRC = Path(virtio.__file__).parent / "csrc"


def test_c_backend_is_active() -> None:
    if os.environ.get("RPROC_VIRTIO_BACKEND") == "python":
        assert virtio.BACKEND == "python"
        return
    assert virtio.BACKEND == "c", "the C engine is not built: run ./scripts/setup"


def test_same_c_file_compiles_freestanding_for_cortex_m33(tmp_path: Path) -> None:
    cc = shutil.which("arm-none-eabi-gcc")
    assert cc, "arm-none-eabi-gcc missing: run ./scripts/setup"
    obj = tmp_path / "vring.o"
    subprocess.run(
        [
            cc,
            "-mcpu=cortex-m33",
            "-mthumb",
            "-ffreestanding",
            "-nostdlib",
            "-Os",
            "-std=c11",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-c",
            str(CSRC / "vring.c"),
            "-o",
            str(obj),
        ],
        check=True,
    )
    undefined = subprocess.run(["arm-none-eabi-nm", "-u", str(obj)], check=True, capture_output=True, text=True)
    assert undefined.stdout.strip() == "", f"needs symbols the file does not provide: {undefined.stdout}"
