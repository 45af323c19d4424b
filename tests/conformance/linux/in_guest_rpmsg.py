"""Run inside the UML guest by test_remoteproc_linux.py with the host's Python (through hostfs): rproc's
``linux`` platform wrappers against the real /sys/class/rpmsg and /dev/rpmsgN of Linux's rpmsg_char.

    python -m tests.conformance.linux.in_guest_rpmsg NAME

Finds the channel NAME the remote announced, echoes messages of several sizes through
``RpmsgCharEndpoint`` and prints one ``in-guest ... ok|fail`` line per check.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from remoteproc.platforms.linux import RpmsgCharEndpoint

RPMSG_CLASS = Path("/sys/class/rpmsg")


def find_channel(name: str, timeout: float) -> Path | None:
    """/dev/rpmsgN of the channel ``name`` announced by the remote (its parent device has ``announce``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for entry in sorted(RPMSG_CLASS.glob("rpmsg[0-9]*")):
            try:
                found = (entry / "name").read_text().strip() == name
            except OSError:
                continue
            if found and (entry / "device" / "announce").exists() and (Path("/dev") / entry.name).exists():
                return Path("/dev") / entry.name
        time.sleep(0.05)
    return None


def main(argv: list[str]) -> int:
    name = argv[0] if argv else "rpmsg-raw"
    dev = find_channel(name, 30.0)
    if dev is None:
        print(f"in-guest channel name={name} fail reason=timeout", flush=True)
        return 1
    print(f"in-guest channel name={name} dev={dev} ok", flush=True)
    failures = 0
    with RpmsgCharEndpoint(dev) as ep:
        ep.settimeout(5.0)
        for size in (1, 16, 300, 496):
            data = bytes((i * 7 + size) & 0xFF for i in range(size))
            ep.send(data)
            got = ep.recv(512)
            ok = got == data
            failures += not ok
            print(f"in-guest echo size={size} {'ok' if ok else f'fail got={len(got)}'}", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
