# Only what pyproject.toml cannot declare: the cffi modules (the C virtqueue engine; the rpmsg host's C path) and
# the host endpoint's C methods (a CPython extension: a method call into cffi costs more than the whole message).
# The C modules are optional: without a working C compiler the install still succeeds and rproc runs on the
# pure-Python twins (virtio/pyring.py and the rpmsg general path), saying so once here and once per process at
# import (virtio/backend.py); `rproc doctor` tells which engines are active and why.
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
EXAMPLE_FIRMWARE = ("services.elf", "minimal.elf")


class BuildPyWithFirmware(build_py):
    """Put the example firmware (built from firmware/ with arm-none-eabi-gcc) into the wheel as
    remoteproc/example_firmware/, so that `rproc demo` works from an installed wheel. Without the ARM toolchain
    the wheel goes without it and `rproc demo` says so (an editable install uses firmware/build/ in place)."""

    def run(self) -> None:
        super().run()
        if self.editable_mode:
            return
        target = Path(self.build_lib) / "remoteproc" / "example_firmware"
        if not (HERE / "firmware" / "Makefile").is_file() or not shutil.which("arm-none-eabi-gcc"):
            print("rproc: arm-none-eabi-gcc not found: the wheel carries no example firmware", file=sys.stderr)
            return
        subprocess.run(["make", "-s", "-C", str(HERE / "firmware")], check=True)
        target.mkdir(parents=True, exist_ok=True)
        for name in EXAMPLE_FIRMWARE:
            shutil.copy2(HERE / "firmware" / "build" / name, target / name)


class OptionalBuildExt(build_ext):
    """Build every extension it can; one that does not compile is left out (and named) instead of failing."""

    def build_extensions(self) -> None:
        failed = []
        for ext in list(self.extensions):
            try:
                self.build_extension(ext)
            except Exception as exc:  # CompileError, LinkError, a missing compiler (OSError/DistutilsExecError)
                failed.append((ext.name, exc))
                self.extensions.remove(ext)
        if failed:
            names = ", ".join(name for name, _ in failed)
            bar = "*" * 78
            print(
                f"\n{bar}\nrproc: the C engines were NOT built ({names}): {failed[0][1]}\n"
                "rproc: installing with the pure-Python engines (same behaviour, ~10x slower per message).\n"
                "rproc: install a C compiler (e.g. apt-get install gcc python3-dev) and reinstall for the C ones.\n"
                f"{bar}\n",
                file=sys.stderr,
            )


setup(
    cmdclass={"build_ext": OptionalBuildExt, "build_py": BuildPyWithFirmware},
    cffi_modules=["virtio/_build_vring.py:ffibuilder", "rpmsg/_build_fastpath.py:ffibuilder"],
    ext_modules=[
        # rpmsg/csrc/endpoint*.c only: the ring work is rpmsg._fastpath_cffi's copy of fastpath.c and vring.c,
        # called through its table (struct rpf_api), so one build of both serves the cffi path and these methods.
        Extension(
            "rpmsg._endpoint_c",
            sources=sorted(str(p.relative_to(HERE)) for p in (HERE / "rpmsg" / "csrc").glob("endpoint*.c")),
            include_dirs=["rpmsg/csrc", "virtio/csrc"],
            extra_compile_args=["-std=gnu11", "-O2", "-Wall", "-Wextra", "-fvisibility=hidden"],
        )
    ],
)
