"""The endpoints' C methods take a message only while the device logger does not trace (``isEnabledFor(TRACE)``
is False), as the Python methods decide. They keep the logger's answer between calls while nothing it depends on
changed (rpmsg/csrc/endpoint_trace.h: the instance dicts of the logger, its ancestors and the manager, and the
classes): asked at every call it cost ~0.1 us of a ~2.3 us round trip. Every change a user makes to logging is
still seen by the very next call, on both paths (conftest's ``host_path``)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

import pytest

from rpmsg import Profile, RpmsgDevice, loopback_pair
from rpmsg.device import TRACE
from rpmsg.endpoint import Endpoint

DEVICE_LOG = logging.getLogger("rpmsg.device")


@pytest.fixture
def pair(host_path: str) -> Iterator[tuple[Endpoint, Endpoint, RpmsgDevice]]:
    host, remote = loopback_pair(Profile(num=16, rx_count=16, tx_count=16), wait="block", eventfd=True)
    assert host._gate.open == (host_path == "c-path")
    r = remote.endpoint("svc")
    h = host.open("svc", timeout=5)
    h.send(b"hello")
    assert r.recv() == b"hello"
    yield h, r, host
    remote.close()
    host.close()


@pytest.fixture
def levels() -> Iterator[None]:
    """Put back the levels of the loggers the tests change, and logging.disable."""
    loggers = [logging.getLogger(), logging.getLogger("rpmsg"), DEVICE_LOG]
    saved = [(lg, lg.level, lg.disabled) for lg in loggers]
    yield
    logging.disable(logging.NOTSET)
    for lg, level, disabled in saved:
        lg.setLevel(level)
        lg.disabled = disabled


def _is_enabled_calls(run: Callable[[], None]) -> int:
    """How often logging.Logger.isEnabledFor ran (called from Python or from C) during ``run``."""
    code = logging.Logger.isEnabledFor.__code__
    count = 0

    def profile(frame: FrameType, event: str, arg: Any) -> None:
        nonlocal count
        if event == "call" and frame.f_code is code:
            count += 1

    sys.setprofile(profile)
    try:
        run()
    finally:
        sys.setprofile(None)
    return count


def _traced(caplog: pytest.LogCaptureFixture, h: Endpoint, r: Endpoint, data: bytes) -> bool:
    """Send ``data`` host -> remote; whether the send was traced (its "-> ... N bytes" line)."""
    caplog.clear()
    h.send(data)
    assert r.recv() == data
    return any(rec.levelno == TRACE and "-> " in rec.getMessage() for rec in caplog.records)


def test_the_c_methods_do_not_ask_the_logger_per_message(
    pair: tuple[Endpoint, Endpoint, RpmsgDevice], host_path: str
) -> None:
    h, r, _ = pair

    def exchange() -> None:
        for i in range(200):
            h.send(b"%d" % i)
            assert r.recv() == b"%d" % i

    asked = _is_enabled_calls(exchange)
    if host_path == "c-path" and sys.version_info < (3, 12):
        assert asked <= 4, asked  # once per gate, kept since (before: twice per message, 400)
    else:
        # the Python methods ask at every send and every receive; so do the C methods where the dict version
        # they keep the answer by is deprecated (Python >= 3.12)
        assert asked >= 400


@pytest.mark.parametrize(
    "turn_on",
    [
        pytest.param(lambda: DEVICE_LOG.setLevel(TRACE), id="the device logger's level"),
        pytest.param(lambda: logging.getLogger("rpmsg").setLevel(TRACE), id="the parent's level"),
        pytest.param(lambda: logging.getLogger().setLevel(TRACE), id="the root's level"),
    ],
)
def test_a_logging_change_is_seen_by_the_next_call(
    pair: tuple[Endpoint, Endpoint, RpmsgDevice],
    levels: None,
    caplog: pytest.LogCaptureFixture,
    turn_on: Callable[[], None],
) -> None:
    h, r, _ = pair
    caplog.set_level(logging.NOTSET)  # the capture handler takes everything; the loggers decide
    DEVICE_LOG.setLevel(logging.NOTSET)
    logging.getLogger("rpmsg").setLevel(logging.NOTSET)
    logging.getLogger().setLevel(logging.WARNING)
    assert not any(_traced(caplog, h, r, b"quiet %d" % i) for i in range(3))
    turn_on()
    assert _traced(caplog, h, r, b"traced")
    assert _traced(caplog, h, r, b"traced again")
    logging.disable(logging.DEBUG)  # logging.disable, the manager's: off at once
    assert not _traced(caplog, h, r, b"disabled")
    logging.disable(logging.NOTSET)
    assert _traced(caplog, h, r, b"enabled")
    DEVICE_LOG.disabled = True  # the logger's own switch
    assert not _traced(caplog, h, r, b"logger disabled")
    DEVICE_LOG.disabled = False
    assert _traced(caplog, h, r, b"logger enabled")
    for lg in (DEVICE_LOG, logging.getLogger("rpmsg")):
        lg.setLevel(logging.INFO)  # the nearest level set decides: INFO, no TRACE
    assert not _traced(caplog, h, r, b"quiet again")


def test_a_logger_class_changed_meanwhile_is_asked(
    pair: tuple[Endpoint, Endpoint, RpmsgDevice],
    levels: None,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A change of logging.Logger itself (here its getEffectiveLevel, logging's cache cleared as setLevel does)
    moves the class's version: the next call asks again, and while the method is not logging's own, every call
    asks."""
    h, r, _ = pair
    caplog.set_level(logging.NOTSET)
    logging.getLogger().setLevel(logging.WARNING)
    assert not _traced(caplog, h, r, b"quiet")
    tracing = True
    monkeypatch.setattr(logging.Logger, "getEffectiveLevel", lambda self: TRACE if tracing else logging.WARNING)
    DEVICE_LOG.manager._clear_cache()  # type: ignore[attr-defined]  # what setLevel does after its change
    assert _traced(caplog, h, r, b"traced")
    tracing = False
    DEVICE_LOG.manager._clear_cache()  # type: ignore[attr-defined]
    assert not _traced(caplog, h, r, b"quiet again")
