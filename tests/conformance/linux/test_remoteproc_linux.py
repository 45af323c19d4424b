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

import contextlib
import re
import struct
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from remoteproc.conformance.linux.build import KERNELS, UmlImages, ensure_uml
from remoteproc.conformance.linux.rproc_uml import FIRMWARE_NAME, Layout, build_firmware, build_remote
from remoteproc.conformance.linux.uml import UmlGuest
from remoteproc.elf import read_bytes, read_elf
from remoteproc.firmware import firmware_info
from remoteproc.loader import load_segments
from remoteproc.resources import Pool, handle_resources
from remoteproc.rproc import RPMSG_DRIVER_FEATURES
from remoteproc.vdev import VdevControl
from rpmsg.protocol import LINUX_BUFFER_SIZE
from transports.memory import MappedRegion, RegionMemory

pytestmark = pytest.mark.conformance
REPO = Path(__file__).resolve().parents[3]

GUEST_MEM = "64M"
FILL = 0xA5  # the memory file's bytes before boot: zero-fill and untouched bytes both show
BOOT_TIMEOUT = 90.0
RSC_TRACE, RSC_VDEV = 2, 3

GUEST_SCRIPT = """
R=/sys/class/remoteproc/remoteproc0
echo "rproc-sysfs name=$(cat $R/name) state=$(cat $R/state) firmware=$(cat $R/firmware)"
echo start > $R/state
echo "rproc-sysfs started state=$(cat $R/state)"
rpmsg-probe wait-channel rpmsg-raw 30000 | tee /host/channel.txt
DEV=$(sed -n 's/.* dev=\\([^ ]*\\).*/\\1/p' /host/channel.txt)
rpmsg-probe echo $DEV 1 16 300 496
rpmsg-probe write-expect-errno $DEV 497 EMSGSIZE
rpmsg-probe stream $DEV 300 496 32
rpmsg-probe ctrl-ept /dev/rpmsg_ctrl0 rpmsg-raw any 1024
mount -t debugfs none /sys/kernel/debug
echo "rproc-trace $(cat /sys/kernel/debug/remoteproc/remoteproc0/trace0)"
echo stop > $R/state
echo "rproc-sysfs stopped state=$(cat $R/state)"
echo start > $R/state
echo "rproc-sysfs restarted state=$(cat $R/state)"
rpmsg-probe wait-channel rpmsg-raw 30000 | tee /host/channel.txt
DEV=$(sed -n 's/.* dev=\\([^ ]*\\).*/\\1/p' /host/channel.txt)
rpmsg-probe echo $DEV 2 496
echo stop > $R/state
echo "rproc-sysfs stopped-again state=$(cat $R/state)"
"""


@dataclass
class HostRemote:
    """host/uml_remote.c running, its output lines collected."""

    proc: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)
    cond: threading.Condition = field(default_factory=threading.Condition)

    def start_reader(self) -> None:
        def read() -> None:
            assert self.proc.stdout is not None
            for line in self.proc.stdout:
                with self.cond:
                    self.lines.append(line.rstrip("\n"))
                    self.cond.notify_all()

        threading.Thread(target=read, name="uml-remote", daemon=True).start()

    def wait_for(self, pattern: str, timeout: float) -> re.Match[str]:
        regex = re.compile(pattern)
        with self.cond:
            found: list[re.Match[str]] = []

            def seen() -> bool:
                found[:] = [m for m in map(regex.search, self.lines) if m is not None]
                return bool(found)

            if not self.cond.wait_for(seen, timeout):
                raise AssertionError(f"uml-remote printed no /{pattern}/ in {timeout} s: {self.lines}")
            return found[0]


@dataclass
class Run:
    layout: Layout
    firmware: Path
    guest: UmlGuest
    remote: HostRemote
    snapshot: Path

    def results(self) -> list[str]:
        return [line for line in self.guest.lines if re.match(r"^(rproc-[a-z]+ |[a-z-]+ .*\b(ok|fail)\b)", line)]

    def boot_image(self, n: int) -> bytes:
        """The memory file as it was when DRIVER_OK appeared in the ``n``th boot."""
        return Path(f"{self.snapshot}.{n}").read_bytes()

    def stop_image(self, n: int) -> bytes:
        """The memory file when the ``n``th STOP arrived."""
        return Path(f"{self.snapshot}.stop.{n}").read_bytes()


@pytest.fixture(scope="module", params=KERNELS)
def images(request: pytest.FixtureRequest) -> UmlImages:
    """Linux 6.1 and 6.12 (the rproc_vdev moved to a platform device between them)."""
    return ensure_uml(kernel=request.param)


@pytest.fixture(scope="module", params=["c", "python"])
def remote_command(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """The remote processor: the firmware's C rpmsg library (host/uml_remote.c) or rproc's Python remote
    (uml_py_remote.py); the same command line, socket protocol and output lines."""
    if request.param == "c":
        return [str(build_remote(tmp_path_factory.mktemp("uml-remote")))]
    return [sys.executable, "-m", "tests.conformance.linux.uml_py_remote"]


@contextlib.contextmanager
def _boot(
    images: UmlImages,
    remote_command: list[str],
    tmp: Path,
    script: str,
    timeout: float = BOOT_TIMEOUT,
    firmware_subdir: str = "",
) -> Iterator[Run]:
    """Boot the guest with ``script`` against a fresh remote and memory file; yields once UML has exited.

    The firmware is built into the share (the guest's /host, where firmware_class.path points) or into
    ``firmware_subdir`` of it, from where the guest has to put it in place itself."""
    layout = Layout.for_guest_mem(GUEST_MEM)
    share = tmp / "share"
    firmware = build_firmware(layout, share / firmware_subdir)
    table_da = read_elf(firmware).resource_table
    assert table_da is not None
    memfile = tmp / "rproc-mem"
    memfile.write_bytes(bytes([FILL]) * layout.size)
    sock = tmp / "rproc.sock"
    snapshot = tmp / "snapshot"
    proc = subprocess.Popen(
        [*remote_command, str(memfile), str(sock), hex(table_da.addr), str(snapshot)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    remote = HostRemote(proc)
    remote.start_reader()
    guest = UmlGuest(
        images,
        share,
        mem=GUEST_MEM,
        aslr=False,
        extra_args=[*layout.kernel_args(memfile, sock), "firmware_class.path=/host"],
    )
    try:
        remote.wait_for(r"uml-remote: listening", 10)
        guest.start(script)
        guest.wait_for(r"rproc-guest: exit \d+", timeout)
        guest.wait_exit(30)
        proc.wait(timeout=10)
        yield Run(layout, firmware, guest, remote, snapshot)
    finally:
        guest.kill()
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def run(images: UmlImages, remote_command: list[str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    """One boot: start, rpmsg traffic, trace, stop, start, stop; shared by the checks below."""
    with _boot(images, remote_command, tmp_path_factory.mktemp("remoteproc"), GUEST_SCRIPT) as booted:
        yield booted


def test_linux_boots_the_firmware_and_talks_rpmsg_to_the_remote(run: Run) -> None:
    run.guest.check_console_clean()
    results = run.results()
    failed = [line for line in results if re.search(r"\bfail\b", line)]
    assert not failed, "\n".join(run.guest.lines[-60:])
    expected = [
        rf"rproc-sysfs name=uml-rproc state=offline firmware={FIRMWARE_NAME}",
        r"rproc-sysfs started state=running",
        r"wait-channel name=rpmsg-raw dev=/dev/rpmsg\d+ src=1024 dst=1024 ok",
        r"echo size=1 ok",
        r"echo size=496 ok",
        r"write-expect-errno size=497 .*ok",
        r"stream .*ok",
        r"ctrl-ept .*ok",
        r"rproc-trace uml-remote: rpmsg-raw announced",
        r"rproc-sysfs stopped state=offline",
        r"rproc-sysfs restarted state=running",
        r"echo size=2 ok",
        r"rproc-sysfs stopped-again state=offline",
    ]
    for pattern in expected:
        assert any(re.search(pattern, line) for line in results), f"no line matches {pattern!r}:\n" + "\n".join(results)
    # The remote saw the driver's messages in order, and the exit after STOP is clean.
    assert run.remote.proc.returncode == 0, run.remote.lines
    base = run.layout.base
    entry = read_elf(run.firmware).entry
    run.remote.wait_for(rf"uml-remote: hello da={base:#x} size={run.layout.size:#x}", 1)
    run.remote.wait_for(rf"uml-remote: start boot={entry:#x}", 1)
    run.remote.wait_for(r"uml-remote: driver-ok status=0x07", 1)
    assert not [line for line in run.remote.lines if "error" in line], run.remote.lines
    stops = [line for line in run.remote.lines if line.startswith("uml-remote: stop ")]
    assert len(stops) == 2, run.remote.lines
    assert all(line.endswith(" dropped=0") for line in stops if "dropped=" in line), stops  # the C library's count
    echoed = [int(re.sub(r".* echoed=(\d+)( .*)?$", r"\1", line)) for line in stops]
    assert echoed[0] >= 4 + 300 + 1 and echoed[1] == echoed[0] + 2


# ---- the memory image and the resource table, Linux against rproc --------------------------------------------


def _table_entries(image: bytes, table_off: int) -> dict[int, int]:
    """type -> offset (in ``image``) of the first entry of that type in the table at ``table_off``."""
    _ver, num = struct.unpack_from("<II", image, table_off)
    offsets = struct.unpack_from(f"<{num}I", image, table_off + 16)
    found: dict[int, int] = {}
    for off in offsets:
        (kind,) = struct.unpack_from("<I", image, table_off + off)
        found.setdefault(kind, table_off + off)
    return found


@dataclass
class RprocImage:
    """What rproc's loader and vdev sequence leave in the same memory map."""

    memory: RegionMemory
    control: VdevControl

    def bytes(self) -> bytes:
        return self.memory.read(self.memory.regions[0].da, self.memory.regions[0].size)


def _rproc_boot(run: Run, firmware: Path | None = None) -> RprocImage:
    layout = run.layout
    elf = firmware or run.firmware
    memory = RegionMemory([MappedRegion("rproc", layout.base, layout.size, bytearray([FILL]) * layout.size)])
    info = firmware_info(elf)
    section = info.elf.resource_table
    assert info.table is not None and section is not None
    data = read_bytes(elf, section.offset, section.size)
    pool = Pool([(layout.base, layout.base + layout.size)])
    for seg in load_segments(elf, info.elf, memory):
        pool.reserve(seg.da, seg.memsz)
    res = handle_resources(data, info.table, info.spans, memory, pool)
    memory.write(section.addr, res.data)  # RemoteProc.start: the negotiated copy over the loaded table
    placement = res.vdevs[0]
    control = VdevControl(
        memory, section.addr + res.spans[placement.index].offset, res.table.version, len(placement.vrings)
    )
    control.negotiate(RPMSG_DRIVER_FEATURES)
    control.driver_ok()
    # Linux's virtio_rpmsg_bus takes 2 * 64 buffers of 512 bytes (rpmsg_probe) from the vdev0buffer carveout.
    assert placement.buffers_size == 2 * layout.vring_num * LINUX_BUFFER_SIZE
    return RprocImage(memory, control)


def test_the_resource_table_after_linux_booted_it(run: Run) -> None:
    """Vring da and notify ids, gfeatures, status, trace and the vdev's own notifyid, as Linux 6.1 left them."""
    layout = run.layout
    image = run.boot_image(1)
    section = read_elf(run.firmware).resource_table
    assert section is not None
    entries = _table_entries(image, section.addr - layout.base)
    vdev = entries[RSC_VDEV]
    _type, vid, notifyid, dfeatures, gfeatures, config_len, status, nvrings = struct.unpack_from(
        "<IIIIIIBB", image, vdev
    )
    assert (vid, dfeatures, config_len, nvrings) == (7, 1, 0, 2)
    assert status == 0x07  # ACKNOWLEDGE | DRIVER | DRIVER_OK: Linux sets no FEATURES_OK for a legacy device
    assert gfeatures == 1  # VIRTIO_RPMSG_F_NS, what both offer
    assert notifyid == layout.vdev_notifyid  # remoteproc_core.c rproc_alloc_vring: "TODO: assign a notifyid for rvdev"
    rings = [struct.unpack_from("<IIIII", image, vdev + 28 + 20 * n) for n in range(2)]
    assert rings == [
        (layout.da(layout.vring0[0]), layout.vring_align, layout.vring_num, 0, 0),
        (layout.da(layout.vring1[0]), layout.vring_align, layout.vring_num, 1, 0),
    ]
    trace = entries[RSC_TRACE]
    assert struct.unpack_from("<III", image, trace + 4) == (layout.da(layout.trace[0]), layout.trace[1], 0)


def test_memory_image_matches_rprocs_loader(run: Run) -> None:
    """The firmware's part of the file (segments, zero-fill, the table as negotiated, bytes no segment covers)
    after Linux booted it equals what rproc's loader and vdev sequence write for the same ELF and map."""
    layout = run.layout
    linux = run.boot_image(1)
    ours = _rproc_boot(run).bytes()
    start, size = layout.firmware
    differences = [hex(layout.da(i)) for i in range(start, start + size) if linux[i] != ours[i]]
    assert not differences, f"{len(differences)} bytes differ, first at {differences[:8]}"
    # and the image is not trivially equal: segments, zero-fill and untouched bytes are all there
    elf = read_elf(run.firmware)
    bss = next(s for s in elf.segments if s.loadable and s.memsz > s.filesz)
    zero_at = bss.paddr + bss.filesz - layout.base
    assert linux[zero_at : zero_at + bss.memsz - bss.filesz] == bytes(bss.memsz - bss.filesz)
    assert linux[start + size - 1] == FILL
    # Linux leaves the trace buffer alone and zeroes vring_size() bytes of each vring (rp_find_vq).
    assert linux[layout.trace[0] : layout.trace[0] + layout.trace[1]] == bytes([FILL]) * layout.trace[1]


def test_resource_table_after_linux_stopped_it(run: Run) -> None:
    """On stop Linux resets the vdev and acknowledges it again (status 1 in device memory: drivers/virtio/virtio.c
    virtio_dev_remove), then works on its cached copy of the table: the vring da and notify ids stay in device
    memory as they were (remoteproc_core.c rproc_stop, rproc_reset_rsc_table_on_stop, rproc_free_vring).
    rproc's stop (VdevControl.reset_for_stop) leaves the same bytes."""
    layout = run.layout
    image = run.stop_image(1)
    section = read_elf(run.firmware).resource_table
    assert section is not None
    vdev = _table_entries(image, section.addr - layout.base)[RSC_VDEV]
    status = image[vdev + 24]
    rings = [struct.unpack_from("<IIIII", image, vdev + 28 + 20 * n) for n in range(2)]
    assert status == 0x01
    assert [(r[0], r[3]) for r in rings] == [(layout.da(layout.vring0[0]), 0), (layout.da(layout.vring1[0]), 1)]
    ours = _rproc_boot(run)
    ours.control.reset_for_stop()
    start, size = layout.firmware
    theirs = image[start : start + size]
    mine = ours.bytes()[start : start + size]
    differences = [hex(layout.da(i)) for i in range(size) if theirs[i] != mine[i]]
    assert not differences, f"{len(differences)} bytes differ after stop, first at {differences[:8]}"


def test_restart_loads_and_negotiates_the_same_again(run: Run) -> None:
    """A second start reloads the segments and the table: the firmware's memory at the second DRIVER_OK is what
    it was at the first, and the second stop leaves what the first did."""
    start, size = run.layout.firmware
    assert run.boot_image(2)[start : start + size] == run.boot_image(1)[start : start + size]
    assert run.stop_image(2)[start : start + size] == run.stop_image(1)[start : start + size]


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
def crash_run(images: UmlImages, remote_command: list[str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    with _boot(images, remote_command, tmp_path_factory.mktemp("crash"), CRASH_SCRIPT) as booted:
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
    with _boot(images, remote, tmp, GUEST_PYTHON_SCRIPT, timeout=240, firmware_subdir="build") as booted:
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
    with _boot(images, remote, tmp, FIRMWARE_CHANGE_SCRIPT) as booted:
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
    ours = _rproc_boot(run, second).bytes()
    differences = [hex(run.layout.da(i)) for i in range(start, start + size) if second_image[i] != ours[i]]
    assert not differences, f"{len(differences)} bytes differ, first at {differences[:8]}"
