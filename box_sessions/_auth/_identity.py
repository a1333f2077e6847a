"""`BoxIdentity`: whom an auth method acts for at Box, the one answer tokens, pacing and journals use.

Box's tokens and rate limits belong to a Box user, not to a process or a credential object: two
processes with the same app and subject act as one user, and must share one token and one rate
limit. An identity names that user without any secret (a developer token by its SHA-256).
"""

from __future__ import annotations

import attrs

__all__ = ["BoxIdentity"]

#: Subjects whose access tokens may be shared by processes (client credentials and JWT apps).
_APP_SUBJECTS = ("enterprise:", "user:")


@attrs.frozen(kw_only=True)
class BoxIdentity:
    """Whom an auth method acts for at Box; never holds a secret.

    Attributes:
        token_url: Where the identity's tokens come from (Box's token URL, or a gateway's).
        client_id: The app's client id; ``None`` for a developer token.
        subject: ``"enterprise:<id>"`` or ``"user:<id>"`` for CCG and JWT, ``"oauth2:<store key>"``
            for OAuth 2.0, ``"developer:<SHA-256 of the token>"`` for a developer token.
    """

    token_url: str
    client_id: str | None
    subject: str

    @property
    def key(self) -> str:
        """The identity as one string, for a share's keys (processes acting as one user share them)."""
        if self.client_id is None:
            return f"{self.token_url} {self.subject}"
        return f"{self.token_url} {self.client_id} {self.subject}"

    @property
    def shares_tokens(self) -> bool:
        """Whether processes may share this identity's access tokens (CCG and JWT: one per expiry for all)."""
        return self.subject.startswith(_APP_SUBJECTS)

    def describe(self) -> str:
        """Whom the credentials act for, in words (a journal names its job's credentials so).

        ``"client <id> as enterprise <id>"``, ``"client <id> as user <id>"``, ``"client <id> for
        OAuth 2.0 user <store key>"``, or ``"developer token sha256:<16 hex>"``.
        """
        kind, _, name = self.subject.partition(":")
        if kind == "developer":
            return f"developer token sha256:{name[:16]}"
        if kind == "oauth2":
            return f"client {self.client_id} for OAuth 2.0 user {name}"
        return f"client {self.client_id} as {kind} {name}"
