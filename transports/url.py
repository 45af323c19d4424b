"""Transports chosen by URL, in the manner of pyserial's ``serial_for_url``.

    link = open_link("shm://demo?size=0x100000", role="host")   # memory now
    ...lay out the rings in link.memory...
    doorbell = link.connect(timeout=10)                          # the peer is there

| URL | what |
| --- | --- |
| ``loop://NAME?size=N`` | both sides in this process (a bytearray, eventfds) |
| ``shm://NAME?size=N[&allow_uid=U][&memfd=1][&doorbell=eventfd|socket|dgram]`` | two processes:
  /dev/shm/NAME (0600), or an anonymous memfd passed over the socket; kicks as eventfds passed with SCM_RIGHTS
  (the default: the rpmsg C paths write and read them without Python), bytes on /dev/shm/NAME.sock, or
  datagrams; a peer of another uid is refused (SO_PEERCRED) unless allowed |
| ``devmem://ADDR?size=N&uio=/dev/uioN&mailbox=ADDR[&path=/dev/mem]`` | physical memory, UIO interrupts, a mailbox |
| ``uart:PORT?size=N[&baud=B]`` | this side's own N-byte window, mirrored over the serial link |
| ``openamp://[?shm=PATH&event=PATH]`` | OpenAMP's Linux-userspace demo machine (its file and socket): its layout
  is OpenAMP's: ``remoteproc.platforms.openamp.host_device``/``remote_device`` take it, not ``rpmsg.wiring.host_on`` |
| ``vhost-user:PATH[?ns=0|1&version_1=0|1&event_idx=0|1]`` | the rpmsg remote behind a vhost-user front-end
  (UML's ``virtio_uml``, QEMU) on the unix socket PATH, role remote only; ``rpmsg.wiring.remote_on`` takes it |
| ``spy+URL`` | any of these, with every kick, wait and watched ring change written to a trace |

This module parses and dispatches, nothing more: each scheme's one :class:`~transports.link.Link` and its
``open_url(url, role, **options)`` live in the scheme's module (:data:`BUILTIN` names it, imported when a URL of
that scheme is opened). Third parties add schemes through the ``rproc.transports`` entry-point group: the entry
point's name is the scheme, its object a callable ``(url: ParsedUrl, role: str, **options) -> Link``.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

from transports.errors import TransportError
from transports.link import ROLES, Link, Opener, ParsedUrl
from transports.spy import SpyLink, log_trace

__all__ = ["BUILTIN", "Link", "ParsedUrl", "open_link", "parse_url", "schemes"]

BUILTIN: dict[str, str] = {
    "loop": "transports.loop",
    "shm": "transports.shm",
    "devmem": "transports.devmem",
    "openamp": "transports.openamp",
    "uart": "transports.uart",
    "vhost-user": "transports.vhost_user",
}
"""Each built-in scheme and the module holding its Link and ``open_url``."""


def parse_url(url: str) -> ParsedUrl:
    parts = urlsplit(url)
    if not parts.scheme:
        raise TransportError(f"{url!r} has no scheme (loop://, shm://, devmem://, spy+...)")
    params = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
    return ParsedUrl(parts.scheme, parts.netloc + parts.path, params)


def schemes() -> dict[str, Opener]:
    """Built-in schemes plus those installed packages declare (entry-point group ``rproc.transports``)."""
    found = {scheme: _builtin(module) for scheme, module in BUILTIN.items()}
    for ep in importlib.metadata.entry_points(group="rproc.transports"):
        if ep.name not in found:
            found[ep.name] = _lazy(ep)
    return found


def _builtin(module: str) -> Opener:
    def opener(url: ParsedUrl, role: str, **kw: Any) -> Link:
        link: Link = importlib.import_module(module).open_url(url, role, **kw)
        return link

    return opener


def _lazy(ep: importlib.metadata.EntryPoint) -> Opener:
    def opener(url: ParsedUrl, role: str, **kw: Any) -> Link:
        link: Link = ep.load()(url, role, **kw)
        return link

    return opener


def open_link(url: str, *, role: str, timeout: float = 10.0, trace: Callable[[str], None] | None = None) -> Link:
    """Open one side (``role`` "host" or "remote") of the transport ``url``."""
    if role not in ROLES:
        raise TransportError(f"role {role!r} is neither host nor remote")
    if url.startswith("spy+"):
        inner = open_link(url[4:], role=role, timeout=timeout)
        if not inner.memory_at_open:
            inner.close()
            raise TransportError(f"spy+ cannot wrap {url[4:].split(':')[0]}: (its memory is known only once connected)")
        return SpyLink(inner, trace or log_trace(f"{role} {url[4:]}"))
    parsed = parse_url(url)
    found = schemes()
    opener = found.get(parsed.scheme)
    if opener is None:
        known = ", ".join(f"{s}://" for s in sorted(found))
        raise TransportError(f"no transport for {parsed.scheme}:// (known: {known}, spy+...)")
    return opener(parsed, role, timeout=timeout)
