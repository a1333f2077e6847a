"""Share tokens and the rate limit of one Box app between its processes through Redis (extra ``[redis]``).

Example::

    from box_sessions.redis import RedisShare

    share = RedisShare("redis://127.0.0.1:6379/0", prefix="box-sessions")
    async with box_sessions.BoxClient(ccg_auth, shared=share) as client:
        ...  # CCG and JWT: one access token per expiry, one rate limit and one cool-down for every process
    auth = box_sessions.OAuth2Auth(
        client_id="…", client_secret="…", refresh_token="…", token_store=share.token_store("user-42")
    )  # OAuth 2.0: one refresh at a time across processes

What Redis holds, under ``{prefix}:`` (nothing else). The part in braces is a hash tag: every key
one script or lock touches shares it, so in a cluster they live on one node.

- ``access-token:{digest}``: a CCG or JWT access token with its expiry, the digest standing for
  the Box identity (token URL, client id, subject). The key expires with the token.
- ``access-token:{digest}:lock``: held for at most ``lock_ttl`` by the process asking Box.
- ``oauth2:{key}``: an OAuth 2.0 token pair, with no time to live: no ``volatile-*`` eviction
  policy may take it (the share warns once when Redis's policy is ``allkeys-*``).
- ``oauth2:{key}:lock``: held across load, refresh and save, renewed while its holder lives, so a
  process killed while holding it frees it after ``lock_ttl``.
- ``pacing:{digest}`` and ``pacing:{digest}:holes``: an identity's pacing (the digest standing for
  the identity and its As-User): the schedule, the adaptive rate, the 429 cool-down, and the
  slots given back. They expire 10 minutes after their last slot or cool-down.

This package uses only the core's public names (`box_sessions.Shared` and the types of its
facets, `box_sessions.LockingTokenStore`); the core never imports redis. Every Redis call is
bounded by ``timeout``, on a client fit for the running event loop, and every failure becomes a
`box_sessions.SharedStateError` naming what Redis refused (``_calls``). Each facet of `RedisShare`
is a module of its own: access tokens (``_tokens``), OAuth 2.0 pairs (``_oauth2``), pacing
(``_pacing``), and the lock both use (``_lock``); the share (``_share``) builds them on one client.
"""

from ._oauth2 import RedisTokenStore
from ._share import RedisShare

__all__ = ["RedisShare", "RedisTokenStore"]
