"""Page sizes and page tokens of List RPCs (AIP-158): opaque, tamper-evident, bound to a request.

A List handler clamps the size, decodes the caller's token against the request's filter, reads
one page and encodes where the next one starts:

    size = page_size(request.page_size)
    state = decode_page_token(request.page_token, {"user_id": user_id, "status": status})
    rows, next_state = await session.execute_page(select, (user_id,), size, state)
    token = encode_page_token(next_state, {"user_id": user_id, "status": status})

A cursor is a small dict of JSON values (a Mongo "after this sort key" position) or bytes (a
Cassandra paging state). The token carries a fingerprint of the filter it was issued for, so a
token replayed with other filters fails with INVALID_ARGUMENT on `page_token`, as AIP-158 asks;
`page_size` may change between pages. An HMAC makes a token tamper-evident. Tokens are not
secret (base64url of the cursor), and the handler still applies the caller's own filter to
every page, so a forged cursor could only move the position within what the caller may read.

The key is per deployment (EMPORIUM_PAGE_TOKEN_KEY, kit/config.py PageTokenSettings): the
server installs it with `use_keys` at start, before any call. A rotation lists the old key as a
previous key, which still verifies tokens but never signs new ones.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from typing import Any

from kit.errors import InvalidArgument

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "MAX_PAGE_SIZE",
    "Cursor",
    "PageTokens",
    "decode_page_token",
    "encode_page_token",
    "page_size",
]

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
# Cursors are a few dozen bytes; a huge token is junk, refused before any work is done on it.
MAX_TOKEN_CHARS = 2048

Cursor = dict[str, Any] | bytes

_VERSION = 1
_KIND_JSON = 0
_KIND_BYTES = 1
_FINGERPRINT_BYTES = 8
_MAC_BYTES = 16
_HEADER_BYTES = 2 + _FINGERPRINT_BYTES
# Until `use_keys` runs (unit tests of handlers alone), the HMAC still detects corrupted and
# hand-edited tokens; a started server always has its deployment's key.
_DEFAULT_KEY = b"emporium page token v1"


def page_size(
    requested: int, *, default: int = DEFAULT_PAGE_SIZE, maximum: int = MAX_PAGE_SIZE
) -> int:
    """The page size to use: `default` for 0 (unset), at most `maximum`; negative is invalid."""
    if requested < 0:
        raise InvalidArgument("page_size", "must not be negative")
    if requested == 0:
        return default
    return min(requested, maximum)


def _fingerprint(request: Mapping[str, Any] | None) -> bytes:
    # Sorted keys: the same filter gives the same fingerprint whatever order it was built in.
    canonical = json.dumps(dict(request or {}), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).digest()[:_FINGERPRINT_BYTES]


class PageTokens:
    """Encodes page tokens with `key`; decodes those of `key` or of a `previous` key."""

    def __init__(self, key: bytes = _DEFAULT_KEY, previous: Sequence[bytes] = ()) -> None:
        if not key or not all(previous):
            raise ValueError("a page token key must not be empty")
        self._key = key
        self._previous = tuple(previous)

    def _mac(self, data: bytes, key: bytes | None = None) -> bytes:
        return hmac.new(key or self._key, data, hashlib.sha256).digest()[:_MAC_BYTES]

    def _authentic(self, data: bytes, mac: bytes) -> bool:
        return any(
            hmac.compare_digest(mac, self._mac(data, key)) for key in (self._key, *self._previous)
        )

    def encode(self, cursor: Cursor | None, request: Mapping[str, Any] | None = None) -> str:
        """The token for the page starting at `cursor`; "" when there is no next page (None)."""
        if cursor is None:
            return ""
        if isinstance(cursor, bytes | bytearray):
            kind, body = _KIND_BYTES, bytes(cursor)
        elif isinstance(cursor, Mapping):
            kind = _KIND_JSON
            body = json.dumps(dict(cursor), sort_keys=True, separators=(",", ":")).encode()
        else:
            raise TypeError(f"a cursor is a dict or bytes, not {type(cursor).__name__}")
        data = bytes([_VERSION, kind]) + _fingerprint(request) + body
        return base64.urlsafe_b64encode(data + self._mac(data)).rstrip(b"=").decode("ascii")

    def decode(self, token: str, request: Mapping[str, Any] | None = None) -> Cursor | None:
        """The cursor in `token` (None for "" = the first page), if it was issued for `request`.

        Raises InvalidArgument on `page_token` for a malformed, altered or foreign token, or one
        issued for a request with other filters.
        """
        if not token:
            return None
        raw = self._unwrap(token)
        data, mac = raw[:-_MAC_BYTES], raw[-_MAC_BYTES:]
        if not self._authentic(data, mac) or data[0] != _VERSION:
            raise InvalidArgument("page_token", "is not a page token issued by this service")
        if data[2:_HEADER_BYTES] != _fingerprint(request):
            raise InvalidArgument(
                "page_token",
                "was issued for a request with other filters; "
                "repeat the request with the same filters or start without a page_token",
            )
        kind, body = data[1], data[_HEADER_BYTES:]
        if kind == _KIND_BYTES:
            return body
        cursor = json.loads(body) if kind == _KIND_JSON else None
        if not isinstance(cursor, dict):  # a valid MAC over an unknown kind: a newer format
            raise InvalidArgument("page_token", "is not a page token issued by this service")
        return cursor

    @staticmethod
    def _unwrap(token: str) -> bytes:
        if len(token) > MAX_TOKEN_CHARS:
            raise InvalidArgument("page_token", "is too long")
        try:
            raw = base64.b64decode(token + "=" * (-len(token) % 4), altchars=b"-_", validate=True)
        except (binascii.Error, ValueError):
            raise InvalidArgument(
                "page_token", "is not a page token issued by this service"
            ) from None
        if len(raw) < _HEADER_BYTES + _MAC_BYTES:
            raise InvalidArgument("page_token", "is not a page token issued by this service")
        return raw


_default = PageTokens()


def use_keys(key: bytes, previous: Sequence[bytes] = ()) -> None:
    """Signs this process's page tokens with `key` from now on; `previous` keys still verify."""
    global _default
    _default = PageTokens(key, previous)


def encode_page_token(cursor: Cursor | None, request: Mapping[str, Any] | None = None) -> str:
    """`PageTokens().encode` with the kit's default key."""
    return _default.encode(cursor, request)


def decode_page_token(token: str, request: Mapping[str, Any] | None = None) -> Cursor | None:
    """`PageTokens().decode` with the kit's default key."""
    return _default.decode(token, request)
