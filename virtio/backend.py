"""Which engine runs: the C fast path when it is built, else the Python twin.

``RPROC_VIRTIO_BACKEND=python`` forces the twin; ``=c`` demands the C module and fails loudly without it (CI
runs with the C backend: tests/virtio/test_backend.py). :data:`ACTIVE` says which one is in use. When the C
module is missing and nothing asked for the twin, the import warns once (a RuntimeWarning naming the fix):
falling back silently would hide a broken install. ``rproc doctor`` says which engine runs and why.
"""

from __future__ import annotations

import os
import warnings

from virtio.pyring import PyVring


def _detect() -> str:
    wanted = os.environ.get("RPROC_VIRTIO_BACKEND", "")
    if wanted == "python":
        return "python"
    try:
        from virtio.cring import load

        load()
    except ImportError as exc:
        if wanted == "c":
            raise ImportError(
                f"RPROC_VIRTIO_BACKEND=c but the C engine is not built: {exc} (reinstall with ./scripts/setup)"
            ) from exc
        warnings.warn(
            f"rproc: the C virtqueue engine is not built ({exc}); running the pure-Python engine (~10x slower per "
            "message). Install a C compiler and reinstall rproc, or set RPROC_VIRTIO_BACKEND=python to choose it.",
            RuntimeWarning,
            stacklevel=2,
        )
        return "python"
    return "c"


ACTIVE = _detect()


def ring_class(name: str | None = None) -> type[PyVring]:
    """The engine class for ``name`` ("c" or "python"), default :data:`ACTIVE`."""
    name = name or ACTIVE
    if name == "python":
        return PyVring
    if name == "c":
        from virtio.cring import CVring

        return CVring  # type: ignore[return-value]  # same methods, checked by the differential tests
    raise ValueError(f"unknown virtio backend {name!r} (c, python)")
