"""Golden tables: C that defines tables the way firmware does, compiled by gcc and arm-none-eabi-gcc, must be
byte-identical to what rproc builds from the same description, and parse back to it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from remoteproc.elf import read_bytes, read_elf
from resource_table import Dialect, build, check, load_spec, parse
from resource_table.emit_c import emit_c
from tests.conftest import COMPILERS

GOLDEN = Path(__file__).parent / "golden"
DIALECTS = {"ti_dialect": Dialect.TI, "openamp_legacy": Dialect.OPENAMP_LEGACY}
SOURCES = sorted(GOLDEN.glob("*.c"))


def section_bytes(obj: Path) -> bytes:
    image = read_elf(obj)
    assert image.resource_table is not None, f"{obj} has no .resource_table"
    return read_bytes(obj, image.resource_table.offset, image.resource_table.size)


def test_every_golden_source_has_a_description() -> None:
    assert len(SOURCES) >= 6
    for source in SOURCES:
        assert source.with_suffix(".toml").is_file(), source


@pytest.mark.parametrize("cc", COMPILERS)
@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_compiled_section_equals_builder(source: Path, cc: str, compile_c: Callable[[Path, str], Path]) -> None:
    obj = compile_c(source, cc)
    expected_class = 64 if cc == "gcc" else 32
    assert read_elf(obj).elf_class == expected_class
    compiled = section_bytes(obj)
    spec = load_spec(source.with_suffix(".toml"))
    dialect = DIALECTS.get(source.stem, Dialect.LINUX)
    assert build(spec) == compiled
    assert parse(compiled, dialect=dialect) == spec
    errors = [f for f in check(compiled, dialect=dialect) if f.severity.value == "error"]
    assert errors == []


@pytest.mark.parametrize("cc", COMPILERS)
@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_emitted_c_compiles_to_the_same_bytes(
    source: Path, cc: str, compile_c: Callable[[Path, str], Path], tmp_path: Path
) -> None:
    spec = load_spec(source.with_suffix(".toml"))
    generated = tmp_path / f"{source.stem}_generated.c"
    generated.write_text(emit_c(spec, symbol=f"{source.stem}_table"))
    assert section_bytes(compile_c(generated, cc)) == build(spec)


@pytest.mark.parametrize("cc", COMPILERS)
def test_emitted_c_with_aligned_entries(cc: str, compile_c: Callable[[Path, str], Path], tmp_path: Path) -> None:
    """Padding between entries (align=4 after an odd-sized config space) is emitted as explicit members."""
    spec = load_spec(GOLDEN / "config_space.toml")
    generated = tmp_path / "aligned.c"
    generated.write_text(emit_c(spec, align=4))
    blob = build(spec, align=4)
    assert blob != build(spec)
    assert section_bytes(compile_c(generated, cc)) == blob
    assert parse(blob) == spec
