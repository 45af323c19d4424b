"""``devmem://``: physical memory through /dev/mem, for Linux SoCs where the host maps the remote's RAM.

- Memory: ``[addr, addr + size)`` of ``path`` (default /dev/mem) mapped with O_SYNC (uncached on most
  architectures), from the page below ``addr``: any physical range works, the offset inside the first page is
  handled here.
- Doorbell, receiving: a UIO device (``/dev/uioN``): writing the 32-bit value 1 enables the interrupt, a
  blocking 4-byte read returns the interrupt count (Linux ``Documentation/driver-api/uio-howto.rst``).
- Doorbell, sending: a mailbox register at a physical address, written with a single 32-bit store of
  ``queue + 1`` (a doorbell register: any non-zero write rings it; the receiving side's hardware clears it).

Errors a user can act on: permission denied (root, ``CONFIG_STRICT_DEVMEM``, ``iomem=relaxed``), a range
/proc/iomem does not list, a mailbox not 4-byte aligned.
"""

from __future__ import annotations

import mmap
import os
import select
from pathlib import Path

from transports.doorbell import Doorbell, Loans, PeerLostError
from transports.errors import TransportError
from transports.link import Link, ParsedUrl
from transports.memory import MappedRegion, RegionMemory

PAGE = mmap.PAGESIZE


class DevmemError(TransportError):
    """/dev/mem (or its stand-in) could not be mapped as asked."""


def _map(path: str, addr: int, size: int) -> tuple[mmap.mmap, int]:
    """A shared O_SYNC mapping covering [addr, addr + size); returns it and the offset of addr inside it."""
    if size <= 0:
        raise DevmemError(f"size {size} must be positive")
    base = addr & ~(PAGE - 1)
    delta = addr - base
    try:
        fd = os.open(path, os.O_RDWR | os.O_SYNC)
    except PermissionError:
        raise DevmemError(
            f"{path}: permission denied: run as root; if root is refused too, the kernel restricts /dev/mem "
            "(CONFIG_STRICT_DEVMEM: boot with iomem=relaxed, or reserve the range for the remote)"
        ) from None
    except OSError as exc:
        raise DevmemError(f"{path}: {exc.strerror}") from None
    try:
        return mmap.mmap(fd, delta + size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE, offset=base), delta
    except OSError as exc:
        raise DevmemError(f"{path}: cannot map {size:#x} bytes at {addr:#x}: {exc.strerror}") from None
    finally:
        os.close(fd)


def check_iomem(addr: int, size: int, iomem: str | Path = "/proc/iomem") -> None:
    """Refuse a range that /proc/iomem does not list at all (it is not memory or a device on this machine)."""
    try:
        text = Path(iomem).read_text()
    except OSError:
        return  # nothing to check against
    end = addr + size - 1
    for line in text.splitlines():
        span = line.split(":", 1)[0].strip()
        lo_hi = span.split("-")
        if len(lo_hi) != 2:
            continue
        lo, hi = int(lo_hi[0], 16), int(lo_hi[1], 16)
        if lo == hi == 0:
            return  # addresses hidden (not root): cannot check
        if lo <= addr and end <= hi:
            return
    raise DevmemError(f"{addr:#x}..{end + 1:#x} is not in /proc/iomem: no RAM or device answers there on this machine")


class DevmemWindow:
    """Physical ranges as one :class:`RegionMemory`. One range: ``DevmemWindow(addr, size)``, seen at device
    address ``addr``; several, each seen at its own device address (the remote's view, which need not be the
    host's physical one): :meth:`regions`."""

    def __init__(self, addr: int, size: int, *, path: str = "/dev/mem", name: str = "devmem", da: int | None = None):
        self._maps: list[mmap.mmap] = []
        self.memory = self._build([(name, addr, size, addr if da is None else da)], path)

    @classmethod
    def regions(cls, ranges: list[tuple[str, int, int, int]], *, path: str = "/dev/mem") -> DevmemWindow:
        """``ranges``: (name, physical address, size, device address) each."""
        self = cls.__new__(cls)
        self._maps = []
        self.memory = self._build(ranges, path)
        return self

    def _build(self, ranges: list[tuple[str, int, int, int]], path: str) -> RegionMemory:
        regions = []
        for name, pa, size, da in ranges:
            if path == "/dev/mem":
                check_iomem(pa, size)
            m, delta = _map(path, pa, size)
            self._maps.append(m)
            regions.append(MappedRegion(name, da, size, m, delta))
        return RegionMemory(regions)

    def close(self) -> None:
        self.memory.release()
        for m in self._maps:
            m.close()
        self._maps = []


class Register32:
    """One 32-bit device register: every access is a single aligned 32-bit load or store."""

    def __init__(self, addr: int, *, path: str = "/dev/mem") -> None:
        if addr % 4:
            raise DevmemError(f"register address {addr:#x} is not 4-byte aligned")
        self._map, delta = _map(path, addr, 4)
        self._word = memoryview(self._map)[delta : delta + 4].cast("I")

    def read(self) -> int:
        return int(self._word[0])

    def write(self, value: int) -> None:
        self._word[0] = value & 0xFFFF_FFFF

    def close(self) -> None:
        self._word.release()
        self._map.close()


class UioDoorbell:
    """Interrupts in through a UIO descriptor, kicks out through a mailbox register."""

    def __init__(self, uio_fd: int, mailbox: Register32) -> None:
        self._fd = uio_fd
        self._mailbox = mailbox
        self.lost = False
        self.closed = False
        self.loans = Loans()  # the rpmsg device's C sleep polls the descriptor by number
        self.lend, self.give_back = self.loans.lend, self.loans.give_back
        self._enable()

    @classmethod
    def open(cls, uio: str, mailbox: int, *, path: str = "/dev/mem") -> UioDoorbell:
        """``uio``: a device path, or ``fd:N`` for a descriptor this process already has (tests)."""
        if uio.startswith("fd:"):
            fd = os.dup(int(uio[3:]))
        else:
            try:
                fd = os.open(uio, os.O_RDWR)
            except OSError as exc:
                raise DevmemError(
                    f"{uio}: {exc.strerror} (is the uio driver bound to the remote's interrupt?)"
                ) from None
        os.set_blocking(fd, False)
        return cls(fd, Register32(mailbox, path=path))

    def _enable(self) -> None:
        try:
            os.write(self._fd, (1).to_bytes(4, "little"))  # UIO: 1 re-enables the interrupt
        except BlockingIOError:
            pass  # still enabled from the last write
        except OSError as exc:
            self.lost = True
            raise PeerLostError(f"interrupt descriptor: {exc.strerror}") from None

    def notify(self, queue: int) -> None:
        if self.closed:
            raise PeerLostError("doorbell closed")
        self._mailbox.write(queue + 1)

    def wait(self, timeout: float | None) -> bool:
        if self.lost or self.closed:
            raise PeerLostError("the interrupt source is gone")
        ready, _, _ = select.select([self._fd], [], [], timeout)
        if not ready:
            return False
        try:
            count = os.read(self._fd, 4)
        except BlockingIOError:
            return False
        except OSError as exc:
            self.lost = True
            raise PeerLostError(f"interrupt descriptor: {exc.strerror or exc}") from None
        if len(count) < 4:
            self.lost = True
            raise PeerLostError("the interrupt descriptor was closed")
        self._enable()
        return True

    def fileno(self) -> int:
        return self._fd

    def interrupt(self) -> None:
        """Nothing to do: the device's own wake descriptor wakes a waiter (rpmsg.device)."""

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.loans.close(PeerLostError("doorbell closed"), self._close_descriptors)

    def _close_descriptors(self) -> None:
        os.close(self._fd)
        self._fd = -1
        self._mailbox.close()


class DevmemLink(Link):
    """``devmem://ADDR?size=N&uio=/dev/uioN&mailbox=ADDR[&path=/dev/mem]``: the window at once, the doorbell (the
    UIO device in, the mailbox register out) on :meth:`connect`."""

    def __init__(self, addr: int, size: int, role: str, *, uio: str, mailbox: int, path: str = "/dev/mem") -> None:
        self._window = DevmemWindow(addr, size, path=path)
        super().__init__(self._window.memory, role)
        self._uio = uio
        self._mailbox = mailbox
        self._path = path

    def _connect(self, timeout: float) -> Doorbell:
        return UioDoorbell.open(self._uio, self._mailbox, path=self._path)

    def close(self) -> None:
        super().close()
        self._window.close()


def open_url(url: ParsedUrl, role: str, **options: object) -> DevmemLink:
    try:
        addr = int(url.target, 0)
    except ValueError:
        raise TransportError(f"devmem://{url.target}: the address must be a number (0x...)") from None
    size = url.int_param("size")
    uio = url.params.get("uio")
    mailbox = url.int_param("mailbox", -1)
    if not uio or mailbox < 0:
        raise TransportError("devmem:// needs uio= (interrupts in) and mailbox= (kicks out)")
    return DevmemLink(addr, size, role, uio=uio, mailbox=mailbox, path=url.params.get("path", "/dev/mem"))
