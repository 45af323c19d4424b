"""The UML build's cache: ``${XDG_CACHE_HOME:-~/.cache}/rproc/uml/``, one directory per build, named
``<kind>-<key>`` (build.py computes the key from everything the build is made of).

``build_entry`` returns the directory, building it first when it is absent: a build runs in a scratch directory
``.tmp-<name>-*`` next to the entry under a per-entry lock (``.<name>.lock``: several pytest processes may start
at once) and is renamed into place only when it returned, so an entry that exists is complete. Scratch
directories of killed builds are removed by the next builder that finds their lock free. ``prune`` keeps the
``KEEP_ENTRIES`` most recently used entries of each kind.

This is bookkeeping: it does not shape what is built, so its bytes are not part of a cache key (changing it does
not rebuild a kernel).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

KEEP_ENTRIES = 8
"""Cache entries of each kind kept, most recently used first: a new build input (config, patch, package
version) makes a new entry, and older ones would otherwise pile up (a kernel entry is about 5 MB). Two kernels
(6.1, 6.12) and several checkouts with different driver sources share the cache: fewer would evict an entry
another checkout is about to use and make it build again."""


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "rproc" / "uml"


@contextlib.contextmanager
def _locked(root: Path, name: str) -> Iterator[None]:
    """Serialise builders of one cache entry (several pytest processes may start at once)."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / f".{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _remove_abandoned(root: Path) -> None:
    """Remove the scratch directories of builds that were killed (``.tmp-<name>-*`` whose lock is free)."""
    for tmp in root.glob(".tmp-*-*"):
        name = tmp.name[len(".tmp-") :].rsplit("-", 1)[0]
        with open(root / f".{name}.lock", "w") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # being built right now
            shutil.rmtree(tmp, ignore_errors=True)


def build_entry(root: Path, name: str, force: bool, build: Callable[[Path, Path, Path], None]) -> Path:
    """The cache directory ``root/name``, made by ``build(result_dir, scratch_dir, log)`` unless it exists.

    ``build`` fills ``result_dir``, which is renamed to ``root/name`` only when it returned; scratch space
    and leftovers of interrupted builds (``.tmp-<name>-*``) are removed. The build log ends up in
    ``root/name/build.log``, or stays in ``root/.name.log`` when the build failed.
    """
    final = root / name
    if final.is_dir() and not force:
        os.utime(final)  # most recently used: kept by prune
        return final
    with _locked(root, name):
        if final.is_dir() and not force:
            return final  # another process built it while we waited
        for stale in root.glob(f".tmp-{name}-*"):
            shutil.rmtree(stale, ignore_errors=True)  # we hold the lock: nobody is using these
        _remove_abandoned(root)
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{name}-", dir=root))
        try:
            result = tmp / "result"
            scratch = tmp / "scratch"
            result.mkdir()
            scratch.mkdir()
            log = root / f".{name}.log"
            log.unlink(missing_ok=True)
            build(result, scratch, log)
            log.rename(result / "build.log")
            if final.exists():  # --force: replace the old entry
                old = tmp / "old"
                final.rename(old)
            result.rename(final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    prune(root, name.split("-", 1)[0], keep=KEEP_ENTRIES)
    return final


def prune(root: Path, kind: str, keep: int) -> None:
    """Remove all but the ``keep`` most recently used ``root/<kind>-*`` entries."""
    entries = sorted((p for p in root.glob(f"{kind}-*") if p.is_dir()), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in entries[keep:]:
        shutil.rmtree(old, ignore_errors=True)
