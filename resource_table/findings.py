"""What :func:`resource_table.validate` reports: one finding per problem, with its place."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Severity(enum.Enum):
    """``ERROR``: Linux or OpenAMP refuses the table or misbehaves on it. ``WARNING``: accepted, but wrong."""

    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, kw_only=True)
class Finding:
    severity: Severity
    message: str
    index: int | None = None
    offset: int | None = None
    field: str | None = None

    def __str__(self) -> str:
        return f"{self.severity.value}: {place(self.message, self.index, self.field, self.offset)}"


def place(message: str, index: int | None, field: str | None, offset: int | None) -> str:
    """``message`` prefixed with where it applies: "entry 2, field vring[1].num, offset 0x54: ..."."""
    where = []
    if index is not None:
        where.append(f"entry {index}")
    if field is not None:
        where.append(f"field {field}")
    if offset is not None:
        where.append(f"offset {offset:#x}")
    return f"{', '.join(where)}: {message}" if where else message
