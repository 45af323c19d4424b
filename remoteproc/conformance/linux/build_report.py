"""How the UML build reports: ``BuildError`` when a step fails, ``Progress`` messages while it runs.

Shared by the recipe (build.py), the Debian packages it needs (build_packages.py) and the peers that start the
kernel (uml_qemu.py, rproc_uml.py raise BuildError too); it holds no build step, so it is not part of a cache key.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

Progress = Callable[[str], None]
"""Receives one line of progress (``ensure_uml``'s ``progress``; by default printed to stderr)."""


class BuildError(RuntimeError):
    """The kernel or the initramfs could not be built; the message says which step and why."""


def stderr_progress(message: str) -> None:
    print(f"rproc-uml: {message}", file=sys.stderr, flush=True)
