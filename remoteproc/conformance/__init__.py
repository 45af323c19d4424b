"""rpmsg conformance: a catalogue of scenarios, each checking one rule, run by rproc (as host) against a peer,
with a report for people (table) and for CI (JSON, JUnit XML). ``rproc conformance`` is the command line."""

from remoteproc.conformance.peers import FirmwarePeer, OpenAmpRemotePeer, RprocRemotePeer
from remoteproc.conformance.report import Outcome, Report, Result
from remoteproc.conformance.runner import run
from remoteproc.conformance.scenarios import CATALOGUE, LIFECYCLE

__all__ = [
    "CATALOGUE",
    "LIFECYCLE",
    "FirmwarePeer",
    "OpenAmpRemotePeer",
    "Outcome",
    "Report",
    "Result",
    "RprocRemotePeer",
    "run",
]
