"""The UML build's modules: what the cache keys hash (the recipe modules by name, not the bookkeeping) and the
cache entries (built once, complete or absent, pruned). No kernel is built here."""

from __future__ import annotations

import os
import shutil
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
