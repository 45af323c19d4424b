"""Transports chosen by URL, in the manner of pyserial's ``serial_for_url``.

    link = open_link("shm://demo?size=0x100000", role="host")   # memory now
    ...lay out the rings in link.memory...
    doorbell = link.connect(timeout=10)                          # the peer is there

| URL | what |
| --- | --- |
| ``loop://NAME?size=N`` | both sides in this process (a bytearray, eventfds) |
| ``shm://NAME?size=N[&allow_uid=U][&memfd=1][&doorbell=eventfd|socket|dgram]`` | two processes:
  /dev/shm/NAME (0600), or an anonymous memfd passed over the socket; kicks as eventfds passed with SCM_RIGHTS
  (the default: the rpmsg C paths write and read them without Python), bytes on /dev/shm/NAME.sock, or
  datagrams; a peer of another uid is refused (SO_PEERCRED) unless allowed |
| ``devmem://ADDR?size=N&uio=/dev/uioN&mailbox=ADDR[&path=/dev/mem]`` | physical memory, UIO interrupts, a mailbox |
| ``openamp://[?shm=PATH&event=PATH]`` | OpenAMP's Linux-userspace demo machine (its file and socket): its layout
  is OpenAMP's, so ``remoteproc.openamp.host_device``/``remote_device`` take it, not ``rpmsg.links.host_on`` |
| ``vhost-user:PATH[?ns=0|1&version_1=0|1&event_idx=0|1]`` | the rpmsg remote behind a vhost-user front-end
  (UML's ``virtio_uml``, QEMU) on the unix socket PATH, role remote only; ``rpmsg.links.remote_on`` takes it |
| ``spy+URL`` | any of these, with every kick, wait and watched ring change written to a trace |

Third parties add schemes through the ``rproc.transports`` entry-point group: the entry point's name is the
scheme, its object a callable ``(url: ParsedUrl, role: str, **options) -> Link``.
"""

from __future__ import annotations

import importlib.metadata
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from transports.devmem import DevmemWindow, UioDoorbell
from transports.doorbell import Doorbell, DoorbellWrapper, EventfdDoorbell
from transports.errors import TransportError
from transports.link import Link
from transports.memory import MappedRegion, RegionMemory
from transports.mirror import Mirror, MirrorDoorbell
from transports.openamp import EVENT_PATH, SHM_PATH, OpenAmpLink
from transports.shm import ShmLink
from transports.uart import UartLink
from transports.vhost_user import VhostUserLink

ROLES = ("host", "remote")


@dataclass(frozen=True)
class ParsedUrl:
    scheme: str
    target: str
    params: dict[str, str] = field(default_factory=dict)

    def int_param(self, name: str, default: int | None = None) -> int:
        if name not in self.params:
            if default is None:
                raise TransportError(f"{self.scheme}:// needs ?{name}=")
            return default
        try:
            return int(self.params[name].replace("_", ""), 0)
        except ValueError:
            raise TransportError(f"{name}={self.params[name]!r} is not a number") from None


def parse_url(url: str) -> ParsedUrl:
    parts = urlsplit(url)
    if not parts.scheme:
        raise TransportError(f"{url!r} has no scheme (loop://, shm://, devmem://, spy+...)")
    params = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
    return ParsedUrl(parts.scheme, parts.netloc + parts.path, params)


# --- loop:// ---------------------------------------------------------------------------------------------------
_loops: dict[str, tuple[RegionMemory, RegionMemory, EventfdDoorbell, EventfdDoorbell]] = {}
_loops_lock = threading.Lock()


class _LoopLink(Link):
    def __init__(self, url: ParsedUrl, role: str) -> None:
        size = url.int_param("size", 1 << 20)
        with _loops_lock:
            if url.target not in _loops:
                backing = bytearray(size)
                host_bell, remote_bell = EventfdDoorbell.pair()
                _loops[url.target] = (
                    RegionMemory([MappedRegion("loop", 0, size, backing)]),
                    RegionMemory([MappedRegion("loop", 0, size, backing)]),
                    host_bell,
                    remote_bell,
                )
            host_mem, remote_mem, host_bell, remote_bell = _loops[url.target]
        super().__init__(host_mem if role == "host" else remote_mem, role)
        self._bell = host_bell if role == "host" else remote_bell
        self._name = url.target

    def _connect(self, timeout: float) -> Doorbell:
        return self._bell

    def close(self) -> None:
        self._bell.close()
        self.memory.release()
        with _loops_lock:
            entry = _loops.get(self._name)
            if entry is not None and entry[2].closed and entry[3].closed:
                del _loops[self._name]


# --- shm:// ----------------------------------------------------------------------------------------------------
class _ShmLink(Link):
    def __init__(self, url: ParsedUrl, role: str, timeout: float) -> None:
        self._listener = None
        self._link: ShmLink | None = None
        self._allow = frozenset(int(u) for u in url.params.get("allow_uid", "").split(",") if u.strip())
        if role == "host":
            doorbell = url.params.get("doorbell", "eventfd")
            if doorbell not in ("socket", "eventfd", "dgram"):
                raise TransportError(f"doorbell={doorbell!r}: socket (bytes on the socket), eventfd or dgram")
            self._listener = ShmLink.create_host(
                url.target,
                url.int_param("size"),
                memfd=url.params.get("memfd") == "1",
                eventfd=doorbell == "eventfd",
                dgram=doorbell == "dgram",
            )
            memory = self._listener.memory
        else:
            self._link = ShmLink.connect_remote(
                url.target, url.int_param("size", 0) or None, timeout, allow_uids=self._allow
            )
            memory = self._link.memory
        super().__init__(memory, role)

    def _connect(self, timeout: float) -> Doorbell:
        if self._link is None:
            assert self._listener is not None
            self._link = self._listener.accept(timeout, allow_uids=self._allow)
        return self._link.doorbell

    def close(self) -> None:
        if self._link is not None:
            self._link.close()
        elif self._listener is not None:
            self._listener.abandon()


# --- devmem:// -------------------------------------------------------------------------------------------------
class _DevmemLink(Link):
    def __init__(self, url: ParsedUrl, role: str) -> None:
        try:
            addr = int(url.target, 0)
        except ValueError:
            raise TransportError(f"devmem://{url.target}: the address must be a number (0x...)") from None
        self._path = url.params.get("path", "/dev/mem")
        self._window = DevmemWindow(addr, url.int_param("size"), path=self._path)
        self._uio = url.params.get("uio")
        self._mailbox = url.int_param("mailbox", -1)
        if not self._uio or self._mailbox < 0:
            self._window.close()
            raise TransportError("devmem:// needs uio= (interrupts in) and mailbox= (kicks out)")
        super().__init__(self._window.memory, role)

    def _connect(self, timeout: float) -> Doorbell:
        assert self._uio is not None
        return UioDoorbell.open(self._uio, self._mailbox, path=self._path)

    def close(self) -> None:
        super().close()
        self._window.close()


# --- spy+ ------------------------------------------------------------------------------------------------------
class RingWatch:
    """Ring metadata to report as it changes (idx, flags, event words) in a memory: :meth:`watch` names it,
    :meth:`report_rings` traces what changed since the last report."""

    def __init__(self, memory: RegionMemory, trace: Callable[[str], None]) -> None:
        self.memory = memory
        self.trace = trace
        self._watched: dict[str, tuple[int, int]] = {}
        self._last: dict[str, int] = {}

    def watch(self, name: str, da: int, size: int = 2) -> None:
        """Report the little-endian field of ``size`` bytes at ``da`` whenever it changed (ring metadata)."""
        self._watched[name] = (da, size)

    def watch_vring(self, name: str, desc: int, avail: int, used: int, num: int) -> None:
        self.watch(f"{name}.avail.flags", avail)
        self.watch(f"{name}.avail.idx", avail + 2)
        self.watch(f"{name}.used_event", avail + 4 + 2 * num)
        self.watch(f"{name}.used.flags", used)
        self.watch(f"{name}.used.idx", used + 2)
        self.watch(f"{name}.avail_event", used + 4 + 8 * num)

    def report_rings(self) -> None:
        for name, (da, size) in self._watched.items():
            value = int.from_bytes(self.memory.read(da, size), "little")
            if self._last.get(name) != value:
                old = self._last.get(name)
                self.trace(f"{name}: {'?' if old is None else old} -> {value}")
                self._last[name] = value


class SpyDoorbell(DoorbellWrapper):
    """A doorbell that reports every kick and every wake-up, with the ring indices watched at that moment."""

    def __init__(self, inner: Doorbell, trace: Callable[[str], None], spy: RingWatch) -> None:
        super().__init__(inner)
        self.trace = trace
        self.spy = spy

    def notify(self, queue: int) -> None:
        self.spy.report_rings()
        self.trace(f"kick -> queue {queue}")
        self.inner.notify(queue)

    def wait(self, timeout: float | None) -> bool:
        woke = self.inner.wait(timeout)
        if woke:
            self.trace("kick <- peer")
            self.spy.report_rings()
        return woke


class SpyLink(Link, RingWatch):
    """Wraps a link; :meth:`watch` names ring metadata to report as it changes (idx, flags, event words)."""

    def __init__(self, inner: Link, trace: Callable[[str], None]) -> None:
        Link.__init__(self, inner.memory, inner.role)
        RingWatch.__init__(self, inner.memory, trace)
        self.inner = inner
        self.layout = inner.layout

    def _connect(self, timeout: float) -> Doorbell:
        return SpyDoorbell(self.inner.connect(timeout), self.trace, self)

    def close(self) -> None:
        self.inner.close()


# --- opening ---------------------------------------------------------------------------------------------------
Opener = Callable[..., Link]
BUILTIN: dict[str, Opener] = {
    "loop": lambda url, role, **kw: _LoopLink(url, role),
    "shm": lambda url, role, timeout=10.0, **kw: _ShmLink(url, role, timeout),
    "devmem": lambda url, role, **kw: _DevmemLink(url, role),
    "openamp": lambda url, role, timeout=10.0, **kw: OpenAmpLink(
        role, shm=url.params.get("shm", SHM_PATH), event=url.params.get("event", EVENT_PATH), timeout=timeout
    ),
}


# --- uart: -------------------------------------------------------------------------------------------------------
class _UartLink(Link):
    """``uart:PORT?size=N[&baud=B]``: this side's own copy of an N-byte window, mirrored over the serial link
    (transports/mirror.py, docs/uart-link.md). The rpmsg layer declares what it writes before connecting."""

    def __init__(self, url: ParsedUrl, role: str) -> None:
        size = url.int_param("size")
        super().__init__(RegionMemory([MappedRegion("uart-window", 0, size, bytearray(size))]), role)
        query = "&".join(f"{k}={v}" for k, v in url.params.items() if k == "baud")
        self._url = f"uart:{url.target}" + (f"?{query}" if query else "")
        self._writes: tuple[list[tuple[int, int]], list[int]] | None = None
        self._uart: UartLink | None = None

    def declare_writes(self, ranges: list[tuple[int, int]], index_fields: list[int]) -> None:
        self._writes = (list(ranges), list(index_fields))

    def _connect(self, timeout: float) -> Doorbell:
        if self._writes is None:
            raise TransportError("uart: the rpmsg layer must declare what this side writes before connecting")
        self._uart = UartLink.open(self._url)
        connected = self._uart.wait_connected(timeout)
        ranges, index = self._writes
        mirror = Mirror(self.memory, ranges, index_fields=index, max_payload=connected.max_payload)
        return MirrorDoorbell(self._uart, mirror)

    def close(self) -> None:
        super().close()
        if self._uart is not None:
            self._uart.close()


BUILTIN["uart"] = lambda url, role, **kw: _UartLink(url, role)
BUILTIN["vhost-user"] = lambda url, role, **kw: VhostUserLink(url.target, role, url.params)


def schemes() -> dict[str, Opener]:
    """Built-in schemes plus those installed packages declare (entry-point group ``rproc.transports``)."""
    found = dict(BUILTIN)
    for ep in importlib.metadata.entry_points(group="rproc.transports"):
        if ep.name not in found:
            found[ep.name] = _lazy(ep)
    return found


def _lazy(ep: importlib.metadata.EntryPoint) -> Opener:
    def opener(url: ParsedUrl, role: str, **kw: Any) -> Link:
        link: Link = ep.load()(url, role, **kw)
        return link

    return opener


def open_link(url: str, *, role: str, timeout: float = 10.0, trace: Callable[[str], None] | None = None) -> Link:
    """Open one side (``role`` "host" or "remote") of the transport ``url``."""
    if role not in ROLES:
        raise TransportError(f"role {role!r} is neither host nor remote")
    if url.startswith("spy+"):
        inner = open_link(url[4:], role=role, timeout=timeout)
        if isinstance(inner, VhostUserLink):
            inner.close()
            raise TransportError("spy+ cannot wrap vhost-user: (its memory is the guest's, known only once connected)")
        return SpyLink(inner, trace or _log_trace(f"{role} {url[4:]}"))
    parsed = parse_url(url)
    opener = schemes().get(parsed.scheme)
    if opener is None:
        known = ", ".join(f"{s}://" for s in sorted(schemes()))
        raise TransportError(f"no transport for {parsed.scheme}:// (known: {known}, spy+...)")
    return opener(parsed, role, timeout=timeout)


def _log_trace(prefix: str) -> Callable[[str], None]:
    import logging

    log = logging.getLogger("transports.spy")
    return lambda line: log.info("%s: %s", prefix, line)
