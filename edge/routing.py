"""LeanRoute: FastAPI routes whose parameters are resolved by a plan made once, instead of by FastAPI's
per-request dependency solver, where the solver has nothing to check.

FastAPI's request handler solves the endpoint's dependency tree on every request: it walks the tree,
validates each parameter with pydantic, keeps a cache and two exit stacks, even when every parameter is
the `Request`, a path segment or an optional query string. On 2 shared cores that was ~100 µs of the
edge's CPU per media GET (benchmarks/edge_ab.py), a fifth of what the edge adds over calling media
directly. A LeanRoute looks at its endpoint's tree once, when the route is made. If every function in it
is an `async def` taking only the `Request`, `str` path parameters, `str` (or `str | None`) query
parameters without constraints, and other such functions through `Depends`, and the endpoint returns a
`Response`, the route calls them in order with those values (each function once per request, as FastAPI's
cache does). The endpoint and its dependencies receive exactly what FastAPI would give them.

Anything else gives FastAPI's own handler: a tree with a body, a header, a cookie, a yield or a sync
dependency, a constrained or non-string parameter, or a model to serialize. A request that the plan
cannot answer goes to FastAPI's handler too, so FastAPI's behaviour and error messages stay the
reference:
- a required query parameter is missing;
- a path value is not a string;
- the app has dependency overrides.

OpenAPI stays FastAPI's. Routing, exception handlers and the request/response wrapping do too, except
for a lean route at a fixed path: edge.lane answers those below FastAPI with the same plan
(`lean_handler`), and does what FastAPI's routing and exception middleware would. tests/edge/test_routing.py
checks that the two handlers answer alike, tests/edge/test_route_lane.py that the lane answers as FastAPI.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import fastapi.routing
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from pydantic_core import PydanticUndefined
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

Handler = Callable[[Request], Awaitable[Response]]
_MISSING = object()  # a required query parameter the request does not have
_STRINGS = (str, str | None)


@dataclass
class _Call:
    """One function of the tree, with where each of its arguments comes from."""

    call: Callable[..., Awaitable[Any]]
    request: str | None = None  # the argument that receives the Request
    path: list[tuple[str, str]] = field(default_factory=list)  # (argument, path parameter)
    query: list[tuple[str, str, Any]] = field(default_factory=list)  # (argument, query key, default or _MISSING)
    results: list[tuple[str, int]] = field(default_factory=list)  # (argument, index of the call giving it)


class LeanRoute(APIRoute):
    """An APIRoute that resolves a simple endpoint's parameters with a plan (see the module docstring);
    `lean` says whether it does. Use it as the route class of an APIRouter."""

    lean: bool = False

    def get_route_handler(self) -> Handler:
        solved = super().get_route_handler()  # FastAPI's: the fallback, and the reference
        route = _as_included(self)
        lean = lean_handler(route.dependant)
        if lean is None:
            return solved
        self.lean = True
        provider = route.dependency_overrides_provider

        async def handler(request: Request) -> Response:
            if provider is not None and getattr(provider, "dependency_overrides", None):
                return await solved(request)
            response = await lean(request)
            return response if response is not None else await solved(request)

        return handler


def lean_handler(endpoint: Dependant) -> Callable[[Request], Awaitable[Response | None]] | None:
    """The plan's handler for an endpoint's tree (None: the tree needs FastAPI's solver). The handler
    answers None, having called nothing, for a request whose values FastAPI must judge. LeanRoute and
    edge.lane.RouteLane run it; dependency overrides are theirs to honour."""
    calls = _plan(endpoint)
    if calls is None:
        return None

    async def handler(request: Request) -> Response | None:
        arguments = _arguments(calls, request)
        if arguments is None:  # a value FastAPI must judge
            return None
        results: list[Any] = []
        for index, call in enumerate(calls):
            values = arguments[index]
            values.update((name, results[given]) for name, given in call.results)
            results.append(await call.call(**values))
        return results[-1]

    return handler


def _as_included(route: APIRoute) -> Any:
    """The route as the inclusion being built sees it. FastAPI from 0.16x builds one handler per
    `include_router`, reading the including routers' dependencies and the app (the dependency overrides'
    provider) from a context variable while it calls get_route_handler, as its own get_route_handler does.
    Earlier FastAPIs copied the route at inclusion, so the route itself is what they see."""
    context = getattr(fastapi.routing, "_effective_route_context_var", None)
    included = context.get() if context is not None else None
    return included if included is not None and included.original_route is route else route


def _plan(endpoint: Dependant) -> list[_Call] | None:
    """The functions of the tree in the order FastAPI calls them (dependencies first, each once), or None
    when one of them needs FastAPI's solver."""
    if not _returns_response(endpoint.call):
        return None
    calls: list[_Call] = []
    index_of: dict[Any, int] = {}

    def add(dependant: Dependant) -> int | None:
        if dependant.call in index_of and dependant.use_cache:
            return index_of[dependant.call]
        call = _call(dependant)
        if call is None:
            return None
        for sub in dependant.dependencies:
            given = add(sub)
            if given is None:
                return None
            if sub.name is not None:  # None: a route's or router's `dependencies=[...]`, run for its effect
                call.results.append((sub.name, given))
        calls.append(call)
        index_of.setdefault(dependant.call, len(calls) - 1)
        return len(calls) - 1

    return calls if add(endpoint) is not None else None


def _call(dependant: Dependant) -> _Call | None:
    """The function of one node, or None when it takes what the plan does not give."""
    function = dependant.call
    if not inspect.iscoroutinefunction(function):
        return None
    if (dependant.header_params or dependant.cookie_params or dependant.body_params
            or dependant.websocket_param_name or dependant.http_connection_param_name
            or dependant.response_param_name or dependant.background_tasks_param_name
            or dependant.security_scopes_param_name or dependant.own_oauth_scopes):
        return None
    call = _Call(function, request=dependant.request_param_name)
    for param in dependant.path_params:
        if param.field_info.annotation is not str or param.field_info.metadata:
            return None
        call.path.append((param.name, param.alias))
    for param in dependant.query_params:
        default = param.field_info.default
        if (param.field_info.annotation not in _STRINGS or param.field_info.metadata
                or param.field_info.default_factory is not None
                or (default is not PydanticUndefined and default is not None and not isinstance(default, str))):
            return None
        call.query.append((param.name, param.alias, _MISSING if default is PydanticUndefined else default))
    return call


def _returns_response(function: Any) -> bool:
    try:
        returned = typing.get_type_hints(function).get("return")
    except (NameError, TypeError):
        return False
    return isinstance(returned, type) and issubclass(returned, Response)


def _arguments(calls: list[_Call], request: Request) -> list[dict[str, Any]] | None:
    """Each call's arguments from the request (before any runs), or None when a value needs FastAPI."""
    path_params = request.path_params
    arguments = []
    for call in calls:
        values: dict[str, Any] = {}
        if call.request is not None:
            values[call.request] = request
        for name, key in call.path:
            value = path_params.get(key)
            if not isinstance(value, str):
                return None
            values[name] = value
        for name, key, default in call.query:
            value = request.query_params.get(key, default)
            if value is _MISSING:
                return None
            values[name] = value
        arguments.append(values)
    return arguments


def api_routes(routes: Iterable[BaseRoute]) -> Iterator[APIRoute]:
    """The API routes of an app's (or router's) routes, those of included routers too, as the OpenAPI
    document lists them: what a step that completes the document (edge.app.api_document) goes through."""
    for route in routes:
        if hasattr(route, "original_router"):  # an included router (FastAPI keeps its routes there)
            yield from api_routes(route.original_router.routes)
        elif isinstance(route, APIRoute) and route.include_in_schema:
            yield route


def depends_on(dependant: Dependant, call: Callable[..., Any]) -> bool:
    """Whether `call` is among an endpoint's dependencies, at any depth."""
    return any(dep.call is call or depends_on(dep, call) for dep in dependant.dependencies)


def operations(document: dict, routes: Iterable[BaseRoute], call: Callable[..., Any]) -> Iterator[dict]:
    """The OpenAPI operations of the routes that depend on `call`."""
    paths = document.get("paths", {})
    for route in api_routes(routes):
        if depends_on(route.dependant, call):
            for method in route.methods:
                operation = paths.get(route.path_format, {}).get(method.lower())
                if operation is not None:
                    yield operation
