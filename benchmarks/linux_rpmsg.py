"""Benchmark: the Linux kernel's rpmsg (6.1, in User-Mode Linux) as the host, rproc's Python remote behind
vhost-user, timed by the guest's own C program (remoteproc/conformance/linux/guest/rpmsg_probe.c) through
/dev/rpmsgN, next to the guest's pipe ping-pong between two processes in the same run (UML's own wake-up cost).

    .venv/bin/python benchmarks/linux_rpmsg.py [--rounds 3000] [--messages 20000] [--json FILE]

The first run builds the kernel (a few minutes; cached in ~/.cache/rproc/uml afterwards).
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.report import Results  # noqa: E402
from remoteproc.conformance.linux.build import UmlImages, ensure_uml  # noqa: E402
from remoteproc.conformance.linux.uml import UmlGuest  # noqa: E402
from rpmsg.waiting import WaitMode  # noqa: E402
from rpmsg.wiring import VhostUserRemote  # noqa: E402
from tests.conformance.linux.remote_service import ECHO_NAME, EchoService  # noqa: E402

SCRIPT = """
rpmsg-probe wait-channel {name} 30000 | tee /host/channel.txt
DEV=$(sed -n 's/.* dev=\\([^ ]*\\).*/\\1/p' /host/channel.txt)
rpmsg-probe rt $DEV 200 16 > /dev/null
rpmsg-probe pipe-rt {rounds} 16
rpmsg-probe rt $DEV {rounds} 16
rpmsg-probe stream $DEV {messages} 496 64
"""


def run(images: UmlImages, wait: WaitMode, rounds: int, messages: int) -> dict[str, dict[str, float]]:
    with tempfile.TemporaryDirectory(prefix="rproc-bench-") as tmp:
        sock = Path(tmp) / "rpmsg.sock"
        share = Path(tmp) / "share"
        share.mkdir()
        with (
            VhostUserRemote(sock, event_idx=True, wait=wait) as remote,
            UmlGuest(images, share, devices=[(sock, 7)]) as guest,
        ):
            guest.start(SCRIPT.format(name=ECHO_NAME, rounds=rounds, messages=messages))
            remote.accept(60)
            service = EchoService(remote.start(60))
            try:
                guest.wait_for(r"rproc-guest: exit \d+", 600)
            finally:
                service.stop()
            guest.check_console_clean()
            out: dict[str, dict[str, float]] = {}
            for line in guest.lines:
                m = re.match(r"^(pipe-rt|rt|stream) (.*\bok\b.*)$", line)
                if m:
                    fields = dict(kv.split("=", 1) for kv in m.group(2).split() if "=" in kv)
                    out[m.group(1)] = {k: float(v) for k, v in fields.items()}
            missing = {"pipe-rt", "rt", "stream"} - set(out)
            if missing:
                raise SystemExit(f"guest did not report {sorted(missing)}:\n" + "\n".join(guest.lines[-30:]))
            return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3000)
    ap.add_argument("--messages", type=int, default=20000)
    ap.add_argument("--json", metavar="FILE", help="write every figure, its baseline and the ratio here")
    args = ap.parse_args()
    res = Results("linux_rpmsg", {"rounds": args.rounds, "messages": args.messages})
    images = ensure_uml()
    results = {wait: run(images, wait, args.rounds, args.messages) for wait in ("spin", "block")}
    print(f"Linux 6.1 rpmsg (UML guest, C timing) <-> rproc Python remote over vhost-user; {args.rounds} round trips")
    print(f"of 16 B, {args.messages} x 496 B echoed with 64 in flight; baseline: guest pipe ping-pong, same boot")
    print(
        f"{'remote wait mode':<18} {'pipe p50':>9} {'rpmsg p50':>10} {'p99':>7} {'ratio':>6} {'msgs/s':>9} {'MB/s':>6}"
    )
    for wait, r in results.items():
        pipe, rt, stream = r["pipe-rt"], r["rt"], r["stream"]
        ratio = rt["p50_us"] / max(pipe["p50_us"], 1)
        rate = stream["msgs_per_s"]
        base = (f"remote {wait}: guest pipe ping-pong p50", pipe["p50_us"])
        res.add(*base, "us", better="lower")
        res.add(f"remote {wait}: rpmsg round trip 16 B p50", rt["p50_us"], "us", better="lower", baseline=base)
        res.add(f"remote {wait}: rpmsg round trip 16 B p99", rt["p99_us"], "us", better="lower", baseline=base)
        res.add(f"remote {wait}: echo 496 B, 64 in flight", rate, "msgs/s", better="higher")
        print(
            f"{wait:<18} {pipe['p50_us']:>7.0f}us {rt['p50_us']:>8.0f}us {rt['p99_us']:>5.0f}us {ratio:>5.1f}x"
            f" {rate:>9,.0f} {rate * 496 * 2 / 1e6:>6.2f}"
        )
    print("(MB/s counts both directions: every message goes to the remote and back)")
    res.write(args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
