"""The corpus of broken resource tables (remoteproc/conformance/linux/mutation_corpus.py, rsc_mutations.py)
without a kernel: the generator, the firmware files it writes, and rproc's verdict on each (Linux's are in
tests/conformance/linux/test_rsc_mutations_linux.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from remoteproc.conformance.linux import mutation_corpus as mc
from remoteproc.conformance.linux import rsc_mutations as rm
from remoteproc.conformance.linux.rproc_uml import Layout, build_firmware
from remoteproc.elf import read_bytes, read_elf

LAYOUT = Layout.for_guest_mem("64M")

# rproc's verdict on each mutation (RemoteProc.load's order: parse, rsc check --lenient, loader).
RPROC_ACCEPTS = {
    "good",
    "section-padded",
    "num-0",
    "num-1",
    "offset-unaligned",
    "offset-into-entry",
    "type-4",
    "type-vendor",
    "trace-len-0",
    "vdev-config-space",
    "vdev-id-99",
    "vring-da-any",
    "vring-da-elsewhere",
}


def test_the_corpus_is_named_distinct_and_fits() -> None:
    corpus = mc.corpus(LAYOUT)
    names = [m.name for m in corpus]
    assert 25 <= len(corpus) <= 40
    assert len(set(names)) == len(names) and names[0] == "good"
    assert all(len(m.data) <= mc.ROOM and m.what for m in corpus)
    tables = {(m.data.ljust(mc.ROOM, b"\0"), m.size) for m in corpus}
    assert len(tables) == len(corpus), "two mutations give the same firmware"
    good = corpus[0]
    assert all(m == good or (m.data, m.size) != (good.data, good.size) for m in corpus)
    # every refusal the source predicts names the kernel's message
    assert all(m.linux_reason for m in corpus if m.name.endswith(("reserved", "truncated")))


@pytest.mark.toolchain
def test_the_good_table_is_the_one_uml_fw_c_declares(tmp_path: Path) -> None:
    """The corpus starts from the table the firmware Linux boots in the other tests has, byte for byte."""
    elf = build_firmware(LAYOUT, tmp_path)
    section = read_elf(elf).resource_table
    assert section is not None
    assert read_bytes(elf, section.offset, section.size) == mc.corpus(LAYOUT)[0].data


@pytest.fixture(scope="module")
def firmware(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return mc.write_corpus(LAYOUT, tmp_path_factory.mktemp("corpus"))


@pytest.mark.toolchain
def test_each_firmware_holds_its_table_and_section_size(firmware: dict[str, Path]) -> None:
    """Linux reads the table from the section header (sh_offset, sh_size): each file says what it should."""
    base = read_elf(firmware["good"])
    for m in mc.corpus(LAYOUT):
        elf = read_elf(firmware[m.name])
        section = elf.resource_table
        assert section is not None and base.resource_table is not None
        assert (section.addr, section.size) == (base.resource_table.addr, m.size), m.name
        assert read_bytes(firmware[m.name], section.offset, mc.ROOM) == m.data.ljust(mc.ROOM, b"\0"), m.name
        assert [(s.paddr, s.memsz) for s in elf.segments] == [(s.paddr, s.memsz) for s in base.segments]


@pytest.mark.toolchain
def test_rprocs_verdict_on_each_mutation(firmware: dict[str, Path]) -> None:
    verdicts = {m.name: rm.rproc_verdict(firmware[m.name], LAYOUT) for m in mc.corpus(LAYOUT)}
    assert {name for name, v in verdicts.items() if v.accepted} == RPROC_ACCEPTS
    assert all(v.reason for v in verdicts.values() if not v.accepted)
    assert verdicts["vring-num-1024"].stage == "loader" and "overlaps vring 0" in verdicts["vring-num-1024"].reason
    assert "outside the remote's memory" in verdicts["trace-outside-memory"].reason
    # `rproc rsc check --lenient` is the check stage: it fails exactly where rproc refuses before the loader
    for name in ("good", "ver-0", "vdev-reserved", "vring-num-1024", "offset-in-offsets"):
        status, output = rm.rsc_check_cli(firmware[name])
        assert (status == 0) == (verdicts[name].accepted or verdicts[name].stage == "loader"), (name, output)


def test_linux_guest_lines_become_verdicts() -> None:
    lines = [
        "rsc-log good [    1.0] remoteproc remoteproc0: Booting fw image rsc-good.elf, size 9000",
        "rsc-mut good start=ok state=running channel=yes after=offline err=",
        "rsc-log ver-0 [    1.1] remoteproc remoteproc0: firmware: direct-loading firmware rsc-ver-0-truncated.elf",
        "rsc-log ver-0 [    1.1] remoteproc remoteproc0: unsupported fw ver: 0",
        "rsc-mut ver-0 start=fail state=offline channel=no after=offline err=sh: write error: Invalid argument",
        "rsc-log vring-num-0 [    1.2] remoteproc remoteproc0: invalid qsz (0) or alignment (4096)",
        "rsc-log vring-num-0 [    1.2] rproc-virtio: probe of rproc-virtio.0.auto failed with error -22",  # 6.1
        "rsc-mut vring-num-0 start=ok state=running channel=no after=offline err=",
        "rsc-log vring-da-elsewhere [    1.3] rproc-virtio rproc-virtio.1.auto: probe with driver rproc-virtio "
        "failed with error -12",  # 6.12
        "rsc-mut vring-da-elsewhere start=ok state=running channel=no after=offline err=",
    ]
    verdicts = rm.parse_guest(lines)
    assert {n: v.outcome for n, v in verdicts.items()} == {
        "good": rm.ACCEPTED,
        "ver-0": rm.REFUSED,
        "vring-num-0": rm.VDEV_REFUSED,
        "vring-da-elsewhere": rm.VDEV_REFUSED,
    }
    assert verdicts["ver-0"].reason() == "remoteproc remoteproc0: unsupported fw ver: 0"
    assert verdicts["good"].channel and verdicts["good"].reason() == ""
