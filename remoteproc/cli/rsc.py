"""``rproc rsc show|check|build``: resource tables from raw files, ELF sections or JSON/TOML descriptions
(remoteproc.firmware.read_table, resource_table)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

from remoteproc.cli.common import (
    EXIT_FAILURE,
    EXIT_OK,
    UsageError,
    dialect_arg,
    findings_lines,
    int_arg,
    write_output,
)
from remoteproc.firmware import finding_to_dict, read_table
from resource_table import Severity, build, check, load_spec, parse_with_spans, pretty, to_dict, to_v1, to_v2
from resource_table.emit_c import emit_c

if TYPE_CHECKING:
    from remoteproc.cli.common import Subparsers


def add_rsc(sub: Subparsers) -> None:
    rsc = sub.add_parser("rsc", help="resource tables: show, check, build").add_subparsers(
        dest="rsc_command", metavar="ACTION"
    )
    rsc.required = True
    p = rsc.add_parser("show", help="pretty-print a table (raw .bin, ELF section, or .json/.toml description)")
    p.add_argument("table")
    p.add_argument("--json", action="store_true")
    dialect_arg(p)
    p.set_defaults(func=cmd_rsc_show)

    p = rsc.add_parser("check", help="validate a table; exit 1 when it fails")
    p.add_argument("table")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--strict", dest="strict", action="store_true", default=True, help="warnings fail too (default)")
    mode.add_argument(
        "--lenient", dest="strict", action="store_false", help="only what Linux or OpenAMP would refuse fails"
    )
    dialect_arg(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_rsc_check)

    p = rsc.add_parser("build", help="build a table from a JSON or TOML description")
    p.add_argument("spec")
    p.add_argument("--bin", metavar="FILE", help="write the table bytes ('-' for stdout)")
    p.add_argument("--c", metavar="FILE", help="write C source for firmware ('-' for stdout)")
    p.add_argument("--json", metavar="FILE", help="write the normalized JSON description")
    p.add_argument("--to-version", type=int, choices=(1, 2), help="convert to table version 1 or 2 first")
    p.add_argument("--align", type=int_arg, help="align version-1 entries (default: packed, like C __packed)")
    p.add_argument("--symbol", default="resource_table", help="C variable name (default resource_table)")
    p.set_defaults(func=cmd_rsc_build)


def cmd_rsc_show(args: argparse.Namespace) -> int:
    data, findings = read_table(args.table, args.dialect)
    table, spans = parse_with_spans(data, dialect=args.dialect)
    if args.json:
        print(json.dumps(to_dict(table, [s.offset for s in spans]), indent=2))
        return EXIT_OK
    print(pretty(table, spans, len(data)))
    for line in findings_lines(findings):
        print(line)
    return EXIT_OK


def cmd_rsc_check(args: argparse.Namespace) -> int:
    _, findings = read_table(args.table, args.dialect)
    failing = [f for f in findings if args.strict or f.severity is Severity.ERROR]
    mode = "strict" if args.strict else "lenient"
    if args.json:
        out = {
            "file": args.table,
            "mode": mode,
            "passed": not failing,
            "failing": len(failing),
            "findings": [finding_to_dict(f) for f in findings],
        }
        print(json.dumps(out, indent=2))
    else:
        for f in findings:
            print(f)
    if failing:
        print(f"{args.table}: {len(failing)} problem(s) fail the {mode} check", file=sys.stderr)
        return EXIT_FAILURE
    if not args.json:
        print(f"{args.table}: passes the {mode} check ({len(findings)} warning(s))")
    return EXIT_OK


def cmd_rsc_build(args: argparse.Namespace) -> int:
    table = load_spec(args.spec)
    if args.to_version == 2:
        table = to_v2(table)
    elif args.to_version == 1:
        table = to_v1(table)
    if not (args.bin or args.c or args.json):
        raise UsageError("say what to write: --bin FILE, --c FILE or --json FILE ('-' for standard output)")
    blob = build(table, align=args.align)
    if args.bin:
        write_output(args.bin, blob)
    if args.c:
        write_output(args.c, emit_c(table, symbol=args.symbol, align=args.align).encode())
    if args.json:
        write_output(args.json, (json.dumps(to_dict(table), indent=2) + "\n").encode())
    for f in check(blob):
        print(f, file=sys.stderr)
    return EXIT_OK
