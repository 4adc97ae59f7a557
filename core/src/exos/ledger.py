"""The shared ledger: assets, accounts (20-byte address + numbered sub-accounts), available and locked balances.

Accounts and assets get dense indices in the order they first appear (command order, so replay gives
the same indices); balances are Python ints in per-asset lists, so the hot path touches a list slot,
not a dict of objects. The invariant, per asset: Σ (available + locked) over all accounts, the fee
account included, equals deposits − withdrawals, exactly.
"""

from __future__ import annotations

import struct

import attrs

from exos.errors import ExosError

_U32 = struct.Struct("<I")


class LedgerInvariantError(ExosError):
    """The ledger's books do not balance (a bug, never a user error)."""

    code = "LEDGER_INVARIANT"


@attrs.frozen
class Asset:
    """A listed asset: amounts are integers in units of 10**-decimals."""

    symbol: str
    decimals: int


def _i128(value: int) -> bytes:
    """Canonical signed 128-bit little-endian integer."""
    return value.to_bytes(16, "little", signed=True)


class Ledger:
    """Balances of every account in every asset, with the venue's fee account among them."""

    __slots__ = (
        "account_ids",
        "accounts",
        "asset_ids",
        "assets",
        "available",
        "borrowable",
        "deposits",
        "fee_account",
        "locked",
        "master_ids",
        "masters",
        "withdrawals",
    )

    def __init__(self, fee_address: bytes) -> None:
        """An empty ledger whose fees go to `fee_address` (sub-account 0)."""
        self.assets: list[Asset] = []
        self.asset_ids: dict[str, int] = {}
        self.accounts: list[tuple[bytes, int]] = []
        self.account_ids: dict[tuple[bytes, int], int] = {}
        self.masters: list[int] = []  # account index -> master index (the STP group)
        self.master_ids: dict[bytes, int] = {}
        self.available: list[list[int]] = []
        self.locked: list[list[int]] = []
        self.deposits: list[int] = []
        self.withdrawals: list[int] = []
        self.borrowable: frozenset[int] = frozenset()  # assets whose available may go negative (margin borrows)
        self.fee_account = self.open_account(fee_address, 0)

    # ------------------------------------------------------------ listing and accounts

    def add_asset(self, symbol: str, decimals: int) -> int:
        """List an asset; returns its index."""
        index = len(self.assets)
        self.assets.append(Asset(symbol, decimals))
        self.asset_ids[symbol] = index
        self.available.append([0] * len(self.accounts))
        self.locked.append([0] * len(self.accounts))
        self.deposits.append(0)
        self.withdrawals.append(0)
        return index

    def find_account(self, address: bytes, sub: int) -> int | None:
        """The index of an existing account, or None."""
        return self.account_ids.get((address, sub))

    def open_account(self, address: bytes, sub: int) -> int:
        """The index of an account, creating it (with zero balances) if new."""
        key = (address, sub)
        index = self.account_ids.get(key)
        if index is not None:
            return index
        index = len(self.accounts)
        self.accounts.append(key)
        self.account_ids[key] = index
        master = self.master_ids.setdefault(address, len(self.master_ids))
        self.masters.append(master)
        for column in self.available:
            column.append(0)
        for column in self.locked:
            column.append(0)
        return index

    # ------------------------------------------------------------ movements (callers validate first)

    def deposit(self, account: int, asset: int, amount: int) -> None:
        """Credit an account from outside the venue."""
        self.available[asset][account] += amount
        self.deposits[asset] += amount

    def withdraw(self, account: int, asset: int, amount: int) -> None:
        """Debit an account to outside the venue (the caller checked `available`)."""
        self.available[asset][account] -= amount
        self.withdrawals[asset] += amount

    def move_available(self, source: int, asset: int, amount: int, target: int) -> None:
        """Move available balance between two accounts."""
        column = self.available[asset]
        column[source] -= amount
        column[target] += amount

    def lock(self, account: int, asset: int, amount: int) -> bool:
        """Move amount from available to locked; False (and no change) if not enough is available."""
        available = self.available[asset]
        if available[account] < amount:
            return False
        available[account] -= amount
        self.locked[asset][account] += amount
        return True

    def unlock(self, account: int, asset: int, amount: int) -> None:
        """Move amount from locked back to available."""
        self.locked[asset][account] -= amount
        self.available[asset][account] += amount

    def pay_locked(self, payer: int, asset: int, amount: int, payee: int) -> None:
        """Move amount out of the payer's locked balance into the payee's available balance."""
        self.locked[asset][payer] -= amount
        self.available[asset][payee] += amount

    def issue(self, account: int, asset: int, amount: int) -> None:
        """Create an outcome market's shares (counted as the asset's deposits, so the invariant holds)."""
        self.available[asset][account] += amount
        self.deposits[asset] += amount

    def burn_locked(self, account: int, asset: int, amount: int) -> None:
        """Destroy shares out of a locked balance (counted as the asset's withdrawals)."""
        self.locked[asset][account] -= amount
        self.withdrawals[asset] += amount

    def charge_fee(self, payer: int, asset: int, amount: int) -> None:
        """Move a fee from the payer to the fee account (a negative amount is a rebate)."""
        available = self.available[asset]
        available[payer] -= amount
        available[self.fee_account] += amount

    # ------------------------------------------------------------ checks and canonical form

    def check_invariants(self) -> None:
        """Raise LedgerInvariantError unless every asset balances exactly and no user balance is negative.

        A risk group's settlement asset (`borrowable`) may be negative while available: a borrow that
        unified margin covers (`exos.margin` checks the account's equity instead)."""
        for index, asset in enumerate(self.assets):
            available, locked = self.available[index], self.locked[index]
            total = sum(available) + sum(locked)
            expected = self.deposits[index] - self.withdrawals[index]
            if total != expected:
                raise LedgerInvariantError(
                    f"{asset.symbol}: balances sum to {total}, deposits - withdrawals = {expected}"
                )
            may_owe = index in self.borrowable
            for account, (a, lk) in enumerate(zip(available, locked, strict=True)):
                if lk < 0 or (a < 0 and account != self.fee_account and not may_owe):
                    address, sub = self.accounts[account]
                    raise LedgerInvariantError(
                        f"{asset.symbol}: account 0x{address.hex()}/{sub} has available {a}, locked {lk}"
                    )

    def dump(self) -> bytes:
        """Canonical bytes: assets, accounts in creation order, then every balance as i128."""
        out = [_U32.pack(len(self.assets))]
        for asset in self.assets:
            symbol = asset.symbol.encode()
            out += [_U32.pack(len(symbol)), symbol, _U32.pack(asset.decimals)]
        out.append(_U32.pack(len(self.accounts)))
        for address, sub in self.accounts:
            out += [address, struct.pack("<H", sub)]
        for index in range(len(self.assets)):
            out += [_i128(self.deposits[index]), _i128(self.withdrawals[index])]
            out += [_i128(v) for v in self.available[index]]
            out += [_i128(v) for v in self.locked[index]]
        return b"".join(out)

    @classmethod
    def load(cls, data: bytes, fee_address: bytes) -> tuple[Ledger, int]:
        """Rebuild a ledger from `dump` bytes; returns it and the number of bytes read."""
        ledger = cls(fee_address)  # its fields are all replaced below (no __new__: mypyc compiles this class)
        ledger.assets, ledger.asset_ids = [], {}
        ledger.accounts, ledger.account_ids, ledger.masters, ledger.master_ids = [], {}, [], {}
        ledger.available, ledger.locked, ledger.deposits, ledger.withdrawals = [], [], [], []
        ledger.borrowable = frozenset()
        view = memoryview(data)
        offset = 0

        def take(n: int) -> bytes:
            nonlocal offset
            chunk = bytes(view[offset : offset + n])
            if len(chunk) != n:
                raise LedgerInvariantError("ledger snapshot is truncated")
            offset += n
            return chunk

        def u32() -> int:
            return int(_U32.unpack(take(4))[0])

        def i128() -> int:
            return int.from_bytes(take(16), "little", signed=True)

        assets = []
        for _ in range(u32()):
            symbol = take(u32()).decode()
            assets.append((symbol, u32()))
        for _ in range(u32()):
            address = take(20)
            (sub,) = struct.unpack("<H", take(2))
            ledger._register_account(address, sub)
        for symbol, decimals in assets:
            ledger.assets.append(Asset(symbol, decimals))
            ledger.asset_ids[symbol] = len(ledger.assets) - 1
            ledger.deposits.append(i128())
            ledger.withdrawals.append(i128())
            ledger.available.append([i128() for _ in ledger.accounts])
            ledger.locked.append([i128() for _ in ledger.accounts])
        fee = ledger.account_ids.get((fee_address, 0))
        if fee is None:
            raise LedgerInvariantError("ledger snapshot has no fee account")
        ledger.fee_account = fee
        return ledger, offset

    def _register_account(self, address: bytes, sub: int) -> None:
        """Append an account while loading (balances are filled in afterwards)."""
        self.account_ids[(address, sub)] = len(self.accounts)
        self.accounts.append((address, sub))
        self.masters.append(self.master_ids.setdefault(address, len(self.master_ids)))


class SettlementContext:
    """The narrow `LedgerContext` market types settle fills through: bound methods, no extra call frame."""

    __slots__ = ("burn_locked", "charge_fee", "issue", "move", "pay_locked", "unlock")

    def __init__(self, ledger: Ledger) -> None:
        """The settlement view of `ledger`."""
        self.pay_locked = ledger.pay_locked
        self.unlock = ledger.unlock
        self.charge_fee = ledger.charge_fee
        self.move = ledger.move_available
        self.issue = ledger.issue
        self.burn_locked = ledger.burn_locked
