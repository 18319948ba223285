"""Where a listing's next page starts. It goes in the answer's headers, so the body stays the
plain list it always was: the `Link` header (RFC 8288) with `rel="next"`, and the bare cursor
in `Edgestack-Next-Cursor`. No such header: this page is the last."""

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Annotated, Any, Protocol, TypeVar
from urllib.parse import quote

from fastapi import Depends, Query, Request, Response
from fastapi.routing import APIRoute

from edgestack.hub.store.db import Window
from edgestack.protocol import NEXT_CURSOR_HEADER

__all__ = ["NEXT_PAGE_HEADERS", "Keys", "KeysDep", "Pager", "PagerDep", "is_paged"]

T = TypeVar("T")


class _Numbered(Protocol):
    @property
    def id(self) -> int | None: ...


N = TypeVar("N", bound=_Numbered)

NEXT_PAGE_HEADERS: dict[str, Any] = {
    "Link": {
        "description": 'where the next page is, as `<address>; rel="next"`; absent on the last',
        "schema": {"type": "string"},
    },
    NEXT_CURSOR_HEADER: {
        "description": "the cursor the next page starts from: its `after` (a listing by name) "
        "or its `after_id`, newest first its `before_id` (a listing by id), percent-encoded as "
        "in a URL's query; absent on the last",
        "schema": {"type": "string"},
    },
}
"""The headers of a page, as the OpenAPI document states them."""


@dataclass(frozen=True)
class Keys:
    """One page of a listing ordered by a key (a name): the rows whose key sorts after
    `after`, at most `limit`."""

    after: str | None = None
    limit: int = 100


def _keys(
    after: Annotated[
        str | None,
        Query(
            max_length=200,
            description="only rows after this one: the Edgestack-Next-Cursor of the page before",
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="at most this many")] = 100,
) -> Keys:
    return Keys(after=after, limit=limit)


KeysDep = Annotated[Keys, Depends(_keys)]


class Pager:
    """Says, in the answer's headers, where the next page of a listing starts."""

    def __init__(self, request: Request, response: Response) -> None:
        self._request = request
        self._response = response

    def by_id(self, window: Window, rows: list[N]) -> list[N]:
        """`rows`, the page `window` asked for: a full one may have a next, which starts
        after its last id (before it, newest first)."""
        if rows and len(rows) >= window.limit and (last := rows[-1].id) is not None:
            self._next("before_id" if window.newest_first else "after_id", str(last))
        return rows

    def by_key(self, keys: Keys, rows: Iterable[T], key_of: Callable[[T], str]) -> list[T]:
        """The page of `rows` (given in the order of their keys) that `keys` asks for."""
        after = [row for row in rows if keys.after is None or key_of(row) > keys.after]
        page = after[: keys.limit]
        if len(after) > len(page):
            self._next("after", key_of(page[-1]))
        return page

    def _next(self, param: str, cursor: str) -> None:
        # Relative, so it holds behind a proxy that serves the hub under another host name.
        url = self._request.url.include_query_params(**{param: cursor})
        self._response.headers["Link"] = f'<{url.path}?{url.query}>; rel="next"'
        # Percent-encoded: a header holds Latin-1, and a name (a dataset's) may be in any script.
        self._response.headers[NEXT_CURSOR_HEADER] = quote(cursor, safe="")


PagerDep = Annotated[Pager, Depends(Pager)]


def is_paged(route: APIRoute) -> bool:
    """Whether the route's answers say where the next page starts."""
    return any(dependency.call is Pager for dependency in route.dependant.dependencies)
