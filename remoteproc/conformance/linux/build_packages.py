"""The Debian packages the UML build needs, and installing those that are missing.

``APT_PACKAGES`` names everything the build runs besides the kernel's source (its build dependencies, busybox,
a static libc for rpmsg-probe); build.py adds the ``linux-source-<version>`` package of the chosen kernel.
``ensure_packages`` installs what ``dpkg-query`` does not report installed (apt-get, with sudo when not root,
refreshing the package lists once when an install fails). ``package_version`` is what the cache keys record of
a package (build.py: the kernel source, busybox, libc6-dev).

How packages get installed does not shape what is built, so this module's bytes are not part of a cache key;
the names in ``APT_PACKAGES`` are (build.py ``kernel_key``/``initramfs_key``), as is each version that goes into
the result.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence

from remoteproc.conformance.linux.build_report import BuildError, Progress, stderr_progress

BUSYBOX_PACKAGE = "busybox-static"
APT_PACKAGES = (
    BUSYBOX_PACKAGE,
    "bc",
    "bison",
    "flex",
    "libelf-dev",
    "gcc",
    "libc6-dev",
    "make",
    "patch",
    "xz-utils",
)
"""Everything the build runs besides the kernel's source: its build dependencies, busybox, and a static libc for
rpmsg-probe."""


def _missing_packages(packages: Sequence[str]) -> list[str]:
    result = subprocess.run(
        ["dpkg-query", "-W", "-f=${Package} ${Status}\n", *packages], capture_output=True, text=True, check=False
    )
    installed = {line.split()[0] for line in result.stdout.splitlines() if line.strip().endswith(" installed")}
    return [p for p in packages if p not in installed]


def ensure_packages(progress: Progress = stderr_progress, packages: Sequence[str] = APT_PACKAGES) -> None:
    """Install the Debian packages the build needs that are missing (apt-get, with sudo when not root)."""
    missing = _missing_packages(packages)
    if not missing:
        return
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    install = [*sudo, "apt-get", "install", "-y", "-q", "--no-install-recommends", *missing]
    progress(f"installing Debian packages: {' '.join(missing)}")
    if subprocess.run(install, env=env, check=False).returncode != 0:
        # Perhaps the package lists are stale or absent: refresh them once and try again.
        subprocess.run([*sudo, "apt-get", "update", "-q"], env=env, check=False)
        if subprocess.run(install, env=env, check=False).returncode != 0:
            raise BuildError(f"could not install the Debian packages {', '.join(missing)}")
    still = _missing_packages(missing)
    if still:
        raise BuildError(f"Debian packages still missing after apt-get install: {', '.join(still)}")


def package_version(package: str) -> str:
    """The installed version of ``package`` (``dpkg-query``); BuildError when it is not installed."""
    result = subprocess.run(["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True, check=False)
    if result.returncode != 0 or not result.stdout.strip():
        raise BuildError(f"Debian package {package} is not installed")
    return result.stdout.strip()
