"""The installed distribution's version (one place: pyproject.toml's ``version``, read back through the package
metadata), for ``rproc --version``, ``remoteproc.__version__`` and ``rproc doctor``."""

from __future__ import annotations

from importlib import metadata

DISTRIBUTION = "rproc"


def version() -> str:
    """The version of the installed ``rproc`` distribution, or "unknown" when it runs from a tree never installed."""
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return "unknown"


__version__ = version()
