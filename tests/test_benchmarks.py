"""./scripts/bench --json / --histogram (benchmarks/run.py, benchmarks/report.py): the smallest configuration of the
two host-only benchmarks, and the files' shape and arithmetic. No timing is asserted: the figures are whatever this
machine measured."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from benchmarks.report import merge_runs

REPO = Path(__file__).resolve().parent.parent
SVG = "{http://www.w3.org/2000/svg}"


def test_bench_json_and_histogram(tmp_path: Path) -> None:
    out, svg = tmp_path / "bench.json", tmp_path / "rtt.svg"
    argv = [sys.executable, str(REPO / "benchmarks" / "run.py"), "--quick", "--only", "virtio_stream,rpmsg_pingpong"]
    done = subprocess.run(
        [*argv, "--json", str(out), "--histogram", str(svg)], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr
    assert "Python endpoint <-> C rpmsg remote" in done.stdout  # the text tables still print
    doc = json.loads(out.read_text())
    assert doc["quick"] is True and doc["machine"]["cpus"]
    assert [(r["benchmark"], r["config"]) for r in doc["runs"]] == [
        ("virtio_stream", {"count": 300, "batch": 64, "repeat": 1, "engine": "c"}),
        ("rpmsg_pingpong", {"rounds": 300, "messages": 300}),
    ]
    figures = doc["figures"]
    by_name = {(f["benchmark"], f["name"]): f for f in figures}
    assert len(by_name) == len(figures)  # names are unique within a benchmark
    compared = 0
    for f in figures:
        assert set(f) == {"benchmark", "name", "value", "unit", "better", "baseline", "ratio"}
        assert f["better"] in ("lower", "higher") and f["unit"] in ("us", "msgs/s") and f["value"] > 0
        if f["baseline"] is None:
            assert f["ratio"] is None
            continue
        compared += 1
        base = by_name[(f["benchmark"], f["baseline"]["name"])]  # the baseline is a figure of the same run
        assert base["baseline"] is None and base["value"] == f["baseline"]["value"] and base["unit"] == f["unit"]
        assert f["ratio"] == pytest.approx(f["value"] / base["value"], rel=1e-12)
    for name in ("16 B: Python virtqueue API", "496 B: Python virtqueue API"):
        assert by_name[("virtio_stream", name)]["baseline"]["name"] == name.replace("Python virtqueue API", "C program")
    pingpong = {f["name"]: f for f in figures if f["benchmark"] == "rpmsg_pingpong"}
    assert pingpong["busy-poll: Python endpoint <-> C rpmsg remote"]["baseline"]["name"] == "busy-poll: C vring echo"
    zero_copy = pingpong["host -> C remote, 496 B: zero-copy (get_buffer, write 4 bytes into its view, send_buffer)"]
    assert zero_copy["unit"] == "msgs/s"
    assert compared >= 2 + 7

    # the histogram: one panel per Python-endpoint round-trip figure, every round trip in its bars, the median
    # marked being the figure's value
    panels = ET.parse(svg).getroot().findall(f"{SVG}g")
    drawn = {g.get("data-title"): g for g in panels}
    expected = [n for n in pingpong if "Python endpoint" in n]
    assert sorted(drawn) == sorted(expected) and len(expected) >= 4
    for name, g in drawn.items():
        bars = g.findall(f"{SVG}rect")
        counts = [int(b.get("data-count", "")) for b in bars]
        edges = [(float(b.get("data-from", "")), float(b.get("data-to", ""))) for b in bars]
        assert g.get("data-samples") == "300" and sum(counts) == 300
        assert all(a < b for a, b in edges) and all(edges[i][1] == edges[i + 1][0] for i in range(len(edges) - 1))
        p50 = float(g.get("data-p50", ""))
        assert p50 == pytest.approx(pingpong[name]["value"], abs=1e-3)
        assert edges[0][0] - 1e-3 <= p50 <= float(g.get("data-p99", "")) <= edges[-1][1] + 1e-3


def _figures(v: float, b: float) -> list[dict[str, object]]:
    """One run's figures: a baseline and a figure compared with it."""
    base = {"benchmark": "x", "name": "base", "value": b, "unit": "us", "better": "lower", "baseline": None}
    fig = {"benchmark": "x", "name": "fig", "value": v, "unit": "us", "better": "lower"}
    return [{**base, "ratio": None}, {**fig, "baseline": {"name": "base", "value": b}, "ratio": v / b}]


def test_merge_runs_takes_medians_and_keeps_every_run() -> None:
    """./scripts/bench --runs N: a figure's value is the median of its values, its ratio the median of the ratios
    each run took against its own baseline (not the medians' ratio), and every run's values and ratios are kept."""
    base, fig = merge_runs([_figures(2, 1), _figures(9, 3), _figures(4, 4)])
    assert base["value"] == 3 and base["ratio"] is None and base["baseline"] is None
    assert base["runs"] == {"values": [1, 3, 4], "ratios": [None, None, None]}
    assert fig["value"] == 4 and fig["baseline"] == {"name": "base", "value": 3}
    assert fig["ratio"] == 2 and fig["runs"] == {"values": [2, 9, 4], "ratios": [2, 3, 1]}  # 4 / 3 is not it
    with pytest.raises(ValueError, match=r"'fig' is missing from run\(s\) \[2\]"):
        merge_runs([_figures(1, 1), _figures(1, 1)[:1]])


def test_bench_runs_twice(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    argv = [sys.executable, str(REPO / "benchmarks" / "run.py"), "--quick", "--only", "wait_modes", "--runs", "2"]
    done = subprocess.run([*argv, "--json", str(out)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "(run 2 of 2)" in done.stdout and "medians of 2 runs" in done.stdout
    doc = json.loads(out.read_text())
    assert doc["repeats"] == 2 and [r["benchmark"] for r in doc["runs"]] == ["wait_modes"] * 2
    by_name = {f["name"]: f for f in doc["figures"]}
    assert len(by_name) == len(doc["figures"]) == 3 + 6
    for f in doc["figures"]:
        values = f["runs"]["values"]
        assert len(values) == 2 and f["value"] == pytest.approx(sum(values) / 2)
    spin = by_name["round trip, wait mode spin"]
    assert spin["ratio"] == pytest.approx(sum(spin["runs"]["ratios"]) / 2)


def test_big_buffers_json(tmp_path: Path) -> None:
    """benchmarks/big_buffers.py: medians with their same-run baselines (Python senders against the C sender, the C
    sender against memcpy), and each run's figures against that run's own baselines."""
    out = tmp_path / "big.json"
    argv = [sys.executable, str(REPO / "benchmarks" / "big_buffers.py"), "--messages", "200", "--repeat", "2"]
    done = subprocess.run([*argv, "--json", str(out)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    doc = json.loads(out.read_text())
    assert doc["config"] == {"messages": 200, "buffer": 65536, "payload": 65520, "num": 64, "repeat": 2}
    by_name = {f["name"]: f for f in doc["figures"]}
    assert len(by_name) == len(doc["figures"]) == 4 * 3
    for run in ("", "run 1: ", "run 2: "):
        memcpy = by_name[f"{run}memcpy of 65520 B"]
        c = by_name[f"{run}65520 B host -> C remote (touching every byte): C sender"]
        assert memcpy["baseline"] is None and c["baseline"] == {"name": memcpy["name"], "value": memcpy["value"]}
        for how in ("Python send (copy)", "Python get_buffer (zero-copy)"):
            f = by_name[f"{run}65520 B host -> C remote (touching every byte): {how}"]
            assert f["unit"] == "GB/s" and f["better"] == "higher" and f["value"] > 0
            assert f["baseline"] == {"name": c["name"], "value": c["value"]}
            assert f["ratio"] == pytest.approx(f["value"] / c["value"], rel=1e-12)


def test_zero_copy_receive_json(tmp_path: Path) -> None:
    """benchmarks/zero_copy_receive.py: per role, size and reading, recv_message (zero-copy) against recv (copy)
    of the same run, lower is better; a zero-copy receive that fails (a message lost or wrong) fails the run."""
    out = tmp_path / "zcr.json"
    argv = [sys.executable, str(REPO / "benchmarks" / "zero_copy_receive.py"), "--messages", "100", "--rounds", "2"]
    done = subprocess.run([*argv, "--json", str(out)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    doc = json.loads(out.read_text())
    assert doc["config"] == {"messages": 100, "rounds": 2, "sizes": [496, 4080, 16368, 65520]}
    by_name = {f["name"]: f for f in doc["figures"]}
    assert len(by_name) == len(doc["figures"]) == 2 * 2 * 4 * 2
    for role in ("host", "remote"):
        for reads in ("reading every byte", "touching none"):
            for size in (496, 4080, 16368, 65520):
                what = f"{role} receives {size} B, {reads}"
                copy, lend = by_name[f"{what}: recv (copy)"], by_name[f"{what}: recv_message (zero-copy)"]
                assert copy["baseline"] is None and copy["unit"] == lend["unit"] == "ns/msg"
                assert lend["baseline"] == {"name": copy["name"], "value": copy["value"]}
                assert lend["better"] == "lower" and lend["ratio"] == pytest.approx(lend["value"] / copy["value"])


def test_zero_copy_send_json(tmp_path: Path) -> None:
    """benchmarks/zero_copy_send.py: per role and size, each zero-copy send (and the batched copy) against the
    copy with the same write, of the same run, lower is better; a message lost or wrong fails the run."""
    out = tmp_path / "zcs.json"
    argv = [sys.executable, str(REPO / "benchmarks" / "zero_copy_send.py"), "--messages", "100", "--rounds", "2"]
    done = subprocess.run([*argv, "--json", str(out)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    doc = json.loads(out.read_text())
    assert doc["config"] == {"messages": 100, "rounds": 2, "sizes": [496, 4080, 16368, 65520]}
    by_name = {f["name"]: f for f in doc["figures"]}
    kinds = ("zero-copy", "zero-copy-reuse", "batch-copy-write", "zero-copy-batch")
    assert len(by_name) == len(doc["figures"]) == 2 * 4 * (1 + len(kinds))
    for role in ("host", "remote"):
        for size in (496, 4080, 16368, 65520):
            base = by_name[f"{role} sends {size} B: copy-write"]
            assert base["baseline"] is None and base["unit"] == "ns/msg" and base["better"] == "lower"
            for kind in kinds:
                fig = by_name[f"{role} sends {size} B: {kind}"]
                assert fig["baseline"] == {"name": base["name"], "value": base["value"]}
                assert fig["better"] == "lower" and fig["ratio"] == pytest.approx(fig["value"] / base["value"])


def test_uart_link_rpmsg_rows_json(tmp_path: Path) -> None:
    """benchmarks/uart_link.py's rpmsg rows: rproc host -> rproc remote over a pty in two processes, each wait mode,
    the C path against the Python path of the same run (the figure asserts the path it asked for was taken)."""
    out = tmp_path / "uart.json"
    argv = [sys.executable, str(REPO / "benchmarks" / "uart_link.py"), "--messages", "50", "--rpmsg-runs", "1",
            "--rpmsg-messages", "100", "--qemu-rounds", "0"]  # fmt: skip
    done = subprocess.run([*argv, "--json", str(out)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    by_name = {f["name"]: f for f in json.loads(out.read_text())["figures"]}
    for wait in ("block", "spin"):
        for what, unit, better in (("round trip 64 B", "us", "lower"), ("one-way 496 B", "msgs/s", "higher")):
            base = by_name[f"rpmsg over uart, {wait}: {what}, Python path"]
            fig = by_name[f"rpmsg over uart, {wait}: {what}, C path"]
            assert base["baseline"] is None and base["unit"] == fig["unit"] == unit and fig["better"] == better
            assert fig["baseline"] == {"name": base["name"], "value": base["value"]} and fig["value"] > 0


def test_python_remote_stream_json(tmp_path: Path) -> None:
    """benchmarks/python_remote_stream.py: each Python remote receive against the C remote measured in turn with
    it, the medians against each other and every round against its own round's C remote."""
    out = tmp_path / "prs.json"
    argv = [sys.executable, str(REPO / "benchmarks" / "python_remote_stream.py"), "--messages", "500", "--rounds", "2"]
    done = subprocess.run([*argv, "--json", str(out)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    doc = json.loads(out.read_text())
    assert doc["config"] == {"messages": 500, "rounds": 2, "payload": 496}
    by_name = {f["name"]: f for f in doc["figures"]}
    assert len(by_name) == len(doc["figures"]) == 2 * (5 + 2) * 2 * 3
    for wait in ("busy", "spin"):  # the other way: the Python remote sending, the host receiving
        for send in ("send_many", "zero-copy"):
            c_name = f"host -> C remote, 496 B: send_many, wait mode {wait}, next to the Python remote's {send}"
            py_name = f"Python remote -> host, 496 B: {send} -> recv_many_into, wait mode {wait}"
            for prefix in ("", "round 1: ", "round 2: "):
                c, py = by_name[prefix + c_name], by_name[prefix + py_name]
                assert c["baseline"] is None and c["value"] > 0 and py["value"] > 0
                assert py["baseline"] == {"name": c["name"], "value": c["value"]}
    apis = [("send", "recvfrom")]
    apis += [("send_many", a) for a in ("recvfrom_many", "recv_many", "recv_many_into", "recv_message (zero-copy)")]
    for wait in ("busy", "spin"):
        for send, api in apis:
            c_name = f"host -> C remote, 496 B: {send}, wait mode {wait}, next to {api}"
            py_name = f"host -> Python remote, 496 B: {send} -> {api}, wait mode {wait}"
            for prefix in ("", "round 1: ", "round 2: "):
                c, py = by_name[prefix + c_name], by_name[prefix + py_name]
                assert c["baseline"] is None and c["unit"] == py["unit"] == "msgs/s" and c["value"] > 0
                assert py["baseline"] == {"name": c["name"], "value": c["value"]} and py["better"] == "higher"
                assert py["ratio"] == pytest.approx(py["value"] / c["value"])


def test_wait_modes_json(tmp_path: Path) -> None:
    """benchmarks/wait_modes.py: each wait mode's round trip against busy-polling's from the same run, and the idle
    CPU of the host and of the remote per mode, as a share of a core."""
    out = tmp_path / "wait.json"
    argv = [sys.executable, str(REPO / "benchmarks" / "wait_modes.py"), "--rounds", "200", "--idle", "0.3"]
    done = subprocess.run([*argv, "--json", str(out)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    doc = json.loads(out.read_text())
    assert doc["config"] == {"rounds": 200, "idle": 0.3}
    by_name = {f["name"]: f for f in doc["figures"]}
    busy = by_name["round trip, wait mode busy"]
    assert busy["baseline"] is None and busy["unit"] == "us" and busy["value"] > 0
    for mode in ("spin", "block"):
        f = by_name[f"round trip, wait mode {mode}"]
        assert f["baseline"] == {"name": busy["name"], "value": busy["value"]}
        assert f["ratio"] == pytest.approx(f["value"] / busy["value"], rel=1e-12)
    for mode in ("busy", "spin", "block"):
        for side in ("host", "remote"):
            f = by_name[f"{side} CPU while idle, wait mode {mode}"]
            assert f["unit"] == "% of a core" and f["better"] == "lower" and f["value"] >= 0
    assert len(by_name) == len(doc["figures"]) == 3 + 6


def _openamp_peers(
    tmp_path: Path, *args: str, bin_dir: str | None = None
) -> tuple[subprocess.CompletedProcess[str], Path]:
    out = tmp_path / "openamp.json"
    env = {k: v for k, v in os.environ.items() if k != "RPROC_OPENAMP_BIN"}
    if bin_dir is not None:
        env["RPROC_OPENAMP_BIN"] = bin_dir
    argv = [sys.executable, str(REPO / "benchmarks" / "openamp_peers.py"), *args, "--json", str(out)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=600, env=env), out


def test_openamp_peers_without_the_programs_is_skipped(tmp_path: Path) -> None:
    """benchmarks/openamp_peers.py needs OpenAMP's own programs, which this repository neither holds nor builds:
    without them it says so, ends with status 0 and writes a JSON with no figures (./scripts/bench goes on)."""
    done, out = _openamp_peers(tmp_path)
    assert done.returncode == 0, done.stderr
    assert "skipped" in done.stdout and "RPROC_OPENAMP_BIN" in done.stdout
    doc = json.loads(out.read_text())
    assert doc["benchmark"] == "openamp_peers" and doc["figures"] == []


def test_openamp_peers_names_the_missing_programs(tmp_path: Path) -> None:
    """A directory given without the programs in it: an error naming what is missing, not a traceback."""
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "rpmsg-echo-static").write_text("#!/bin/sh\n")
    (tmp_path / "bin" / "rpmsg-echo-static").chmod(0o755)
    done, _ = _openamp_peers(tmp_path, bin_dir=str(tmp_path / "bin"))
    if "skipped" in done.stdout:
        pytest.skip(done.stdout.strip())  # not root, or no unshare(1): the directory is not looked at
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert "has no msg-test-rpmsg-flood-ping, msg-test-rpmsg-ping" in done.stderr


def test_openamp_peers_json(tmp_path: Path) -> None:
    """With OpenAMP's programs (RPROC_OPENAMP_BIN): every rproc figure against OpenAMP's pair of the same run."""
    bin_dir = os.environ.get("RPROC_OPENAMP_BIN")
    if not bin_dir:
        pytest.skip("RPROC_OPENAMP_BIN (OpenAMP's Linux demo programs) not given")
    done, out = _openamp_peers(
        tmp_path, "--runs", "1", "--warmup", "0.1", "--window", "0.2", "--passes", "1", bin_dir=bin_dir
    )
    assert done.returncode == 0, done.stderr
    if "skipped" in done.stdout:
        pytest.skip(done.stdout.strip())
    by_name = {f["name"]: f for f in json.loads(out.read_text())["figures"]}
    flood = by_name["one-way 17 B, OpenAMP host -> OpenAMP echo remote"]
    ping = by_name["round trip 17..496 B, OpenAMP host -> OpenAMP echo remote"]
    assert flood["baseline"] is None and ping["baseline"] is None and flood["value"] > 0 and ping["value"] > 0
    rproc = [f for f in by_name.values() if f["baseline"] is not None]
    assert len(rproc) == 6 and len(by_name) == 8
    for f in rproc:
        base = flood if f["unit"] == "msgs/s" else ping
        assert f["baseline"] == {"name": base["name"], "value": base["value"]} and f["value"] > 0
        assert f["ratio"] == pytest.approx(f["value"] / base["value"], rel=1e-12)
