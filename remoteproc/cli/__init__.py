"""The ``rproc`` command line (``python -m remoteproc`` too): thin wrappers over importable functions, exit codes
decided in :func:`main` (remoteproc/cli/run.py).

Exit codes (docs/cli.md): 0 success; 1 an error the user can act on, one line on stderr: a file missing, not
regular or too large, a bad firmware or table, a failed check, an error of rpmsg, virtio or a transport (a
timeout, a message too long, a lost peer); 2 bad usage; 130 interrupted. Only :func:`main` maps errors to codes.

One module per command or small group of commands, each adding its own sub-parser (``add_*``) and holding its
``cmd_*`` functions, which parse nothing and print what a library function returns: demo (demo, bench), load,
talk (ping, send, echo, listen), attach, trace, linux (status, start, stop), sessions (status --sessions), info,
rsc (rsc show/check/build), conformance, uart_boot, doctor, layout. parser.py assembles them; common.py holds what
they share (exit codes, argument types, the progress bar, output files).
"""

from remoteproc.cli.parser import build_parser
from remoteproc.cli.run import main

__all__ = ["build_parser", "main"]
