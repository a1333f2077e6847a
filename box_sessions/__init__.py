"""box_sessions: an async SDK for Box's session-termination API. This module only re-exports."""

from ._auth import (
    BoxAuth,
    CCGAuth,
    DeveloperTokenAuth,
    InMemoryTokenStore,
    JSONFileTokenStore,
    JWTAuth,
    LockingTokenStore,
    OAuth2Auth,
    OAuth2Tokens,
    TokenStore,
)
from ._client import BoxClient
from ._clock import Clock, SystemClock
from ._errors import (
    AuthenticationError,
    BadRequestError,
    BoxAPIError,
    BoxConnectionError,
    BoxError,
    BoxTimeoutError,
    ClientClosedError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
)
from ._shared import Shared, SharedLock, SharedStateError, SharedToken, SharedTokens
from ._termination import (
    BatchResult,
    Failure,
    Progress,
    SessionTerminationManager,
    SessionTerminationMessage,
    TerminationReport,
)
from ._transport import RateLimit, RetryPolicy
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
    "ClientClosedError",
    "Clock",
    "DeveloperTokenAuth",
    "Failure",
    "InMemoryTokenStore",
    "JSONFileTokenStore",
    "JWTAuth",
    "LockingTokenStore",
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
    "Shared",
    "SharedLock",
    "SharedStateError",
    "SharedToken",
    "SharedTokens",
    "SystemClock",
    "TerminationReport",
    "TokenStore",
    "__version__",
]
