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


SANS_IO = ["rpmsg/protocol.py", "rpmsg/core.py", "rpmsg/core_common.py", "rpmsg/host_core.py", "rpmsg/remote_core.py"]
IO_MODULES = {"os", "select", "socket", "threading", "asyncio", "mmap", "subprocess", "time", "serial", "signal"}


@pytest.mark.parametrize("module", SANS_IO)
def test_the_rpmsg_protocol_core_does_no_io(module: str) -> None:
    """The protocol core (rules, both roles' cores) takes memory views and returns events and intents: it opens,
    sleeps and starts nothing (STYLE.md, "Protocol cores do no I/O")."""
    assert not imports(REPO / module) & IO_MODULES


def test_an_endpoint_uses_its_device_only_through_the_named_interface() -> None:
    """rpmsg/endpoint.py reaches its device through ``self._dev`` (typed EndpointDevice, which mypy checks), never
    through ``self.device.<member>`` (the public handle, typed RpmsgDevice, whose private members it must not use)."""
    tree = ast.parse((REPO / "rpmsg/endpoint.py").read_text())
    used = [
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Attribute)
        and node.value.attr == "device"
        and isinstance(node.value.value, ast.Name)
        and node.value.value.id == "self"
    ]
    assert used == []
