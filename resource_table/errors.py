"""The one exception root of :mod:`resource_table`.

Every error says where: the entry index, the byte offset in the table and the field, when they are known, so a
firmware author can find the line of C to fix.
"""

from __future__ import annotations

from resource_table.findings import Finding, place


class ResourceTableError(ValueError):
    """Root of every error raised by :mod:`resource_table`.

    ``index`` is the entry number (``None`` for the header), ``offset`` the byte offset in the table the problem is
    at, ``field`` the name of the field (``"offset[2]"``, ``"vring[1].num"``).
    """

    def __init__(
        self,
        message: str,
        *,
        index: int | None = None,
        offset: int | None = None,
        field: str | None = None,
    ) -> None:
        self.message = message
        self.index = index
        self.offset = offset
        self.field = field
        super().__init__(place(message, index, field, offset))


class ParseError(ResourceTableError):
    """The bytes are not a resource table this parser can read (truncated, offsets past the end, ...)."""


class BuildError(ResourceTableError):
    """A model cannot be encoded (a value does not fit its field, an address does not fit 32 bits, ...)."""


class ValidationError(ResourceTableError):
    """:func:`resource_table.validate` found problems; ``findings`` lists every one of them."""

    def __init__(self, findings: list[Finding]) -> None:
        self.findings = findings
        first = findings[0]
        more = f" (and {len(findings) - 1} more)" if len(findings) > 1 else ""
        super().__init__(first.message + more, index=first.index, offset=first.offset, field=first.field)


class SpecError(ResourceTableError):
    """A JSON/TOML table description is malformed; ``field`` is the path inside it (``entries[2].vrings[0].num``)."""
