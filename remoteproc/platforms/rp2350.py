"""Loading an RP2350 through its UART boot ROM (RP2350 datasheet, 5.8 "UART boot"): the image, and the protocol.

The chip, strapped for UART boot (QSPI CSn low and SD1 high at reset; UART0 on QSPI SD2 = TX, SD3 = RX, fixed
1 Mbaud 8N1, a crystal needed), prints ``RP2350``. The host sends the knock sequence 56 ff 8b e4 (the RP2040 UF2
family id), then one-byte commands: ``n`` no-op, ``w`` + 32 bytes written at the pointer (which then advances by
32), ``r`` 32 bytes read at the pointer (advancing it), ``c`` the pointer back to the start of SRAM, ``x`` execute
(a reboot into a RAM-image boot that searches SRAM). The device answers each command with its optional 32-byte
read payload, then the command byte echoed; the host waits for the echo before the next command. There is no
checksum: the loader reads everything back.

The image is flat, linked at 0x20000000, at most 520 KiB (SRAM 0x20000000-0x2007FFFF and the scratch banks
X/Y at 0x20080000 and 0x20081000), and must carry an IMAGE_DEF block (datasheet 5.9: the minimum for Arm is
ffffded3 10210142 000001ff 00000000 ab123579) where the boot ROM looks for it, in the first 4 KiB. A firmware
without one gets that minimal block added where it can go (:func:`image_def_hole`): word aligned, after the 16
words of the Armv8-M vector table the image opens with, inside the first 4 KiB, and on no byte any segment claims
(loaded or zero-filled, at its load or its run address) — so the block changes nothing the firmware sees, and the
boot ROM, which reads it before the firmware runs, finds it. The image grows to hold it if need be. The caller is
told through ``on_note``; with no such room the image is refused, saying what to add to the linker script.

:func:`uart_boot` is ``rproc uart-boot``; :func:`uart_session` is ``rproc load --platform rp2350-uart``: the boot,
then rpmsg over the serial link (docs/uart-link.md) on the same port.
"""

from __future__ import annotations

import contextlib
import struct
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from remoteproc.elf import read_elf
from remoteproc.errors import RemoteprocError
from rpmsg.device import RpmsgDevice
from rpmsg.errors import RpmsgError
from transports.uart import UartLink, line_rto

if TYPE_CHECKING:
    from remoteproc.session import SessionResult

SRAM_BASE = 0x20000000
IMAGE_MAX = 520 * 1024
SPLASH = b"RP2350"
KNOCK = bytes((0x56, 0xFF, 0x8B, 0xE4))
BLOCK_START, BLOCK_END = 0xFFFFDED3, 0xAB123579
MIN_IMAGE_DEF = struct.pack("<5I", 0xFFFFDED3, 0x10210142, 0x000001FF, 0x00000000, 0xAB123579)
MIN_IMAGE_DEF_WORDS = " ".join(f"{w:08x}" for w in struct.unpack("<5I", MIN_IMAGE_DEF))
IMAGE_DEF_SEARCH = 4096
VECTOR_TABLE_MIN = 16 * 4  # SP, reset and the 14 other Armv8-M system exception entries
CHUNK = 32
BOOT_ROM_BAUD = 1_000_000  # fixed, 8N1 (5.8)

Progress = Callable[[int, int], None]
Note = Callable[[str], None]


class BootRomError(RemoteprocError):
    """The boot ROM did not answer as the datasheet says, or the image cannot be loaded (the message says which)."""


def find_image_def(image: bytes) -> int | None:
    """Offset of a block (start marker .. end marker) in the first 4 KiB, or None."""
    limit = min(len(image), IMAGE_DEF_SEARCH)
    for off in range(0, limit - 4, 4):
        if struct.unpack_from("<I", image, off)[0] != BLOCK_START:
            continue
        for end in range(off + 4, min(len(image), off + 1024) - 3, 4):
            if struct.unpack_from("<I", image, end)[0] == BLOCK_END:
                return off
    return None


def image_def_hole(claimed: Iterable[tuple[int, int]]) -> int | None:
    """The lowest offset for a minimal IMAGE_DEF in an image whose segments claim the ``claimed`` [start, end)
    offset ranges: word aligned, after the vector table's 16 words, ending in the first 4 KiB, on no claimed byte.
    It may lie beyond the image's data (the image then grows); None when there is no such place."""
    ranges = list(claimed)
    for off in range(VECTOR_TABLE_MIN, IMAGE_DEF_SEARCH - len(MIN_IMAGE_DEF) + 1, 4):
        end = off + len(MIN_IMAGE_DEF)
        if all(end <= lo or off >= hi for lo, hi in ranges):
            return off
    return None


def flat_image(elf_path: Path, *, on_note: Note | None = None) -> bytes:
    """The ELF's loadable segments as one flat image from 0x20000000, checked against RP2350's SRAM. Without an
    IMAGE_DEF the minimal one is added where no segment claims the bytes (``on_note`` is told where), or the image
    is refused with :class:`BootRomError`."""
    elf = read_elf(elf_path)
    loadable = [s for s in elf.segments if s.loadable]
    segments = [s for s in loadable if s.filesz]
    if not segments:
        raise BootRomError(f"{elf_path}: no loadable segment with data")
    end = 0
    for s in segments:
        if s.paddr < SRAM_BASE or s.paddr + s.memsz > SRAM_BASE + IMAGE_MAX:
            raise BootRomError(
                f"{elf_path}: segment {s.index} at {s.paddr:#x}..{s.paddr + s.memsz:#x} is outside the RAM image "
                f"window {SRAM_BASE:#x}..{SRAM_BASE + IMAGE_MAX:#x} (link the firmware at 0x20000000)"
            )
        end = max(end, s.paddr + s.filesz - SRAM_BASE)
    image = bytearray(end)
    data = elf_path.read_bytes()
    for s in segments:
        if s.offset + s.filesz > len(data):
            raise BootRomError(
                f"{elf_path}: segment {s.index} runs past the end of the file ({s.offset + s.filesz:#x})"
            )
        image[s.paddr - SRAM_BASE : s.paddr - SRAM_BASE + s.filesz] = data[s.offset : s.offset + s.filesz]
    if find_image_def(bytes(image)) is None:
        claimed = [(a - SRAM_BASE, a - SRAM_BASE + s.memsz) for s in loadable if s.memsz for a in (s.paddr, s.vaddr)]
        off = image_def_hole(claimed)
        if off is None:
            raise BootRomError(
                f"{elf_path}: no IMAGE_DEF block in the first 4 KiB, and no free word-aligned 20 bytes there to add "
                f"one; the boot ROM would not run it. Put the minimal block (words {MIN_IMAGE_DEF_WORDS}) in the "
                "first 4 KiB: in the linker script, KEEP(*(.embedded_block)) right after the vector table, with the "
                "five words in a 4-byte aligned .embedded_block section (firmware/boards/rp2350 does)"
            )
        if off + len(MIN_IMAGE_DEF) > len(image):
            image.extend(bytes(off + len(MIN_IMAGE_DEF) - len(image)))
        image[off : off + len(MIN_IMAGE_DEF)] = MIN_IMAGE_DEF
        if on_note:
            on_note(f"added the minimal IMAGE_DEF at {SRAM_BASE + off:#x} (the firmware had none)")
    return bytes(image)


class Port(Protocol):
    def read(self, size: int = 1) -> bytes: ...

    def write(self, data: bytes) -> int | None: ...


class SerialPort(Port, Protocol):
    def close(self) -> None: ...


class UartBootRom:
    """The host side of the UART boot shell over a pyserial-like port (its read timeout bounds each read)."""

    def __init__(self, port: Port, *, timeout: float = 2.0) -> None:
        self.port = port
        self.timeout = timeout

    def _read_exact(self, n: int, what: str) -> bytes:
        out = b""
        deadline = time.monotonic() + self.timeout
        while len(out) < n:
            out += self.port.read(n - len(out))
            if len(out) < n and time.monotonic() > deadline:
                raise BootRomError(f"boot ROM: {what}: {len(out)} of {n} bytes within {self.timeout} s ({out!r})")
        return out

    def wait_splash(self, timeout: float = 5.0) -> None:
        seen = b""
        deadline = time.monotonic() + timeout
        while SPLASH not in seen:
            seen = (seen + self.port.read(64))[-64:]
            if time.monotonic() > deadline:
                raise BootRomError(
                    f"no {SPLASH.decode()} splash within {timeout} s (strap QSPI CSn low and SD1 high at reset, "
                    f"1 Mbaud 8N1, a crystal fitted); last bytes: {seen!r}"
                )

    def command(self, cmd: bytes, payload: bytes = b"") -> bytes:
        self.port.write(cmd + payload)
        data = self._read_exact(CHUNK, f"'{cmd.decode()}' payload") if cmd == b"r" else b""
        echo = self._read_exact(1, f"echo of '{cmd.decode()}'")
        if echo != cmd:
            raise BootRomError(f"boot ROM answered {echo!r} to '{cmd.decode()}' (lost sync? send 'n' to recover)")
        return data

    def connect(self, timeout: float = 5.0) -> None:
        """Splash, knock, then a no-op to be sure we are in step. A splash printed before this port was opened is
        missed: after a short wait the knock goes anyway (the boot ROM takes any bytes ending with it), and the
        no-op's echo is what counts."""
        try:
            self.wait_splash(min(timeout, 1.0))
        except BootRomError as missed:
            self.port.write(KNOCK)
            try:
                self.command(b"n")
            except BootRomError:
                raise BootRomError(f"{missed}; a knock and a no-op got no answer either") from None
            return
        self.port.write(KNOCK)
        self.command(b"n")

    def load(self, image: bytes, *, progress: Progress | None = None, verify: bool = True) -> None:
        if len(image) > IMAGE_MAX:
            raise BootRomError(f"a {len(image)}-byte image exceeds the {IMAGE_MAX}-byte RAM image window")
        padded = image + bytes(-len(image) % CHUNK)
        total = len(padded) * (2 if verify else 1)
        done = 0
        self.command(b"c")
        for off in range(0, len(padded), CHUNK):
            self.command(b"w", padded[off : off + CHUNK])
            done += CHUNK
            if progress:
                progress(done, total)
        if verify:
            self.command(b"c")
            for off in range(0, len(padded), CHUNK):
                got = self.command(b"r")
                if got != padded[off : off + CHUNK]:
                    bad = next(i for i in range(CHUNK) if got[i] != padded[off + i])
                    raise BootRomError(
                        f"read-back differs at {SRAM_BASE + off + bad:#x}: wrote {padded[off + bad]:#04x}, "
                        f"read {got[bad]:#04x}"
                    )
                done += CHUNK
                if progress:
                    progress(done, total)

    def execute(self) -> None:
        self.command(b"x")


def open_port(port_url: str, *, read_timeout: float) -> tuple[SerialPort, str, int]:
    """The serial port behind ``port_url`` (a tty, a pyserial URL such as socket://h:p, or a uart: URL with its
    baud; otherwise the boot ROM's fixed 1 Mbaud): (the open port, its name, its baud)."""
    import serial

    from transports.uart import parse_uart_url

    target, baud = parse_uart_url(port_url) if port_url.startswith("uart:") else (port_url, BOOT_ROM_BAUD)
    try:
        port: SerialPort = serial.serial_for_url(target, baudrate=baud, timeout=read_timeout)
    except (serial.SerialException, ValueError, OSError) as exc:
        raise BootRomError(f"{target}: {exc} (is the device there, and may this user open it?)") from None
    return port, target, baud


def run_image(
    port: Port,
    image: bytes,
    *,
    timeout: float,
    verify: bool = True,
    progress: Progress | None = None,
    on_connected: Callable[[], None] | None = None,
) -> None:
    """Connect to the boot ROM on ``port``, write ``image`` at the start of SRAM (read back unless not ``verify``)
    and execute it; ``on_connected`` hears when the boot ROM has answered."""
    rom = UartBootRom(port, timeout=timeout)
    rom.connect(timeout=timeout)
    if on_connected:
        on_connected()
    rom.load(image, progress=progress, verify=verify)
    rom.execute()


@dataclass(frozen=True)
class Booted:
    """What :func:`uart_boot` did: the port (its name and baud) and the image's size."""

    port: str
    baud: int
    size: int


def uart_boot(
    firmware: Path,
    port_url: str,
    *,
    timeout: float = 5.0,
    verify: bool = True,
    progress: Progress | None = None,
    on_note: Note | None = None,
    say: Note | None = None,
) -> Booted:
    """``rproc uart-boot``: load ``firmware`` into SRAM through the boot ROM on ``port_url``, verify it (unless not
    ``verify``), run it, close the port. ``on_note`` hears what the loader changed (an IMAGE_DEF it added), ``say``
    that the boot ROM answered."""
    image = flat_image(firmware, on_note=on_note)
    port, target, baud = open_port(port_url, read_timeout=0.05)

    def connected() -> None:
        if say:
            say(f"boot ROM answered on {target}; loading {len(image)} bytes at {SRAM_BASE:#x}")

    try:
        run_image(port, image, timeout=timeout, verify=verify, progress=progress, on_connected=connected)
    finally:
        port.close()
    return Booted(port=target, baud=baud, size=len(image))


def boot_and_connect(
    firmware: Path,
    port_url: str,
    *,
    progress: Progress | None = None,
    timeout: float = 10.0,
    verify: bool = True,
    on_note: Note | None = None,
) -> tuple[UartLink, RpmsgDevice]:
    """Load ``firmware`` through the boot ROM on ``port_url`` (a tty or pyserial URL, or a uart: URL), run it,
    then bring up the serial link on the same port and the rpmsg host on it: (UartLink, RpmsgDevice). ``on_note``
    hears what the loader changed (an IMAGE_DEF it added)."""
    from rpmsg.wiring import UART_PROFILE, host_on
    from transports.uart import UartWindowLink

    image = flat_image(firmware, on_note=on_note)
    port, target, baud = open_port(port_url, read_timeout=0.005)
    try:
        run_image(port, image, timeout=timeout, verify=verify, progress=progress)
    except BaseException:
        port.close()
        raise
    # what the firmware prints before its link starts is dropped; the timeout is at least what the line needs
    link = UartLink(port, name=target, rto=line_rto(baud, floor=0.2))
    try:
        link.wait_connected(timeout)
        device = host_on(UartWindowLink(link, UART_PROFILE.size, "host"), UART_PROFILE, wait="block")
    except BaseException:
        link.close()
        raise
    return link, device


def uart_session(
    firmware: Path,
    port_url: str,
    sends: Sequence[tuple[str, bytes]],
    *,
    timeout: float = 5.0,
    progress: Progress | None = None,
    on_note: Note | None = None,
    say: Callable[[str], None] = print,
) -> SessionResult:
    """``rproc load --platform rp2350-uart``: boot ``firmware`` (:func:`boot_and_connect`), wait up to ``timeout``
    for the channels ``sends`` name, list the channels, then send each message on its own endpoint and wait for its
    reply; the device and the link are closed at the end. A channel that never came or a reply that did not is a
    :class:`RemoteprocError` naming the channel."""
    from remoteproc.session import SessionResult  # here: uart-boot and the image checks need no session machinery

    link, device = boot_and_connect(firmware, port_url, progress=progress, timeout=timeout, on_note=on_note)
    try:
        deadline = time.monotonic() + timeout
        with contextlib.suppress(RpmsgError):  # a channel not there by the deadline: its open below says so
            for channel in sorted({channel for channel, _ in sends}):
                device.wait_for_channel(channel, max(0.0, deadline - time.monotonic()))
        result = SessionResult(channels=device.channels())
        say(f"channels: {', '.join(f'{n} at {a:#x}' for n, a in sorted(result.channels.items())) or 'none'}")
        for channel, text in sends:
            try:
                with device.open(channel, timeout=max(0.0, deadline - time.monotonic())) as ep:
                    ep.settimeout(timeout)
                    ep.send(text)
                    reply = ep.recv()
                    result.replies.append((channel, reply))
                    say(f"{channel} <- {reply!r}")
            except RpmsgError as exc:
                raise RemoteprocError(f"{channel}: {exc}") from None
    finally:
        device.close()
        link.close()
    return result
