"""The catalogue's boot of rproc inside the guest (``rproc-in-the-guest``): the host's Python runs rproc's
``linux`` platform classes (in_guest.py) and the CLI a user runs on a Linux host against the real sysfs,
rpmsg_ctrl and rpmsg char (docs/linux-conformance.md, "The catalogue").
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from remoteproc.conformance.linux.catalogue_types import Boot, Break, Scenario
from remoteproc.conformance.linux.guest_run import Run
from remoteproc.conformance.linux.rproc_uml import FIRMWARE_NAME, REPO

# The host's Python runs in the guest from a read-only hostfs mount of the host's root, through the host's
# dynamic loader (its libraries, not the guest's: the guest has busybox only), with the project on PYTHONPATH.
PY_VERSION = f"python{sys.version_info.major}.{sys.version_info.minor}"
HOST_PYTHON = Path(sys.base_prefix) / "bin" / PY_VERSION
HOST_LOADER = Path("/lib64/ld-linux-x86-64.so.2").resolve()  # the host's dynamic loader, symlinks resolved
SITE_PACKAGES = Path(sys.prefix) / "lib" / PY_VERSION / "site-packages"


def guest_python_script(break_mode: str = "") -> str:
    """The guest's script: in_guest.py (the platform classes), then the CLI a user runs on a Linux host."""
    libs = f"$H{sys.base_prefix}/lib:$H{HOST_LOADER.parent}"
    fw = f"/host/build/{FIRMWARE_NAME}"
    exported = f"export RPROC_BREAK={break_mode}\n" if BREAKS.get(break_mode, Break("", frozenset())).in_boot else ""
    return f"""
mkdir -p /hostroot && mount -r -t hostfs none /hostroot -o /
H=/hostroot
R=/sys/class/remoteproc/remoteproc0
export PYTHONHOME=$H{sys.base_prefix} PYTHONDONTWRITEBYTECODE=1 PYTHONPATH=$H{REPO}:$H{SITE_PACKAGES}
export PYTHONHASHSEED=0  # no urandom read at start-up (the guest's pool is not initialised: a kernel message)
{exported}rpy() {{ $H{HOST_LOADER} --library-path {libs} $H{HOST_PYTHON} "$@"; }}
cli() {{ name=$1; shift; echo "rproc-cli $name"; rpy -m remoteproc "$@" 2>&1; echo "rproc-cli $name exit=$?"; }}
cli status status
cli status-json status --json
cli doctor doctor
cli info info {fw}
rpy -m remoteproc.conformance.linux.in_guest {fw} rpmsg-raw
cli stop-offline stop 0
echo rproc-missing.elf > $R/firmware
cli start-missing start uml-rproc
cli start start uml-rproc {fw}
cli start-again start 0
cli sessions status --sessions
cli stop stop 0 --json
cli status-after status
"""


def host_python_missing() -> str | None:
    if not HOST_PYTHON.exists() or not HOST_LOADER.exists():
        return f"needs the host's Python ({HOST_PYTHON}) and dynamic loader ({HOST_LOADER}) to run in the guest"
    return None


def cli_sections(run: Run) -> dict[str, tuple[list[str], int]]:
    """``rproc-cli NAME`` ... ``rproc-cli NAME exit=N`` blocks of the console: name -> (output lines, N)."""
    kernel = ("random: ", "remoteproc remoteproc", "rproc-virtio ", "virtio_rpmsg_bus ", "rpmsg_")
    lines = [line for line in run.guest.lines if not line.startswith(kernel)]
    sections: dict[str, tuple[list[str], int]] = {}
    current: str | None = None
    body: list[str] = []
    for line in lines:
        m = re.fullmatch(r"rproc-cli (\S+)( exit=(\d+))?", line)
        if m and m.group(2) is None:
            current, body = m.group(1), []
        elif m and current is not None and current == m.group(1):
            sections[current] = (body, int(m.group(3)))
            current = None
        elif current is not None:
            body.append(line)
    return sections


def check_guest_platform(run: Run, break_mode: str = "") -> str:
    """rproc's ``linux`` platform classes in the guest (remoteproc/conformance/linux/in_guest.py): every step
    ok, from listing and errors while offline to rpmsg_ctrl endpoints and a stop with an endpoint open."""
    from remoteproc.conformance.linux.in_guest import STEPS

    run.guest.check_console_clean()
    steps = {}
    for line in run.guest.lines:
        m = re.match(r"in-guest (\S+) (ok|fail)\b ?(.*)", line)
        if m:
            steps[m.group(1)] = (m.group(2), m.group(3))
    missing = [name for name in STEPS if name not in steps]
    assert not missing, f"no line for {missing}:\n" + "\n".join(run.guest.lines[-40:])
    failed = [f"{name}: {steps[name][1]}" for name in STEPS if steps[name][0] != "ok"]
    assert not failed, f"{len(failed)} of {len(STEPS)} steps failed: " + " || ".join(failed)
    return f"{len(STEPS)} steps ok (" + ", ".join(STEPS) + ")"


def check_guest_cli(run: Run, break_mode: str = "") -> str:
    """The CLI a user runs on a Linux host, in the guest: status (text, JSON), doctor, info, start with a
    firmware, stop, and the clear errors (stop while offline, missing firmware, start while running)."""
    sections = cli_sections(run)
    text = "\n".join(run.guest.lines[-80:])

    def section(name: str, code: int) -> str:
        assert name in sections, f"no rproc-cli {name} block:\n{text}"
        body, got = sections[name]
        assert got == code, f"rproc {name} exited {got}, not {code}: {body}"
        return "\n".join(body)

    assert re.search(r"^remoteproc0\s+uml-rproc\s+offline$", section("status", 0), re.M)
    assert '"state": "offline"' in section("status-json", 0)
    doctor = section("doctor", 0)
    assert re.search(r"ok remoteproc devices +remoteproc0 \(uml-rproc, offline\)", doctor), doctor
    info = section("info", 0)
    assert f"firmware /host/build/{FIRMWARE_NAME}" in info and ".resource_table: address" in info, info
    stop_offline = section("stop-offline", 1)
    assert "rproc: error: remoteproc0 (uml-rproc) is offline: nothing to stop" in stop_offline, stop_offline
    missing = section("start-missing", 1)
    assert "found no firmware file 'rproc-missing.elf'" in missing, missing
    started = section("start", 0)
    assert f"firmware {FIRMWARE_NAME} -> /host" in started and "remoteproc0 (uml-rproc): running" in started
    again = section("start-again", 1)
    assert "is already running: stop it first" in again, again
    assert "no rproc sessions running" in section("sessions", 0)
    assert '"state": "offline"' in section("stop", 0)
    assert re.search(r"^remoteproc0\s+uml-rproc\s+offline$", section("status-after", 0), re.M)
    events = [line.split()[1] for line in run.remote.lines if line.split()[1] in ("start", "stop", "driver-ok")]
    assert events == ["start", "driver-ok", "stop"] * 2, run.remote.lines
    return f"{len(sections)} commands as expected, errors included: {again.splitlines()[-1]}"


BOOTS = (
    Boot(
        "rproc-in-the-guest",
        "the host's Python runs rproc's linux platform and CLI inside the guest",
        guest_python_script,
        timeout=300,
        firmware_subdir="build",
        unavailable=host_python_missing,
    ),
)

SCENARIOS = (
    Scenario(
        "guest-linux-platform",
        "rproc's linux platform classes against the real sysfs, rpmsg_ctrl and rpmsg char",
        "rproc-in-the-guest",
        check_guest_platform,
    ),
    Scenario(
        "guest-cli",
        "rproc status/doctor/info/start/stop in the guest, with clear errors",
        "rproc-in-the-guest",
        check_guest_cli,
    ),
)

BREAKS = {
    "send-waits-for-pollout": Break(
        "in the guest, RpmsgCharEndpoint.send waits for POLLOUT first (as before it met the real rpmsg_char)",
        frozenset({"guest-linux-platform"}),
        in_boot=True,
    ),
}
