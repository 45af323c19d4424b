"""``rproc --spy FILE``: every kick and rpmsg message of a session traced, on the sim platform."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest

from remoteproc.cli import main

REPO = Path(__file__).resolve().parents[2]


def test_spy_traces_a_load_session_to_a_file(example_firmware: Path, tmp_path: Path) -> None:
    out = tmp_path / "spy.txt"
    rc = main(["--spy", str(out), "load", "--platform", "sim", str(example_firmware), "--send", "rpmsg-echo:hello"])
    assert rc == 0
    lines = [line.strip().split(" ", 1)[1] for line in out.read_text().splitlines()]  # after the time stamp
    assert any(line.startswith("vring0.avail.idx: ? -> ") for line in lines)  # the receive buffers posted
    assert "kick -> queue 0" in lines  # the start kick
    assert any(line.startswith("rpmsg <- name service: create 'rpmsg-echo' at ") for line in lines)
    sent = [line for line in lines if line.startswith("rpmsg -> ") and line.endswith("5 bytes: 68 65 6c 6c 6f")]
    got = [line for line in lines if line.startswith("rpmsg <- ") and line.endswith("5 bytes: 68 65 6c 6c 6f")]
    assert len(sent) == 1 and len(got) == 1
    assert "vring1.avail.idx: 0 -> 1" in lines  # the message made available to the remote
    assert "kick -> queue 1" in lines
    # Over: the level-5 lines are off again, and the C paths with them.
    assert not logging.getLogger("rpmsg.device").isEnabledFor(5)


def test_spy_to_stderr_for_ping_and_the_trace_stays_out_of_plain_logging(example_firmware: Path) -> None:
    """A real process (logging configured by main, as a user gets it): the spy's lines once each on stderr, not
    the logging handler's copy of the level-5 ones; without --spy, none."""

    def ping(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "remoteproc", *extra, "ping", "--platform", "sim", str(example_firmware), "-c", "2"],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=REPO,
        )

    spied = ping("--spy", "-")
    assert spied.returncode == 0, spied.stderr
    # Each ping is one message; the first reaches a sleeping remote and needs a kick, the second may find it still
    # spinning with kicks suppressed (its 50 us budget), which the spy rightly shows as no kick: 1 or 2 kicks.
    assert 1 <= spied.stderr.count("kick -> queue 1") <= 2 and spied.stderr.count("rpmsg -> ") == 2
    assert "rpmsg <- " in spied.stderr
    assert "Level 5" not in spied.stderr  # the logging handler's format for level 5
    plain = ping()
    assert plain.returncode == 0, plain.stderr
    assert "kick" not in plain.stderr and "rpmsg ->" not in plain.stderr


def test_spy_to_a_file_that_cannot_be_written_is_a_usage_error(
    example_firmware: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "missing" / "spy.txt"
    assert main(["--spy", str(bad), "load", "--platform", "sim", str(example_firmware)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"rproc: usage: --spy {bad}: No such file or directory"]
