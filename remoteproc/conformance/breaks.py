"""The ways :mod:`remoteproc.conformance.remote_peer` can misbehave on purpose, one rule each."""

from __future__ import annotations

ECHO_CHANNEL = "rpmsg-echo"

BREAKS: dict[str, str] = {
    "no-kick": "never notifies the host, neither for messages it sends nor for buffers it returns",
    "kick-always": "kicks for every message it sends even while the host asked not to be kicked",
    "wrong-used-id": "returns the host's receive buffers under a descriptor id that does not exist",
    "oversize-len": "writes a header length larger than the buffer",
    "short-used-len": "reports a used length shorter than the message it wrote",
    "no-ns": "never announces its channel",
    "check-reserved": "drops messages whose reserved header field is not 0",
    "drop-low-addr": "drops messages from source addresses below 1024",
    "no-max-size": "drops messages of the largest size",
    "reorder": "echoes every second message before the one it got first",
    "stop-after-1000": "stops echoing after 1000 messages",
    "ignore-host-close": "goes on running when the host has gone",
    "die-on-host-ns": "exits when the host announces a channel",
    "death-unseen": "leaves a child holding its end of the link, so its death is not visible",
    "announce-once": "announces its channel on its first start only, never after a restart",
}

HOST_BREAKS: dict[str, str] = {
    "no-rx-buffers": "posts no receive buffers at start",
    "no-repost": "keeps every received buffer instead of posting it again",
    "oversize-len": "sends a message whose header length is larger than its buffer",
    "kick-always": "kicks for every message it sends even while the remote asked not to be kicked",
    "wrong-dst": "sends to an address nobody announced instead of the remote's channel",
    "exit-1": "ends with status 1",
    "oversize-after-wrap": "sends a header length beyond its buffer once its indices have wrapped",
}
