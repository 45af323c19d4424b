"""``rproc layout``: vrings and rpmsg buffers placed in shared memory (resource_table.plan_layout)."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

from remoteproc.cli.common import EXIT_FAILURE, EXIT_OK, int_arg, write_svg
from resource_table import Region, check_regions, plan_layout
from resource_table.layout import DEFAULT_BUFFER_SIZE

if TYPE_CHECKING:
    from remoteproc.cli.common import Subparsers


def add_layout(sub: Subparsers) -> None:
    p = sub.add_parser("layout", help="place vrings and rpmsg buffers in shared memory")
    p.add_argument("--base", type=int_arg, required=True, help="first device address of the shared memory")
    p.add_argument("--window-size", type=int_arg, help="size of the shared memory: check that everything fits")
    p.add_argument("--vrings", type=int, default=2, help="number of vrings (rpmsg: 2)")
    p.add_argument("--num", type=int_arg, default=256, help="entries per vring (power of two, default 256)")
    p.add_argument("--align", type=int_arg, default=0x1000, help="vring alignment (default 0x1000)")
    p.add_argument("--rx-count", type=int_arg, help="host receive buffers (default: Linux's, min(2*num,512)/2)")
    p.add_argument("--tx-count", type=int_arg, help="host send buffers (default: as rx)")
    p.add_argument(
        "--rx-size", type=int_arg, default=DEFAULT_BUFFER_SIZE, help="bytes per receive buffer (default Linux's 512)"
    )
    p.add_argument(
        "--tx-size", type=int_arg, default=DEFAULT_BUFFER_SIZE, help="bytes per send buffer (default Linux's 512)"
    )
    p.add_argument("--buffer-align", type=int_arg, default=64, help="alignment of each buffer pool (default 64)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--svg", metavar="FILE", help="also draw the memory map (vring parts, buffer pools) as SVG")
    p.set_defaults(func=cmd_layout)


def cmd_layout(args: argparse.Namespace) -> int:
    layout = plan_layout(
        base=args.base,
        vring_num=args.num,
        vring_align=args.align,
        vring_count=args.vrings,
        rx_count=args.rx_count,
        tx_count=args.tx_count,
        rx_size=args.rx_size,
        tx_size=args.tx_size,
        buffer_align=args.buffer_align,
    )
    window = Region("window", args.base, args.window_size) if args.window_size is not None else None
    findings = check_regions(layout.regions, window=window)
    if args.svg:
        from remoteproc.memory_map import layout_regions, render_svg

        shown = (window.start, window.size) if window is not None else None
        write_svg(args.svg, render_svg(layout_regions(layout, shown), f"rpmsg layout from {layout.base:#x}"))
    if args.json:
        out: dict[str, Any] = {
            "base": f"{layout.base:#x}",
            "end": f"{layout.end:#x}",
            "total": layout.total,
            "regions": [
                {"name": r.name, "start": f"{r.start:#x}", "size": r.size, "end": f"{r.end:#x}"} for r in layout.regions
            ],
            "vrings": [
                {"da": f"{v.da:#x}", "align": f"{v.align:#x}", "num": v.num, "notifyid": v.notifyid}
                for v in layout.vring_entries()
            ],
            "problems": [f.message for f in findings],
        }
        carveout = layout.buffer_carveout()
        out["carveout"] = {"name": carveout.name, "da": f"{carveout.da:#x}", "len": carveout.len}
        print(json.dumps(out, indent=2))
    else:
        print(f"layout from {layout.base:#x}: {layout.total:#x} bytes ({layout.total} B), ends at {layout.end:#x}")
        for r in layout.regions:
            print(f"  {r.name:<11} {r.start:#010x} .. {r.end:#010x}  {r.size:#9x} B")
        print(
            f"  vrings: num {layout.vring_num}, align {layout.vring_align:#x}; "
            f"buffers: {layout.rx_count} x {layout.rx_size} B rx, {layout.tx_count} x {layout.tx_size} B tx"
        )
        carveout = layout.buffer_carveout()
        print(f"  resource table: carveout {carveout.name!r} da {carveout.da:#x} len {carveout.len:#x}")
        for f in findings:
            print(f"  {f}")
    return EXIT_FAILURE if findings else EXIT_OK
