"""The media GET's lane below FastAPI: GET and HEAD /v1/media/{id} answered by
edge.endpoints.media.serving straight from the ASGI scope.

Why: it is the hottest request and the one with the least to do (public, no body, one gRPC stream), so
FastAPI's own layers were a large share of the edge's time on it: the exception middleware, the router's
matching, the request and response wrappers and the endpoint's arguments. With the lane (and the serving
code's raw response head, and the leaner edge.middleware of the same change) the edge process's main thread
spends ~0.2 ms less per media GET on 2 shared cores, -18 % (README, "Edge overhead").

The lane sits inside edge.middleware.EdgeMiddleware, so request ids, maintenance mode, the body limit and
the HTTP metrics are the same as for any route, and it answers exactly what the FastAPI route would
(tests/edge/test_media_lane.py sends both the same requests). It passes on to FastAPI whatever it would not
answer the same way by construction: other paths and methods, a path with more segments, an application
mounted under a root path, and any request while dependency overrides are set (the route has no
dependencies; test_media_lane checks that it stays so)."""

from __future__ import annotations

from starlette.datastructures import QueryParams
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from edge.endpoints.media.serving import media_response
from edge.endpoints.media.translate import MEDIA_PATH
from edge.errors import APIError

PREFIX = MEDIA_PATH.removesuffix("{media_id}")
_ASKED = (b"range", b"if-none-match")


class MediaLane:
    """`route`: the FastAPI route the lane stands in for (edge.endpoints.media.router.GET_MEDIA_ROUTE),
    put in the scope so that the HTTP metrics name the request by its template, as for any route."""

    def __init__(self, app: ASGIApp, route: BaseRoute) -> None:
        self.app = app
        self.route = route

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] != "http" or scope["method"] not in ("GET", "HEAD") or scope.get("root_path")
                or not scope["path"].startswith(PREFIX)):
            await self.app(scope, receive, send)
            return
        media_id = scope["path"][len(PREFIX):]
        app = scope["app"]
        if not media_id or "/" in media_id or app.dependency_overrides:
            await self.app(scope, receive, send)
            return
        scope["route"] = self.route
        query = scope["query_string"]
        asked: dict[str, str] = {}  # the two headers the answer depends on (the first of each, as Starlette's)
        for name, value in scope["headers"]:
            if name in _ASKED:
                asked.setdefault(name.decode(), value.decode("latin-1"))
        try:
            response = await media_response(
                app.state.clients.media, media_id, method=scope["method"],
                format=QueryParams(query).get("format") if query else None, headers=asked)
        except APIError as error:
            response = error.response()
        await response(scope, receive, send)
