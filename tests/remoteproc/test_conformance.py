"""`rproc conformance`: the catalogue passes against rproc's own remote (over shm, and as a program on OpenAMP's
profile) and against the firmware on the emulated board; each scenario fails against a peer broken in the way
it checks; the reports are well-formed."""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import threading
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from remoteproc.cli import main
from remoteproc.conformance import (
    CATALOGUE,
    LIFECYCLE,
    REMOTE_CATALOGUE,
    FirmwarePeer,
    OpenAmpHostPeer,
    OpenAmpRemotePeer,
    Outcome,
    RprocHostPeer,
    RprocRemotePeer,
    run,
    run_remote_role,
)
from remoteproc.conformance.remote_role import HostRun
from remoteproc.conformance.report import Report
from tests.conformance.pairs import HostOver, _ThreadRun
from transports.doorbell import PeerLostError

ALL = [s.name for s in CATALOGUE + LIFECYCLE]
REPO = Path(__file__).resolve().parents[2]


def test_every_scenario_passes_against_rproc_remote_over_shm(tmp_path: Path) -> None:
    junit, report_json = tmp_path / "report.xml", tmp_path / "report.json"
    code = main(["conformance", "--peer", "rproc-remote", "--junit", str(junit), "--json-file", str(report_json)])
    assert code == 0
    data = json.loads(report_json.read_text())
    outcomes = {r["scenario"]: r["outcome"] for r in data["results"]}
    assert list(outcomes) == ALL
    assert outcomes.pop("status-and-features") == "n/a"  # rproc's shm profile has no resource table
    assert outcomes.pop("big-buffers") == "n/a"  # nor big buffers (tests/conformance/test_shared_suite.py has)
    assert set(outcomes.values()) == {"pass"}, data
    suite = ET.parse(junit).getroot()
    assert suite.tag == "testsuite" and suite.get("tests") == str(len(ALL))
    assert suite.get("failures") == "0" and suite.get("skipped") == "2"
    assert [case.get("name") for case in suite.iter("testcase")] == ALL


# Each break mode of the rproc remote violates one rule: the scenario checking that rule must fail.
BROKEN = [
    ("no-kick", "notification-delivery"),
    ("no-kick", "index-wraparound"),  # fails at the first echo no kick woke (it crawled, one wait per window)
    ("kick-always", "notification-suppression"),
    ("wrong-used-id", "echo-every-size"),
    ("oversize-len", "echo-every-size"),
    ("short-used-len", "used-len"),
    ("no-ns", "name-service-create"),
    ("check-reserved", "reserved-ignored"),
    ("drop-low-addr", "low-endpoint-address"),
    ("no-max-size", "max-size-and-one-over"),
    ("reorder", "burst-fills-ring"),
    ("stop-after-1000", "index-wraparound"),
    ("ignore-host-close", "shutdown"),
    ("die-on-host-ns", "ns-from-host"),
    ("death-unseen", "peer-death"),
]


def test_a_peer_that_does_not_announce_after_a_restart_fails_peer_restart() -> None:
    peer = RprocRemotePeer("announce-once")
    report = run(peer, only=["name-service-create", "peer-restart"], timeout=1.0)
    assert report.outcome_of("name-service-create") is Outcome.PASS  # the first start announces
    assert report.outcome_of("peer-restart") is Outcome.FAIL, report.table()
    Path(tempfile.gettempdir(), f"{peer.name}.state").unlink(missing_ok=True)


@pytest.mark.parametrize(("mode", "scenario"), BROKEN, ids=[f"{m}:{s}" for m, s in BROKEN])
def test_a_broken_peer_fails_the_scenario_that_checks_it(mode: str, scenario: str) -> None:
    report = run(RprocRemotePeer(mode), only=[scenario], timeout=1.0)
    assert report.outcome_of(scenario) is Outcome.FAIL, report.table()
    assert not report.passed


def test_the_same_scenarios_pass_against_the_correct_peer() -> None:
    """The control for the test above: the targeted scenarios, same timeout, a well-behaved peer."""
    report = run(RprocRemotePeer(), only={s for _, s in BROKEN}, timeout=1.0)
    assert report.passed, report.table()
    assert {r.outcome for r in report.results} == {Outcome.PASS}


def test_openamp_profile_program_as_the_peer(tmp_path: Path) -> None:
    """rproc's own OpenAMP-profile remote started as an external program, as OpenAMP's echo demo would be."""
    shm = f"/dev/shm/rproc-conformance-oa-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    event = str(tmp_path / "openamp.event.0")
    command = f"{sys.executable} -m tests.remoteproc.openamp_peer {shm} {event}"
    try:
        report = run(OpenAmpRemotePeer(command, shm=shm, event=event), timeout=5.0)
    finally:
        Path(shm).unlink(missing_ok=True)
    assert report.passed, report.table()
    assert report.outcome_of("status-and-features") is Outcome.PASS  # 0x04 and NS, as OpenAMP's host writes them
    assert report.outcome_of("big-buffers") is Outcome.NOT_APPLICABLE  # OpenAMP's layout: 512-byte buffers
    assert {r.outcome for r in report.results if r.scenario != "big-buffers"} == {Outcome.PASS}


@pytest.mark.toolchain
def test_firmware_on_the_emulated_board(services_firmware: Path) -> None:
    report = run(FirmwarePeer(services_firmware), timeout=5.0)
    assert report.passed, report.table()
    na = {r.scenario for r in report.results if r.outcome is Outcome.NOT_APPLICABLE}
    assert na == {"shutdown", "peer-death", "big-buffers"}  # the board is no process to kill; 512-byte buffers


def test_unknown_scenario_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["conformance", "--only", "no-such-thing"]) == 2
    assert "unknown scenarios: no-such-thing" in capsys.readouterr().err


# --- rproc as remote, the peer is the host ---------------------------------------------------------------------


def test_remote_role_against_rproc_host(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["conformance", "--peer", "rproc-host", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    outcomes = {r["scenario"]: r["outcome"] for r in data["results"]}
    assert list(outcomes) == [s.name for s in REMOTE_CATALOGUE]
    assert outcomes.pop("status-handshake") == "n/a"  # the shm profile has no status byte
    assert set(outcomes.values()) == {"pass"}, data


HOST_BROKEN = [
    ("no-rx-buffers", "rx-buffers-at-start"),
    ("no-repost", "buffers-recycled"),
    ("oversize-len", "messages-well-formed"),
    ("kick-always", "host-honours-suppression"),
    ("wrong-dst", "channel-used"),
    ("exit-1", "host-ends-cleanly"),
    ("oversize-after-wrap", "index-wraparound"),
]


@pytest.mark.parametrize(("mode", "scenario"), HOST_BROKEN, ids=[m for m, _ in HOST_BROKEN])
def test_a_broken_host_fails_the_scenario_that_checks_it(mode: str, scenario: str) -> None:
    report = run_remote_role(RprocHostPeer(mode), timeout=1.0)
    assert report.outcome_of(scenario) is Outcome.FAIL, report.table()


def test_remote_role_against_an_openamp_profile_host_program(tmp_path: Path) -> None:
    shm = f"/dev/shm/rproc-conformance-oah-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    event = str(tmp_path / "openamp.event.0")
    command = f"{sys.executable} -m tests.remoteproc.openamp_host_peer {shm} {event}"
    report = run_remote_role(OpenAmpHostPeer(command, shm=shm, event=event), timeout=5.0)
    assert not Path(shm).exists()
    results = {r.scenario: r for r in report.results}
    assert report.passed, report.table()
    assert results["status-handshake"].evidence.startswith("status 0x04")  # OpenAMP's host value
    assert results["messages-well-formed"].evidence.startswith("496 messages of 1..496 bytes")
    assert results["index-wraparound"].outcome is Outcome.NOT_APPLICABLE
    assert "reported 'Test Results: Error count = 0'" in results["host-ends-cleanly"].evidence


def test_a_host_program_counting_errors_fails_though_it_exits_0(tmp_path: Path) -> None:
    """OpenAMP's pingers count wrong echoes, print "Test Results: Error count = N" and exit 0: the count is read
    from the program's output and fails host-ends-cleanly (it passed on the exit status alone)."""
    shm = f"/dev/shm/rproc-conformance-oah-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    event = str(tmp_path / "openamp.event.0")
    command = f"{sys.executable} -m tests.remoteproc.openamp_host_peer {shm} {event} --wrong-echoes 3"
    report = run_remote_role(OpenAmpHostPeer(command, shm=shm, event=event), timeout=5.0)
    results = {r.scenario: r for r in report.results}
    assert results["host-ends-cleanly"].outcome is Outcome.FAIL, report.table()
    assert "status 0 but counted 3 errors of its own: 'Test Results: Error count = 3'" in (
        results["host-ends-cleanly"].evidence
    )
    assert results["messages-well-formed"].outcome is Outcome.PASS  # the traffic itself was fine


@pytest.mark.parametrize("role", ["host", "remote"])
def test_a_peer_program_that_exits_at_once_is_reported_by_its_status(role: str, tmp_path: Path) -> None:
    """A program that ends at once (a wrong argument, "Failed to set resource table") is reported with its exit
    status and what it wrote, as soon as it has ended: not as the 10-20 s timeout of the wait for it."""
    import time

    shm = f"/dev/shm/rproc-conformance-exit-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    event = str(tmp_path / "openamp.event.0")
    script = "import sys; print('usage: frobnicate', file=sys.stderr); sys.exit(3)"
    command = f'{sys.executable} -c "{script}"'
    start = time.monotonic()
    if role == "host":  # rproc is the host: the program should have been OpenAMP's remote
        report = run(OpenAmpRemotePeer(command, shm=shm, event=event), only=["status-and-features"], timeout=30.0)
    else:
        report = run_remote_role(OpenAmpHostPeer(command, shm=shm, event=event), timeout=30.0)
    elapsed = time.monotonic() - start
    Path(shm).unlink(missing_ok=True)
    assert {r.outcome for r in report.results} == {Outcome.FAIL}, report.table()
    for result in report.results:
        assert f"{sys.executable} exited with status 3 after" in result.evidence, result.evidence
        assert "stderr: 'usage: frobnicate'" in result.evidence, result.evidence
    assert elapsed < 15  # the wait was 30 s (120 s for the remote role): it ended with the program


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("unshare") is None, reason="mount namespaces need root")
def test_isolated_pairs_with_the_same_fixed_paths_run_at_once() -> None:
    """OpenAMP's binaries hard-code /dev/shm/openamp.shm and /tmp/openamp.event.0: with --isolate each peer gets
    its own /tmp and /dev/shm, so two runs at once do not meet."""
    command = f"{sys.executable} -m tests.remoteproc.openamp_peer /dev/shm/openamp.shm /tmp/openamp.event.0"
    reports: list[Report] = []

    def one() -> None:
        peer = OpenAmpRemotePeer(command, shm="/dev/shm/openamp.shm", event="/tmp/openamp.event.0", isolate=True)
        reports.append(run(peer, only=["status-and-features", "index-wraparound", "shutdown"], timeout=10.0))

    threads = [threading.Thread(target=one) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert len(reports) == 2
    for report in reports:
        assert report.passed and {r.outcome for r in report.results} == {Outcome.PASS}, report.table()
    assert not Path("/dev/shm/openamp.shm").exists() and not Path("/tmp/openamp.event.0").exists()


def test_a_remote_resetting_the_status_fails_status_and_features(tmp_path: Path) -> None:
    shm = f"/dev/shm/rproc-conformance-oa-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    event = str(tmp_path / "openamp.event.0")
    command = f"{sys.executable} -m tests.remoteproc.openamp_peer {shm} {event} --clobber-status"
    try:
        report = run(OpenAmpRemotePeer(command, shm=shm, event=event), only=["status-and-features"], timeout=5.0)
    finally:
        Path(shm).unlink(missing_ok=True)
    assert report.outcome_of("status-and-features") is Outcome.FAIL, report.table()
    assert "status 0x00" in report.results[0].evidence


def test_a_host_accepting_unoffered_features_fails_status_handshake(tmp_path: Path) -> None:
    shm = f"/dev/shm/rproc-conformance-oah-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    event = str(tmp_path / "openamp.event.0")
    command = f"{sys.executable} -m tests.remoteproc.openamp_host_peer {shm} {event} --bad-gfeatures"
    report = run_remote_role(OpenAmpHostPeer(command, shm=shm, event=event), timeout=5.0)
    assert report.outcome_of("status-handshake") is Outcome.FAIL, report.table()


# --- counting the host's kicks exactly (host-honours-suppression) ------------------------------------------------


class _ScriptedHost:
    """A host in this process (rproc's, on a loopback pair) whose kicks the test writes by hand, with serve()
    as the remote role runs it in a thread."""

    def __init__(self) -> None:
        from remoteproc.conformance.common import CountingDoorbell
        from remoteproc.conformance.remote_role import Record, serve
        from rpmsg import Profile, loopback_pair

        self.host, self.remote = loopback_pair(Profile(num=64, rx_count=64, tx_count=64))
        self.remote.doorbell = CountingDoorbell(self.remote.doorbell)
        self.description, self.device, self.table = "scripted host", self.remote, None
        self.channel, self.channel_addr = "echo", 0x400
        self.done = threading.Event()
        self.record = Record()
        self.thread = threading.Thread(target=serve, args=(self, self.record, 5.0, 60.0))
        self.thread.start()
        self.dst = self.host.wait_for_channel("echo", timeout=10)

    def exit_code(self, timeout: float) -> int | None:
        return 0 if self.done.is_set() else None

    def wait_asleep_with_kicks_on(self) -> None:
        """Until the remote sleeps on its doorbell having asked for kicks (it gets there some time after it
        announced its channel)."""
        import time

        deadline = time.monotonic() + 10
        while self.remote.waiting.owner is None or self.remote.core.from_host.state()["suppressed"]:
            assert time.monotonic() < deadline, "the remote never slept with kicks on"
            time.sleep(0.005)

    def send(self, payload: bytes) -> list[int]:
        """Publish one message; the kicks it owes (the remote's flags were clear when it looked)."""
        self.host.core.send(0x401, self.dst, payload)
        return self.host.core.take_intents()

    def wait_replies(self, count: int) -> None:
        import time

        deadline = time.monotonic() + 10
        while self.record.replies < count:
            assert time.monotonic() < deadline, f"{self.record.replies} replies of {count}"
            time.sleep(0.005)

    def finish(self) -> str:
        self.done.set()
        self.thread.join(20)
        self.host.close()
        self.remote.close()
        from remoteproc.conformance.remote_role.scenarios import host_honours_suppression

        return host_honours_suppression(self.record)


def test_a_late_kick_for_a_message_sent_before_the_suppression_is_not_blamed() -> None:
    """The host publishes a message while the remote sleeps with kicks on (it owes a kick), and is slow to write
    it: the remote finds the message by itself, sets NO_NOTIFY, replies; only then does the kick arrive, and
    the host goes on without kicking. That kick is legitimate. It was blamed when the count started at the 10th
    message and the doorbell was drained lazily (the flaky failure against OpenAMP's nocopy ping)."""
    from transports.doorbell import Doorbell

    h = _ScriptedHost()
    try:
        h.wait_asleep_with_kicks_on()
        owed = h.send(b"first")
        assert owed, "the remote was asleep with kicks on: this message is owed a kick"
        h.wait_replies(1)  # found without the kick (the remote looks again when its 0.2 s wait ends)
        bell: Doorbell = h.host.doorbell
        for queue in owed:
            bell.notify(queue)  # late, and before the next message: as a host preempted between flags and kick
        for i in range(40):
            assert h.send(i.to_bytes(4, "little")) == [], "the host sees NO_NOTIFY and owes no kick"
        h.wait_replies(41)
    finally:
        evidence = h.finish()
    assert h.record.kicks_while_suppressed == 0, evidence
    assert evidence.startswith("0 kicks in "), evidence


def test_kicks_against_the_suppression_are_counted_one_by_one() -> None:
    """Three kicks written at once after the suppression was visible are three (they were one: a wait that
    consumed some), and fail the scenario."""
    from remoteproc.conformance.common import ScenarioFailed

    h = _ScriptedHost()
    try:
        h.send(b"first")
        h.wait_replies(1)
        for i in range(20):
            h.send(i.to_bytes(4, "little"))
        h.wait_replies(21)
        for _ in range(3):
            h.host.doorbell.notify(1)  # no message needs them: vring 1 used.flags = NO_NOTIFY
        h.send(b"last")
        h.wait_replies(22)
    finally:
        with pytest.raises(ScenarioFailed, match=r"the host sent 3 kicks in 21 messages published after") as failed:
            h.finish()
    assert h.record.kicks_while_suppressed == 3, failed.value


class _KickingHost:
    """rproc's host over devmem (``HostOver``) with a second writer on its mailbox register, kicking every 2 ms
    whatever the remote's flags say: a host that does not honour the suppression."""

    def __init__(self, peer: HostOver) -> None:
        self.peer, self.description = peer, f"{peer.description}, kicking every 2 ms"
        self.stop = threading.Event()

    def start(self, timeout: float) -> HostRun:
        run = self.peer.start(timeout)
        assert isinstance(run, _ThreadRun)
        bell = run.host.doorbell

        def kick() -> None:
            while not self.stop.wait(0.002):
                try:
                    bell.notify(1)
                except PeerLostError:  # the host closed its link when its traffic ended
                    return

        threading.Thread(target=kick, daemon=True).start()
        return run


def test_a_kick_still_on_its_way_through_the_interrupt_controller_is_not_blamed(tmp_path: Path) -> None:
    """Over devmem a kick is a register write that reaches the remote's UIO descriptor after the interrupt
    controller passes it on (3 ms here, on an SoC microseconds, in the test's fake hardware a polling thread):
    the kick the host owed to a message before its suppression was visible may still be on its way when the
    remote starts counting. It was blamed (CI, stop 32: "1 wakeups by kicks in 1751 messages", about one run in
    ten with the fake hardware's ~20 µs polling); the ledger now waits for the controller (``settle_kicks``)."""
    peer = HostOver("devmem", tmp_path, total=1000, interrupt_latency=0.003)
    report = run_remote_role(peer, timeout=10, overall=120)
    result = report.results[[s.name for s in REMOTE_CATALOGUE].index("host-honours-suppression")]
    assert result.outcome is Outcome.PASS, result.evidence
    assert result.evidence.startswith("0 wakeups by kicks in "), result.evidence


def test_kicks_against_the_suppression_through_a_slow_interrupt_controller_are_counted(tmp_path: Path) -> None:
    """The wait for the controller does not swallow a host's wrong kicks: the same host with a second writer
    kicking its mailbox every 2 ms fails the scenario."""
    peer = _KickingHost(HostOver("devmem", tmp_path, total=1000, interrupt_latency=0.003))
    try:
        report = run_remote_role(peer, timeout=10, overall=120)
    finally:
        peer.stop.set()
    result = report.results[[s.name for s in REMOTE_CATALOGUE].index("host-honours-suppression")]
    assert result.outcome is Outcome.FAIL, result.evidence
    assert "wakeups by kicks in" in result.evidence, result.evidence
