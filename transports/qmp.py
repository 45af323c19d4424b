"""A minimal QMP client (QEMU Machine Protocol, docs/interop/qmp-spec): JSON lines over a unix socket.

Enough to drive an emulated board: negotiate capabilities, run commands (``cont``, ``stop``,
``system_reset``, ``query-status``) and collect the asynchronous events that arrive in between.
"""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from typing import Any

from transports.errors import TransportError


class QmpError(TransportError):
    """QEMU answered a command with an error, or the monitor connection failed."""


class Qmp:
    def __init__(self, path: str | Path, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                self.sock.connect(str(path))
                break
            except (FileNotFoundError, ConnectionRefusedError):
                self.sock.close()
                if time.monotonic() > deadline:
                    raise QmpError(f"no QMP monitor at {path} after {timeout} s") from None
                time.sleep(0.02)
        self.sock.settimeout(timeout)
        self._buf = b""
        self.events: list[dict[str, Any]] = []
        greeting = self._read()
        if "QMP" not in greeting:
            raise QmpError(f"not a QMP greeting: {greeting!r}")
        self.execute("qmp_capabilities")

    def _read(self) -> dict[str, Any]:
        while b"\n" not in self._buf:
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                raise QmpError("QEMU did not answer on its monitor") from None
            except OSError as exc:  # reset: QEMU died mid-conversation
                raise QmpError(f"QEMU's monitor connection failed: {exc.strerror or exc}") from None
            if not chunk:
                raise QmpError("QEMU closed its monitor (it exited)")
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        message: dict[str, Any] = json.loads(line)
        return message

    def execute(self, command: str, **arguments: Any) -> Any:
        request: dict[str, Any] = {"execute": command}
        if arguments:
            request["arguments"] = arguments
        try:
            self.sock.sendall(json.dumps(request).encode() + b"\n")
        except OSError as exc:
            raise QmpError(f"QEMU's monitor connection failed: {exc.strerror or exc}") from None
        while True:
            message = self._read()
            if "event" in message:
                self.events.append(message)
                continue
            if "error" in message:
                raise QmpError(f"{command}: {message['error'].get('desc', message['error'])}")
            return message.get("return")

    def close(self) -> None:
        self.sock.close()
