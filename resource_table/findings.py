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
        where = []
        if self.index is not None:
            where.append(f"entry {self.index}")
        if self.field is not None:
            where.append(f"field {self.field}")
        if self.offset is not None:
            where.append(f"offset {self.offset:#x}")
        prefix = f"{', '.join(where)}: " if where else ""
        return f"{self.severity.value}: {prefix}{self.message}"
