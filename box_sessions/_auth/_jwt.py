"""`JWTAuth`: server authentication with a signed JWT assertion (optional ``[jwt]`` extra)."""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from .._clock import Clock, parse_http_date
from .._errors import AuthenticationError
from .._http import httpx
from ._app import SubjectAuth, non_empty_str
from ._cache import TokenRequester
from ._grant import TokenGrant

__all__ = ["JWTAuth"]

JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
AUDIENCE = "https://api.box.com/oauth2/token"
#: Box accepts an ``exp`` at most 60 s ahead; 30 s leaves room for a slow clock on either side.
ASSERTION_LIFETIME = 30


def _load_key(private_key: str, passphrase: str | None) -> Any:
    try:
        from cryptography.hazmat.primitives.serialization import load_pem_private_key  # noqa: PLC0415
    except ImportError:  # pragma: no cover - exercised only without the extra
        raise ImportError(
            'JWTAuth needs the jwt extra: from a checkout, pip install ".[jwt]"; '
            'pip install "box-sessions[jwt]" once the package is published'
        ) from None
    try:
        return load_pem_private_key(private_key.encode(), password=passphrase.encode() if passphrase else None)
    except (ValueError, TypeError):
        # Never echo the key or the passphrase: say only what kind of problem it is. The kind is
        # read from the PEM's own header, not from cryptography's message: under a wrong
        # passphrase about one encryption in 150 decrypts to bytes that fail to parse, and
        # cryptography then speaks of parsing, not of the password.
        raise ValueError(f"JWTAuth private_key cannot be loaded: {_load_failure(private_key, passphrase)}") from None


def _load_failure(private_key: str, passphrase: str | None) -> str:
    """Why a PEM key failed to load, from what is known without the key's contents."""
    header = private_key.lstrip()[:200]
    encrypted = "BEGIN ENCRYPTED PRIVATE KEY" in header or "Proc-Type: 4,ENCRYPTED" in header
    if encrypted:
        return (
            "wrong passphrase (the key did not decrypt with it)"
            if passphrase
            else "the key is encrypted: pass its passphrase"
        )
    if passphrase and "PRIVATE KEY-----" in header:
        return "a passphrase was given but the key is not encrypted"
    return "not a PEM private key"


def _is_exp_rejection(error: AuthenticationError) -> bool:
    return error.code == "invalid_grant" and "exp" in error.message


def _server_time(headers: Mapping[str, str]) -> float | None:
    value = headers.get("date") or headers.get("Date")
    return parse_http_date(value) if value else None


@attrs.define(slots=False, kw_only=True, repr=False)
class JWTAuth(SubjectAuth):
    """Server authentication with a JWT signed by the app's RSA key (Box's "JWT" apps).

    Needs the ``[jwt]`` extra (PyJWT and cryptography). The assertion is RS256 with the key id in
    its header, a random ``jti``, and an ``exp`` 30 s ahead. When Box refuses an assertion for its
    ``exp`` (this machine's clock is off), it is made again once with the time from Box's ``Date``
    header.

    Args:
        client_id, client_secret: The app's credentials.
        public_key_id: The id of the app's public key registered with Box (the JWT ``kid``).
        private_key: The PEM private key. Never shown in a repr, a log or an error.
        passphrase: The private key's passphrase, if it is encrypted.
        enterprise_id / user_id: Exactly one: the subject the token is for.
        token_url: Where tokens come from; by default ``{base_url}/oauth2/token``.
    """

    public_key_id: str = attrs.field(validator=non_empty_str)
    _private_key: str = attrs.field(validator=non_empty_str, alias="private_key")
    _passphrase: str | None = attrs.field(default=None, alias="passphrase")
    _key: Any = attrs.field(init=False, repr=False, eq=False)
    _skew: float = attrs.field(default=0.0, init=False, eq=False)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self._key = _load_key(self._private_key, self._passphrase)

    @classmethod
    def from_config(cls, config: Mapping[str, Any], *, user_id: str | int | None = None) -> JWTAuth:
        """Build from the JSON config Box's developer console downloads (a parsed dict).

        Acts as the enterprise named in the config, or as ``user_id`` when given.
        """
        try:
            settings = config["boxAppSettings"]
            app_auth = settings["appAuth"]
            return cls(
                client_id=settings["clientID"],
                client_secret=settings["clientSecret"],
                public_key_id=app_auth["publicKeyID"],
                private_key=app_auth["privateKey"],
                passphrase=app_auth.get("passphrase") or None,
                enterprise_id=None if user_id is not None else config["enterpriseID"],
                user_id=user_id,
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not a Box JWT app config: missing {exc}") from None

    @classmethod
    def from_config_file(cls, path: str | Path, *, user_id: str | int | None = None) -> JWTAuth:
        """Build from the JSON config file Box's developer console downloads."""
        try:
            config = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ValueError(f"cannot read the JWT config {str(path)!r}: {type(exc).__name__}") from None
        return cls.from_config(config, user_id=user_id)

    def _assertion(self, now: float) -> str:
        import jwt  # noqa: PLC0415 - the optional extra, imported where it is used

        subject_type, subject_id = self._subject
        claims = {
            "iss": self.client_id,
            "sub": subject_id,
            "box_sub_type": subject_type,
            "aud": AUDIENCE,
            "jti": secrets.token_urlsafe(32),
            "exp": int(now) + ASSERTION_LIFETIME,
        }
        return jwt.encode(claims, self._key, algorithm="RS256", headers={"kid": self.public_key_id})

    def _form(self, now: float) -> dict[str, str]:
        return {
            "grant_type": JWT_GRANT,
            "assertion": self._assertion(now),
            "client_id": self.client_id,
            "client_secret": self._client_secret,
        }

    async def _fetch(self, request_token: TokenRequester, token_url: httpx.URL, clock: Clock) -> TokenGrant:
        try:
            return await request_token(token_url, self._form(clock.time() + self._skew))
        except AuthenticationError as error:
            server_now = _server_time(error.headers)
            if not _is_exp_rejection(error) or server_now is None:
                raise
            # Box judged the exp by its clock: take its time from the Date header, once.
            self._skew = server_now - clock.time()
            return await request_token(token_url, self._form(server_now))
