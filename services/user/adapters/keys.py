"""Access-token signing keys: ES256 (P-256) keys from the environment, published as a JWK Set."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from services.user.config import KeySettings

log = logging.getLogger(__name__)

ALGORITHM = "ES256"
_PEM_BLOCK = re.compile(r"-----BEGIN [A-Z ]+-----.+?-----END [A-Z ]+-----", re.DOTALL)


def _thumbprint(jwk: Mapping[str, Any]) -> str:
    """RFC 7638 JWK thumbprint: a key id derived from the key itself, stable across restarts."""
    members = {name: jwk[name] for name in ("crv", "kty", "x", "y")}
    digest = hashlib.sha256(json.dumps(members, separators=(",", ":"), sort_keys=True).encode())
    return base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode()


def _public_jwk(public_key: ec.EllipticCurvePublicKey) -> dict[str, Any]:
    jwk = ECAlgorithm.to_jwk(public_key, as_dict=True)
    return {**jwk, "kid": _thumbprint(jwk), "alg": ALGORITHM, "use": "sig"}


@dataclass(frozen=True)
class SigningKeys:
    """The current signing key, and the other public keys the JWKS lists (retired or next)."""

    private_key: ec.EllipticCurvePrivateKey
    others: tuple[ec.EllipticCurvePublicKey, ...] = ()

    @property
    def kid(self) -> str:
        return _public_jwk(self.private_key.public_key())["kid"]

    def sign(self, claims: Mapping[str, Any]) -> str:
        return jwt.encode(dict(claims), self.private_key, ALGORITHM, headers={"kid": self.kid})

    def jwks(self) -> dict[str, Any]:
        public = [self.private_key.public_key(), *self.others]
        return {"keys": [_public_jwk(key) for key in public]}

    def jwks_json(self) -> bytes:
        return json.dumps(self.jwks(), separators=(",", ":")).encode()


def _load_private(pem: str) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise ValueError("the JWT signing key must be an EC P-256 private key (ES256)")
    return key


def _development_key(path: Path) -> ec.EllipticCurvePrivateKey:
    """A key generated once and kept under var/, so tokens survive a restart of `make run`."""
    if path.exists():
        return _load_private(path.read_text())
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written under a temporary name and renamed: two starts racing never see half a key.
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_bytes(pem)
    tmp.chmod(0o600)
    tmp.replace(path)
    log.warning("no EMPORIUM_USER_JWT_PRIVATE_KEY: using the development key %s", path)
    return key


def load(settings: KeySettings) -> SigningKeys:
    """The signing keys the settings name (a development key when none is configured)."""
    if settings.private_key_pem:
        private = _load_private(settings.private_key_pem.get_secret_value())
    else:
        private = _development_key(settings.development_key_path)
    others = []
    for block in _PEM_BLOCK.findall(settings.extra_public_keys_pem):
        key = serialization.load_pem_public_key(block.encode())
        if not isinstance(key, ec.EllipticCurvePublicKey):
            raise ValueError("extra JWT public keys must be EC P-256 public keys")
        others.append(key)
    return SigningKeys(private, tuple(others))
