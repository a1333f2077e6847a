"""box_sessions: an async SDK for Box's session-termination API."""

from ._auth import (
    BoxAuth,
    CCGAuth,
    DeveloperTokenAuth,
    InMemoryTokenStore,
    JSONFileTokenStore,
    OAuth2Auth,
    OAuth2Tokens,
    TokenStore,
)
from ._bulk import BatchResult, Failure, Progress, TerminationReport
from ._client import BoxClient
from ._clock import Clock, SystemClock
from ._errors import (
    AuthenticationError,
    BadRequestError,
    BoxAPIError,
    BoxConnectionError,
    BoxError,
    BoxTimeoutError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
)
from ._jwt import JWTAuth
from ._ratelimit import RateLimit
from ._retry import RetryPolicy
from ._session_termination import SessionTerminationManager, SessionTerminationMessage
from ._version import __version__

__all__ = [
    "AuthenticationError",
    "BadRequestError",
    "BatchResult",
    "BoxAPIError",
    "BoxAuth",
    "BoxClient",
    "BoxConnectionError",
    "BoxError",
    "BoxTimeoutError",
    "CCGAuth",
    "Clock",
    "DeveloperTokenAuth",
    "Failure",
    "InMemoryTokenStore",
    "JSONFileTokenStore",
    "JWTAuth",
    "NotFoundError",
    "OAuth2Auth",
    "OAuth2Tokens",
    "PermissionDeniedError",
    "Progress",
    "RateLimit",
    "RateLimitError",
    "RetryPolicy",
    "ServerError",
    "SessionTerminationManager",
    "SessionTerminationMessage",
    "SystemClock",
    "TerminationReport",
    "TokenStore",
    "__version__",
]
