"""Credentials: the token cache (single flight), developer tokens, CCG, OAuth 2.0 with its stores, and JWT."""

from ._app import AppAuth, CCGAuth, DeveloperTokenAuth, SubjectAuth
from ._cache import BoxAuth, TokenPoster, TokenRequester
from ._grant import TokenGrant
from ._identity import BoxIdentity
from ._jwt import JWTAuth
from ._oauth2 import OAuth2Auth
from ._stores import InMemoryTokenStore, JSONFileTokenStore, LockingTokenStore, OAuth2Tokens, TokenStore

__all__ = [
    "AppAuth",
    "BoxAuth",
    "BoxIdentity",
    "CCGAuth",
    "DeveloperTokenAuth",
    "InMemoryTokenStore",
    "JSONFileTokenStore",
    "JWTAuth",
    "LockingTokenStore",
    "OAuth2Auth",
    "OAuth2Tokens",
    "SubjectAuth",
    "TokenGrant",
    "TokenPoster",
    "TokenRequester",
    "TokenStore",
]
