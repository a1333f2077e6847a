"""A Redis ACL user set up with exactly the line the README advises, or that line missing one command.

The README's line is read from README.md itself, so that the suite tests what users are told to
run. A variant appends ``-{command}`` to it (a later rule wins in Redis's ACL), as an older or
hand-trimmed user would be.
"""

from __future__ import annotations

import re
from pathlib import Path

from .redis_server import RedisServer

README = Path(__file__).resolve().parents[2] / "README.md"
#: The password the tests give the ACL user; the suite's secret check knows its shape (``s3cr3t``).
ACL_PASSWORD = "s3cr3t-acl-user"
_ADVISED = re.compile(r"^\s*ACL SETUSER (?P<user>\S+) (?P<rules>.+?)\s*$", re.MULTILINE)


def readme_acl_line() -> tuple[str, list[str]]:
    """The user name and the rules of the README's advised ``ACL SETUSER box-sessions ...`` line.

    Raises:
        AssertionError: the README has no such line, or more than one.
    """
    found = _ADVISED.findall(README.read_text(encoding="utf-8"))
    assert len(found) == 1, f"README.md should advise exactly one ACL SETUSER line, found {len(found)}"
    user, rules = found[0]
    return user, rules.split()


def acl_rules(*, password: str = ACL_PASSWORD, without: tuple[str, ...] = ()) -> tuple[str, list[str]]:
    """The README's user and rules with ``PASSWORD`` replaced, and ``-{command}`` for each of ``without``.

    Args:
        password: The user's password (the README writes ``>PASSWORD``).
        without: Commands to take away, e.g. ``("pexpire",)``.
    """
    user, rules = readme_acl_line()
    assert ">PASSWORD" in rules, f"the README's ACL line sets no >PASSWORD: {rules}"
    rules = [f">{password}" if rule == ">PASSWORD" else rule for rule in rules]
    return user, [*rules, *(f"-{command}" for command in without)]


def add_acl_user(server: RedisServer, *, without: tuple[str, ...] = (), password: str = ACL_PASSWORD) -> str:
    """Create the README's ACL user on ``server`` (less ``without``) and return a URL that logs in as it.

    Args:
        server: A running server (its default user is the admin).
        without: Commands to take away from the README's rules.
        password: The user's password.
    """
    user, rules = acl_rules(password=password, without=without)
    server.command("ACL", "SETUSER", user, *rules)
    return f"redis://{user}:{password}@127.0.0.1:{server.port}/0"
