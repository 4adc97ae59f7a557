"""One side of a fill, as the engine hands it to a market type's `settle_fill`.

Its own module so that mypyc compiles it with the engine (`exos.native.COMPILED`): the engine builds two
per fill, and a native class is built without Python's argument handling. `exos.protocols` re-exports it.
"""

from __future__ import annotations


class FillSide:
    """One side of a fill as a market type settles it.

    `side` and `limit_price` are in book terms. `slots` are the order's four engine slots (each an
    unsigned 64-bit integer): slot 0 is the core's (the account), slot 3 the core's (the order's
    outcome: 0 for a plain market), slots 1-2 belong to the market type, which may update them (the
    core writes them back to the book)."""

    def __init__(self, account: int, side: int, limit_price: int, slots: list[int]) -> None:
        """The side of `account`'s order (`side`, limit `limit_price`) with its four slots."""
        self.account = account
        self.side = side
        self.limit_price = limit_price
        self.slots = slots

    def __repr__(self) -> str:
        """The four fields, as attrs would print them."""
        return f"FillSide(account={self.account}, side={self.side}, limit_price={self.limit_price}, slots={self.slots})"
