"""``rproc status --sessions``: rproc's own running sessions, each with its remotes' rpmsg state
(remoteproc/sessions.py answers; this module prints)."""

from __future__ import annotations

import argparse
import json

from remoteproc.cli.common import EXIT_OK


def show_sessions(args: argparse.Namespace) -> int:
    from remoteproc import sessions

    found = sessions.list_sessions()
    if args.json:
        print(json.dumps(found, indent=2))
        return EXIT_OK
    if not found:
        print(f"no rproc sessions running (sockets in {sessions.runtime_dir()})")
    for s in found:
        if "error" in s:
            print(f"{s['socket']}: {s['error']}")
            continue
        print(f"pid {s['pid']}: rproc {' '.join(s['command'])}")
        for r in s["remotes"]:
            print(f"  {r['platform']} {r['firmware']} {r['state']}")
            dev = r.get("rpmsg")
            if dev and "vrings" in dev:
                chans = ", ".join(f"{n} at {a:#x}" for n, a in dev["channels"].items()) or "none"
                print(f"    channels: {chans}; endpoints: {len(dev['endpoints'])}")
                for v in dev["vrings"]:
                    broken = f" BROKEN: {v['error']}" if v["broken"] else ""
                    print(
                        f"    vring{v['index']} num {v['num']} avail {v['avail']['idx']} used {v['used']['idx']} "
                        f"in flight {v['in_flight']}{broken}"
                    )
    return EXIT_OK
