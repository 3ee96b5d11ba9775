"""Server Ed25519 signing keys: a key file with ``kid``s, rotation and JWKS.

The newest ``active`` key signs; every key not ``retired`` still verifies (printed posters and
member cards stay valid across a rotation). The file is created on first run and never committed.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def public_jwk(public_key: Ed25519PublicKey, kid: str) -> dict[str, str]:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return {"kty": "OKP", "crv": "Ed25519", "x": b64url(raw), "kid": kid, "alg": "EdDSA", "use": "sig"}


def public_key_from_jwk(jwk: dict[str, object]) -> Ed25519PublicKey:
    """Raises ValueError for anything but an Ed25519 public JWK."""
    if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519" or not isinstance(jwk.get("x"), str):
        raise ValueError("not an Ed25519 public JWK")
    if "d" in jwk:
        raise ValueError("private key material must not be sent")
    raw = b64url_decode(str(jwk["x"]))
    if len(raw) != 32:
        raise ValueError("Ed25519 public key must be 32 bytes")
    return Ed25519PublicKey.from_public_bytes(raw)


@dataclass
class ServerKey:
    kid: str
    private_key: Ed25519PrivateKey
    created_at: str
    status: str  # active | retired

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.private_key.public_key()


class KeyFileError(Exception):
    pass


class KeyRing:
    def __init__(self, keys: list[ServerKey]) -> None:
        usable = [k for k in keys if k.status == "active"]
        if not usable:
            raise KeyFileError("the key file has no active key: run `python -m server keys rotate`")
        self.keys = keys
        self.signing = usable[-1]
        self.verifying: dict[str, Ed25519PublicKey] = {k.kid: k.public_key for k in usable}

    # -- file handling -------------------------------------------------------
    @staticmethod
    def _read(path: Path) -> list[ServerKey]:
        try:
            data = json.loads(path.read_text())
            return [
                ServerKey(
                    kid=item["kid"],
                    private_key=serialization.load_pem_private_key(item["private_pem"].encode(), password=None),  # type: ignore[arg-type]
                    created_at=item["created_at"],
                    status=item.get("status", "active"),
                )
                for item in data["keys"]
            ]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise KeyFileError(f"cannot read key file {path}: {exc}") from None

    @staticmethod
    def _write(path: Path, keys: list[ServerKey]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        data = {
            "keys": [
                {
                    "kid": k.kid,
                    "created_at": k.created_at,
                    "status": k.status,
                    "private_pem": k.private_key.private_bytes(
                        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
                    ).decode(),
                }
                for k in keys
            ]
        }
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, indent=2)
        os.replace(tmp, path)

    @staticmethod
    def _new_key() -> ServerKey:
        return ServerKey(
            kid="s" + secrets.token_hex(4),
            private_key=Ed25519PrivateKey.generate(),
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            status="active",
        )

    @classmethod
    def load_or_create(cls, path: Path) -> "KeyRing":
        if not path.exists():
            cls._write(path, [cls._new_key()])
        return cls(cls._read(path))

    @classmethod
    def rotate(cls, path: Path) -> ServerKey:
        keys = cls._read(path) if path.exists() else []
        key = cls._new_key()
        keys.append(key)
        cls._write(path, keys)
        return key

    @classmethod
    def retire(cls, path: Path, kid: str) -> None:
        keys = cls._read(path)
        matching = [k for k in keys if k.kid == kid]
        if not matching:
            raise KeyFileError(f"no key {kid} in {path}")
        if [k for k in keys if k.status == "active"] == matching:
            raise KeyFileError("cannot retire the only active key: rotate first")
        matching[0].status = "retired"
        cls._write(path, keys)

    @classmethod
    def list(cls, path: Path) -> list[ServerKey]:
        return cls._read(path)

    def jwks(self) -> list[dict[str, str]]:
        return [public_jwk(pub, kid) for kid, pub in self.verifying.items()]
