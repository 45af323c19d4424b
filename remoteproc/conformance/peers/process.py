"""Peers in processes of their own. A peer program the suite starts (OpenAMP's demos, or any ``--command``):
tied to this process, its output kept, its end noticed at once.

A program that exits at once (a wrong path or argument, "Failed to set resource table") used to show as a 10-20 s
timeout of whatever waited for it; every wait for such a peer now calls :meth:`PeerProgram.check`, which raises
:class:`PeerExited` with the exit status and the end of its output as soon as it has ended. The output (stdout
and stderr, in anonymous temporary files: nothing is left behind) is also where a host program reports its own
tally: OpenAMP's pingers print "Test Results: Error count = N" and exit 0 whatever N is
(:func:`remoteproc.conformance.remote_role.session.reported_errors`).
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import IO

from remoteproc import children
from remoteproc.errors import RemoteprocError
from rpmsg.device import RpmsgDevice

TAIL = 800  # characters of output quoted in an error


class PeerExited(RemoteprocError):
    """The peer program ended while the suite waited for it."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class PeerProgram:
    def __init__(self, command: Sequence[str]) -> None:
        self.command = list(command)
        self._out: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the program
        self._err: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 - closed by close()
        self.started = time.monotonic()
        try:
            self.proc = children.start(self.command, stdin=subprocess.DEVNULL, stdout=self._out, stderr=self._err)
        except OSError as exc:
            self.close()
            raise RemoteprocError(f"cannot start {self.command[0]}: {exc.strerror or exc}") from None

    @property
    def pid(self) -> int:
        return self.proc.pid

    def check(self) -> None:
        """Raise :class:`PeerExited` if the program has ended (for the waits of the start-up)."""
        status = self.proc.poll()
        if status is not None:
            raise PeerExited(
                f"{self.command[0]} exited with status {status} after {time.monotonic() - self.started:.1f} s"
                f"{self._tail_text()}",
                status,
            )

    def output(self) -> bytes:
        """Everything it wrote to stdout so far."""
        return _read(self._out)

    def stderr(self) -> bytes:
        return _read(self._err)

    def _tail_text(self) -> str:
        err, out = self.stderr().decode(errors="replace"), self.output().decode(errors="replace")
        parts = [f"stderr: {err[-TAIL:].strip()!r}" if err.strip() else "", f"stdout: {out[-TAIL:].strip()!r}"]
        shown = [p for p in parts if p and not p.endswith("''")]
        return ("; " + "; ".join(shown)) if shown else " (no output)"

    def exit_code(self, timeout: float) -> int | None:
        try:
            return self.proc.wait(timeout) if timeout else self.proc.poll()
        except subprocess.TimeoutExpired:
            return None

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()

    def close(self) -> None:
        if hasattr(self, "proc"):
            self.kill()
        self._out.close()
        self._err.close()


def _read(f: IO[bytes]) -> bytes:
    """The file's bytes, read without moving the offset it shares with the writing child."""
    if f.closed:
        return b""
    fd = f.fileno()
    return os.pread(fd, os.fstat(fd).st_size, 0)


class ProcessLifecycle:
    """A peer process: killed on demand, reaped at the end (and its kept output freed)."""

    def __init__(self, proc: subprocess.Popen[bytes], program: PeerProgram | None = None) -> None:
        self.proc = proc
        self.program = program

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def exit_code(self, timeout: float) -> int | None:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def reap(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.wait(2)
            except subprocess.TimeoutExpired:
                self.kill()
        if self.program is not None:
            self.program.close()


@dataclass
class ProcessRun:
    description: str
    device: RpmsgDevice
    proc: subprocess.Popen[bytes]
    closers: list[Callable[[], None]]
    channel: str
    channel_addr: int = 0x400
    table: tuple[int, int, int] | None = None
    program: PeerProgram | None = None  # a program whose output is kept (the host's own error count)

    def exit_code(self, timeout: float) -> int | None:
        try:
            return self.proc.wait(timeout) if timeout else self.proc.poll()
        except subprocess.TimeoutExpired:
            return None

    def output(self) -> bytes:
        return self.program.output() if self.program is not None else b""

    def close(self) -> None:
        self.device.close()
        for close in self.closers:
            close()
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        if self.program is not None:
            self.program.close()
