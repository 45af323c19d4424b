"""The rproc command line, in-process (main) and as a real subprocess (no tracebacks, exit codes)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from remoteproc.cli import main
from resource_table import build, load_spec, parse

GOLDEN = Path(__file__).resolve().parent.parent / "resource_table" / "golden"


def rproc(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "remoteproc", *args], capture_output=True, text=True, timeout=60)


def test_info_prints_the_table_a_user_can_read(example_firmware: Path) -> None:
    result = rproc("info", str(example_firmware))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "ELF32 little-endian ARM EXEC" in out
    assert "PT_LOAD" in out and "0x10000000" in out
    assert ".resource_table: address 0x80000000, 200 bytes" in out
    assert "carveout  'vdev0buffer' da 0x80100000 pa 0x80100000 len 0x100000 (1 MiB)" in out
    assert "rpmsg (id 7)" in out and "dfeatures 0x1 (NS)" in out
    assert "vring 1: da any align 0x1000 num 256 notifyid 1" in out


def test_info_json(example_firmware: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", "--json", str(example_firmware)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["class"] == "ELF32" and data["machine"] == "ARM"
    assert data["resource_table"]["version"] == 1
    assert [e["type"] for e in data["resource_table"]["entries"]] == ["carveout", "trace", "vdev"]
    assert data["findings"] == []
    table = data["resource_table"]
    assert table["num"] == 3 and len(table["offset"]) == 3 and table["offset"][0] == "0x1c"
    assert [s["p_type"] for s in data["segments"]] == ["0x1"] * len(data["segments"])


@pytest.mark.toolchain
def test_program_header_types_are_shown_by_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """PT_GNU_STACK and friends (a host gcc executable has them) by name, not as -0x1."""
    source = tmp_path / "p.c"
    source.write_text("int main(void) { return 0; }\n")
    program = tmp_path / "p"
    subprocess.run(["gcc", "-o", str(program), str(source)], check=True)
    assert main(["info", "--json", str(program)]) == 0
    segments = {s["type"]: s["p_type"] for s in json.loads(capsys.readouterr().out)["segments"]}
    assert segments["PT_GNU_STACK"] == "0x6474e551" and segments["PT_LOAD"] == "0x1"
    assert main(["info", str(program)]) == 0
    text = capsys.readouterr().out
    assert "PT_GNU_STACK" in text and "-0x1" not in text


def test_errors_have_no_traceback_and_exit_1(tmp_path: Path) -> None:
    bad = tmp_path / "bad.elf"
    bad.write_bytes(b"\x7fELF\x01\x01\x01" + bytes(10))
    result = rproc("info", str(bad))
    assert result.returncode == 1
    assert result.stderr.startswith("rproc: error: ")
    assert "Traceback" not in result.stderr
    debug = rproc("--debug", "info", str(bad))
    assert "Traceback" in debug.stderr and debug.returncode == 1


def test_usage_errors_exit_2() -> None:
    assert rproc("info").returncode == 2
    assert rproc("frobnicate").returncode == 2
    assert rproc("rsc", "show", "x.bin", "--dialect", "klingon").returncode == 2


def test_python_dash_m_and_console_script_agree(example_firmware: Path) -> None:
    script = Path(sys.executable).with_name("rproc")
    if not script.exists():
        pytest.fail(f"console script {script} missing: install with ./scripts/setup")
    a = subprocess.run([str(script), "info", str(example_firmware)], capture_output=True, text=True)
    assert a.returncode == 0 and a.stdout == rproc("info", str(example_firmware)).stdout


def test_rsc_build_bin_c_json_and_show(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = GOLDEN / "openamp_rpmsg.toml"
    out_bin, out_c, out_json = tmp_path / "t.bin", tmp_path / "t.c", tmp_path / "t.json"
    assert main(["rsc", "build", str(spec), "--bin", str(out_bin), "--c", str(out_c), "--json", str(out_json)]) == 0
    assert out_bin.read_bytes() == build(load_spec(spec))
    assert '__attribute__((section(".resource_table"), used, aligned(8)))' in out_c.read_text()
    assert load_spec(out_json) == load_spec(spec)
    capsys.readouterr()
    assert main(["rsc", "show", str(out_bin)]) == 0
    shown = capsys.readouterr().out
    assert "resource table v1: 3 entries, 200 bytes" in shown and "'vdev0vring0'" in shown
    assert main(["rsc", "show", "--json", str(out_bin)]) == 0
    assert json.loads(capsys.readouterr().out)["entries"][2]["type"] == "vdev"


def test_rsc_build_to_version_2(tmp_path: Path) -> None:
    out = tmp_path / "v2.bin"
    assert main(["rsc", "build", str(GOLDEN / "openamp_rpmsg.toml"), "--to-version", "2", "--bin", str(out)]) == 0
    assert parse(out.read_bytes()).version == 2


def test_rsc_build_needs_an_output(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rsc", "build", str(GOLDEN / "openamp_rpmsg.toml")]) == 2
    assert "--bin FILE" in capsys.readouterr().err


def test_rsc_build_bad_spec_names_the_key(tmp_path: Path) -> None:
    spec = tmp_path / "bad.toml"
    spec.write_text('[[entries]]\ntype = "trace"\nda = "here"\nlen = 1\n')
    result = rproc("rsc", "build", str(spec), "--bin", "-")
    assert result.returncode == 1
    assert "field entries[0].da" in result.stderr and "expected an integer" in result.stderr


def test_rsc_check_strict_and_lenient(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "warn.json"
    spec.write_text(json.dumps({"entries": [{"type": "raw", "rsc_type": 9, "data": ""}]}))
    assert main(["rsc", "check", str(spec)]) == 1
    assert main(["rsc", "check", "--lenient", str(spec)]) == 0
    assert "type 9 is reserved in the linux dialect" in capsys.readouterr().out


def test_rsc_show_reads_the_section_of_an_elf(example_firmware: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rsc", "show", str(example_firmware)]) == 0
    assert "'vdev0buffer'" in capsys.readouterr().out


def test_layout_text_json_and_window(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["layout", "--base", "0x80100000"]) == 0
    text = capsys.readouterr().out
    assert "vring0      0x80100000 .. 0x80102806" in text
    assert main(["layout", "--base", "0x80100000", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["vrings"][1] == {"da": "0x80103000", "align": "0x1000", "num": 256, "notifyid": 1}
    assert main(["layout", "--base", "0", "--window-size", "0x10000"]) == 1
    assert "is outside window" in capsys.readouterr().out
    assert main(["layout", "--base", "0", "--num", "100"]) == 1
    assert "100 is not a power of two" in capsys.readouterr().err
