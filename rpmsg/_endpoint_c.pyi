# Stub of the compiled module rpmsg/csrc/endpoint.c (the host endpoint's send/recv as C methods).
from typing import Any

class Gate:
    open: bool
    block: bool
    kicks_on: bool
    attached: bool
    remote: bool
    def attach(self, *args: Any) -> None: ...
    def detach(self) -> None: ...

class EndpointBase:
    _gate: Gate | None
    addr: int
    peer: int | None
    _queue: Any
    closed: bool
    def send(self, data: bytes | bytearray | memoryview) -> int: ...
    def sendto(self, data: bytes | bytearray | memoryview, dst: int) -> int: ...
    def recv(self, bufsize: int = ...) -> bytes: ...
    def recvfrom(self, bufsize: int = ...) -> tuple[bytes, int]: ...
