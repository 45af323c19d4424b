"""The ``sim`` platform: the remote processor is a second process of ours.

The remote's memory is one /dev/shm file holding every region of the board's map back to back; firmware
segments and the resource table are loaded into it exactly as into real memory. Starting the remote launches
``python -m remoteproc.platforms.sim_remote``, which maps the same file, reads the resource table at the section's
address, waits for DRIVER_OK (testing the bit, polling every millisecond as OpenAMP does), connects the
doorbell socket and runs the rpmsg remote role with its services. Everything the host does is the real code
path; only the CPU is simulated.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import IO

from remoteproc import children
from remoteproc.boards import Board
from remoteproc.elf import ElfImage
from remoteproc.errors import RemoteprocError
from remoteproc.loader import LoadedSegment, Progress, load_segments
from remoteproc.resources import Pool
from transports.doorbell import SocketDoorbell
from transports.memory import RegionMemory
from transports.shm import listen_owner_only
from transports.shmfile import SharedFile, sweep_leftovers


class SimPlatform:
    name = "sim"

    def __init__(self, board: Board, *, services: tuple[str, ...] = ("echo",)) -> None:
        self.board = board
        self.services = services
        self.shm_name = f"rproc-sim-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.path = Path("/dev/shm") / self.shm_name
        sweep_leftovers("rproc-sim-")  # an earlier rproc killed with SIGKILL could not remove its file
        self._file = SharedFile(
            self.path, board.size, create=True, layout=[(r.name, r.da, r.size) for r in board.regions], lock=True
        )
        self.memory: RegionMemory = self._file.memory
        self.process: subprocess.Popen[bytes] | None = None
        self._listener: object | None = None
        self._errors: IO[bytes] | None = None

    @property
    def socket_path(self) -> Path:
        return self.path.with_name(self.shm_name + ".sock")

    def map_spec(self) -> str:
        return ",".join(f"{r.name}:{r.da:#x}:{r.size:#x}" for r in self.board.regions)

    def pool(self) -> Pool:
        return Pool([(r.da, r.end) for r in self.board.regions if r.pool])

    def load(self, path: str | os.PathLike[str], image: ElfImage, progress: Progress | None) -> list[LoadedSegment]:
        return load_segments(path, image, self.memory, progress=progress)

    def prepare(self) -> None:
        """Nothing to do before the table is written: the remote process starts in :meth:`start`."""

    def start(self, table_da: int, table_size: int) -> None:
        """Launch the remote; it will wait for DRIVER_OK in the table at ``table_da``."""
        self._listener = listen_owner_only(self.socket_path)
        cmd = [
            sys.executable,
            "-m",
            "remoteproc.platforms.sim_remote",
            "--shm",
            self.shm_name,
            "--map",
            self.map_spec(),
            "--table",
            f"{table_da:#x}:{table_size:#x}",
            "--socket",
            str(self.socket_path),
        ]
        for service in self.services:
            cmd += ["--service", service]
        root = Path(__file__).resolve().parents[2]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))}
        # The remote's stderr, read when it exits early (connect) and shown at stop; closed in stop.
        self._errors = tempfile.TemporaryFile()  # noqa: SIM115
        self.process = children.start(cmd, env=env, stderr=self._errors)  # dies with us, even of SIGKILL

    def connect(self, timeout: float = 10.0) -> SocketDoorbell:
        """After DRIVER_OK: the remote connects; its connection is the doorbell. If the remote exits first, that
        is seen at once (a pidfd), and the error says its exit status and the last line it wrote."""
        import select
        import socket

        server = self._listener
        if not isinstance(server, socket.socket) or self.process is None:
            raise RemoteprocError("the remote was not started")
        try:
            pidfd = os.pidfd_open(self.process.pid)
        except ProcessLookupError:  # already exited and reaped (a crashed() poll)
            pidfd = -1
        try:
            ready = [pidfd] if pidfd < 0 else select.select([server.fileno(), pidfd], [], [], timeout)[0]
            if server.fileno() in ready:
                conn, _ = server.accept()
            elif pidfd in ready:
                status = self.process.wait()
                raise RemoteprocError(
                    f"the simulated remote exited with status {status} before it connected: "
                    f"{self._child_error() or '(it wrote nothing)'}"
                )
            else:
                raise RemoteprocError(f"the simulated remote did not come up within {timeout} s")
        finally:
            if pidfd >= 0:
                os.close(pidfd)
            server.close()
            self._listener = None
            self.socket_path.unlink(missing_ok=True)
        return SocketDoorbell(conn)

    def _child_error(self) -> str:
        """The last line the remote wrote to its stderr (taken: :meth:`stop` does not show it again)."""
        errors = self._errors
        if errors is None:
            return ""
        errors.seek(0)
        lines = errors.read().decode(errors="replace").strip().splitlines()
        errors.seek(0)
        errors.truncate()
        return lines[-1] if lines else ""

    def crashed(self) -> bool:
        return self.process is not None and self.process.poll() is not None

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None
        if self._errors is not None:  # what the remote wrote and no error reported: shown, as if it were ours
            self._errors.seek(0)
            sys.stderr.write(self._errors.read().decode(errors="replace"))
            self._errors.close()
            self._errors = None
        if self._listener is not None:
            self._listener.close()  # type: ignore[attr-defined]
            self._listener = None
        self.socket_path.unlink(missing_ok=True)

    def close(self) -> None:
        self.stop()
        if self.memory is not self._file.memory:
            self.memory.release()  # a wrapper put in its place (tests spy on writes this way)
        self._file.close(unlink=True)
