"""The rproc command line, in-process (main) and as a real subprocess (no tracebacks, exit codes)."""

from __future__ import annotations

import json
import os
import resource
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from remoteproc import firmware_info
from remoteproc.cli import main
from resource_table import build, load_spec, parse

GOLDEN = Path(__file__).resolve().parent.parent / "resource_table" / "golden"


def rproc(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "remoteproc", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        preexec_fn=_bounded,
    )


def _bounded() -> None:
    """At most 2 GiB of address space for the child: a command that reads without bound fails in it, not in
    the machine (Python, numpy-free imports and the C extensions need far less)."""
    resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))


def one_error_line(result: subprocess.CompletedProcess[str], *words: str) -> None:
    """Exit 1 with one line 'rproc: error: ...' holding every word, and no traceback."""
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    [line] = [line for line in result.stderr.splitlines() if line.startswith("rproc: error: ")]
    for word in words:
        assert word in line, line


def patched_firmware(src: Path, tmp_path: Path, name: str, fmt: str, offset: int, value: int) -> Path:
    data = bytearray(src.read_bytes())
    struct.pack_into(fmt, data, offset, value)
    out = tmp_path / name
    out.write_bytes(bytes(data))
    return out


def shm_files_of_this_process() -> list[Path]:
    return sorted(Path("/dev/shm").glob(f"rproc-sim-{os.getpid()}-*"))


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


@pytest.mark.parametrize(
    "command",
    [("info",), ("rsc", "show"), ("rsc", "check"), ("load", "--platform", "sim"), ("ping", "--platform", "sim")],
)
def test_a_fifo_is_refused_at_once(tmp_path: Path, command: tuple[str, ...]) -> None:
    """Before, each of these opened the FIFO and waited for a writer for good (here: 30 s, then a failure)."""
    fifo = tmp_path / "fw.elf"
    os.mkfifo(fifo)
    one_error_line(rproc(*command, str(fifo), timeout=30), str(fifo), "a FIFO, not a regular file")


def test_devices_and_oversized_tables_are_refused(tmp_path: Path) -> None:
    """/dev/zero was read until MemoryError (5.4 GB); a table file has a 16 MiB cap, named in the error."""
    one_error_line(rproc("rsc", "check", "/dev/zero", timeout=30), "/dev/zero: a character device")
    one_error_line(rproc("rsc", "show", str(tmp_path), timeout=30), f"{tmp_path}: a directory")
    big = tmp_path / "big.bin"
    with big.open("wb") as f:
        f.truncate((16 << 20) + 1)
    one_error_line(rproc("rsc", "check", str(big)), f"{big}: 16777217 bytes, larger than the 16777216 bytes (16 MiB)")


def test_output_to_a_fifo_nobody_reads(tmp_path: Path) -> None:
    fifo = tmp_path / "out.bin"
    os.mkfifo(fifo)
    result = rproc("rsc", "build", str(GOLDEN / "openamp_rpmsg.toml"), "--bin", str(fifo), timeout=30)
    one_error_line(result, f"{fifo}: a FIFO no process reads")


def test_a_board_file_that_is_a_fifo_or_too_deep(tmp_path: Path, example_firmware: Path) -> None:
    fifo = tmp_path / "board.toml"
    os.mkfifo(fifo)
    load = ("load", "--platform", "devmem", "--board")
    one_error_line(rproc(*load, str(fifo), str(example_firmware), timeout=30), "a FIFO, not a regular file")
    deep = tmp_path / "deep.toml"
    deep.write_text("a = " + "[" * 100_000 + "]" * 100_000)
    one_error_line(rproc(*load, str(deep), str(example_firmware)), f"{deep}: not a board file")
    wrong = tmp_path / "wrong.toml"
    wrong.write_text('[[region]]\nname = "ram"\nda = "high"\nsize = 1\n')
    one_error_line(rproc(*load, str(wrong), str(example_firmware)), f"{wrong}: a value of the wrong kind")


@pytest.mark.parametrize(
    "command",
    [
        ("info", "missing.elf"),
        ("rsc", "show", "missing.bin"),
        ("rsc", "check", "missing.bin"),
        ("rsc", "show", "missing.json"),
        ("rsc", "build", "missing.toml", "--bin", "-"),
        ("load", "--platform", "sim", "missing.elf"),
        ("ping", "--platform", "sim", "missing.elf"),
    ],
)
def test_a_missing_file_is_exit_1_from_every_command(tmp_path: Path, command: tuple[str, ...]) -> None:
    """Before: exit 2 (usage) from rsc show/check of a raw table, 1 from info and the rest."""
    [missing] = [tmp_path / a for a in command if a.startswith("missing")]
    args = [str(tmp_path / a) if a.startswith("missing") else a for a in command]
    one_error_line(rproc(*args), f"{missing}: ", "No such file")


def test_deep_json_is_one_error_line(tmp_path: Path) -> None:
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    for command in (("rsc", "show"), ("rsc", "check"), ("rsc", "build")):
        one_error_line(rproc(*command, str(deep)), "deep.json: nested deeper than the 5 levels")


def test_segment_problems_fail_info_rsc_check_and_load_alike(example_firmware: Path, tmp_path: Path) -> None:
    """Overlapping segments and a segment past 4 GiB: info and rsc check report the loader's own error (exit 1)
    and load refuses with it; before, info and rsc check passed them."""
    phoff = struct.unpack_from("<I", example_firmware.read_bytes(), 0x1C)[0]
    paddr2 = phoff + 2 * 32 + 12
    for name, value, words in (
        ("overlap.elf", 0x10000010, "segments 0 (0x10000000.."),
        ("wrap.elf", 0xFFFFF000, "segment 2 (0xfffff000 + memsz 0x2000) ends at 0x100001000, past the top"),
    ):
        fw = patched_firmware(example_firmware, tmp_path, name, "<I", paddr2, value)
        info = rproc("info", str(fw))
        assert info.returncode == 1 and f"error: {words}" in info.stdout, info.stdout
        check = rproc("rsc", "check", "--lenient", str(fw))
        assert check.returncode == 1 and f"error: {words}" in check.stdout, check.stdout
        one_error_line(rproc("load", "--platform", "sim", str(fw)), f"{fw}: cannot be loaded: {words}")


def test_elf_without_program_headers_is_refused_at_load(
    example_firmware: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before: 'loaded', the sim remote's traceback shown, a 10 s wait for a child that had exited, and its
    22 MB /dev/shm file left behind."""
    fw = patched_firmware(example_firmware, tmp_path, "nophdr.elf", "<H", 44, 0)  # e_phnum
    assert main(["info", str(fw)]) == 1
    assert "error: no loadable segment" in capsys.readouterr().out
    assert main(["load", "--platform", "sim", str(fw)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"rproc: error: {fw}: cannot be loaded: no loadable segment") and err.count("\n") == 1
    assert shm_files_of_this_process() == []


def test_a_table_without_entries_loads_and_says_there_is_nothing_to_talk_to(
    example_firmware: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """num = 0 is a legal table (Linux's rproc_handle_resources loops zero times): rsc check passes it, load
    starts the firmware; asking to talk is one clear error, not an AssertionError."""
    table = firmware_info(example_firmware).elf.resource_table
    assert table is not None
    fw = patched_firmware(example_firmware, tmp_path, "empty.elf", "<I", table.offset + 4, 0)  # num
    assert main(["rsc", "check", str(fw)]) == 0
    assert main(["load", "--platform", "sim", str(fw)]) == 0
    assert "no vdev in the resource table: no rpmsg channels" in capsys.readouterr().out
    for command in (["load", "--send", "rpmsg-echo:hi"], ["ping"]):
        assert main([*command, "--platform", "sim", str(fw)]) == 1
        err = capsys.readouterr().err
        assert (
            err == f"rproc: error: {fw}: its resource table has no vdev (0 entries): it runs, but there is no "
            "rpmsg device to talk to\n"
        )
    assert shm_files_of_this_process() == []


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["ping", "-s", "1000", "-c", "1"], "rproc: error: rpmsg: 1000 bytes do not fit a 512-byte buffer"),
        (["ping", "--channel", "nope", "--timeout", "0.5"], "rproc: error: rpmsg: timed out: no channel 'nope'"),
        (["load", "--send", "nope:x", "--timeout", "0.5"], "rproc: error: rpmsg: timed out: no channel 'nope'"),
        (["trace", "--send", "nope:x", "--seconds", "0.5"], "rproc: error: rpmsg: timed out: no channel 'nope'"),
    ],
)
def test_rpmsg_errors_are_one_line_and_exit_1(
    example_firmware: Path, capsys: pytest.CaptureFixture[str], args: list[str], line: str
) -> None:
    """Before: RpmsgTimeout and MessageTooLong reached the user as tracebacks."""
    assert main([*args, "--platform", "sim", str(example_firmware)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(line) and err.count("\n") == 1, err


def test_the_parser_loads_no_engine_and_no_suite() -> None:
    """Building the parser (every command's module) imports neither rpmsg, virtio nor the conformance suite: a
    command imports what it runs when it runs (before: the conformance command's peer choices loaded the suite,
    and with it rpmsg and virtio, for `rproc info` too)."""
    probe = (
        "import sys\n"
        "from remoteproc.cli import build_parser\n"
        "build_parser()\n"
        "print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] in ('rpmsg', 'virtio') "
        "or m.startswith('remoteproc.conformance'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.split() == []
