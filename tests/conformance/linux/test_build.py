"""The UML build's modules: what the cache keys hash (the recipe modules and the guest program's sources by name,
not the bookkeeping), the guest program built on the host, and the cache entries (built once, complete or absent,
pruned). No kernel is built here."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from remoteproc.conformance.linux import build, build_cache
from remoteproc.conformance.linux.build_report import BuildError

RECIPE = ("build.py", "build_steps.py")  # what is built and how each step runs
NOT_RECIPE = ("build_cache.py", "build_packages.py", "build_report.py")  # where it is kept, apt, errors


@pytest.fixture
def linux_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the build's directory that the keys read (build.HERE), with fixed package versions."""
    copy = tmp_path / "linux"
    shutil.copytree(build.HERE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(build, "HERE", copy)
    monkeypatch.setattr(build, "package_version", lambda package: f"{package}-1")
    busybox = tmp_path / "busybox"
    busybox.write_bytes(b"busybox")
    monkeypatch.setattr(build, "BUSYBOX", busybox)
    return copy


def test_the_keys_hash_the_recipe_modules_by_name(linux_dir: Path) -> None:
    assert build.RECIPE_MODULES == RECIPE
    for inputs in (build.kernel_inputs("6.1"), build.initramfs_inputs("6.12")):
        parts = dict(inputs)
        for name in build.RECIPE_MODULES:
            assert parts[f"recipe:{name}"] == (linux_dir / name).read_bytes()
        assert parts["apt-packages"] == " ".join(build.APT_PACKAGES).encode()
        assert not [name for name in parts if any(module in name for module in NOT_RECIPE)]


@pytest.mark.parametrize(("module", "rebuilds"), [*((m, True) for m in RECIPE), *((m, False) for m in NOT_RECIPE)])
def test_only_a_change_to_the_recipe_changes_the_keys(linux_dir: Path, module: str, rebuilds: bool) -> None:
    before = (build.kernel_key("6.1"), build.initramfs_key("6.1"))
    with open(linux_dir / module, "a") as f:
        f.write("# changed\n")
    after = (build.kernel_key("6.1"), build.initramfs_key("6.1"))
    if rebuilds:
        assert after[0] != before[0] and after[1] != before[1]
    else:
        assert after == before


GUEST_SOURCES = ("probe_commands.h", "probe_ctrl.c", "probe_data.c", "probe_util.c", "probe_util.h", "rpmsg_probe.c")


@pytest.fixture
def guest_dir(linux_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The copy's guest/ directory, which guest_sources reads."""
    monkeypatch.setattr(build, "GUEST", linux_dir / "guest")
    return linux_dir / "guest"


def test_the_initramfs_key_hashes_every_guest_source_by_name(guest_dir: Path) -> None:
    assert [p.name for p in build.guest_sources()] == list(GUEST_SOURCES)
    parts = build.initramfs_inputs("6.1")
    guest = [(name, data) for name, data in parts if name.startswith("guest:")]
    assert guest == [(f"guest:{name}", (guest_dir / name).read_bytes()) for name in GUEST_SOURCES]
    assert not [name for name, _ in build.kernel_inputs("6.1") if name.startswith("guest:")]
    sources = [p for p in build.probe_compile_command(Path("probe")) if isinstance(p, Path) and p.suffix == ".c"]
    assert [p.name for p in sources] == [name for name in GUEST_SOURCES if name.endswith(".c")]


@pytest.mark.parametrize("name", ["probe_util.h", "probe_data.c", "new_part.c"])
def test_a_guest_source_changes_only_the_initramfs_key(guest_dir: Path, name: str) -> None:
    before = (build.kernel_key("6.1"), build.initramfs_key("6.1"))
    with open(guest_dir / name, "a") as f:
        f.write("/* changed */\n")
    after = (build.kernel_key("6.1"), build.initramfs_key("6.1"))
    assert after[0] == before[0] and after[1] != before[1]
    if name == "new_part.c":
        assert guest_dir / name in build.probe_compile_command(Path("probe"))


def test_the_guest_program_builds_from_its_sources_and_runs(tmp_path: Path) -> None:
    """The initramfs's compile command on the host: the usage text, and echo/stream/recv over a FIFO (which
    hands back what is written to it, as the remote's echo channel does)."""
    probe = tmp_path / "rpmsg-probe"
    subprocess.run(build.probe_compile_command(probe), check=True, capture_output=True, timeout=300)
    usage = subprocess.run([probe], capture_output=True, text=True, timeout=10)
    assert usage.returncode == 2 and usage.stdout == ""
    assert usage.stderr.startswith("usage: rpmsg-probe wait-channel NAME TIMEOUT_MS\n")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)

    def run(*args: str) -> tuple[int, list[str]]:
        result = subprocess.run([probe, *args], capture_output=True, text=True, timeout=30)
        return result.returncode, result.stdout.splitlines()

    assert run("echo", str(fifo), "1", "496", "bad") == (
        1,
        ["echo size=1 ok", "echo size=496 ok", "echo fail reason=bad-size"],
    )
    code, lines = run("stream", str(fifo), "20", "64", "1")
    assert code == 0 and len(lines) == 1
    assert re.fullmatch(r"stream count=20 size=64 window=1 ok us=\d+ msgs_per_s=\d+", lines[0])
    assert run("recv", str(fifo), "50") == (1, ["recv fail reason=timeout"])
    assert run("send", "/dev/full", "hi") == (1, ["send len=2 fail reason=errno=ENOSPC call=write"])
    assert run("ctrl-dev", "/dev/null", "create", "n", "1", "any") == (
        1,
        ["ctrl-dev create name=n fail reason=errno=ENOTTY call=ioctl(RPMSG_CREATE_DEV_IOCTL)"],
    )


def test_an_unknown_kernel_is_named() -> None:
    with pytest.raises(BuildError, match=r"no kernel '5\.10': this builds 6\.1, 6\.12"):
        build.kernel_key("5.10")


def test_an_entry_is_built_once_and_a_failed_build_leaves_none(tmp_path: Path) -> None:
    calls: list[Path] = []

    def make(result: Path, scratch: Path, log: Path) -> None:
        calls.append(result)
        log.write_text("built\n")
        (result / "linux").write_text("kernel")
        (scratch / "big").write_text("scratch")

    entry = build_cache.build_entry(tmp_path, "kernel-aaaa", False, make)
    assert entry == tmp_path / "kernel-aaaa"
    assert (entry / "linux").read_text() == "kernel"
    assert (entry / "build.log").read_text() == "built\n"
    assert build_cache.build_entry(tmp_path, "kernel-aaaa", False, make) == entry
    assert len(calls) == 1
    assert not list(tmp_path.glob(".tmp-*"))  # no scratch left

    def fail(result: Path, scratch: Path, log: Path) -> None:
        log.write_text("step 3 failed\n")
        (result / "linux").write_text("half")
        raise BuildError("step 3 failed")

    with pytest.raises(BuildError, match="step 3 failed"):
        build_cache.build_entry(tmp_path, "kernel-bbbb", False, fail)
    assert not (tmp_path / "kernel-bbbb").exists()
    assert not list(tmp_path.glob(".tmp-*"))
    assert (tmp_path / ".kernel-bbbb.log").read_text() == "step 3 failed\n"  # kept to read
    build_cache.build_entry(tmp_path, "kernel-aaaa", True, make)  # force: built again
    assert len(calls) == 2


def test_abandoned_scratch_is_removed_and_old_entries_pruned(tmp_path: Path) -> None:
    abandoned = tmp_path / ".tmp-kernel-cccc-x1y2"
    abandoned.mkdir()
    for i in range(build_cache.KEEP_ENTRIES + 2):
        old = tmp_path / f"kernel-{i:04x}"
        old.mkdir()
        os.utime(old, (1000 + i, 1000 + i))
    (tmp_path / "initramfs-0000").mkdir()  # another kind: not counted

    def make(result: Path, scratch: Path, log: Path) -> None:
        log.write_text("")

    build_cache.build_entry(tmp_path, "kernel-ffff", False, make)
    assert not abandoned.exists()
    kept = sorted(p.name for p in tmp_path.glob("kernel-*"))
    newest = [f"kernel-{i:04x}" for i in range(3, build_cache.KEEP_ENTRIES + 2)]
    assert kept == sorted([*newest, "kernel-ffff"])
    assert (tmp_path / "initramfs-0000").is_dir()
