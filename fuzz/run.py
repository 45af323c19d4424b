"""Run one atheris fuzz target: python fuzz/run.py TARGET [libFuzzer options, e.g. -runs=100000] [SEED_DIR...]"""

from __future__ import annotations

import os
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

from fuzz.targets import TARGETS


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] == "--list":
        print("targets:", ", ".join(TARGETS))
        return 0 if len(sys.argv) > 1 else 2
    target = TARGETS[sys.argv[1]]
    seeds = Path(__file__).parent / "seeds" / sys.argv[1]
    # libFuzzer writes what it finds into the first corpus directory: a scratch one, so the seeds stay as
    # committed; they are read as the second.
    work = tempfile.mkdtemp(prefix=f"rproc-fuzz-{sys.argv[1]}-")
    options = [a for a in sys.argv[2:] if a.startswith("-")]
    extra = [a for a in sys.argv[2:] if not a.startswith("-")]  # more seed directories (e.g. built firmware)
    args = [sys.argv[0], *options, work, *extra]
    if seeds.is_dir():
        args.append(str(seeds))
    # libFuzzer's out-of-memory check (-rss_limit_mb) reads the peak RSS, and Linux hands a process its parent's
    # peak at exec: started from a test runner that once held gigabytes, every input would look out of memory
    # (seen in a random-order run). A forked child's peak is its own.
    pid = os.fork()
    if pid == 0:
        atheris.Setup(args, target)
        atheris.Fuzz()
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) & 0xFF if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)


if __name__ == "__main__":
    raise SystemExit(main())
