"""Box's answers scripted per route and served through the stack's own MockTransport, under httpx or httpx2.

respx mocks httpx only, so a test written with it cannot run when the package uses httpx2. `Routes`
keeps the part of respx's API the suite used (``routes.post(URL).mock(return_value=...)`` or
``side_effect=...``, then ``route.call_count`` and ``route.calls.last.request``) with respx's
semantics, on `httpx.MockTransport` of the stack in use; what differs is how a client reaches it:
``routes.transport`` given as ``BoxClient(transport=)``, as the conftest's ``make_client`` and
``client`` fixtures do for a test that asks for the ``routes`` fixture.

A request no route matches fails the test, as under respx: the handler raises AssertionError, which
the client does not take for a network error. A route never called fails nothing by itself (respx's
``respx_mock`` fixture did not assert that either); `Routes.assert_all_called` checks it on demand.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TypeAlias

from .http import httpx

__all__ = ["Call", "Calls", "Route", "Routes"]

#: One scripted answer: a response, or an error the transport raises.
Answer: TypeAlias = "httpx.Response | BaseException"
#: Answers computed from the request, synchronously or not.
Handler: TypeAlias = "Callable[[httpx.Request], httpx.Response | Awaitable[httpx.Response]]"


@dataclass
class Call:
    """A request a route matched, and what it answered (``None`` while it has not, or when it raised)."""

    request: httpx.Request
    response: httpx.Response | None


class Calls(list[Call]):
    """The calls of a route (or of every route), oldest first."""

    @property
    def last(self) -> Call:
        """The latest call; IndexError when there is none."""
        return self[-1]


class Route:
    """Requests of one method to one URL (scheme, host, port and path; the query too, if the URL has one)."""

    def __init__(self, method: str, url: str) -> None:
        self.method = method.upper()
        self.url = httpx.URL(url)
        self.calls = Calls()
        self._answers: Iterator[Answer | Handler] | None = None
        self._answer: Answer | Handler | None = None

    def mock(
        self,
        *,
        return_value: httpx.Response | None = None,
        side_effect: Handler | Iterable[Answer] | BaseException | None = None,
    ) -> Route:
        """Answer every call with ``return_value``, or by ``side_effect``, as respx's ``Route.mock``.

        ``side_effect``: a function of the request (async or not) returning the response; an error
        raised at every call; or an iterable of answers (responses or errors), one per call.
        """
        if side_effect is not None and not callable(side_effect) and not isinstance(side_effect, BaseException):
            self._answers = iter(side_effect)
        elif side_effect is not None:
            self._answer = side_effect
        else:
            self._answer = return_value
        return self

    @property
    def call_count(self) -> int:
        """How many requests this route matched."""
        return len(self.calls)

    @property
    def called(self) -> bool:
        """Whether this route matched any request."""
        return bool(self.calls)

    def matches(self, request: httpx.Request) -> bool:
        """Whether ``request`` is this route's: the same method and URL, a query only if the route's URL has one."""
        url, wanted = request.url, self.url
        return (
            request.method == self.method
            and (url.scheme, url.host, url.port, url.path) == (wanted.scheme, wanted.host, wanted.port, wanted.path)
            and (not wanted.query or url.params == wanted.params)
        )

    async def answer(self, request: httpx.Request, call: Call) -> httpx.Response:
        """This route's answer to ``request``, recorded in ``call``, one of its calls; an error scripted is raised."""
        self.calls.append(call)
        answer = next(self._answers) if self._answers is not None else self._answer
        if isinstance(answer, BaseException):
            raise answer
        if callable(answer):
            computed = answer(request)
            answer = await computed if inspect.isawaitable(computed) else computed
        if not isinstance(answer, httpx.Response):
            raise TypeError(f"{self.method} {self.url} answered {answer!r}, not an {httpx.__name__}.Response")
        # A fresh response for every call, as respx gives: one object answered twice would be read twice.
        call.response = httpx.Response(answer.status_code, headers=answer.headers, content=answer.content)
        return call.response


class Routes:
    """Routes tried in the order they were added; ``transport`` sends every request to the first that matches."""

    def __init__(self) -> None:
        self.routes: list[Route] = []
        self.calls = Calls()
        """Every call, of every route, oldest first."""
        self.transport = httpx.MockTransport(self.handle)

    def route(self, method: str, url: str) -> Route:
        """A new route for ``method`` requests to ``url``."""
        route = Route(method, url)
        self.routes.append(route)
        return route

    def post(self, url: str) -> Route:
        """A new route for POST requests to ``url``."""
        return self.route("POST", url)

    def get(self, url: str) -> Route:
        """A new route for GET requests to ``url``."""
        return self.route("GET", url)

    async def handle(self, request: httpx.Request) -> httpx.Response:
        """The MockTransport's handler: the first matching route answers; no route matching fails the test."""
        for route in self.routes:
            if route.matches(request):
                call = Call(request, None)
                self.calls.append(call)
                return await route.answer(request, call)
        raise AssertionError(f"no route for {request.method} {request.url}")

    def assert_all_called(self) -> None:
        """Fail when a route matched no request, naming it."""
        uncalled = [f"{route.method} {route.url}" for route in self.routes if not route.called]
        assert not uncalled, f"routes never called: {', '.join(uncalled)}"
