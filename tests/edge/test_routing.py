"""LeanRoute (edge.routing) answers as FastAPI's own handler does: the same app built with LeanRoute and
with APIRoute gets the same requests, over HTTP, and must give the same answers; what the plan cannot
resolve goes to FastAPI's handler; and the edge's hot routes are lean."""

from typing import Annotated

import httpx
import pytest
from fastapi import APIRouter, Body, Depends, FastAPI, Header, HTTPException, Query, Request, Response
from fastapi.routing import APIRoute

from edge.app import ROUTERS
from edge.routing import LeanRoute


def build(route_class: type[APIRoute]) -> tuple[FastAPI, APIRouter, dict[str, int]]:
    """One app of every shape the tests need; `calls` counts each dependency's calls."""
    calls: dict[str, int] = {}

    async def principal(request: Request) -> str:
        calls["principal"] = calls.get("principal", 0) + 1
        key = request.headers.get("x-key")
        if key is None:
            raise HTTPException(401, "no key")
        return key

    async def serving(request: Request, who: Annotated[str, Depends(principal)]) -> str:
        calls["serving"] = calls.get("serving", 0) + 1
        return f"{who}@{request.url.path}"

    async def audit(request: Request) -> None:
        calls["audit"] = calls.get("audit", 0) + 1

    def sync_dependency() -> str:
        return "sync"

    async def yielding():
        yield "yielded"

    router = APIRouter(route_class=route_class, dependencies=[Depends(audit)])

    @router.get("/items/{item_id}")
    async def item(item_id: str, request: Request,
                   fmt: Annotated[str | None, Query(alias="format")] = None, page: str = "1") -> Response:
        return Response(f"{item_id}|{fmt!r}|{page}|{request.method}")

    @router.get("/required")
    async def required(token: str) -> Response:
        return Response(token)

    @router.get("/numbers/{number:int}")
    async def numbers(number: str) -> Response:
        return Response(number)

    @router.post("/work")
    async def work(request: Request, serve: Annotated[str, Depends(serving)],
                   who: Annotated[str, Depends(principal)]) -> Response:
        return Response(f"{serve}|{who}|{(await request.body()).decode()}")

    @router.get("/sync")
    async def uses_sync(value: Annotated[str, Depends(sync_dependency)]) -> Response:
        return Response(value)

    @router.get("/yield")
    async def uses_yield(value: Annotated[str, Depends(yielding)]) -> Response:
        return Response(value)

    @router.get("/header")
    async def uses_header(x_thing: Annotated[str | None, Header()] = None) -> Response:
        return Response(str(x_thing))

    @router.post("/body")
    async def uses_body(name: Annotated[str, Body(embed=True)]) -> Response:
        return Response(name)

    @router.get("/number")
    async def uses_int(n: int = 1) -> Response:
        return Response(str(n))

    @router.get("/short")
    async def uses_constraint(s: Annotated[str, Query(max_length=3)] = "") -> Response:
        return Response(s)

    @router.get("/model")
    async def returns_model() -> dict[str, str]:
        return {"a": "b"}

    app = FastAPI()
    app.include_router(router)
    return app, router, calls


LEAN_PATHS = {"/items/{item_id}", "/required", "/numbers/{number:int}", "/work"}
REQUESTS = [  # (method, url, headers, body)
    ("GET", "/items/abc", {}, b""),
    ("GET", "/items/abc?format=webp", {}, b""),
    ("GET", "/items/abc?format=", {}, b""),
    ("GET", "/items/abc?format=png&format=jpeg&page=7", {}, b""),
    ("GET", "/items/a%20b%2Fc", {}, b""),
    ("GET", "/required?token=t", {}, b""),
    ("GET", "/required", {}, b""),  # missing: FastAPI's validation error
    ("GET", "/numbers/12", {}, b""),  # not a str: FastAPI's validation error
    ("POST", "/work", {"x-key": "k"}, b"payload"),
    ("POST", "/work", {}, b""),  # the dependency refuses
    ("GET", "/sync", {}, b""),
    ("GET", "/yield", {}, b""),
    ("GET", "/header", {"x-thing": "h"}, b""),
    ("POST", "/body", {"content-type": "application/json"}, b'{"name": "n"}'),
    ("GET", "/number?n=5", {}, b""),
    ("GET", "/number?n=x", {}, b""),
    ("GET", "/short?s=abcd", {}, b""),
    ("GET", "/model", {}, b""),
]


async def answers(app: FastAPI, requests: list[tuple[str, str, dict[str, str], bytes]] = REQUESTS
                  ) -> list[tuple[int, str, list[tuple[str, str]]]]:
    """Each request's status, body and headers (an exception the app does not handle is its 500)."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        out = []
        for method, url, headers, body in requests:
            response = await http.request(method, url, headers=headers, content=body)
            out.append((response.status_code, response.text, sorted(response.headers.multi_items())))
        return out


async def test_lean_routes_answer_as_fastapi_does():
    lean_app, lean_router, lean_calls = build(LeanRoute)
    plain_app, _, plain_calls = build(APIRoute)
    assert await answers(lean_app) == await answers(plain_app)
    assert lean_calls == plain_calls  # each dependency as often: once per request, the router's on every one
    assert {route.path for route in lean_router.routes if route.lean} == LEAN_PATHS


async def test_a_dependency_used_twice_runs_once_per_request():
    app, _, calls = build(LeanRoute)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as http:
        response = await http.post("/work", headers={"x-key": "k"}, content=b"x")
    assert response.text == "k@/work|k|x"
    assert calls == {"audit": 1, "principal": 1, "serving": 1}


async def test_dependency_overrides_are_honoured():
    app, router, calls = build(LeanRoute)
    principal = next(d.call for r in router.routes if r.path == "/work" for d in r.dependant.dependencies
                     if d.name == "who")

    async def stand_in() -> str:
        return "override"

    app.dependency_overrides[principal] = stand_in
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as http:
        response = await http.post("/work", content=b"")
    assert response.status_code == 200 and response.text == "override@/work|override|"
    assert "principal" not in calls


@pytest.mark.parametrize("route_class", [LeanRoute, APIRoute])
async def test_an_including_routers_dependencies_run_and_can_refuse(route_class):
    _, router, calls = build(route_class)

    async def gate(request: Request) -> None:
        calls["gate"] = calls.get("gate", 0) + 1
        if request.headers.get("x-gate") != "open":
            raise HTTPException(403, "closed")

    app = FastAPI()
    app.include_router(router, prefix="/api", dependencies=[Depends(gate)])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as http:
        refused = await http.get("/api/items/abc")
        served = await http.get("/api/items/abc?format=png", headers={"x-gate": "open"})
    assert refused.status_code == 403 and refused.json() == {"detail": "closed"}
    assert served.status_code == 200 and served.text == "abc|'png'|1|GET"
    assert calls == {"gate": 2, "audit": 1}  # the including router's dependencies first
    item = next(route for route in router.routes if route.path == "/items/{item_id}")
    assert getattr(item, "lean", False) is (route_class is LeanRoute)


def test_the_edge_uses_lean_routes_and_its_hot_routes_are_lean():
    routes = [route for router in ROUTERS for route in router.routes if isinstance(route, APIRoute)]
    assert all(isinstance(route, LeanRoute) for route in routes)
    lean = {(method, route.path) for route in routes if route.lean for method in route.methods}
    for hot in [("GET", "/v1/media/{media_id}"), ("HEAD", "/v1/media/{media_id}"),
                ("POST", "/v1/chat/completions"), ("POST", "/v1/images/edits"), ("POST", "/v1/images/generations"),
                ("POST", "/v1/images/generations/batch"), ("POST", "/v1/images/upscale")]:
        assert hot in lean, hot


@pytest.mark.parametrize("path", ["/sync", "/yield", "/header", "/body", "/number", "/short", "/model"])
def test_what_the_plan_cannot_resolve_keeps_fastapis_handler(path):
    _, router, _ = build(LeanRoute)
    assert not next(route for route in router.routes if route.path == path).lean
