"""An orderly close is not a loss: closing both sides in order warns nobody; a peer that goes away still does."""

from __future__ import annotations

import logging

import pytest

import rpmsg
from rpmsg import PeerLost


@pytest.mark.parametrize("eventfd", [False, True])
@pytest.mark.parametrize("first", ["host", "remote"])
def test_closing_both_sides_in_order_logs_no_warning(
    eventfd: bool, first: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="rpmsg")
    host, remote = rpmsg.loopback_pair(eventfd=eventfd)
    served = remote.endpoint("rpmsg-echo")
    ep = host.open("rpmsg-echo", timeout=5)
    served.settimeout(5)
    ep.send(b"ping")
    assert served.recvfrom()[0] == b"ping"
    for side in (host, remote) if first == "host" else (remote, host):
        side.close()
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_a_peer_that_goes_away_while_open_is_still_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    host, remote = rpmsg.loopback_pair(eventfd=True)
    served = remote.endpoint("rpmsg-echo")
    host.open("rpmsg-echo", timeout=5)
    served.settimeout(1)
    host.close()
    with pytest.raises(PeerLost):
        served.recvfrom()
    assert any("rpmsg device lost" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    remote.close()
