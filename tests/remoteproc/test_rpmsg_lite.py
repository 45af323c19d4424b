"""rproc against RPMsg-Lite in both roles, through our model of it (tests/remoteproc/rpmsg_lite_model.py): the
rpmsg-lite profile, each of the master's quirks (each one needed), the connect-time layout check, mapping the
whole file, and the conformance peers rpmsg-lite-master / rpmsg-lite-remote."""

from __future__ import annotations

import dataclasses
import logging
import os
import sys
import threading
import uuid

import pytest

from remoteproc.conformance import run, run_remote_role
from remoteproc.conformance.peers import RpmsgLiteMasterPeer, RpmsgLiteRemotePeer
from remoteproc.conformance.report import Outcome, Report
from rpmsg.core import HostCore
from rpmsg.profiles import Profile
from rpmsg.quirks import NO_QUIRKS, RPMSG_LITE_MASTER
from rpmsg.rpmsg_lite import PROFILE, rpmsg_lite_profile
from rpmsg.wiring import LayoutMismatch, remote_on
from transports.errors import AddressError
from transports.shm import ShmLink
from transports.url import open_link

PEER = f"{sys.executable} -m tests.remoteproc.rpmsg_lite_peer"


def outcomes(report: Report) -> dict[str, Outcome]:
    return {r.scenario: r.outcome for r in report.results}


def test_the_profile_is_rpmsg_lites_layout() -> None:
    # rpmsg_lite_master_init: vring 0 at the base, vring 1 at base + VRING_SIZE, pool at 2 * VRING_SIZE
    p = rpmsg_lite_profile(base=0x1000)
    assert (p.rx_layout.desc, p.tx_layout.desc, p.pool_da) == (0x1000, 0x9000, 0x11000)
    assert (p.rx_size, p.tx_size, p.rx_count, p.tx_count) == (512, 512, 256, 256)
    assert rpmsg_lite_profile(payload=250).rx_size == 268  # RL_WORD_ALIGN_UP(250 + 16)
    assert Profile().host_quirks == NO_QUIRKS and PROFILE.host_quirks == RPMSG_LITE_MASTER
    with pytest.raises(ValueError, match="VRING_SIZE"):
        rpmsg_lite_profile(vring_size=0x2000)  # 256 entries aligned to 0x1000 need 0x2806 bytes


def test_conformance_rproc_remote_against_the_rpmsg_lite_master() -> None:
    report = run_remote_role(RpmsgLiteMasterPeer(f"{PEER} master --messages 300"), timeout=5)
    got = outcomes(report)
    assert got["status-handshake"] == Outcome.NOT_APPLICABLE  # no resource table, no status byte
    assert got["index-wraparound"] == Outcome.NOT_APPLICABLE
    others = {k: v for k, v in got.items() if k not in ("status-handshake", "index-wraparound")}
    assert set(others.values()) == {Outcome.PASS}, report.results


def test_conformance_rproc_host_against_the_rpmsg_lite_remote() -> None:
    only = ["name-service-create", "echo-every-size", "max-size-and-one-over", "burst-fills-ring",
            "low-endpoint-address", "notification-suppression", "peer-death"]  # fmt: skip
    got = outcomes(run(RpmsgLiteRemotePeer(f"{PEER} remote"), only=only, timeout=5))
    # RPMsg-Lite's remote kicks on every send: virtqueue_kick tests its own vring 0 used.flags, not avail.flags
    assert got.pop("notification-suppression") == Outcome.FAIL
    assert set(got.values()) == {Outcome.PASS}, got


@pytest.mark.parametrize("quirk", ["write_flagged_readable", "adopt_used_index", "kick_despite_no_interrupt"])
def test_each_master_quirk_is_needed(quirk: str, caplog: pytest.LogCaptureFixture) -> None:
    """With any one switch off (as every profile was before), the master's echoes fail; with all on they pass
    (previous test)."""
    caplog.set_level(logging.INFO)
    profile = dataclasses.replace(PROFILE, host_quirks=dataclasses.replace(RPMSG_LITE_MASTER, **{quirk: False}))
    peer = RpmsgLiteMasterPeer(f"{PEER} master --messages 0 --fail-fast", profile)
    report = run_remote_role(peer, timeout=3, overall=30)
    got = outcomes(report)
    assert Outcome.FAIL in (got["host-ends-cleanly"], got["messages-well-formed"]), report.results
    if quirk == "write_flagged_readable":
        assert "descriptor flagged device-writable (VRING_DESC_F_WRITE)" in caplog.text
        assert "cannot hold the rpmsg header" not in caplog.text  # the misleading message of before


def _master(name: str) -> threading.Thread:
    from tests.remoteproc.rpmsg_lite_peer import master

    t = threading.Thread(target=lambda: master(name, 0, True), daemon=True)
    t.start()
    return t


def test_a_layout_mismatch_is_refused_at_connect_time() -> None:
    name = f"rproc-rl-test-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    t = _master(name)
    with pytest.raises(LayoutMismatch, match=r"pool at 0x5840 .* the host's layout differs"):
        remote_on(open_link(f"shm://{name}", role="remote"), Profile())  # rproc's layout: served NS, then nothing
    t.join(30)


def _rproc_host(name: str, p: Profile, size: int) -> tuple[HostCore, ShmLink, threading.Thread]:
    link = ShmLink.create_host(name, size, doorbell="socket")
    core = p.host_core(link.memory)
    core.start()
    t = threading.Thread(target=lambda: link.connect(10), daemon=True)
    t.start()
    return core, link, t


@pytest.mark.parametrize("map_all", [False, True])
def test_map_all_maps_beyond_the_profile(map_all: bool) -> None:
    name = f"rproc-rl-test-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    p = Profile(num=16, rx_count=16, tx_count=16)
    core, host_link, t = _rproc_host(name, p, p.size + 0x10000)
    try:
        link = open_link(f"shm://{name}" if map_all else f"shm://{name}?size={p.size}", role="remote")
        device = remote_on(link, p)
        try:
            if map_all:  # an RPMsg-Lite pool may end beyond the profile's size ("BAD_ADDR" after 251 echoes)
                assert link.memory.read(p.size + 0x100, 4) == bytes(4)
            else:
                with pytest.raises(AddressError):
                    link.memory.read(p.size + 0x100, 4)  # only the bytes the URL's size asks for
        finally:
            device.close()
            link.close()
    finally:
        t.join(10)
        core.close()
        host_link.close()


def test_a_file_smaller_than_the_profile_is_refused_as_a_layout_mismatch() -> None:
    name = f"rproc-rl-test-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    host = Profile(num=16, rx_count=16, tx_count=16)
    core, host_link, t = _rproc_host(name, host, host.size)
    try:
        with pytest.raises(LayoutMismatch, match="smaller than the profile's layout"):
            # rings of 256 entries do not fit the host's file of 16-entry rings (a remote's buffer sizes are the
            # host's, learnt from the descriptors: only the rings' layout can be too big for the file)
            big = dataclasses.replace(host, num=1024)
            assert big.pool_da > host.size
            remote_on(open_link(f"shm://{name}", role="remote"), big)
    finally:
        t.join(10)
        core.close()
        host_link.close()
