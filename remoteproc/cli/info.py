"""``rproc info``: a firmware file's ELF summary and resource table (remoteproc/firmware.py)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from remoteproc.cli.common import EXIT_FAILURE, EXIT_OK, dialect_arg, findings_lines, write_svg
from remoteproc.firmware import FirmwareInfo, firmware_info, info_to_dict
from resource_table import Severity, pretty

if TYPE_CHECKING:
    from remoteproc.cli.common import Subparsers


def add_info(sub: Subparsers) -> None:
    p = sub.add_parser("info", help="ELF summary and resource table of a firmware file")
    p.add_argument("firmware")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--svg", metavar="FILE", help="also draw the memory map (segments, table, resources) as SVG")
    dialect_arg(p)
    p.set_defaults(func=cmd_info)


def cmd_info(args: argparse.Namespace) -> int:
    info = firmware_info(args.firmware, dialect=args.dialect)
    if args.svg:
        from remoteproc.memory_map import firmware_regions, render_svg

        write_svg(args.svg, render_svg(firmware_regions(info), f"{Path(args.firmware).name}: memory map"))
    if args.json:
        print(json.dumps(info_to_dict(info), indent=2))
    else:
        print(format_info(info))
    return EXIT_FAILURE if any(f.severity is Severity.ERROR for f in info.findings) else EXIT_OK


def format_info(info: FirmwareInfo) -> str:
    elf = info.elf
    endian = "little-endian" if elf.little_endian else "big-endian"
    lines = [
        f"firmware {elf.path}",
        f"  ELF{elf.elf_class} {endian} {elf.machine} {elf.elf_type}, entry {elf.entry:#x}, {elf.file_size} bytes",
    ]
    if elf.segments:
        width = max(10, *(len(s.type_name) for s in elf.segments))
        lines.append("  segments:")
        lines.append(f"     #  {'type':<{width}}  offset      paddr       vaddr       filesz      memsz       flags")
        for s in elf.segments:
            lines.append(
                f"    {s.index:2d}  {s.type_name:<{width}}  {s.offset:#010x}  {s.paddr:#010x}  {s.vaddr:#010x}  "
                f"{s.filesz:#010x}  {s.memsz:#010x}  {s.flags_text}"
            )
    else:
        lines.append("  segments: none (not a loadable image)")
    section = elf.resource_table
    if section is None or info.table is None:
        lines.append("  resource table: none (no .resource_table section; the remote gets no resources)")
    else:
        lines.append(
            f"  {section.name}: address {section.addr:#x}, {section.size} bytes at file offset {section.offset:#x}"
        )
        lines.extend("  " + line for line in pretty(info.table, info.spans, info.table_size).splitlines())
    lines.extend(findings_lines(info.findings))
    return "\n".join(lines)
