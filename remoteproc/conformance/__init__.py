"""rpmsg conformance, one layout for both roles: catalogues of scenarios, each checking one rule — rproc as host
against a remote peer (host_role/, :func:`run`), rproc as remote against a host peer (remote_role/,
:func:`run_remote_role`) — the peers of either role (peers/; the Linux peer in linux/), what they share
(common.py) and a report for people (table) and for CI (JSON, JUnit XML) (report.py). ``rproc conformance`` is
the command line."""

from remoteproc.conformance.host_role import CATALOGUE, LIFECYCLE, Peer, run
from remoteproc.conformance.peers import (
    BREAKS,
    HOST_BREAKS,
    OPENAMP_SHUTDOWN,
    FirmwarePeer,
    OpenAmpHostPeer,
    OpenAmpRemotePeer,
    RpmsgLiteMasterPeer,
    RpmsgLiteRemotePeer,
    RprocHostPeer,
    RprocRemotePeer,
)
from remoteproc.conformance.remote_role import REMOTE_CATALOGUE, HostPeer, run_remote_role
from remoteproc.conformance.report import Outcome, Report, Result

__all__ = [
    "BREAKS",
    "CATALOGUE",
    "HOST_BREAKS",
    "LIFECYCLE",
    "OPENAMP_SHUTDOWN",
    "REMOTE_CATALOGUE",
    "FirmwarePeer",
    "HostPeer",
    "OpenAmpHostPeer",
    "OpenAmpRemotePeer",
    "Outcome",
    "Peer",
    "Report",
    "Result",
    "RpmsgLiteMasterPeer",
    "RpmsgLiteRemotePeer",
    "RprocHostPeer",
    "RprocRemotePeer",
    "run",
    "run_remote_role",
]
