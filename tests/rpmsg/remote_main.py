"""The remote process of the shm suite: connect to the host, run the services until the host goes away.

python -m tests.rpmsg.remote_main NAME [wait-mode]
"""

from __future__ import annotations

import sys
import time

from rpmsg.wiring import remote_on
from tests.rpmsg.services import start_services
from transports.url import open_link


def main() -> int:
    link = open_link(f"shm://{sys.argv[1]}", role="remote")
    device = remote_on(link, wait=sys.argv[2] if len(sys.argv) > 2 else "spin")  # type: ignore[arg-type]
    start_services(device)
    print("ready", flush=True)
    while device.failure is None:
        time.sleep(0.05)
        try:
            device.process()
        except Exception:
            break
    device.close()
    link.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
