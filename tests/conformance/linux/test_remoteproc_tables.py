"""Resource tables rproc emits, loaded by Linux's own remoteproc core (6.1 and 6.12, in UML), against the C and the
Python host remote: vendor and reserved entry types, two trace buffers, a vdev with config space, carveouts the
driver does not register, a devmem entry, two vdevs on the driver's named carveouts, memory whose device address
is not its physical one. Each is accepted or refused
as rproc's loader accepts or refuses it, and after boot the firmware's memory equals what rproc's loader writes
(remoteproc/conformance/linux/tables.py, emitted_tables.py; docs/linux-conformance.md, "What Linux and rproc still
do differently").
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from remoteproc.conformance.linux.build import KERNELS, UmlImages, ensure_uml
from remoteproc.conformance.linux.guest_run import REMOTES, Run, remote_command
from remoteproc.conformance.linux.tables import BREAKS, CHECKS, TABLE_REMOTES, boot_table

pytestmark = pytest.mark.conformance

# devmem never starts a remote: one is enough; da != pa needs the remote that maps the physical address too
# (the C remote resolves descriptors as device addresses: host/uml_remote.c, PHYS).
CASES = [(table, remote) for table in CHECKS for remote in REMOTES if remote in TABLE_REMOTES.get(table, REMOTES)]


@pytest.fixture(scope="module", params=KERNELS)
def images(request: pytest.FixtureRequest) -> UmlImages:
    return ensure_uml(kernel=request.param)


@pytest.fixture(params=CASES, ids=[f"{table}-{remote}" for table, remote in CASES])
def table_run(
    request: pytest.FixtureRequest, images: UmlImages, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Run]]:
    table, remote = request.param
    command = remote_command(remote, tmp_path_factory.mktemp("uml-remote"))
    with boot_table(images, command, tmp_path_factory.mktemp(f"table-{table}"), table) as run:
        yield table, run


def test_linux_and_rprocs_loader_agree_on_the_table(table_run: tuple[str, Run]) -> None:
    """The check passes; each break mode aimed at this table (rproc's side wrong on purpose) makes it fail."""
    table, run = table_run
    CHECKS[table](run)
    for mode, b in BREAKS.items():
        if b.fails == {f"table-{table}"}:
            with pytest.raises(AssertionError):
                CHECKS[table](run, mode)
                pytest.fail(f"break {mode} ({b.what}) did not make the check fail")
