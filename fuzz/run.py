"""Run one atheris fuzz target: python fuzz/run.py TARGET [libFuzzer options, e.g. -runs=100000] [SEED_DIR...]"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import atheris

with atheris.instrument_imports():
    import resource_table  # noqa: F401
    import rpmsg  # noqa: F401
    import virtio  # noqa: F401
    from remoteproc import elf, firmware  # noqa: F401
    from transports import serial_frames, serial_link, vhost_user, vhost_user_messages  # noqa: F401

from fuzz.targets import TARGETS, use_scratch
from remoteproc import children


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] == "--list":
        print("targets:", ", ".join(TARGETS))
        return 0 if len(sys.argv) > 1 else 2
    target = TARGETS[sys.argv[1]]
    seeds = Path(__file__).parent / "seeds" / sys.argv[1]
    # One scratch directory for the run, removed when it ends however it ends (a crash found, SIGTERM, SIGHUP):
    # libFuzzer writes what it finds into the first corpus directory (a scratch one, so the seeds stay as
    # committed; they are read as the second), the targets write their files next to it.
    root = Path(tempfile.mkdtemp(prefix=f"rproc-fuzz-{sys.argv[1]}-"))
    work, files = root / "corpus", root / "f"  # short: a socket path must fit in 108 bytes
    work.mkdir()
    files.mkdir()
    use_scratch(files)
    options = [a for a in sys.argv[2:] if a.startswith("-")]
    extra = [a for a in sys.argv[2:] if not a.startswith("-")]  # more seed directories (e.g. built firmware)
    args = [sys.argv[0], *options, str(work), *extra]
    if seeds.is_dir():
        args.append(str(seeds))
    pid = 0
    try:
        with children.unwind_on_signals():
            # libFuzzer's out-of-memory check (-rss_limit_mb) reads the peak RSS, and Linux hands a process its
            # parent's peak at exec: started from a test runner that once held gigabytes, every input would look
            # out of memory (seen in a random-order run). A forked child's peak is its own.
            tie = children.die_with_parent()
            pid = os.fork()
            if pid == 0:
                for signum in (signal.SIGTERM, signal.SIGHUP):
                    signal.signal(signum, signal.SIG_DFL)
                if tie is not None:
                    tie()  # the fuzzer dies with this process
                atheris.Setup(args, target)
                atheris.Fuzz()
                os._exit(0)
            _, status = os.waitpid(pid, 0)
            pid = 0
    except children.Terminated as exc:
        return 128 + exc.signum
    finally:
        if pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        shutil.rmtree(root, ignore_errors=True)
    return os.waitstatus_to_exitcode(status) & 0xFF if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)


if __name__ == "__main__":
    raise SystemExit(main())
