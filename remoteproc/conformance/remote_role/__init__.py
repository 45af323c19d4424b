"""The remote role: rproc is the rpmsg remote (virtio device) and a host peer is under test. A peer's ``start``
gives a :class:`HostRun` (session.py); rproc serves the echo channel for the whole session and records what the
host did; the catalogue (scenarios.py) judges each rule on that record."""

from remoteproc.conformance.remote_role.scenarios import REMOTE_CATALOGUE, RemoteScenario, run_remote_role
from remoteproc.conformance.remote_role.session import HostPeer, HostRun, Record, serve

__all__ = ["REMOTE_CATALOGUE", "HostPeer", "HostRun", "Record", "RemoteScenario", "run_remote_role", "serve"]
