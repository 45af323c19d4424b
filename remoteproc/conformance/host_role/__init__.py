"""The host role: rproc is the rpmsg host (virtio driver) and a remote peer is under test. A peer's ``start`` gives
a :class:`HostContext` (context.py); the catalogue's scenarios (scenarios.py) each check one rule on it; the
runner (runner.py) runs them, the main ones on one start and each lifecycle scenario on its own."""

from remoteproc.conformance.host_role.context import HostContext, Lifecycle, Peer, TableFacts
from remoteproc.conformance.host_role.runner import run
from remoteproc.conformance.host_role.scenarios import CATALOGUE, LIFECYCLE, Scenario

__all__ = ["CATALOGUE", "LIFECYCLE", "HostContext", "Lifecycle", "Peer", "Scenario", "TableFacts", "run"]
