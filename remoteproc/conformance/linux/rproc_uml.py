"""Linux's remoteproc core as a peer: the pieces around the kernel's ``uml_rproc`` driver.

``uml_rproc`` (``kernel-tree/drivers/remoteproc/uml_rproc.c``) is a remote processor for User-Mode Linux whose
memory is a host file the guest maps with ``iomem=rproc,FILE`` and whose doorbell is a host UNIX socket
(``uml_rproc.socket=PATH``). This module holds the memory map both sides agree on (:class:`Layout`), builds the
firmware ELF Linux loads (``host/uml_fw.c``) and the host program that plays the remote processor with the
firmware's C rpmsg library (``host/uml_remote.c``), and gives the kernel arguments that tie them together.

Device addresses are the guest's physical addresses of the file (the driver's da == pa; see
docs/linux-conformance.md, "remoteproc core"): UML maps the iomem= regions one page above the end of its RAM
(arch/um/kernel/physmem.c: setup_iomem), so with ``mem=64M`` the file's offset 0 is da 0x4001000.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from remoteproc.conformance.linux.build import BuildError  # also for the firmware and the host remote

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
HOST = HERE / "host"
FIRMWARE_SOURCE = HOST / "uml_fw.c"
REMOTE_SOURCE = HOST / "uml_remote.c"
PAGE = 0x1000
IOMEM_NAME = "rproc"
FIRMWARE_NAME = "rproc-uml-fw.elf"  # uml_rproc's default firmware name (its "firmware" parameter)


def parse_size(text: str) -> int:
    """UML's ``mem=`` value (memparse: a number with an optional K/M/G suffix) in bytes."""
    units = {"k": 10, "m": 20, "g": 30}
    suffix = text[-1:].lower()
    if suffix in units:
        return int(text[:-1], 0) << units[suffix]
    return int(text, 0)


@dataclass(frozen=True)
class Layout:
    """Where everything lives in the shared file, as offsets; ``base`` is the device address of offset 0."""

    base: int
    size: int = 0x60000
    firmware: tuple[int, int] = (0x0, 0x10000)  # the ELF's segments (code at +0, data at +0x8000)
    trace: tuple[int, int] = (0x18000, 0x1000)
    vring0: tuple[int, int] = (0x20000, 0x2000)  # PAGE_ALIGN(vring_size(64, 0x1000)) = 0x2000
    vring1: tuple[int, int] = (0x22000, 0x2000)
    buffer: tuple[int, int] = (0x40000, 0x20000)  # 2 * 64 buffers of 512 bytes = 0x10000, and room
    vring_num: int = 64
    vring_align: int = 0x1000
    vdev_notifyid: int = 7  # the firmware's value: Linux 6.1 leaves the vdev's own notifyid alone

    @classmethod
    def for_guest_mem(cls, mem: str) -> Layout:
        """The layout at the address UML gives the (only) iomem= region of a guest booted with ``mem=``."""
        return cls(base=parse_size(mem) + PAGE)

    def da(self, offset: int) -> int:
        return self.base + offset

    def kernel_args(self, memfile: Path, socket: Path) -> list[str]:
        def carveout(name: str, span: tuple[int, int]) -> str:
            return f"uml_rproc.{name}={self.da(span[0]):#x},{span[1]:#x}"

        return [
            f"iomem={IOMEM_NAME},{memfile}",
            f"uml_rproc.socket={socket}",
            carveout("vring0", self.vring0),
            carveout("vring1", self.vring1),
            carveout("buffer", self.buffer),
        ]

    def defines(self) -> list[str]:
        return [
            f"-DTRACE_DA={self.da(self.trace[0]):#x}u",
            f"-DTRACE_LEN={self.trace[1]:#x}u",
            f"-DVRING0_DA={self.da(self.vring0[0]):#x}u",
            f"-DVRING1_DA={self.da(self.vring1[0]):#x}u",
            f"-DVRING_NUM={self.vring_num}u",
            f"-DVRING_ALIGN={self.vring_align:#x}u",
            f"-DVDEV_NOTIFYID={self.vdev_notifyid}u",
        ]

    def linker_script(self) -> str:
        start, size = self.firmware
        return f"""ENTRY(_start)
PHDRS {{ text PT_LOAD FLAGS(5); data PT_LOAD FLAGS(6); }}
SECTIONS {{
  . = {self.da(start):#x};
  .text : {{ *(.text .text.*) }} :text
  .rodata : {{ *(.rodata .rodata.*) }} :text
  . = ALIGN(8);
  .resource_table : {{ KEEP(*(.resource_table)) }} :text
  . = {self.da(start + size // 2):#x};
  .data : {{ *(.data .data.*) }} :data
  .bss : {{ *(.bss .bss.*) *(COMMON) }} :data
  ASSERT(. <= {self.da(start + size):#x}, "the firmware does not fit its part of the memory file")
  /DISCARD/ : {{ *(.note*) *(.eh_frame*) *(.comment) *(.gnu*) }}
}}
"""


def compile_c(command: list[str], what: str) -> None:
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise BuildError(f"{what} failed:\n$ {' '.join(command)}\n{result.stdout}{result.stderr}")


FREESTANDING = (
    "-std=c11",
    "-O1",
    "-Wall",
    "-Werror",
    "-ffreestanding",
    "-fno-pic",
    "-fno-asynchronous-unwind-tables",
    "-fno-stack-protector",
    "-nostdlib",
    "-static",
    "-no-pie",
    "-Wl,--build-id=none",
)
"""gcc's flags for a firmware ELF of the host's architecture that is loaded, never run: no libc, no start files,
no PIC, no build-id note (the linker script places every section)."""


def link_firmware(layout: Layout, out_dir: Path, name: str, sources: list[Path], what: str, flags: list[str]) -> Path:
    """``out_dir/name``: ``sources`` compiled with :data:`FREESTANDING` and ``flags``, linked at ``layout``'s
    addresses (:meth:`Layout.linker_script`, written to ``out_dir/uml_fw.ld``)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    script = out_dir / "uml_fw.ld"
    script.write_text(layout.linker_script())
    elf = out_dir / name
    compile_c(["gcc", *FREESTANDING, *flags, f"-Wl,-T,{script}", "-o", str(elf), *map(str, sources)], what)
    return elf


def build_firmware(layout: Layout, out_dir: Path, name: str = FIRMWARE_NAME, banner: int = 0) -> Path:
    """``out_dir/name``: host/uml_fw.c linked at ``layout``'s addresses (a host ELF, never run); ``banner``
    changes the firmware's data (a second firmware with the same table)."""
    flags = [f"-I{REPO / 'firmware/include'}", *layout.defines(), f"-DUML_FW_BANNER={banner}"]
    return link_firmware(layout, out_dir, name, [FIRMWARE_SOURCE], "building the uml_rproc test firmware", flags)


def build_remote(out_dir: Path) -> Path:
    """``out_dir/uml-remote``: host/uml_remote.c with firmware/lib/rpmsg_remote.c and virtio/csrc/vring.c."""
    out_dir.mkdir(parents=True, exist_ok=True)
    exe = out_dir / "uml-remote"
    compile_c(
        [
            "gcc",
            "-std=c11",
            "-O2",
            "-Wall",
            "-Wextra",
            "-Werror",
            f"-I{REPO / 'firmware/include'}",
            f"-I{REPO / 'virtio/csrc'}",
            "-o",
            str(exe),
            str(REMOTE_SOURCE),
            str(REPO / "firmware/lib/rpmsg_remote.c"),
            str(REPO / "virtio/csrc/vring.c"),
        ],
        "building the uml_rproc host remote",
    )
    return exe
