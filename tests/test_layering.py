"""The packages depend on each other one way only (STYLE.md): resource_table and transports import nothing of
ours, virtio only transports, rpmsg virtio and transports; remoteproc anything."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
OURS = {"resource_table", "transports", "virtio", "rpmsg", "remoteproc"}
ALLOWED = {
    "resource_table": set(),
    "transports": set(),
    "virtio": {"transports"},
    "rpmsg": {"virtio", "transports"},
    "remoteproc": OURS,
}
THIRD_PARTY_BORDERS = {"construct": {"resource_table/schema.py"}, "elftools": {"remoteproc/elf.py"}}


def imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(OURS))
def test_dependencies_flow_one_way(package: str) -> None:
    files = sorted((REPO / package).rglob("*.py"))
    assert files
    for path in files:
        used = imports(path) & OURS - {package}
        assert used <= ALLOWED[package], f"{path.relative_to(REPO)} imports {sorted(used - ALLOWED[package])}"


@pytest.mark.parametrize("library", sorted(THIRD_PARTY_BORDERS))
def test_third_party_libraries_have_one_border(library: str) -> None:
    users = {str(p.relative_to(REPO)) for pkg in OURS for p in (REPO / pkg).rglob("*.py") if library in imports(p)}
    assert users == THIRD_PARTY_BORDERS[library]


def _conformance_imports(path: Path) -> set[str]:
    """The remoteproc.conformance modules ``path`` imports, by their dotted names."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("remoteproc.conformance"):
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names if a.name.startswith("remoteproc.conformance"))
    return names


# remoteproc/conformance: the shared module and the report import no role; a role imports neither the other role
# nor any peer; peers (peers/, linux/) build on the roles' contracts.
CONFORMANCE_LAYERS = {
    "common.py": ("remoteproc.conformance.",),
    "report.py": ("remoteproc.conformance.",),
    "host_role": ("remoteproc.conformance.remote_role", "remoteproc.conformance.peers", "remoteproc.conformance.linux"),
    "remote_role": ("remoteproc.conformance.host_role", "remoteproc.conformance.peers", "remoteproc.conformance.linux"),
}


@pytest.mark.parametrize("part", sorted(CONFORMANCE_LAYERS))
def test_conformance_roles_do_not_import_their_peers(part: str) -> None:
    where = REPO / "remoteproc" / "conformance" / part
    files = [where] if where.is_file() else sorted(where.rglob("*.py"))
    assert files
    for path in files:
        banned = [m for m in _conformance_imports(path) if m.startswith(CONFORMANCE_LAYERS[part])]
        assert not banned, f"{path.relative_to(REPO)} imports {banned}"
