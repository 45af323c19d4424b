"""The host role's side of a session: :class:`HostContext` is what a peer's ``start`` hands the scenarios (rproc's
host device on the transport, the peer's echo channel, what the peer can do beyond echoing); :class:`Peer` is the
contract every remote peer meets (remoteproc.conformance.peers)."""

from __future__ import annotations

import contextlib
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

from remoteproc.conformance.common import CountingDoorbell, ScenarioFailed
from rpmsg.core import HostCore
from rpmsg.device import Endpoint, RpmsgDevice
from rpmsg.errors import RpmsgError


@dataclass(frozen=True)
class TableFacts:
    """Where (device addresses) a profile with a resource table keeps what the host writes back, and what it
    must read there after the start."""

    gfeatures_da: int
    status_da: int
    expected_gfeatures: int
    expected_status: int


class Lifecycle(Protocol):
    """What a peer can do beyond serving messages (each may raise NotApplicable)."""

    def kill(self) -> None: ...

    def exit_code(self, timeout: float) -> int | None: ...

    def reap(self) -> None:
        """After the run: make sure the peer is gone (kill it if it lingers)."""
        ...


@dataclass
class HostContext:
    device: RpmsgDevice
    channel: str
    lifecycle: Lifecycle
    table: TableFacts | None = None
    timeout: float = 5.0
    shutdown_message: bytes | None = None  # OpenAMP's echo demo ends on a message, not on the host leaving
    closers: list[Callable[[], None]] = field(default_factory=list)
    closed: bool = False
    _ep: Endpoint | None = None

    @property
    def core(self) -> HostCore:
        core = self.device.core
        assert isinstance(core, HostCore)
        return core

    @property
    def kicks(self) -> int:
        bell = self.device.doorbell
        return bell.kicks if isinstance(bell, CountingDoorbell) else 0

    @contextlib.contextmanager
    def open(self) -> Iterator[Endpoint]:
        """The one host endpoint on the peer's channel, shared by all scenarios (echo demos such as OpenAMP's
        answer the first sender's address, not each message's source), emptied of leftovers first."""
        if self._ep is None:
            self._ep = self.device.open(self.channel, timeout=self.timeout)
        ep = self._ep
        ep.settimeout(0)
        with contextlib.suppress(RpmsgError):
            while True:
                ep.recv()
        ep.settimeout(self.timeout)
        yield ep

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.device.close()
        for close in self.closers:
            close()


def u16(ctx: HostContext, da: int) -> int:
    return int(struct.unpack("<H", ctx.core.memory.read(da, 2))[0])


def echo(ep: Endpoint, payload: bytes, what: str) -> None:
    ep.send(payload)
    expect_echo(ep, payload, what)


def expect_echo(ep: Endpoint, payload: bytes, what: str) -> None:
    """The echo of ``payload``: byte for byte, and from the channel's address (the peer's endpoint answers)."""
    try:
        got, src = ep.recvfrom()
    except RpmsgError as exc:
        raise ScenarioFailed(f"{what}: no echo: {exc}") from None
    if got != payload:
        raise ScenarioFailed(f"{what}: echo differs: sent {len(payload)} bytes, got {len(got)}: {got[:16].hex()}")
    if src != ep.peer:
        raise ScenarioFailed(f"{what}: the echo came from {src:#x}, not from the channel's address {ep.peer:#x}")


class Peer(Protocol):
    """A remote peer, started fresh for each session of the host role."""

    description: str

    def start(self, timeout: float) -> HostContext: ...
