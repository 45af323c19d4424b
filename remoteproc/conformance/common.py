"""What both roles and their peers share: the echo channel's name, the two ways a scenario ends other than passing,
and the doorbell that counts the peer's kicks."""

from __future__ import annotations

from transports.doorbell import Doorbell, DoorbellWrapper

ECHO_CHANNEL = "rpmsg-echo"  # the channel rproc's peers, the firmware and RPMsg-Lite's echo demos serve


class NotApplicable(Exception):
    """The scenario cannot run against this peer (the message says why)."""


class ScenarioFailed(AssertionError):
    """The rule was broken; the message is the evidence."""


class CountingDoorbell(DoorbellWrapper):
    """A doorbell with a count of the peer's kicks: :attr:`kicks` counts the waits that consumed at least one,
    :attr:`kick_bytes` every kick (each byte, eventfd write or datagram: ``received`` of transports.doorbell),
    None where the doorbell does not count them."""

    def __init__(self, inner: Doorbell) -> None:
        super().__init__(inner)
        self.kicks = 0

    def wait(self, timeout: float | None) -> bool:
        kicked = self.inner.wait(timeout)
        self.kicks += kicked
        return kicked

    @property
    def kick_bytes(self) -> int | None:
        received = getattr(self.inner, "received", None)
        return received if isinstance(received, int) else None


def pattern(size: int, seed: int) -> bytes:
    """``size`` bytes that differ with ``seed``: a payload whose echo shows any byte out of place."""
    return bytes((i * 31 + seed) & 0xFF for i in range(size))
