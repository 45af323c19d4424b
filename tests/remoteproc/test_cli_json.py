"""--json on every command: stdout holds one JSON document (trace: one object per line) with the facts of the text
output, addresses as "0x..." strings; what the command is doing goes to stderr; errors stay one line on stderr."""

from __future__ import annotations

import argparse
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from remoteproc.cli import build_parser, main
from remoteproc.firmware import firmware_info
from resource_table import build
from tests.remoteproc.fake_soc import FakeSoc, board_toml
from tests.remoteproc.test_linux_platform import fake_sysfs


def _subcommands(parser: argparse.ArgumentParser, prefix: str = "") -> Iterator[tuple[str, argparse.ArgumentParser]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                if any(isinstance(a, argparse._SubParsersAction) for a in sub._actions):
                    yield from _subcommands(sub, f"{prefix}{name} ")
                else:
                    yield f"{prefix}{name}", sub


def test_every_command_has_json() -> None:
    """Before: trace, attach, start, stop, demo, bench, uart-boot and rsc check had none."""
    missing = [
        name
        for name, sub in _subcommands(build_parser())
        if not any("--json" in a.option_strings for a in sub._actions)
    ]
    assert missing == []


def test_demo_and_bench_json(services_firmware: Path, capsys: pytest.CaptureFixture[str]) -> None:
    table = firmware_info(services_firmware).table
    assert table is not None
    for command in ("demo", "bench"):
        argv = [command, "--platform", "sim", "--firmware", str(services_firmware), "--rounds", "50"]
        assert main([*argv, "--messages", "100", "--json"]) == 0
        captured = capsys.readouterr()
        report = json.loads(captured.out)
        assert report["firmware"] == str(services_firmware) and report["platform"] == "sim"
        assert report["channels"] == {"rpmsg-echo": "0x400"}
        carveout = next(e for e in table.entries if getattr(e, "name", "") == "vdev0buffer")
        assert report["carveouts"] == [{"name": "vdev0buffer", "da": f"{carveout.da:#x}", "len": f"{carveout.len:#x}"}]
        [vdev] = report["vdevs"]
        assert [r["notifyid"] for r in vdev["vrings"]] == [0, 1] and all(r["num"] == 256 for r in vdev["vrings"])
        assert all(r["da"].startswith("0x") for r in vdev["vrings"]) and vdev["buffers_da"] == f"{carveout.da:#x}"
        assert report["echo_sizes"] == {"first": 1, "last": 496, "identical": True}
        rtt = report["round_trip"]
        assert rtt["rounds"] == 50 and rtt["size"] == 16 and 0 < rtt["p50_us"] <= rtt["p99_us"]
        stream = report["stream"]
        assert (stream["messages"], stream["size"], stream["window"]) == (100, 496, 64)
        assert stream["mb_per_s"] == pytest.approx(stream["msgs_per_s"] * 496 / 1e6)
        assert "rpmsg-echo announced" in report["trace"] and report["state"] == "offline"
        # what it did, for a person, went to stderr
        assert "echoed every size from 1 to 496 bytes: all identical" in captured.err


def test_trace_json_lines(example_firmware: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["trace", "--platform", "sim", str(example_firmware), "--seconds", "1", "--send", "rpmsg-echo:x"]
    assert main([*argv, "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {"trace": 0, "line": "sim remote: rpmsg-echo announced"} in lines
    assert all(set(obj) == {"trace", "line"} and obj["trace"] == 0 for obj in lines)


def test_rsc_check_json(example_firmware: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rsc", "check", str(example_firmware), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report == {"file": str(example_firmware), "mode": "strict", "passed": True, "failing": 0, "findings": []}
    spec = tmp_path / "warn.json"
    spec.write_text(json.dumps({"entries": [{"type": "raw", "rsc_type": 9, "data": ""}]}))
    assert main(["rsc", "check", str(spec), "--json"]) == 1
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert (report["mode"], report["passed"], report["failing"]) == ("strict", False, 1)
    [finding] = report["findings"]
    assert finding["severity"] == "warning" and "type 9 is reserved in the linux dialect" in finding["message"]
    assert finding["index"] == 0 and isinstance(finding["offset"], int)
    assert captured.err == f"{spec}: 1 problem(s) fail the strict check\n"  # the verdict stays on stderr
    assert main(["rsc", "check", "--lenient", str(spec), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["mode"], report["passed"], report["failing"], len(report["findings"])) == ("lenient", True, 0, 1)


def test_start_stop_json_on_a_fake_sysfs(
    tmp_path: Path, example_firmware: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_sysfs(tmp_path, "m4")
    state = tmp_path / "sys/class/remoteproc/remoteproc0/state"

    def kernel(request: str, answer: str) -> None:  # plays the kernel: waits for the request, reports the state
        deadline = time.monotonic() + 5
        while state.read_text() != request and time.monotonic() < deadline:
            time.sleep(0.005)
        state.write_text(answer + "\n")

    t = threading.Thread(target=kernel, args=("start", "running"))
    t.start()
    assert main(["start", "m4", str(example_firmware), "--root", str(tmp_path), "--json"]) == 0
    t.join()
    report = json.loads(capsys.readouterr().out)
    firmware_dir = str(tmp_path / "lib/firmware")
    assert report == {
        "index": 0,
        "name": "m4",
        "state": "running",
        "firmware": {"name": example_firmware.name, "dir": firmware_dir},
    }
    t = threading.Thread(target=kernel, args=("stop", "offline"))
    t.start()
    assert main(["stop", "0", "--root", str(tmp_path), "--json"]) == 0
    t.join()
    assert json.loads(capsys.readouterr().out) == {"index": 0, "name": "m4", "state": "offline"}
    # the remote crashes as it starts: the JSON says so, and the exit code is 1
    t = threading.Thread(target=kernel, args=("start", "crashed"))
    t.start()
    assert main(["start", "0", "--root", str(tmp_path), "--timeout", "0.5", "--json"]) == 1
    t.join()
    assert json.loads(capsys.readouterr().out) == {"index": 0, "name": "m4", "state": "crashed", "firmware": None}
    assert main(["start", "gpu", "--root", str(tmp_path), "--json"]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.startswith("rproc: error: ") and captured.err.count("\n") == 1


@pytest.fixture
def soc(tmp_path: Path) -> Iterator[FakeSoc]:
    fake = FakeSoc(tmp_path / "physical")
    yield fake
    fake.close()


def test_attach_json(soc: FakeSoc, tmp_path: Path, services_firmware: Path, capsys: pytest.CaptureFixture[str]) -> None:
    info = firmware_info(services_firmware)
    assert info.table is not None
    soc.run_firmware(0x80000000, wait_for_reset=False, table=build(info.table))
    board = tmp_path / "board.toml"
    board.write_text(board_toml(soc.path, soc.host_uio.fileno(), attach_table=0x80000000))
    assert main(["attach", "--board", str(board), "--send", "rpmsg-echo:from the cli", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["channels"]["rpmsg-echo"] == "0x400"
    assert report["replies"] == [{"channel": "rpmsg-echo", "reply": b"from the cli".hex()}]
    assert report["detached"] is True


def test_conformance_list_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["conformance", "--list", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    names = [s["name"] for s in listing["host_role"]]
    assert "name-service-create" in names and all(s["rule"] for s in listing["host_role"])
    assert listing["remote_role"] and listing["breaks"] and listing["host_breaks"]


def test_a_rewritten_trace_buffer_is_shown_line_by_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """A trace buffer that wrapped (its text no longer continues what was shown) is shown again whole, one line per
    line. Before: one line with the newlines escaped (`three\\x0afour\\x0a`), so a --json object held several lines."""
    from remoteproc import session

    texts = iter(["one\ntwo\n", "three\nfour\n"])

    class Rewriting:  # the trace buffer of a remote whose log wrapped between two reads
        rpmsg = None

        def __init__(self, platform: object) -> None:
            self.last = ""

        def __enter__(self) -> Rewriting:
            return self

        def __exit__(self, *exc: object) -> None:
            pass

        def load(self, firmware: Path) -> None:
            pass

        def start(self) -> None:
            pass

        def stop(self) -> None:
            pass

        def read_trace(self, index: int) -> str:
            self.last = next(texts, self.last)
            return self.last

    monkeypatch.setattr(session, "RemoteProc", Rewriting)
    lines: list[str] = []
    assert session.follow_trace(Path("fw.elf"), None, seconds=0.2, say=lines.append) == "three\nfour\n"  # type: ignore[arg-type]
    assert lines == ["one", "two", "three", "four"]
