"""How often a repeated complaint is logged: a peer can make the same thing happen millions of times (malformed
messages, refused announcements, full queues), and each occurrence is counted exactly where it happens; the log
only needs to say that it happens, and that it goes on."""

from __future__ import annotations

import logging


def level_for(count: int) -> int:
    """The log level of the ``count``-th occurrence of one kind: WARNING at 1, 2, 4, 8, ... (a flood logs a few
    dozen lines, not millions; the counter has the exact number), DEBUG otherwise."""
    return logging.WARNING if count & (count - 1) == 0 else logging.DEBUG
