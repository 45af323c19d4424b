"""The remote role against a host that flags its send buffers device-writable (RPMsg-Lite's master), in memory:
the drop message names the cause; with the quirk allowed the message is read."""

from __future__ import annotations

import logging

import pytest

from rpmsg import Profile, RemoteCore
from rpmsg.core import Message
from rpmsg.quirks import HostQuirks, QuirkRemoteCore
from transports.loop import loop_pair

P = Profile(num=16, rx_count=16, tx_count=16)


def _host_sends_flagged_writable(quirks: HostQuirks | None) -> tuple[RemoteCore, object]:
    h, r = loop_pair(P.size)
    host = P.host_core(h.memory)
    host.start()
    host.send(0x400, 0x401, b"hello")
    lay = P.tx_layout
    for k in range(P.num):  # as lib/virtio/virtqueue.c vq_ring_add_buffer does: dp->flags = VRING_DESC_F_WRITE
        h.memory.write(lay.desc + 16 * k + 12, b"\x02\x00")
    if quirks is None:
        return RemoteCore(r.memory, P.rx_layout, P.tx_layout), host
    return QuirkRemoteCore(r.memory, P.rx_layout, P.tx_layout, quirks=quirks), host


@pytest.mark.parametrize("zero_copy", [False, True], ids=["batch-copy", "one-by-one"])
def test_the_drop_names_a_descriptor_flagged_device_writable(zero_copy: bool, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "rpmsg.core")
    remote, _host = _host_sends_flagged_writable(None)
    assert remote.poll(zero_copy=(lambda dst: False) if zero_copy else None) == []
    assert remote.dropped == 1
    assert "descriptor flagged device-writable (VRING_DESC_F_WRITE)" in caplog.text
    assert "cannot hold the rpmsg header" not in caplog.text  # what it said before: "a 0-byte message ..."


def test_the_quirk_reads_buffers_flagged_device_writable() -> None:
    remote, _host = _host_sends_flagged_writable(HostQuirks(write_flagged_readable=True))
    [msg] = remote.poll()
    assert isinstance(msg, Message) and (msg.src, msg.dst, bytes(msg.payload)) == (0x400, 0x401, b"hello")
    assert remote.dropped == 0


def test_the_quirk_kicks_despite_no_interrupt() -> None:
    h, r = loop_pair(P.size)
    host = P.host_core(h.memory)
    host.start()
    host.notifications(False)  # vring 0 avail.flags = NO_INTERRUPT, as RPMsg-Lite's master leaves it
    plain = RemoteCore(r.memory, P.rx_layout, P.tx_layout)
    plain.send(1, 2, b"x")
    assert plain.take_intents() == []  # the spec: no kick
    plain.close()
    quirky = QuirkRemoteCore(r.memory, P.rx_layout, P.tx_layout, quirks=HostQuirks(kick_despite_no_interrupt=True))
    quirky.send(1, 2, b"y")
    assert quirky.take_intents() == [0]


def test_the_device_path_names_it_too(caplog: pytest.LogCaptureFixture) -> None:
    """Through RpmsgDevice (the C per-message path for a plain core, where the host's 512-byte buffer was
    reported as "a 0-byte message cannot hold the rpmsg header")."""
    from rpmsg import RpmsgDevice, RpmsgTimeout

    caplog.set_level(logging.WARNING)
    h, r = loop_pair(P.size)
    host = P.host_core(h.memory)
    host.start()
    remote = RpmsgDevice(RemoteCore(r.memory, P.rx_layout, P.tx_layout), r.doorbell)
    try:
        ep = remote.endpoint("", addr=0x401)
        host.send(0x400, 0x401, b"hello")
        for k in range(P.num):
            h.memory.write(P.tx_layout.desc + 16 * k + 12, b"\x02\x00")
        ep.settimeout(0.3)
        with pytest.raises(RpmsgTimeout):
            ep.recvfrom()
        assert remote.core.dropped == 1
        assert "descriptor flagged device-writable (VRING_DESC_F_WRITE)" in caplog.text
    finally:
        remote.close()
        host.close()
