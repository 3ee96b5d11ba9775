"""Compact EdDSA JWS tokens: QR codes (``st``/``ac``/``mb``/``rk``) and access tokens.

Headers carry only ``alg`` + ``kid`` to keep QR codes small. Signature checks are cached by the
token string: a poster scanned by many members costs one Ed25519 verification, not one each.
Validity in time (window, poster/card version, kiosk age) is checked by the caller against
``scanned_at``, not here — an offline scan is judged by when it happened.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from server.keys.keyring import KeyRing, b64url_decode

TOKEN_SHAPE = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$")
MAX_TOKEN_LENGTH = 2048
KIOSK_KID_PREFIX = "k"


class TokenError(Exception):
    """``reason`` is the stable check-in reason code."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


_EXTRACTED: dict[str, str] = {}


def extract_token(value: str) -> str:
    """Accept the bare JWS or the whole ``…/q/{token}`` URL a camera app would open. Well-formed
    values are remembered (a poster's code arrives from many members, and a batch reads each twice)."""
    token = _EXTRACTED.get(value) if isinstance(value, str) else None
    if token is not None:
        return token
    token = _extract(value)
    if len(_EXTRACTED) >= 20_000:
        _EXTRACTED.clear()
    _EXTRACTED[value] = token
    return token


def _extract(value: str) -> str:
    if not isinstance(value, str) or not value or len(value) > MAX_TOKEN_LENGTH + 512:
        raise TokenError("malformed", "二维码内容无法识别")
    token = value.strip()
    marker = token.rfind("/q/")
    if marker >= 0:
        token = token[marker + 3 :]
        token = token.split("?", 1)[0].split("#", 1)[0].rstrip("/")
    if len(token) > MAX_TOKEN_LENGTH or not TOKEN_SHAPE.match(token):
        raise TokenError("malformed", "二维码内容无法识别")
    return token


_HEADERS: dict[str, dict[str, Any]] = {}


def unverified_header(token: str) -> dict[str, Any]:
    """The JOSE header; there is one per key, so parsed headers are remembered (valid ones only)."""
    segment = token.split(".", 1)[0]
    header = _HEADERS.get(segment)
    if header is not None:
        return header
    try:
        header = json.loads(b64url_decode(segment))
    except (ValueError, UnicodeDecodeError):
        raise TokenError("malformed", "二维码内容无法识别") from None
    if not isinstance(header, dict) or not isinstance(header.get("kid"), str):
        raise TokenError("malformed", "二维码内容无法识别")
    if header.get("alg") != "EdDSA":
        raise TokenError("bad_signature", "二维码签名无效")
    if len(_HEADERS) < 1000:
        _HEADERS[segment] = header
    return header


class _VerifiedCache:
    """Bounded map token → claims of tokens whose signature checked out (FIFO eviction)."""

    def __init__(self, size: int = 50_000) -> None:
        self.size = size
        self.data: dict[str, dict[str, Any]] = {}

    def get(self, token: str) -> dict[str, Any] | None:
        return self.data.get(token)

    def put(self, token: str, claims: dict[str, Any]) -> None:
        if len(self.data) >= self.size:
            self.data.pop(next(iter(self.data)))
        self.data[token] = claims


_DECODE_OPTIONS = {
    "verify_signature": True,
    "verify_exp": False,
    "verify_nbf": False,
    "verify_iat": False,
    "verify_aud": False,
    "verify_iss": False,
}


def _decode(token: str, key: Ed25519PublicKey) -> dict[str, Any]:
    try:
        claims = jwt.decode(token, key=key, algorithms=["EdDSA"], options=_DECODE_OPTIONS)  # type: ignore[arg-type]
    except jwt.InvalidSignatureError:
        raise TokenError("bad_signature", "二维码签名无效，可能是伪造的") from None
    except jwt.InvalidAlgorithmError:
        raise TokenError("bad_signature", "二维码签名无效") from None
    except jwt.PyJWTError:
        raise TokenError("malformed", "二维码内容无法识别") from None
    if not isinstance(claims, dict) or not isinstance(claims.get("t"), str):
        raise TokenError("malformed", "二维码内容无法识别")
    return claims


class TokenService:
    def __init__(self, keyring: KeyRing, public_base_url: str) -> None:
        self.keyring = keyring
        self.public_base_url = public_base_url
        self._verified = _VerifiedCache()
        # Kiosk-signed codes apart: a hit in ``_verified`` means "signed by a server key".
        self._kiosk_verified = _VerifiedCache(20_000)
        self._access = _VerifiedCache(20_000)

    # -- signing ---------------------------------------------------------------
    def sign(self, claims: dict[str, Any]) -> str:
        key = self.keyring.signing
        return jwt.encode(claims, key.private_key, algorithm="EdDSA", headers={"kid": key.kid, "typ": None})

    def qr_url(self, token: str) -> str:
        return f"{self.public_base_url}/q/{token}"

    def station_token(self, station_id: int, poster_version: int) -> str:
        return self.sign({"t": "st", "sid": station_id, "v": poster_version})

    def activity_token(self, activity_id: int, station_id: int, nbf: int, exp: int) -> str:
        return self.sign({"t": "ac", "aid": activity_id, "sid": station_id, "nbf": nbf, "exp": exp})

    def member_token(self, member_id: int, card_version: int) -> str:
        return self.sign({"t": "mb", "mid": member_id, "v": card_version})

    # -- verification ----------------------------------------------------------
    def is_server_kid(self, kid: str) -> bool:
        return kid in self.keyring.verifying

    def verify_server(self, token: str) -> dict[str, Any]:
        claims = self._verified.get(token)
        if claims is not None:
            return claims
        kid = unverified_header(token)["kid"]
        key = self.keyring.verifying.get(kid)
        if key is None:
            raise TokenError("unknown_key", "二维码的签名密钥未知或已停用")
        claims = _decode(token, key)
        self._verified.put(token, claims)
        return claims

    def verify_with(self, token: str, key: Ed25519PublicKey) -> dict[str, Any]:
        """Kiosk tokens: the caller looked the kiosk key up (and checked it is not revoked)."""
        cached = self._kiosk_verified.get(token)
        if cached is not None:
            return cached
        claims = _decode(token, key)
        self._kiosk_verified.put(token, claims)
        return claims

    # -- access tokens ---------------------------------------------------------
    def access_token(self, user_id: int, minutes: int) -> tuple[str, int]:
        now = int(time.time())
        exp = now + minutes * 60
        return self.sign({"t": "access", "sub": str(user_id), "iat": now, "exp": exp}), minutes * 60

    def verify_access(self, token: str) -> int | None:
        """The user id of a valid, unexpired access token, else None."""
        claims = self._access.get(token)
        if claims is None:
            if len(token) > MAX_TOKEN_LENGTH or not TOKEN_SHAPE.match(token):
                return None
            try:
                kid = unverified_header(token)["kid"]
                key = self.keyring.verifying.get(kid)
                if key is None:
                    return None
                claims = jwt.decode(token, key=key, algorithms=["EdDSA"], options={"require": ["exp", "sub"]})  # type: ignore[arg-type]
            except (TokenError, jwt.PyJWTError):
                return None
            if claims.get("t") != "access":
                return None
            self._access.put(token, claims)
        if claims["exp"] <= time.time():
            return None
        try:
            return int(claims["sub"])
        except (TypeError, ValueError):
            return None
