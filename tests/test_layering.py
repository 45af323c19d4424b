"""The packages depend on each other one way only (STYLE.md): resource_table and transports import nothing of
ours, virtio only transports, rpmsg virtio and transports; remoteproc anything. Inside remoteproc, the command
line (remoteproc/cli/) sits on top: the library does not import it, and the platforms import neither it nor the
conformance suite."""

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
# who may import remoteproc.cli besides the package itself: `python -m remoteproc`, and the rsc-mutation corpus of
# the Linux conformance suite, which judges `rproc rsc check` itself against the kernel's verdict
CLI_USERS = ("remoteproc/__main__.py", "remoteproc/conformance/linux/")
ABOVE_PLATFORMS = ("remoteproc.cli", "remoteproc.conformance")


def imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def _within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


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


SCHEME_MODULES = {"devmem", "loop", "mirror", "openamp", "shm", "uart", "url", "vhost_user", "vhost_user_backend"}
LINUX_PEER = REPO / "remoteproc" / "conformance" / "linux"
LINUX_REGISTRY = "remoteproc.conformance.linux.remoteproc_peer"


def modules_imported(path: Path, *, names_too: bool = False) -> set[str]:
    """The dotted modules ``path`` imports at any depth of the file (``from a.b import c``: a.b, and with
    ``names_too`` also a.b.c, which is a module when c is one)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            if names_too:
                names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_transports_are_wired_once() -> None:
    """One Link per scheme, in the scheme's module: transports/url.py parses and dispatches, holding no Link of its
    own and importing no scheme (issue 18: it held a second ``loop://`` with a module-global and wrapped shm, devmem
    and uart a second time). rpmsg meets the transports' schemes in one module, rpmsg/wiring.py (there were five)."""
    url = REPO / "transports" / "url.py"
    tree = ast.parse(url.read_text(), str(url))
    assert [n.name for n in ast.walk(tree) if isinstance(n, ast.ClassDef)] == []
    assert {m for m in modules_imported(url) if m.startswith("transports.")} <= {
        "transports.errors", "transports.link", "transports.spy"
    }  # fmt: skip
    wiring = {
        str(p.relative_to(REPO))
        for p in (REPO / "rpmsg").rglob("*.py")
        if any(m.split(".")[0] == "transports" and m.split(".")[-1] in SCHEME_MODULES for m in modules_imported(p))
    }
    assert wiring == {"rpmsg/wiring.py"}


def test_the_linux_peers_catalogue_is_assembled_in_one_place() -> None:
    """remoteproc_peer.py imports the modules of boots and puts their BOOTS, SCENARIOS and BREAKS together; none of
    them imports it back, so nothing depends on the order in which modules are imported."""
    for path in sorted(LINUX_PEER.glob("*.py")):
        if path.name != "remoteproc_peer.py":
            imported = modules_imported(path, names_too=True)
            assert LINUX_REGISTRY not in imported, f"{path.relative_to(REPO)} imports the registry"


def test_the_library_does_not_import_its_command_line() -> None:
    users = set()
    for pkg in OURS:
        for path in (REPO / pkg).rglob("*.py"):
            rel = str(path.relative_to(REPO))
            if rel.startswith(("remoteproc/cli/", *CLI_USERS)):
                continue
            if any(_within(name, "remoteproc.cli") for name in modules_imported(path, names_too=True)):
                users.add(rel)
    assert users == set()


def test_platforms_sit_below_the_command_line_and_the_conformance_suite() -> None:
    files = sorted((REPO / "remoteproc/platforms").glob("*.py"))
    assert {"rp2350.py", "sim_remote.py", "openamp.py"} <= {p.name for p in files}
    for path in files:
        imported = modules_imported(path, names_too=True)
        above = {name for name in imported for top in ABOVE_PLATFORMS if _within(name, top)}
        assert above == set(), f"{path.relative_to(REPO)} imports {sorted(above)}"


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
        banned = [m for m in modules_imported(path) if m.startswith(CONFORMANCE_LAYERS[part])]
        assert not banned, f"{path.relative_to(REPO)} imports {banned}"
