"""The remote processor's states and the transitions between them (sans-I/O).

offline -> running -> (crashed) -> offline, and attached -> detached for a remote that was already running
(Linux ``enum rproc_state``: RPROC_OFFLINE, RPROC_RUNNING, RPROC_CRASHED, RPROC_ATTACHED, RPROC_DETACHED).
"""

from __future__ import annotations

import enum

from remoteproc.errors import RemoteprocError


class State(enum.Enum):
    OFFLINE = "offline"
    RUNNING = "running"
    CRASHED = "crashed"
    ATTACHED = "attached"
    DETACHED = "detached"


ALLOWED: dict[State, frozenset[State]] = {
    State.OFFLINE: frozenset({State.RUNNING, State.ATTACHED}),
    State.RUNNING: frozenset({State.OFFLINE, State.CRASHED}),
    State.CRASHED: frozenset({State.OFFLINE}),
    State.ATTACHED: frozenset({State.DETACHED, State.CRASHED, State.OFFLINE}),
    State.DETACHED: frozenset({State.ATTACHED, State.OFFLINE}),
}


class StateError(RemoteprocError):
    """An operation that the current state does not allow (start while running, ...)."""


class Lifecycle:
    def __init__(self) -> None:
        self.state = State.OFFLINE
        self.history: list[State] = [State.OFFLINE]

    def to(self, new: State) -> None:
        if new not in ALLOWED[self.state]:
            raise StateError(f"cannot go from {self.state.value} to {new.value}")
        self.state = new
        self.history.append(new)
