"""Linux's remoteproc core (6.1 and 6.12, in UML) through a remote's life: crashes the remote reports, Linux's
recovery on and off, the coredumps it then writes through devcoredump, the vdev status bytes in the order it
writes them (next to rproc's own), and the uml_rproc parameters carveouts= and da= (da != pa, PHYS).

The checks are in remoteproc/conformance/linux/lifecycle.py and driver_params.py (docs/linux-conformance.md,
"Lifecycle against the real core").
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from remoteproc.conformance.linux.build import KERNELS, UmlImages, ensure_uml
from remoteproc.conformance.linux.driver_params import (
    BAD_PARAMS,
    BAD_PARAMS_SCRIPT,
    PARAMS_SCRIPT,
    bad_params_kernel_args,
    carveouts_kernel_args,
    check_bad_params,
    check_da_is_not_pa,
    params_layout,
)
from remoteproc.conformance.linux.guest_run import GUEST_MEM, REMOTES, Run, boot_with, remote_command
from remoteproc.conformance.linux.lifecycle import (
    INLINE_SCRIPT,
    LIFECYCLE_SCRIPT,
    LIFECYCLE_TIMEOUT,
    check_coredump,
    check_crash_recovery,
    check_inline_coredump,
    check_status_sequence,
)
from remoteproc.conformance.linux.rproc_uml import Layout

pytestmark = pytest.mark.conformance


@pytest.fixture(scope="module", params=KERNELS)
def images(request: pytest.FixtureRequest) -> UmlImages:
    return ensure_uml(kernel=request.param)


@pytest.fixture(scope="module", params=REMOTES)
def lifecycle_run(
    request: pytest.FixtureRequest, images: UmlImages, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Run]:
    """One boot: start, three crashes (recovery on, on with coredumps enabled, off then `recover`), stop."""
    remote = remote_command(str(request.param), tmp_path_factory.mktemp("uml-remote"))
    tmp = tmp_path_factory.mktemp("lifecycle")
    layout = Layout.for_guest_mem(GUEST_MEM)
    with boot_with(
        images, remote, tmp, LIFECYCLE_SCRIPT, layout, lambda m, s: layout.kernel_args(m, s), LIFECYCLE_TIMEOUT
    ) as run:
        yield run


def test_crashes_are_recovered_with_recovery_on_and_off(lifecycle_run: Run) -> None:
    check_crash_recovery(lifecycle_run)


def test_coredump_through_devcoredump_holds_the_remotes_memory(lifecycle_run: Run) -> None:
    check_coredump(lifecycle_run)


def test_vdev_status_bytes_in_linuxs_order_and_rprocs(lifecycle_run: Run) -> None:
    check_status_sequence(lifecycle_run)


def test_status_check_fails_on_rprocs_old_stop_order(lifecycle_run: Run) -> None:
    """The break mode puts rproc's stop back where it was (the remote stopped before the vdev reset)."""
    with pytest.raises(AssertionError, match="rproc writes"):
        check_status_sequence(lifecycle_run, "stop-after-remote")


@pytest.fixture(scope="module")
def params_run(images: UmlImages, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    """da != pa: uml_rproc.da=0x10000000 with the vdev0 carveouts given through carveouts= only; rproc's Python
    remote (it maps the file at its physical address too, from PHYS)."""
    layout = params_layout()
    remote = remote_command("python", tmp_path_factory.mktemp("uml-remote"))
    tmp = tmp_path_factory.mktemp("params")
    with boot_with(images, remote, tmp, PARAMS_SCRIPT, layout, carveouts_kernel_args(layout)) as run:
        yield run


def test_carveouts_and_a_device_address_other_than_the_physical_one(params_run: Run) -> None:
    check_da_is_not_pa(params_run)


@pytest.mark.parametrize("case", sorted(BAD_PARAMS))
def test_bad_carveouts_are_refused_at_probe(
    case: str, images: UmlImages, tmp_path_factory: pytest.TempPathFactory
) -> None:
    param, message = BAD_PARAMS[case]
    layout = Layout.for_guest_mem(GUEST_MEM)
    tmp = tmp_path_factory.mktemp("bad-params")
    with boot_with(images, None, tmp, BAD_PARAMS_SCRIPT, layout, bad_params_kernel_args(param)) as run:
        check_bad_params(run, message)


def test_inline_coredump_holds_recovery_until_read(images: UmlImages, tmp_path_factory: pytest.TempPathFactory) -> None:
    remote = remote_command("c", tmp_path_factory.mktemp("uml-remote"))
    tmp = tmp_path_factory.mktemp("inline")
    layout = Layout.for_guest_mem(GUEST_MEM)
    with boot_with(images, remote, tmp, INLINE_SCRIPT, layout, layout.kernel_args) as run:
        check_inline_coredump(run)
