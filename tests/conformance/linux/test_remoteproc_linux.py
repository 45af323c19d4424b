"""Linux's own remoteproc core (remoteproc_core.c, remoteproc_elf_loader.c, remoteproc_virtio.c of Debian's Linux
6.1 and 6.12, unmodified) loads an rproc-built firmware ELF into memory it shares with a remote processor on the host,
boots it, and talks rpmsg to it through its own virtio_rpmsg_bus and rpmsg_char.

The kernel is the conformance UML kernel with the uml_rproc driver (remoteproc/conformance/linux/kernel-tree/):
the remote's memory is a host file the guest maps with iomem=, the doorbell a host UNIX socket. The remote is
host/uml_remote.c, the firmware's C rpmsg library (firmware/lib/rpmsg_remote.c) in a host process on that file.
It copies the file when DRIVER_OK appears and when Linux stops it; those copies are compared byte by byte with
what rproc's own loader and vdev sequence produce for the same ELF and memory map (docs/linux-conformance.md,
"remoteproc core").
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from remoteproc.conformance.linux.build import KERNELS, UmlImages, ensure_uml
from remoteproc.conformance.linux.remoteproc_peer import (
    BREAKS,
    GUEST_MEM,
    GUEST_SCRIPT,
    REMOTES,
    Run,
    boot,
    check_boot_and_rpmsg,
    check_image,
    check_restart,
    check_table_after_boot,
    check_table_after_stop,
    remote_command,
    rproc_image,
)
from remoteproc.conformance.linux.rproc_uml import FIRMWARE_NAME, REPO, Layout, build_firmware, build_remote

pytestmark = pytest.mark.conformance


@pytest.fixture(scope="module", params=KERNELS)
def images(request: pytest.FixtureRequest) -> UmlImages:
    """Linux 6.1 and 6.12 (the rproc_vdev moved to a platform device between them)."""
    return ensure_uml(kernel=request.param)


@pytest.fixture(scope="module", params=REMOTES)
def remote(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """The remote processor: the firmware's C rpmsg library (host/uml_remote.c) or rproc's Python remote
    (uml_py_remote.py); the same command line, socket protocol and output lines."""
    return remote_command(str(request.param), tmp_path_factory.mktemp("uml-remote"))


@pytest.fixture(scope="module")
def run(images: UmlImages, remote: list[str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    """One boot: start, rpmsg traffic, trace, stop, start, stop; shared by the checks below."""
    with boot(images, remote, tmp_path_factory.mktemp("remoteproc"), GUEST_SCRIPT) as booted:
        yield booted


def test_linux_boots_the_firmware_and_talks_rpmsg_to_the_remote(run: Run) -> None:
    check_boot_and_rpmsg(run)


# ---- the memory image and the resource table, Linux against rproc (remoteproc_peer.py) ----------------------


def test_the_resource_table_after_linux_booted_it(run: Run) -> None:
    check_table_after_boot(run)


def test_memory_image_matches_rprocs_loader(run: Run) -> None:
    check_image(run)


def test_resource_table_after_linux_stopped_it(run: Run) -> None:
    check_table_after_stop(run)


def test_restart_loads_and_negotiates_the_same_again(run: Run) -> None:
    check_restart(run)


@pytest.mark.parametrize(
    ("mode", "check"), [("no-zero-fill", check_image), ("stop-reset-vrings", check_table_after_stop)]
)
def test_break_modes_make_the_comparison_fail(run: Run, mode: str, check: Callable[[Run, str], str]) -> None:
    """Each break mode makes rproc's side wrong on purpose: the comparison must see it."""
    assert mode in BREAKS
    with pytest.raises(AssertionError, match="bytes differ"):
        check(run, mode)


# ---- a crash reported by the remote: Linux's recovery, on and off --------------------------------------------

# The recovered channel gets the same /dev/rpmsgN (and virtioN) again, so count the kernel's announcements
# (virtio_rpmsg_bus.c rpmsg_create_channel via the name service: "creating channel").
WAIT_CHANNELS = """
wait_channels() {
    i=0
    while [ "$(dmesg | grep -c 'creating channel rpmsg-raw')" -lt $1 ] && [ $i -lt 600 ]; do
        sleep 0.05; i=$((i+1))
    done
    echo "rproc-channels announced=$(dmesg | grep -c 'creating channel rpmsg-raw')"
}
"""


def _wait_new_channel(n: int) -> str:
    return f"""wait_channels {n}
rpmsg-probe wait-channel rpmsg-raw 30000 | tee /host/channel.txt
DEV=$(sed -n 's/.* dev=\\([^ ]*\\).*/\\1/p' /host/channel.txt)
"""


CRASH_SCRIPT = (
    WAIT_CHANNELS
    + """
R=/sys/class/remoteproc/remoteproc0
echo start > $R/state
rpmsg-probe wait-channel rpmsg-raw 30000 | tee /host/channel.txt
DEV=$(sed -n 's/.* dev=\\([^ ]*\\).*/\\1/p' /host/channel.txt)
echo "rproc-sysfs recovery=$(cat $R/recovery)"
rpmsg-probe send $DEV crash
"""
    + _wait_new_channel(2)
    + """rpmsg-probe echo $DEV 8
echo "rproc-sysfs recovered state=$(cat $R/state)"
echo disabled > $R/recovery
rpmsg-probe send $DEV crash
i=0
while [ "$(cat $R/state)" != crashed ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done
echo "rproc-sysfs crashed state=$(cat $R/state) recovery=$(cat $R/recovery)"
echo recover > $R/recovery
"""
    + _wait_new_channel(3)
    + """rpmsg-probe echo $DEV 16
echo "rproc-sysfs recovered-by-hand state=$(cat $R/state)"
echo stop > $R/state
echo "rproc-sysfs stopped state=$(cat $R/state)"
"""
)


@pytest.fixture(scope="module")
def crash_run(images: UmlImages, remote: list[str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    with boot(images, remote, tmp_path_factory.mktemp("crash"), CRASH_SCRIPT) as booted:
        yield booted


def test_crash_reported_by_the_remote_is_recovered(crash_run: Run) -> None:
    """CRASH -> rproc_report_crash: with recovery enabled (the default) Linux stops the remote, reloads the
    firmware and starts it again at once (remoteproc_core.c rproc_crash_handler_work, rproc_boot_recovery);
    disabled, the state stays "crashed" until "recover" is written to the recovery file."""
    crash_run.guest.check_console_clean()
    results = crash_run.results()
    failed = [line for line in results if re.search(r"\bfail\b", line)]
    assert not failed, "\n".join(crash_run.guest.lines[-60:])
    expected = [
        r"rproc-sysfs recovery=enabled",
        r"rproc-channels announced=2",
        r"echo size=8 ok",
        r"rproc-sysfs recovered state=running",
        r"rproc-sysfs crashed state=crashed recovery=disabled",
        r"rproc-channels announced=3",
        r"echo size=16 ok",
        r"rproc-sysfs recovered-by-hand state=running",
        r"rproc-sysfs stopped state=offline",
    ]
    for pattern in expected:
        assert any(re.search(pattern, line) for line in results), f"no line matches {pattern!r}:\n" + "\n".join(results)
    lines = crash_run.remote.lines
    assert not [line for line in lines if "error" in line], lines
    events = [line.split()[1] for line in lines if line.split()[1] in ("start", "crash", "stop")]
    # two crashes, each followed by Linux's stop and a new start; then the final stop
    assert events == ["start", "crash", "stop", "start", "crash", "stop", "start", "stop"], lines
    assert crash_run.remote.proc.returncode == 0
    assert any(re.search(r"crash detected in uml-rproc: type fatal error", line) for line in crash_run.guest.lines)


# ---- rproc inside the guest: the `linux` platform and the CLI against the real sysfs -------------------------

# The host's Python runs in the guest from a read-only hostfs mount of the host's root, through the host's
# dynamic loader (its libraries, not the guest's: the guest has busybox only), with the project on PYTHONPATH.
PY_VERSION = f"python{sys.version_info.major}.{sys.version_info.minor}"
HOST_PYTHON = Path(sys.base_prefix) / "bin" / PY_VERSION
HOST_LOADER = Path("/lib64/ld-linux-x86-64.so.2").resolve()  # the host's dynamic loader, symlinks resolved
HOST_LIBS = f"$H{sys.base_prefix}/lib:$H{HOST_LOADER.parent}"
SITE_PACKAGES = Path(sys.prefix) / "lib" / PY_VERSION / "site-packages"
GUEST_PYTHON_SCRIPT = f"""
mkdir -p /hostroot && mount -r -t hostfs none /hostroot -o /
H=/hostroot
export PYTHONHOME=$H{sys.base_prefix} PYTHONDONTWRITEBYTECODE=1 PYTHONPATH=$H{REPO}:$H{SITE_PACKAGES}
export PYTHONHASHSEED=0  # no urandom read at start-up (the guest's pool is not initialised: a kernel message)
rpy() {{ $H{HOST_LOADER} --library-path {HOST_LIBS} $H{HOST_PYTHON} "$@"; }}
echo "rproc-cli status"; rpy -m remoteproc status
rpy -m remoteproc status --json | tr -d ' \\n'; echo
echo "rproc-cli start"; rpy -m remoteproc start uml-rproc /host/build/{FIRMWARE_NAME}
rpy -m tests.conformance.linux.in_guest_rpmsg rpmsg-raw
echo "rproc-cli stop"; rpy -m remoteproc stop 0
echo "rproc-cli status"; rpy -m remoteproc status
"""


@pytest.fixture(scope="module")
def guest_rproc_run(images: UmlImages, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    remote = [str(build_remote(tmp_path_factory.mktemp("uml-remote-cli")))]
    tmp = tmp_path_factory.mktemp("cli")
    with boot(images, remote, tmp, GUEST_PYTHON_SCRIPT, timeout=240, firmware_subdir="build") as booted:
        yield booted


@pytest.mark.skipif(not HOST_PYTHON.exists() or not HOST_LOADER.exists(), reason="needs the host's Python and ld.so")
def test_rproc_cli_and_linux_platform_inside_the_guest(guest_rproc_run: Run) -> None:
    """`rproc status/start/stop` and the `linux` platform's rpmsg char wrapper, run by the host's Python inside
    the guest, against the real /sys/class/remoteproc, firmware_class path and /dev/rpmsgN."""
    run = guest_rproc_run
    run.guest.check_console_clean()
    lines = [line for line in run.guest.lines if not line.startswith("random: ")]  # kernel messages in between
    text = "\n".join(lines)
    status = [i for i, line in enumerate(lines) if line == "rproc-cli status"]
    assert len(status) == 2, text
    assert re.fullmatch(r"remoteproc0\s+uml-rproc\s+offline", lines[status[0] + 1]), text
    assert '[{"index":0,"name":"uml-rproc","state":"offline"}]' in lines, text
    # the firmware copied where the kernel looks (firmware_class.path=/host) and named in sysfs
    assert f"firmware {FIRMWARE_NAME} -> /host" in lines, text
    assert "remoteproc0 (uml-rproc): running" in lines, text
    assert "in-guest channel name=rpmsg-raw dev=/dev/rpmsg0 ok" in lines, text
    for size in (1, 16, 300, 496):
        assert f"in-guest echo size={size} ok" in lines, text
    assert "remoteproc0 (uml-rproc): offline" in lines, text
    assert re.fullmatch(r"remoteproc0\s+uml-rproc\s+offline", lines[status[1] + 1]), text
    events = [line.split()[1] for line in run.remote.lines if line.split()[1] in ("start", "stop", "driver-ok")]
    assert events == ["start", "driver-ok", "stop"], run.remote.lines


# ---- a firmware change through sysfs -------------------------------------------------------------------------

SECOND_FIRMWARE = "rproc-uml-fw2.elf"
FIRMWARE_CHANGE_SCRIPT = (
    WAIT_CHANNELS
    + f"""
R=/sys/class/remoteproc/remoteproc0
echo start > $R/state
if echo {SECOND_FIRMWARE} > $R/firmware; then echo "rproc-sysfs firmware-while-running accepted"
else echo "rproc-sysfs firmware-while-running refused"; fi
echo "rproc-sysfs firmware=$(cat $R/firmware)"
echo stop > $R/state
echo {SECOND_FIRMWARE} > $R/firmware
echo "rproc-sysfs firmware=$(cat $R/firmware)"
echo start > $R/state
"""
    + _wait_new_channel(2)
    + """rpmsg-probe echo $DEV 8
echo stop > $R/state
echo "rproc-sysfs stopped state=$(cat $R/state)"
"""
)


@pytest.fixture(scope="module")
def firmware_change_run(images: UmlImages, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    remote = [str(build_remote(tmp_path_factory.mktemp("uml-remote-fw")))]
    tmp = tmp_path_factory.mktemp("fw-change")
    build_firmware(Layout.for_guest_mem(GUEST_MEM), tmp / "share", SECOND_FIRMWARE, banner=2)
    with boot(images, remote, tmp, FIRMWARE_CHANGE_SCRIPT) as booted:
        yield booted


def test_firmware_change_through_sysfs(firmware_change_run: Run) -> None:
    """The firmware file can only be changed while offline (remoteproc_sysfs.c firmware_store: EBUSY); the next
    start loads the new one, byte for byte what rproc's loader writes for it."""
    run = firmware_change_run
    run.guest.check_console_clean()
    results = run.results()
    for pattern in (
        "rproc-sysfs firmware-while-running refused",
        f"rproc-sysfs firmware={FIRMWARE_NAME}",
        f"rproc-sysfs firmware={SECOND_FIRMWARE}",
        "echo size=8 ok",
        "rproc-sysfs stopped state=offline",
    ):
        assert pattern in results, "\n".join(run.guest.lines[-60:])
    second = run.firmware.parent / SECOND_FIRMWARE
    start, size = run.layout.firmware
    first_image, second_image = run.boot_image(1), run.boot_image(2)
    assert first_image[start : start + size] != second_image[start : start + size]  # the banner differs
    ours = rproc_image(run, second).bytes()
    differences = [hex(run.layout.da(i)) for i in range(start, start + size) if second_image[i] != ours[i]]
    assert not differences, f"{len(differences)} bytes differ, first at {differences[:8]}"


# ---- the same as a catalogue: rproc conformance --peer linux-remoteproc ----------------------------------------


@pytest.mark.parametrize(("break_mode", "failing"), [("", set()), ("no-zero-fill", {"image-equals-rproc-loader"})])
def test_rproc_conformance_peer_linux_remoteproc(break_mode: str, failing: set[str]) -> None:
    """The CLI runs the checks above as a catalogue on one boot (JSON report, exit status); a break mode fails
    exactly the scenario it targets."""
    ensure_uml()  # built outside the timed command
    command = [sys.executable, "-m", "remoteproc", "conformance", "--peer", "linux-remoteproc", "--json"]
    command += ["--break", break_mode] if break_mode else []
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    report = json.loads(done.stdout)
    outcomes = {r["scenario"]: r["outcome"] for r in report["results"]}
    assert set(outcomes) == {
        "boot-and-rpmsg",
        "table-after-boot",
        "image-equals-rproc-loader",
        "table-after-stop",
        "restart",
    }
    assert {name for name, outcome in outcomes.items() if outcome != "pass"} == failing, done.stdout + done.stderr
    assert done.returncode == (1 if failing else 0)
