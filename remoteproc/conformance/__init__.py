"""rpmsg conformance: catalogues of scenarios, each checking one rule — rproc as host against a remote peer
(:func:`run`), rproc as remote against a host peer (:func:`run_remote_role`) — with a report for people (table)
and for CI (JSON, JUnit XML). ``rproc conformance`` is the command line."""

from remoteproc.conformance.peers import FirmwarePeer, OpenAmpRemotePeer, RprocRemotePeer
from remoteproc.conformance.remote_role import REMOTE_CATALOGUE, OpenAmpHostPeer, RprocHostPeer, run_remote_role
from remoteproc.conformance.report import Outcome, Report, Result
from remoteproc.conformance.runner import run
from remoteproc.conformance.scenarios import CATALOGUE, LIFECYCLE

__all__ = [
    "CATALOGUE",
    "LIFECYCLE",
    "REMOTE_CATALOGUE",
    "OpenAmpHostPeer",
    "RprocHostPeer",
    "run_remote_role",
    "FirmwarePeer",
    "OpenAmpRemotePeer",
    "Outcome",
    "Report",
    "Result",
    "RprocRemotePeer",
    "run",
]
