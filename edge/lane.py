"""RouteLane: the edge's lean routes at fixed paths (POST /v1/chat/completions, /v1/images/edits,
/v1/images/generations, GET /v1/models, …) answered below FastAPI, by their plan (edge.routing).

Why: on a metered request FastAPI's own layers were a large share of what the edge adds before the service
is called. The exception middleware wraps `send`; the router tries each included router's routes in turn
(FastAPI 0.16x resolves its route contexts and restores its scope keys for each); the route wraps the
request in two exit stacks and the exception wrapper once more; and every event of a stream then passes
back through those wrappers. About half the Python calls before a chat's gRPC call were FastAPI's and
Starlette's (sys.setprofile, benchmarks/edge_timeline.py's probe). Here a dict lookup finds the route,
and the request goes straight to its plan.

What stays the same (tests/edge/test_route_lane.py sends the same requests with and without the lane):
- the route FastAPI would pick: a route takes the lane only if, among the routers' routes in their order,
  it is the first that matches its method and path;
- the endpoint and its dependencies get what FastAPI gives them (the plan is LeanRoute's);
- an exception goes to the app's exception handlers, as FastAPI's exception middleware sends it; one it has
  no handler for goes on to the server error middleware, as before;
- the scope's `route`, `endpoint` and `path_params`, so the HTTP metrics name the request by its template.

It sits inside edge.middleware.EdgeMiddleware (request ids, maintenance, body limits, metrics are the same
for every request) and passes on to FastAPI whatever it would not answer the same way by construction:
other paths (a path with parameters, a trailing slash), a route that is not lean, an application mounted
under a root path, a request whose values FastAPI must judge (edge.routing) and any request while
dependency overrides are set. It is given the routers the app includes at its root with no prefix and no
dependencies of the inclusion's own (edge.app), whose routes' plans are then what FastAPI would solve.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute
from starlette._utils import is_async_callable
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Receive, Scope, Send

from edge.routing import LeanRoute, lean_handler


@dataclass(frozen=True)
class _Lane:
    route: APIRoute
    handler: Callable[[Request], Awaitable[Response | None]]


class RouteLane:
    def __init__(self, app: ASGIApp, routers: Iterable[APIRouter]) -> None:
        self.app = app
        self.lanes = lanes(list(routers))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope.get("root_path"):
            lane = self.lanes.get((scope["method"], scope["path"]))
            if lane is not None and not scope["app"].dependency_overrides \
                    and await _serve(lane, scope, receive, send):
                return
        await self.app(scope, receive, send)


async def _serve(lane: _Lane, scope: Scope, receive: Receive, send: Send) -> bool:
    """Answers the request by the lane's route; False, having called nothing, when FastAPI must."""
    app: FastAPI = scope["app"]
    scope["route"], scope["endpoint"], scope["path_params"] = lane.route, lane.route.endpoint, {}
    scope.setdefault("router", app.router)
    request = Request(scope, receive, send)
    try:
        response = await lane.handler(request)
    except Exception as exc:
        handler = exception_handler(app.exception_handlers, exc)
        if handler is None:
            raise
        response = (await handler(request, exc) if is_async_callable(handler)
                    else await run_in_threadpool(handler, request, exc))
        if response is not None:
            await response(scope, receive, send)
        return True
    if response is None:
        return False
    await response(scope, receive, send)
    return True


def exception_handler(handlers: dict[Any, Callable], exc: Exception) -> Callable | None:
    """The handler Starlette's exception middleware picks for `exc` among an app's exception handlers: for an
    HTTPException its status code's, then the nearest class's. The server error middleware owns 500 and
    Exception, so neither is looked up here."""
    if isinstance(exc, HTTPException) and exc.status_code != 500 and exc.status_code in handlers:
        return handlers[exc.status_code]
    for cls in type(exc).__mro__:
        if cls is not Exception and cls in handlers:
            return handlers[cls]
    return None


def lanes(routers: list[APIRouter]) -> dict[tuple[str, str], _Lane]:
    """(method, path) → lane, for each lean route at a fixed path that FastAPI would pick for it."""
    routes = [route for router in routers for route in router.routes]
    found: dict[tuple[str, str], _Lane] = {}
    for route in routes:
        if not isinstance(route, LeanRoute) or route.param_convertors:
            continue
        handler = lean_handler(route.dependant)
        if handler is None:
            continue
        for method in route.methods:
            if _first_match(routes, method, route.path) is route:
                found[(method, route.path)] = _Lane(route, handler)
    return found


def _first_match(routes: list[BaseRoute], method: str, path: str) -> BaseRoute | None:
    scope = {"type": "http", "method": method, "path": path, "root_path": "", "path_params": {}}
    return next((route for route in routes if route.matches(scope)[0] is Match.FULL), None)
