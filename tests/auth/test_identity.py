"""`BoxAuth.identity`: whom an auth method acts for, the one key of shared tokens, shared pacing and journals."""

from __future__ import annotations

import pytest

from box_sessions import BoxIdentity, CCGAuth, DeveloperTokenAuth, JSONFileTokenStore, OAuth2Auth

from ..support.http import httpx

TOKEN_URL = httpx.URL("https://api.box.com/oauth2/token")


def test_a_ccg_identity_names_its_subject_and_never_its_secret() -> None:
    """A CCG app acting as its enterprise is its token URL, client id and subject, not its secret."""
    identity = CCGAuth(client_id="app-id", client_secret="app-secret", enterprise_id="42").identity(TOKEN_URL)
    assert identity == BoxIdentity(token_url=str(TOKEN_URL), client_id="app-id", subject="enterprise:42")
    assert "app-secret" not in identity.key
    assert identity.shares_tokens
    assert identity.describe() == "client app-id as enterprise 42"


def test_a_token_url_of_its_own_names_the_identity() -> None:
    """An app that names its own token URL (a gateway) is another identity than the client's default."""
    auth = CCGAuth(client_id="a", client_secret="s", user_id="7", token_url="https://gw.example.com/oauth2/token")
    identity = auth.identity(TOKEN_URL)
    assert identity.token_url == "https://gw.example.com/oauth2/token"
    assert identity.describe() == "client a as user 7"


def test_a_developer_token_is_named_by_its_digest() -> None:
    """A developer token's identity is a SHA-256 of it: two tokens differ, neither is shown, no token is shared."""
    identity = DeveloperTokenAuth("dev-token-shared").identity(TOKEN_URL)
    assert "dev-token-shared" not in identity.key
    assert identity != DeveloperTokenAuth("dev-token-other").identity(TOKEN_URL)
    assert not identity.shares_tokens
    assert identity.describe().startswith("developer token sha256:")
    assert len(identity.describe().rpartition(":")[2]) == 16


def test_oauth2_is_named_by_its_store_key(tmp_path: object) -> None:
    """OAuth 2.0 acts for the user its store names; a store that names none gives no identity."""
    keyless = OAuth2Auth(client_id="cid", client_secret="very-secret", refresh_token="r3fr3sh-1")
    assert keyless.identity(TOKEN_URL) is None
    store = JSONFileTokenStore(f"{tmp_path}/tokens.json", key="user-42")
    keyed = OAuth2Auth(client_id="cid", client_secret="very-secret", refresh_token="r3fr3sh-1", token_store=store)
    identity = keyed.identity(TOKEN_URL)
    assert identity is not None
    assert identity.subject == "oauth2:user-42"
    assert not identity.shares_tokens
    assert "r3fr3sh" not in identity.key


@pytest.mark.parametrize("key", ["", "  "])
def test_an_empty_store_key_is_refused(key: str, tmp_path: object) -> None:
    """A JSON file store's key must name someone: an empty one is a ValueError naming ``key``."""
    with pytest.raises(ValueError, match="key"):
        JSONFileTokenStore(f"{tmp_path}/tokens.json", key=key)
