"""The public names are a contract: pin them."""

from __future__ import annotations

from importlib.metadata import version

import box_sessions
import box_sessions.testing


def test_all_is_sorted_and_complete() -> None:
    """`__all__` is sorted as ruff's RUF022 sorts it and lists every public name exposed.

    RUF022 sorts "isort-style": constants (SCREAMING_CASE) first, then classes, then the rest.
    """

    def isort_style(name: str) -> tuple[int, str]:
        if name.isupper():
            return (0, name)
        return (1, name) if name[:1].isupper() else (2, name)

    assert box_sessions.__all__ == sorted(box_sessions.__all__, key=isort_style)
    # pytest's assertion rewriting (the package ships a pytest plugin) may add "@py_builtins".
    names = {name for name in dir(box_sessions) if name.isidentifier()}
    # The public submodules appear as attributes once imported (by other tests).
    public = {name for name in names if not name.startswith("_")} - {"testing", "redis"}
    assert public == set(box_sessions.__all__) - {"__version__"}


def test_contract_names_exist() -> None:
    """The names other code relies on are exported."""
    for name in [
        "AuthenticationError",
        "BadRequestError",
        "BoxAPIError",
        "BoxClient",
        "BoxConnectionError",
        "BoxError",
        "BoxTimeoutError",
        "CCGAuth",
        "DeveloperTokenAuth",
        "NotFoundError",
        "PermissionDeniedError",
        "RateLimitError",
        "RetryPolicy",
        "ServerError",
    ]:
        assert name in box_sessions.__all__, name


def test_shared_state_names_exist() -> None:
    """The names code outside the package uses to share state across processes are exported."""
    import box_sessions.redis  # noqa: PLC0415 - imported here: the core never imports redis

    for name in ["LockingTokenStore", "Shared", "SharedLock", "SharedStateError", "SharedToken", "SharedTokens"]:
        assert name in box_sessions.__all__, name
    assert box_sessions.redis.__all__ == ["RedisShare", "RedisTokenStore"]


def test_version_comes_from_metadata() -> None:
    """`__version__` is the installed distribution's version."""
    assert box_sessions.__version__ == version("box-sessions")


def test_testing_all_is_sorted() -> None:
    """The testing module's `__all__` is sorted and importable."""
    assert box_sessions.testing.__all__ == sorted(box_sessions.testing.__all__)
    for name in box_sessions.testing.__all__:
        assert hasattr(box_sessions.testing, name)
