"""The exos exception hierarchy: every error has a machine-readable code and a message naming the rule."""

from __future__ import annotations


class ExosError(Exception):
    """Root of every error exos raises on purpose."""

    code: str = "EXOS_ERROR"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code

    @property
    def message(self) -> str:
        """The human-readable message, without the code."""
        return str(self.args[0]) if self.args else ""


class BookError(ExosError):
    """The order book refused an operation that is not an order decision (bad snapshot, unknown order)."""

    code = "BOOK_ERROR"


class BookInputError(BookError):
    """A value does not fit its field (a negative id, a price beyond i64, a 15-byte client id)."""

    code = "BOOK_INPUT"


class BuildError(ExosError):
    """The C extension is missing or was built from other sources."""

    code = "BUILD"
