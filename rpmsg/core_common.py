"""What the two rpmsg roles' protocol cores share, without I/O: the events they hand out (:class:`Message`,
:class:`ChannelEvent`), the zero-copy send buffer (:class:`TxBuffer`) and :class:`CoreBase` (intents, drops,
batch parsing and dispatch). The roles: :mod:`rpmsg.host_core`, :mod:`rpmsg.remote_core`; the theory of
operation: :mod:`rpmsg.core`.
"""

from __future__ import annotations

import contextlib
import logging
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from rpmsg.errors import LocalProtocolError, MessageTooLong, RemoteProtocolError
from rpmsg.log_limit import level_for
from rpmsg.protocol import HEADER_SIZE, NS_ADDR, parse_message, unpack_ns
from virtio import DeviceQueue, DriverQueue, Notify
from virtio.errors import RemoteFault

if TYPE_CHECKING:
    from rpmsg._endpoint_c import MessageBase, TxBufferBase
else:
    from rpmsg._native import endpoint_module

    TxBufferBase = endpoint_module().TxBufferBase if endpoint_module() is not None else object
    MessageBase = endpoint_module().MessageBase if endpoint_module() is not None else object

# The cores' one logger (drops of malformed messages), named as before the split.
log = logging.getLogger("rpmsg.core")

Payload = bytes | bytearray | memoryview


@dataclass
class Message(MessageBase):
    """A received message. ``payload`` is a copy, unless it was received zero-copy: then it is a read-only
    view of shared memory, valid until :meth:`release` (which hands the buffer back to the ring).

    Its fields live in rpmsg._endpoint_c.MessageBase when that is built, so that a zero-copy endpoint's C
    ``recv_message`` lends one without running Python (it then holds its buffer there, not in ``_release``)."""

    if MessageBase is not object:
        __slots__ = ()  # every field is the C base's: no __dict__ or weakref slot to make and free per message

    src: int
    dst: int
    payload: bytes | memoryview
    _release: Callable[[], None] | None = field(default=None, repr=False)

    if MessageBase is object:  # no compiled base: its methods, in Python

        @property
        def held(self) -> bool:
            return self._release is not None

        def release(self) -> None:
            """Hand the buffer back to the ring (nothing for a copy). The payload's view is released first: a
            view still exported (BufferError) leaves the message held, to be released once the export is gone."""
            if self._release is not None:
                if isinstance(self.payload, memoryview):
                    self.payload.release()  # later use raises ValueError instead of reading a recycled buffer
                release, self._release = self._release, None
                release()

    def __enter__(self) -> Message:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


if MessageBase is not object:
    # dataclass made the default a class attribute, which would hide the C base's `_release` member (and the
    # instance has no __dict__ to hold another): __init__ keeps the default in its signature
    del Message._release


@dataclass(frozen=True)
class ChannelEvent:
    """The peer announced (``destroy`` False) or withdrew a channel through the name service."""

    name: str
    addr: int
    destroy: bool


Event = Message | ChannelEvent


class TxBuffer(TxBufferBase):
    """A send buffer in shared memory for zero-copy sends: write into :attr:`view`, then ``send_buffer``.

    After it is sent (or given back) the view is released: a late write raises, it cannot corrupt a buffer the
    peer is reading. Its fields live in rpmsg._endpoint_c.TxBufferBase when that is built, so that the endpoint's
    C ``get_buffer`` makes one without running Python (docs/rpmsg.md, "Zero-copy")."""

    def __init__(self, addr: int, view: memoryview, capacity: int, token: object = None, slot: int = 0) -> None:
        self.addr = addr
        self.view = view
        self.capacity = capacity
        self.token = token
        self.slot = slot  # the remote's: the head of the host's descriptor chain it holds (0 for the host's)
        self.done = False

    if TxBufferBase is object:  # no compiled base: its methods, in Python

        def _finish(self) -> None:
            self.view.release()  # first: a view still exported (BufferError) leaves the buffer unsent
            self.done = True

        def __setitem__(self, key: int | slice, value: object) -> None:
            """``buf[i] = byte``, ``buf[a:b] = data``: into the payload (refused once sent)."""
            if self.done:
                raise ValueError("this TX buffer was sent or given back: take another (get_buffer)")
            self.view[key] = value  # type: ignore[call-overload]

        def __len__(self) -> int:
            return self.capacity


class CoreBase:
    """What both roles' cores share: the kicks they ask for (intents), malformed messages dropped, a batch of
    copied messages parsed (:func:`rpmsg.protocol.parse_message`) and dispatched to events."""

    def __init__(self) -> None:
        self.intents: set[int] = set()
        self.dropped = 0  # malformed messages dropped (buffer kept); see the log for each

    def _drop(self, why: str) -> None:
        self.dropped += 1
        log.log(level_for(self.dropped), "dropped a malformed message (%d so far): %s", self.dropped, why)

    def take_intents(self) -> list[int]:
        out = sorted(self.intents)
        self.intents.clear()
        return out

    def _note(self, intent: Notify | None) -> None:
        if intent is not None:
            self.intents.add(intent.queue)

    # --- zero-copy sending, both roles (the host's send buffers, the remote's held host receive buffers) ------
    def check_tx_buffer(self, buf: TxBuffer, length: int) -> None:
        """What makes a zero-copy send refused: another device's buffer (its ``token`` is the core that made
        it), one already sent or given back, a length that is not an int or that it cannot hold."""
        if not isinstance(buf, TxBuffer):
            raise TypeError(f"a zero-copy send takes a TxBuffer (get_buffer, get_buffers), not {type(buf).__name__}")
        if buf.token is not self:
            raise LocalProtocolError("this TX buffer belongs to another device: take one from this one's get_buffer")
        if not isinstance(length, int):
            raise TypeError(f"a zero-copy send's length must be an int, not {type(length).__name__}")
        if buf.done:
            raise LocalProtocolError("this TX buffer was already sent or given back")
        if not 0 <= length <= buf.capacity:
            raise MessageTooLong(
                f"{length} bytes do not fit the buffer's {buf.capacity}", size=length, limit=buf.capacity
            )

    def check_tx_buffers(self, bufs: Sequence[TxBuffer], lengths: Sequence[int]) -> None:
        """:meth:`check_tx_buffer` for each of a batch, in order, and none twice."""
        seen: set[int] = set()
        for buf, length in zip(bufs, lengths, strict=True):
            self.check_tx_buffer(buf, length)
            if id(buf) in seen:
                raise LocalProtocolError("this TX buffer is in the batch twice")
            seen.add(id(buf))

    def _post_batch(
        self,
        bufs: Sequence[TxBuffer],
        lengths: Sequence[int],
        post: Callable[[TxBuffer, int], None],
        queue: DriverQueue | DeviceQueue,
    ) -> None:
        """Send a checked batch with one publish of ``queue``: each buffer marked sent (its view released) before
        any is posted; a buffer whose view cannot be released (still exported: BufferError) ends the batch
        there: the ones before it are posted, it and the rest stay unsent, and its error is raised (the twin of
        the C methods' send_buffers_c)."""
        sent = 0
        try:
            for buf in bufs:
                buf._finish()
                sent += 1
        finally:
            for buf, length in zip(bufs[:sent], lengths[:sent], strict=True):
                post(buf, length)
            if sent:
                self._note(queue.publish())

    def _publish_taken(self, queue: DriverQueue | DeviceQueue) -> None:
        """Publish after taking messages in. An entry after them that broke the queue (the engine took the good
        ones, then stopped) makes this fail: the messages taken are still delivered, and the next poll reports
        the broken queue (nothing the peer completed correctly is lost to a later bad entry)."""
        with contextlib.suppress(RemoteFault):
            self._note(queue.publish())

    def _parse_batch(self, out: bytearray, lens: array[int], n: int, where: str) -> list[Event]:
        """Messages copied back to back into ``out`` (sizes in ``lens``): each one checked (:func:`parse_message`),
        each dispatched."""
        events: list[Event] = []
        pos = 0
        for i in range(n):
            size = lens[i]
            try:
                src, dst, _reserved, length, _flags = parse_message(out, pos, size)
            except RemoteProtocolError as exc:
                self._drop(self._malformed(where, exc, size, i, n))
            else:
                start = pos + HEADER_SIZE
                event = self._dispatch(src, dst, bytes(out[start : start + length]), None)
                if event is not None:
                    events.append(event)
            pos += size
        return events

    def _malformed(self, where: str, exc: RemoteProtocolError, size: int, i: int, n: int) -> str:
        """Why message ``i`` of a batch of ``n`` (``size`` bytes) was dropped."""
        return f"{where}: {exc}"

    def _dispatch(
        self, src: int, dst: int, payload: bytes | memoryview, release: Callable[[], None] | None
    ) -> Event | None:
        if dst == NS_ADDR:
            try:
                ns = unpack_ns(payload)
            except RemoteProtocolError as exc:
                self._drop(f"name service from {src:#x}: {exc}")
                return None
            finally:
                if release is not None:
                    release()
            return ChannelEvent(name=ns.name, addr=ns.addr, destroy=ns.destroy)
        return Message(src=src, dst=dst, payload=payload, _release=release)
