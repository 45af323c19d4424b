"""Choosing the conformance peer (remoteproc/conformance/select.py): which role rproc plays against each --peer,
and the options that do not go together refused with a message saying which (the CLI's usage errors,
tests/remoteproc/test_conformance.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from remoteproc.cli.conformance import PEERS
from remoteproc.conformance import FirmwarePeer, OpenAmpHostPeer, RprocHostPeer, RprocRemotePeer
from remoteproc.conformance.select import (
    HOSTS,
    LINUX_REMOTEPROC,
    REMOTES,
    PeerOptions,
    SelectionError,
    host_peer,
    remote_peer,
)
from remoteproc.errors import RemoteprocError


def test_every_peer_of_the_command_line_has_one_role() -> None:
    assert set(REMOTES).isdisjoint(HOSTS)
    assert sorted(PEERS) == sorted((*REMOTES, *HOSTS, LINUX_REMOTEPROC))  # the --peer choices
    assert issubclass(SelectionError, RemoteprocError) and issubclass(SelectionError, ValueError)


def test_the_role_follows_the_peer(tmp_path: Path) -> None:
    assert isinstance(remote_peer("rproc-remote", PeerOptions(break_mode="no-kick")), RprocRemotePeer)
    host = host_peer("rproc-host", PeerOptions())
    assert isinstance(host, RprocHostPeer) and host.description == "rproc host over shm"
    assert isinstance(host_peer("openamp-host", PeerOptions(command="true")), OpenAmpHostPeer)
    firmware = tmp_path / "fw.elf"
    firmware.write_bytes(b"\x7fELF")
    peer = remote_peer("firmware", PeerOptions(firmware=firmware))
    assert isinstance(peer, FirmwarePeer) and peer.firmware == firmware
    with pytest.raises(SelectionError, match="--peer rproc-host is a host, not a remote"):
        remote_peer("rproc-host", PeerOptions())
    with pytest.raises(SelectionError, match="--peer firmware is a remote, not a host"):
        host_peer("firmware", PeerOptions())


@pytest.mark.parametrize(
    ("peer", "options", "message"),
    [
        ("openamp-remote", PeerOptions(break_mode="no-kick", command="x"), "--break applies to --peer rproc-remote"),
        ("linux", PeerOptions(break_mode="no-kick"), "--break applies to --peer rproc-remote"),
        ("openamp-remote", PeerOptions(), "--peer openamp-remote needs --command"),
        ("rpmsg-lite-master", PeerOptions(), "--peer rpmsg-lite-master needs --command"),
        ("rproc-host", PeerOptions(only=["shutdown"]), "--only selects host-role scenarios"),
        ("firmware", PeerOptions(firmware=Path("/nonexistent/fw.elf")), "--firmware /nonexistent/fw.elf is not a file"),
        ("no-such-peer", PeerOptions(), "no peer 'no-such-peer'"),
    ],
)
def test_options_that_do_not_go_together_are_refused(peer: str, options: PeerOptions, message: str) -> None:
    choose = host_peer if peer in HOSTS else remote_peer
    with pytest.raises(SelectionError, match=message.replace(".", r"\.")):
        choose(peer, options)
