"""The emulated Cortex-M33 as uml_rproc's remote processor: Linux's ELF loader writes ARM firmware into the file
that is at once the UML guest's ``iomem=`` region and the M33's RAM (QEMU mps2-an505's ``mps.ram``, backed by it
with ``memory-backend-file,share=on``), and QEMU runs it.

    python -m remoteproc.conformance.linux.uml_qemu MEMFILE SOCKET RSC_DA SNAPSHOT

The same command line, socket protocol and ``uml-remote:`` lines as the host remotes (host/uml_remote.c,
uml_py_remote.py), but nothing rpmsg runs here: this process is the core's reset line and its doorbell wires.

- START launches QEMU with the boot stub (host/uml_m33_boot.c) as ``-kernel``: it points VTOR at the firmware's
  vector table, the file's first word (0x80000000 for the M33), and jumps to its reset handler. The START value
  (the ELF's entry) must be that reset handler: checked, and a mismatch is printed as an error.
- The firmware's first 8 bytes on UART0 are the guest-physical address of the file's offset 0 (the driver's PHYS
  message): Linux's descriptors hold physical addresses, the M33 sees the file at 0x80000000
  (docs/linux-conformance.md, "The Cortex-M33 as the remote").
- Kicks: a byte from UART0 (the queue number) becomes KICK to Linux; Linux's KICK becomes a byte on UART0.
- STOP kills QEMU (the core held in reset), copies the file to SNAPSHOT.stop.N and answers STOPPED.
- QEMU exiting on its own (the firmware's fault handler ends it through semihosting) is reported as CRASH.
- The file is copied to SNAPSHOT.N when DRIVER_OK appears in the table after the Nth START (the M33 runs by then:
  its bss and the rings differ from what Linux wrote; the table does not).
"""

from __future__ import annotations

import mmap
import os
import selectors
import shutil
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

from remoteproc.conformance.linux.build import BuildError
from remoteproc.conformance.linux.rproc_uml import HOST, REPO, Layout, compile_c
from remoteproc.conformance.linux.uml_socket import (
    CRASH,
    HELLO,
    KICK,
    MSG,
    PHYS,
    START,
    STOP,
    STOPPED,
    accept_kernel,
    say,
)
from virtio.features import STATUS_DRIVER_OK

M33_BASE = 0x80000000  # mps.ram in the M33's view (hw/arm/mps2-tz.c: the board's RAM, machine->ram)
M33_RAM = 16 << 20  # QEMU refuses any other RAM size for mps2-an505 ("Invalid RAM size, should be 16 MiB")
M33_STACK = 0x38200000  # the top of ssram-1 (secure alias): not in the file
FIRMWARE_SOURCE = HOST / "uml_m33_fw.c"
BOOT_SOURCE = HOST / "uml_m33_boot.c"

RSC_VDEV = 3


def m33_layout() -> Layout:
    """The memory map of :class:`Layout` (firmware, trace, vrings, buffers at the same offsets) on the whole
    16 MiB of mps.ram, at the M33's address: the table's device addresses are the M33's (``uml_rproc.da=``)."""
    return Layout(base=M33_BASE, size=M33_RAM)


def kernel_args(layout: Layout) -> list[str]:
    """What the M33 adds to :meth:`Layout.kernel_args`: the file's offset 0 is device address 0x80000000."""
    return [f"uml_rproc.da={layout.base:#x}"]


def _arm_gcc() -> str:
    gcc = shutil.which("arm-none-eabi-gcc")
    if gcc is None:
        raise BuildError("arm-none-eabi-gcc is not installed: run ./scripts/setup (Debian gcc-arm-none-eabi)")
    return gcc


ARM_FLAGS = ["-mcpu=cortex-m33", "-mthumb", "-Os", "-std=c11", "-ffreestanding", "-Wall", "-Wextra", "-Werror",
             "-ffunction-sections", "-fdata-sections", "-nostdlib", "-Wl,--build-id=none"]  # fmt: skip


def linker_script(layout: Layout) -> str:
    """Every loaded byte in the file: the vector table first (where the boot stub looks), code, rodata, the
    resource table, then data and bss at +0x8000, as :meth:`Layout.linker_script` places the host firmware."""
    start, size = layout.firmware
    return f"""ENTRY(reset_handler)
PHDRS {{ text PT_LOAD FLAGS(5); data PT_LOAD FLAGS(6); }}
SECTIONS {{
  . = {layout.da(start):#x};
  .vectors : {{ KEEP(*(.vectors)) }} :text
  .text : {{ *(.text .text.*) }} :text
  .rodata : {{ *(.rodata .rodata.*) }} :text
  . = ALIGN(8);
  .resource_table : {{ KEEP(*(.resource_table)) }} :text
  . = {layout.da(start + size // 2):#x};
  .data : {{ *(.data .data.*) }} :data
  .bss : {{ __bss_start = .; *(.bss .bss.*) *(COMMON) . = ALIGN(4); __bss_end = .; }} :data
  ASSERT(. <= {layout.da(start + size):#x}, "the firmware does not fit its part of the memory file")
  __stack_top = {M33_STACK:#x};
  /DISCARD/ : {{ *(.ARM.exidx*) *(.comment) *(.note*) }}
}}
"""


def build_firmware(layout: Layout, out_dir: Path, name: str) -> Path:
    """``out_dir/name``: host/uml_m33_fw.c with the firmware's rpmsg library, vring engine and UART driver, for
    the Cortex-M33, linked into the file at the M33's addresses."""
    out_dir.mkdir(parents=True, exist_ok=True)
    script = out_dir / "uml_m33_fw.ld"
    script.write_text(linker_script(layout))
    elf = out_dir / name
    fw = REPO / "firmware"
    compile_c(
        [
            _arm_gcc(), *ARM_FLAGS, f"-I{fw / 'include'}", f"-I{fw / 'boards/mps2-an505'}",
            f"-I{REPO / 'virtio/csrc'}", *layout.defines(), f"-DMEM_DA={layout.base:#x}u",
            f"-DMEM_SIZE={layout.size:#x}u", f"-Wl,-T,{script}", "-Wl,--gc-sections", "-o", str(elf),
            str(FIRMWARE_SOURCE), str(fw / "lib/rpmsg_remote.c"), str(REPO / "virtio/csrc/vring.c"),
            str(fw / "boards/mps2-an505/uart.c"), "-lgcc",
        ],
        "building the Cortex-M33 firmware for uml_rproc",
    )  # fmt: skip
    return elf


def build_boot_stub(out_dir: Path, vectors: int = M33_BASE) -> Path:
    """``out_dir/uml-m33-boot.elf``: host/uml_m33_boot.c at 0x10000000, where the M33 reads its vector table."""
    out_dir.mkdir(parents=True, exist_ok=True)
    script = out_dir / "uml_m33_boot.ld"
    script.write_text(
        "ENTRY(stub_reset)\nSECTIONS { . = 0x10000000; .text : { KEEP(*(.vectors)) *(.text*) } "
        "/DISCARD/ : { *(.ARM.exidx*) *(.comment) } }\n"
    )
    elf = out_dir / "uml-m33-boot.elf"
    compile_c(
        [_arm_gcc(), *ARM_FLAGS, f"-DFW_VECTORS={vectors:#x}", f"-DSTUB_STACK={M33_STACK:#x}u",
         f"-Wl,-T,{script}", "-o", str(elf), str(BOOT_SOURCE)],
        "building the Cortex-M33 boot stub",
    )  # fmt: skip
    return elf


# ---- the remote: QEMU's reset line and doorbells ----------------------------------------------------------------


class M33Remote:
    def __init__(self, memfile: Path, sock: socket.socket, rsc_da: int, snapshot: str, work: Path, stub: Path) -> None:
        self.memfile = memfile
        self.sock = sock
        self.rsc_da = rsc_da
        self.snapshot = snapshot
        self.work = work
        self.qemu = shutil.which("qemu-system-arm") or "qemu-system-arm"
        self.stub = stub
        fd = os.open(memfile, os.O_RDWR)
        try:
            self.mem = mmap.mmap(fd, os.fstat(fd).st_size)
        finally:
            os.close(fd)
        self.da_base = M33_BASE
        self.phys: int | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.uart: socket.socket | None = None
        self.boots = 0
        self.waiting_driver_ok = False
        self.kicks_in = self.kicks_out = 0
        self.stopped = False
        self.started_at = 0.0
        self.sel = selectors.DefaultSelector()
        self.sel.register(sock, selectors.EVENT_READ, "kernel")
        self.buf = b""

    # -- helpers
    def send(self, kind: int, arg: int = 0, value: int = 0) -> None:
        self.sock.sendall(MSG.pack(kind, arg, value))

    def word(self, da: int) -> int:
        off = da - self.da_base
        return int.from_bytes(self.mem[off : off + 4], "little")

    def vdev_status(self) -> int | None:
        """The status byte of the table's vdev entry, None when the table is not there (yet)."""
        off = self.rsc_da - self.da_base
        if not 0 <= off <= len(self.mem) - 16:
            return None
        _ver, num = struct.unpack_from("<II", self.mem, off)
        if num > 64:
            return None
        for n in range(num):
            entry = int(struct.unpack_from("<I", self.mem, off + 16 + 4 * n)[0])
            if off + entry + 28 <= len(self.mem) and self.word(self.rsc_da + entry) == RSC_VDEV:
                return self.mem[off + entry + 24]
        return None

    def copy_to(self, path: str) -> None:
        Path(path).write_bytes(self.mem[:])

    # -- the core
    def launch(self, entry: int) -> None:
        reset = self.word(self.da_base + 4)
        if reset != entry:
            say(f"error the ELF's entry {entry:#x} is not the reset handler {reset:#x} at the vector table")
        if self.phys is None:
            say("error no PHYS message before START: descriptors cannot be translated")
            return
        uart_path = self.work / "uart.sock"
        uart_path.unlink(missing_ok=True)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(uart_path))
        listener.listen(1)
        cmd = [
            self.qemu, "-machine", "mps2-an505,memory-backend=ram", "-m", "16M",
            "-object", f"memory-backend-file,id=ram,size=16M,mem-path={self.memfile},share=on",
            "-kernel", str(self.stub),
            "-chardev", f"socket,id=uart,path={uart_path}", "-serial", "chardev:uart",
            "-semihosting-config", "enable=on,target=native",
            "-display", "none", "-monitor", "none",
        ]  # fmt: skip
        self.started_at = time.monotonic()
        log = open(self.work / f"qemu.{self.boots}.log", "wb")  # noqa: SIM115 - QEMU's for its lifetime
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        listener.settimeout(10)
        try:
            self.uart, _ = listener.accept()
        except TimeoutError:
            say(f"error QEMU did not connect its UART: {(self.work / f'qemu.{self.boots}.log').read_text()}")
            self.kill()
            return
        finally:
            listener.close()
        self.uart.sendall(self.phys.to_bytes(8, "little"))  # the boot message, before any kick
        self.sel.register(self.uart, selectors.EVENT_READ, "uart")
        say(f"qemu started pid={self.proc.pid} vtor={self.da_base:#x} phys={self.phys:#x}")

    def drop_uart(self) -> None:
        if self.uart is not None:
            self.sel.unregister(self.uart)
            self.uart.close()
            self.uart = None

    def kill(self) -> int | None:
        rc = None
        self.drop_uart()
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
            rc = self.proc.wait()
            self.proc = None
        return rc

    def on_message(self, kind: int, arg: int, value: int) -> None:
        if kind == HELLO:
            self.da_base = value
            say(f"hello da={value:#x} size={arg:#x}")
        elif kind == PHYS:
            self.phys = value
            say(f"phys pa={value:#x}")
        elif kind == START:
            self.boots += 1
            self.stopped = False
            say(f"start boot={value:#x}")
            self.launch(value)
            self.waiting_driver_ok = True
        elif kind == STOP:
            self.waiting_driver_ok = False
            self.kill()
            self.stopped = True
            say(f"stop kicks_in={self.kicks_in} kicks_out={self.kicks_out}")
            self.copy_to(f"{self.snapshot}.stop.{self.boots}")
            self.send(STOPPED)
        elif kind == KICK:
            self.kicks_in += 1
            if self.uart is not None:
                try:
                    self.uart.sendall(bytes([arg & 0xFF]))
                except OSError:
                    # QEMU exited (the M33 crashed) and Linux kicked before its end was read: the exit is
                    # reported by run()'s poll (CRASH). Before, BrokenPipeError ended this process, and Linux's
                    # recovery found no remote to start (seen once in CI on a loaded machine).
                    self.drop_uart()
        else:
            say(f"unknown message type={kind}")

    def run(self) -> int:
        while True:
            for key, _ in self.sel.select(timeout=0.01):
                if key.data == "kernel":
                    data = self.sock.recv(4096)
                    if not data:
                        self.kill()
                        say(f"end of socket stopped={int(self.stopped)}")
                        return 0 if self.stopped else 3
                    self.buf += data
                    while len(self.buf) >= MSG.size:
                        self.on_message(*MSG.unpack_from(self.buf))
                        self.buf = self.buf[MSG.size :]
                elif key.data == "uart" and self.uart is not None:
                    try:
                        data = self.uart.recv(4096)
                    except ConnectionError:
                        data = b""
                    if not data:  # QEMU is gone (the exit is reported below) or closed its UART
                        self.drop_uart()
                        if self.proc is not None:
                            self.proc.wait()
                    for queue in data:
                        self.kicks_out += 1
                        self.send(KICK, queue)
            if self.waiting_driver_ok and (status := self.vdev_status()) is not None and status & STATUS_DRIVER_OK:
                self.waiting_driver_ok = False
                self.copy_to(f"{self.snapshot}.{self.boots}")
                say(f"driver-ok status={status:#04x} after {time.monotonic() - self.started_at:.3f} s")
            if self.proc is not None and self.proc.poll() is not None:
                rc = self.kill()
                say(f"crash sent: QEMU exited rc={rc}")
                self.send(CRASH)


def main(argv: list[str]) -> int:
    if len(argv) != 4:
        print("usage: uml_qemu MEMFILE SOCKET RSC_DA SNAPSHOT", file=sys.stderr)
        return 2
    memfile, path, rsc_da, snapshot = argv
    work = Path(f"{snapshot}.qemu")
    work.mkdir(parents=True, exist_ok=True)
    stub = build_boot_stub(work)
    remote = M33Remote(Path(memfile), accept_kernel(path), int(rsc_da, 0), snapshot, work, stub)
    try:
        return remote.run()
    finally:
        remote.kill()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
