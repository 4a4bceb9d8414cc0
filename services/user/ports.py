"""What the user service's handlers need from the outside world, as Protocols."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol


class KeyStore(Protocol):
    """Signs access tokens and publishes the keys that verify them."""

    kid: str

    def sign(self, claims: Mapping[str, Any]) -> str: ...

    def jwks_json(self) -> bytes: ...
