"""Private reads: who may read an account (REST request signatures and the WebSocket login).

An account's balances, orders, fills, transfers and its user channel are read only by the account's
own key or an agent it approved (unexpired, not revoked: engine state, so the sequencer answers).
Both are EIP-712 typed data under the venue's domain (`GET /v1/info`, see `exos.signing`):

    Login(address account,uint64 timestamp)                                  the WebSocket `login` op
    Request(address account,string method,string path,uint64 timestamp)      one REST read, in headers

REST: `X-Exos-Address` (the account signed for), `X-Exos-Timestamp` (ms, decimal) and
`X-Exos-Signature` (0x and 65 bytes r, s, v) over `Request` with the method in capitals and the path
exactly as sent (percent-encoded path, then `?` and the query string when there is one). Answers:
401 NOT_AUTHENTICATED (a header missing or malformed), 401 BAD_TIMESTAMP (more than WINDOW_MS from the
server's clock), 401 BAD_SIGNATURE (malformed or malleable), 401 NOT_AUTHORISED (the signature
recovers neither the account nor an approved, unexpired agent of it: another key, another domain,
any field changed), 403 FORBIDDEN (a good signature, for an account that may not read this one).

A read signature may be replayed within its window (reads change nothing; like OKX's REST signatures);
a login may not: the sequencer remembers each (signer, account, timestamp) it accepted for as long
as the window could accept it again (LOGIN_REPLAYED).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Protocol

from exos.sequencer import READ_WINDOW_MS, QueryError
from exos.signing import Domain, SignatureError, login_digest, recover_digest, request_digest

WINDOW_MS = READ_WINDOW_MS  # a signed read or login is good within this much of the server's clock, either way
HEADERS = ("X-Exos-Address", "X-Exos-Timestamp", "X-Exos-Signature")
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_SIGNATURE = re.compile(r"0x[0-9a-fA-F]{130}")
_DIGITS = re.compile(r"[0-9]{1,20}")


class _Reads(Protocol):
    """What the authenticator needs of a backend: the signing domain and reads answered by the sequencer."""

    domain: Domain

    async def query(self, name: str, **args: Any) -> Any:
        """A read answered by the sequencer (QueryError if it cannot be answered)."""


def _hex(raw: bytes) -> str:
    """An address as the API writes it."""
    return "0x" + raw.hex()


class Authenticator:
    """Checks signed reads and logins against the venue's domain, the server's clock and the engine's agents."""

    def __init__(self, backend: _Reads, clock: Callable[[], int]) -> None:
        """Recover under `backend.domain`; ask `backend` about agents; `clock` gives the server's time in ms."""
        self.backend = backend
        self.domain = backend.domain
        self.clock = clock

    def _window(self, timestamp: int) -> None:
        """A signature's timestamp within WINDOW_MS of the server's clock (QueryError BAD_TIMESTAMP otherwise)."""
        now = self.clock()
        if abs(timestamp - now) > WINDOW_MS:
            raise QueryError(401, "BAD_TIMESTAMP", f"timestamp: {timestamp} ms is {timestamp - now:+} ms from the "
                             f"server's clock; a signature is good within {WINDOW_MS // 1000} s of it")  # fmt: skip

    async def request(self, method: str, target: str, address: str | None, timestamp: str | None,
                      signature: str | None) -> bytes:  # fmt: skip
        """The account a signed REST read authenticates (its own key or its agent's); QueryError 401 otherwise."""
        if address is None or timestamp is None or signature is None:
            missing = ", ".join(h for h, v in zip(HEADERS, (address, timestamp, signature), strict=True) if v is None)
            raise QueryError(401, "NOT_AUTHENTICATED", f"this read is private: sign it ({missing} missing)")
        if not _ADDRESS.fullmatch(address):
            raise QueryError(401, "NOT_AUTHENTICATED", "X-Exos-Address: 0x and 40 hex digits")
        if not _DIGITS.fullmatch(timestamp):
            raise QueryError(401, "BAD_TIMESTAMP", "X-Exos-Timestamp: milliseconds since the epoch, in decimal")
        if not _SIGNATURE.fullmatch(signature):
            raise QueryError(401, "BAD_SIGNATURE", "X-Exos-Signature: 0x and 65 bytes (r, s, v) of hex")
        account, when = bytes.fromhex(address[2:]), int(timestamp)
        self._window(when)
        try:
            digest = request_digest(account, method, target, when, self.domain)
            signer = recover_digest(digest, bytes.fromhex(signature[2:]))
        except SignatureError as exc:
            raise QueryError(401, exc.code, exc.message) from None
        if signer != account:  # the account's own key needs no engine state; an agent does
            await self.backend.query("authorise", account=account, signer=signer)
        return account

    async def login(self, account: bytes, timestamp: int, signature: str) -> tuple[bytes, int | None]:
        """(signer, agent expiry or None for the account's own key) of a WebSocket login; QueryError if refused."""
        self._window(timestamp)
        try:
            signer = recover_digest(login_digest(account, timestamp, self.domain), bytes.fromhex(signature[2:]))
        except SignatureError as exc:
            raise QueryError(401, exc.code, exc.message) from None
        answer = await self.backend.query("authorise", account=account, signer=signer, login=timestamp)
        expiry = answer.get("expiry")
        return signer, None if expiry is None else int(expiry)


def may_read(reader: bytes, account: bytes) -> None:
    """An authenticated reader reads only its own account (QueryError 403 FORBIDDEN otherwise)."""
    if reader != account:
        raise QueryError(403, "FORBIDDEN", f"signed for {_hex(reader)}, which may not read {_hex(account)}")
