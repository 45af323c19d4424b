"""``python -m remoteproc`` is ``rproc``."""

from remoteproc.cli import main

raise SystemExit(main())
