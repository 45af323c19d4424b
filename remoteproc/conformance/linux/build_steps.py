"""Running one step of the UML build: a command with a fixed environment, its output appended to the build log,
progress every 15 s, and on failure a BuildError with the log's last lines.

The environment (``build_env``: no inherited ARCH/CROSS_COMPILE/O/KBUILD_OUTPUT, ``LC_ALL=C``, a fixed build user,
host and timestamp) shapes what gets built, so this module is part of the recipe: build.py lists it in
``RECIPE_MODULES`` and both cache keys hash its bytes.
"""

from __future__ import annotations

import collections
import contextlib
import os
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from remoteproc.conformance.linux.build_report import BuildError, Progress


def build_env() -> dict[str, str]:
    """The environment of every step: the caller's, without what would redirect the kernel build, made
    reproducible (the C locale; a fixed user, host and timestamp compiled into the kernel)."""
    env = {k: v for k, v in os.environ.items() if k not in ("ARCH", "CROSS_COMPILE", "O", "KBUILD_OUTPUT")}
    env.update(
        LC_ALL="C",
        KBUILD_BUILD_USER="rproc",
        KBUILD_BUILD_HOST="rproc",
        KBUILD_BUILD_TIMESTAMP="2000-01-01",
    )
    return env


def run_step(
    command: Sequence[str | Path],
    cwd: Path,
    log: Path,
    what: str,
    progress: Progress | None = None,
    stdout: Path | None = None,
) -> None:
    """Run a build step; its output goes to ``log``; on failure raise with the log's last lines.

    With ``progress``, report every 15 s how far it got (the last line of output).
    """
    tail: collections.deque[bytes] = collections.deque(maxlen=40)
    with contextlib.ExitStack() as stack:
        log_file = stack.enter_context(open(log, "ab"))
        log_file.write(f"$ {' '.join(map(str, command))}\n".encode())
        log_file.flush()
        out_file = stack.enter_context(open(stdout, "wb")) if stdout is not None else None
        proc = subprocess.Popen(
            [str(c) for c in command],
            cwd=cwd,
            env=build_env(),
            stdin=subprocess.DEVNULL,
            stdout=out_file if out_file is not None else subprocess.PIPE,
            stderr=subprocess.STDOUT if out_file is None else log_file,
        )
        try:
            lines = 0
            last_report = time.monotonic()
            if proc.stdout is not None:
                for line in proc.stdout:
                    log_file.write(line)
                    tail.append(line)
                    lines += 1
                    if progress is not None and time.monotonic() - last_report >= 15:
                        last_report = time.monotonic()
                        progress(f"{what}: {lines} steps, at {line.decode(errors='replace').strip()}")
            returncode = proc.wait()
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        finally:
            if proc.stdout is not None:
                proc.stdout.close()
    if returncode != 0:
        shown = b"".join(tail).decode(errors="replace") if tail else log.read_text(errors="replace")[-4000:]
        raise BuildError(f"{what} failed (exit status {returncode}); full log: {log}\n{shown}")
