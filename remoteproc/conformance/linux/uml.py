"""Boot the conformance-test User-Mode-Linux guest and watch its console.

    with UmlGuest(images, share_dir, devices=[(socket, 7)]) as guest:
        guest.start("rpmsg-probe wait-channel rpmsg-raw 5000")
        guest.wait_for(r"rproc-guest: exit (\\d+)", timeout=60)
        guest.check_console_clean()

The guest (``guest/init``) mounts ``share_dir`` at /host, runs ``/host/guest.sh`` there (written by
``start``) with its output on the console, prints ``rproc-guest: ready`` before and
``rproc-guest: exit <status>`` after it, and powers off, which ends the UML process.

UML is one host process plus helpers (one per guest address space, ptrace'd); it runs in its own process
group, and ``kill``/leaving the ``with`` block kill that whole group and reap the process.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from remoteproc.conformance.linux.build import UmlImages

READY = "rproc-guest: ready"
EXIT_PATTERN = re.compile(r"rproc-guest: exit (\d+)")
TAIL_LINES = 40

# Console lines that mean the kernel is unwell.
PROBLEM_MARKERS = ("BUG:", "Oops", "Kernel panic", "WARNING:", "Call Trace:", "ptrace set fp regs failed")
# Known harmless warnings, each a WARN() block ("------------[ cut here ]------------" ... "---[ end trace")
# whose "WARNING: ..." line matches: RPMSG_VIRTIO needs HAS_DMA, which UML only has with
# UML_PCI_OVER_VIRTIO, configured (kernel.config) without a device id, so um_pci_init() warns once at boot.
KNOWN_WARNINGS: tuple[re.Pattern[str], ...] = (
    re.compile(r"WARNING: .* at arch/um/drivers/virt-pci\.c:\d+ um_pci_init"),
)
# What Linux 6.1's virtio_uml prints when the vhost-user back-end dies (not a bug of the back-end): the call
# pipes hit EOF ("read returned 0" in vu_interrupt), and removing the device then fails to talk to the
# back-end (WARN_ONs in vu_del_vqs). Pass to check_console_clean(allow=...) in tests that kill the back-end.
BACKEND_DEATH_WARNINGS: tuple[re.Pattern[str], ...] = (
    re.compile(r"WARNING: .* at arch/um/drivers/virtio_uml\.c:\d+ vu_interrupt\b"),
    re.compile(r"WARNING: .* at arch/um/drivers/virtio_uml\.c:\d+ vu_del_vqs\b"),
)
CUT_HERE = "------------[ cut here ]------------"
END_TRACE = "---[ end trace"


class UmlError(AssertionError):
    """The guest did not do what was expected (timeout, early exit, kernel complaint); shows its console."""


def _check_cmdline_path(path: Path, what: str, forbidden: str) -> None:
    text = str(path)
    if not path.is_absolute() or any(c.isspace() or c in forbidden for c in text):
        raise ValueError(f"{what} must be an absolute path without whitespace or {forbidden!r}: {text!r}")


def _group_members(pgid: int) -> list[int]:
    """The live (not zombie) processes of process group ``pgid``, from /proc."""
    members = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        # pid (comm) state ppid pgrp ...: comm may contain spaces and parentheses, so split after the last ')'
        fields = stat[stat.rfind(b")") + 2 :].split()
        if len(fields) >= 3 and int(fields[2]) == pgid and fields[0] != b"Z":
            members.append(int(entry.name))
    return members


class UmlGuest:
    """One UML boot: the process, its console lines, and helpers to wait on them."""

    def __init__(
        self,
        images: UmlImages,
        share_dir: Path,
        devices: Sequence[tuple[Path, int]] = (),
        mem: str = "64M",
        extra_args: Sequence[str] = (),
        console_log: Path | None = None,
        aslr: bool = True,
    ) -> None:
        """``devices``: (vhost-user socket path, virtio device id) pairs, one virtio_uml device each.

        ``aslr=False`` runs UML with the host's address-space randomisation off (``setarch -R``): UML adds the
        random gap between its binary and its heap to its RAM (arch/um/kernel/um_arch.c, linux_main: the
        "exec-shield gap"), so only then are the physical addresses of ``iomem=`` regions the same every boot.

        ``extra_args`` are appended to the kernel command line (``KEY=value`` arguments the kernel does not
        know reach /init's environment). ``console_log``, if given, receives every console line as well.
        """
        self.images = images
        self.share_dir = Path(share_dir).resolve()
        self.devices = [(Path(sock).absolute(), int(device_id)) for sock, device_id in devices]
        self.mem = mem
        self.extra_args = list(extra_args)
        self.console_log = console_log
        self.aslr = aslr
        _check_cmdline_path(self.share_dir, "share_dir", ",:")
        for sock, _ in self.devices:
            _check_cmdline_path(sock, "a vhost-user socket path", ":,")
        self._lines: list[str] = []
        self._cond = threading.Condition()
        self._eof = False
        self._proc: subprocess.Popen[bytes] | None = None
        self._reader: threading.Thread | None = None
        self._uml_dir: Path | None = None
        self.started_at: float | None = None

    # ---- starting -------------------------------------------------------------------------------------

    def kernel_args(self) -> list[str]:
        """The kernel command line (after ``start``, which makes the private uml_dir)."""
        args = [
            f"mem={self.mem}",
            f"initrd={self.images.initramfs}",
            # con0 (the console /init uses) writes to the process' stdout and reads nothing; every other
            # console and serial line is a null channel (no xterms, no ptys).
            "con=null",
            "con0=null,fd:1",
            "ssl=null",
            f"RPROC_SHARE={self.share_dir}",
        ]
        if self._uml_dir is not None:
            # UML keeps <uml_dir>/<umid>/pid while it runs; a private one leaves nothing in ~/.uml.
            args.append(f"uml_dir={self._uml_dir}")
        args += [f"virtio_uml.device={sock}:{device_id}" for sock, device_id in self.devices]
        return args + self.extra_args

    def start(self, script: str) -> None:
        """Write ``share_dir/guest.sh`` and boot; returns at once (see ``wait_for``)."""
        if self._proc is not None:
            raise RuntimeError("this UmlGuest was already started")
        self.share_dir.mkdir(parents=True, exist_ok=True)
        (self.share_dir / "guest.sh").write_text(script if script.endswith("\n") else script + "\n")
        self._uml_dir = Path(tempfile.mkdtemp(prefix="rproc-uml-"))
        env = dict(os.environ)
        # UML's memory is a file in $TMPDIR (created and unlinked at once): tmpfs when possible.
        shm = Path("/dev/shm")
        env["TMPDIR"] = str(shm if shm.is_dir() and os.access(shm, os.W_OK) else self._uml_dir)
        # No core dumps of a panicking UML (it calls abort(), and its memory is mapped into the core).
        command = ["/bin/sh", "-c", 'ulimit -c 0; exec "$0" "$@"', str(self.images.linux), *self.kernel_args()]
        if not self.aslr:
            command = ["setarch", "-R", *command]
        self.started_at = time.monotonic()
        self._proc = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=self._uml_dir,
            start_new_session=True,  # own process group: kill() gets UML's helper processes too
        )
        self._reader = threading.Thread(target=self._read_console, name="uml-console", daemon=True)
        self._reader.start()

    def _read_console(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        with contextlib.ExitStack() as stack:
            log = stack.enter_context(open(self.console_log, "a", encoding="utf-8")) if self.console_log else None
            try:
                for raw in self._proc.stdout:
                    line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
                    if log is not None:
                        log.write(line + "\n")
                        log.flush()
                    with self._cond:
                        self._lines.append(line)
                        self._cond.notify_all()
            finally:
                with self._cond:
                    self._eof = True
                    self._cond.notify_all()

    # ---- watching -------------------------------------------------------------------------------------

    @property
    def lines(self) -> list[str]:
        """The console lines so far (a copy)."""
        with self._cond:
            return list(self._lines)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def returncode(self) -> int | None:
        return self._proc.poll() if self._proc is not None else None

    def tail(self, n: int = TAIL_LINES) -> str:
        return "\n".join(self.lines[-n:])

    def _fail(self, message: str) -> UmlError:
        return UmlError(f"{message}\n--- last {TAIL_LINES} console lines ---\n{self.tail()}")

    def wait_for(self, pattern: str | re.Pattern[str], timeout: float, start: int = 0) -> re.Match[str]:
        """The first console line from index ``start`` on that ``pattern`` matches (``re.search``).

        Raises UmlError with the last console lines when ``timeout`` seconds pass first, or when the guest's
        console ends (UML exited) without such a line.
        """
        if self._proc is None:
            raise RuntimeError("start() the guest first")
        regex = re.compile(pattern) if isinstance(pattern, str) else pattern
        deadline = time.monotonic() + timeout
        index = start
        with self._cond:
            while True:
                while index < len(self._lines):
                    match = regex.search(self._lines[index])
                    if match is not None:
                        return match
                    index += 1
                if self._eof:
                    self._cond.release()
                    try:
                        code = self._proc.wait(timeout=5)
                    except subprocess.TimeoutExpired:
                        code = None
                    finally:
                        self._cond.acquire()
                    raise self._fail(f"UML exited (status {code}) before printing /{regex.pattern}/")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise self._fail(f"no console line matched /{regex.pattern}/ within {timeout} s")
                self._cond.wait(left)

    def wait_exit(self, timeout: float) -> int:
        """UML's exit status once it ended by itself (0 after ``poweroff``); UmlError after ``timeout``."""
        if self._proc is None:
            raise RuntimeError("start() the guest first")
        already_reaped = self._proc.returncode is not None
        try:
            code = self._proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise self._fail(f"UML did not exit within {timeout} s") from None
        if not already_reaped:
            self._kill_group(self._proc.pid)  # UML stops its helpers itself; make sure
        if self._reader is not None:
            self._reader.join(timeout=5)
        return code

    def guest_exit_status(self, timeout: float) -> int:
        """Wait for ``rproc-guest: exit N`` and return N (guest.sh's exit status)."""
        return int(self.wait_for(EXIT_PATTERN, timeout).group(1))

    def problems(self, allow: Sequence[str | re.Pattern[str]] = ()) -> list[str]:
        """Console lines that show a kernel problem, each with the lines following it (its trace).

        WARN() blocks whose "WARNING:" line matches KNOWN_WARNINGS or a pattern of ``allow`` (``re.search``)
        are left out, and so are other lines that match ``allow``.
        """
        allowed = [*KNOWN_WARNINGS, *(re.compile(a) if isinstance(a, str) else a for a in allow)]
        lines = self.lines
        found: list[str] = []
        i = 0
        while i < len(lines):
            line = lines[i]
            if line.strip() == CUT_HERE and i + 1 < len(lines) and any(a.search(lines[i + 1]) for a in allowed):
                # skip a known harmless WARN() block up to its end marker
                j = i + 1
                while j < len(lines) and END_TRACE not in lines[j]:
                    j += 1
                i = j + 1
                continue
            if any(marker in line for marker in PROBLEM_MARKERS) and not any(a.search(line) for a in allowed):
                context = lines[i : i + 12]
                found.append("\n".join(context))
                i += len(context)
                continue
            i += 1
        return found

    def check_console_clean(self, allow: Sequence[str | re.Pattern[str]] = ()) -> None:
        """Raise UmlError showing the offending lines if the kernel printed a BUG, Oops, panic or WARNING.

        ``allow``: patterns of expected warnings (see ``problems``), e.g. BACKEND_DEATH_WARNINGS.
        """
        found = self.problems(allow)
        if found:
            raise UmlError("the kernel complained on the console:\n\n" + "\n\n".join(found))

    # ---- stopping -------------------------------------------------------------------------------------

    def kill(self) -> None:
        """Kill UML and every helper process in its process group, and reap it. Idempotent."""
        proc = self._proc
        if proc is not None:
            if proc.returncode is None:
                # Not reaped yet, so the process group id is still ours.
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
                self._kill_group(proc.pid)
            if self._reader is not None:
                self._reader.join(timeout=5)
            if proc.stdout is not None:
                proc.stdout.close()
        if self._uml_dir is not None:
            shutil.rmtree(self._uml_dir, ignore_errors=True)
            self._uml_dir = None

    @staticmethod
    def _kill_group(pgid: int, timeout: float = 5.0) -> None:
        """SIGKILL what is left of process group ``pgid`` (UML's helpers) until it is empty.

        Only called right after UML itself was reaped, so the group id cannot have been reused yet.
        """
        deadline = time.monotonic() + timeout
        while _group_members(pgid) and time.monotonic() < deadline:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
            time.sleep(0.02)

    def close(self) -> None:
        self.kill()

    def __enter__(self) -> UmlGuest:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.kill()
