"""The user service's use cases, over the ports; no gRPC and no storage details here."""

from __future__ import annotations

from services.user.ports import KeyStore


def get_jwks(keys: KeyStore) -> bytes:
    """The JWK Set that verifies access tokens (current and retired keys)."""
    return keys.jwks_json()
