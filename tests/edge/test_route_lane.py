"""The lane below FastAPI for lean routes at fixed paths (edge.lane) answers exactly what FastAPI answers:
the same app with and without the lane gets the same requests and must give the same answers, errors and
exception handlers included; a route FastAPI would not pick for a path keeps FastAPI's routing; and on the
edge, chats through the lane answer as through FastAPI and are counted under their route."""

from __future__ import annotations

from typing import Annotated

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import REGISTRY

from edge.app import ROUTERS, create_app
from edge.lane import RouteLane, exception_handler, lanes
from edge.routing import LeanRoute
from tests.edge.test_routing import REQUESTS as ROUTING_REQUESTS
from tests.edge.test_routing import answers as routing_answers
from tests.edge.test_routing import build
from tests.llm.helpers import serve_llm
from tests.support.platform import running_edge, running_platform
from tests.support.ports import free_port

FASTAPI_RAN = "x-fastapi-ran"


class Refused(Exception):
    pass


class Unhandled(Exception):
    pass


async def who(request: Request) -> str:
    if request.headers.get("x-refuse"):
        raise Refused("refused")
    return request.headers.get("x-who", "nobody")


def lane_app(with_lane: bool) -> FastAPI:
    """test_routing's app of every shape plus routes that fail in each way, with or without the lane.
    /fixed says whether FastAPI's route handling ran (its exit stack is in the scope)."""
    app, router, _ = build(LeanRoute)
    failing = APIRouter(route_class=LeanRoute)

    @failing.post("/fixed")
    async def fixed(request: Request, caller: Annotated[str, Depends(who)]) -> Response:
        return Response(f"{caller}|{await request.body()!r}|{request.scope['route'].path}",
                        headers={FASTAPI_RAN: str("fastapi_inner_astack" in request.scope)})

    @failing.get("/teapot")
    async def teapot() -> Response:
        raise HTTPException(418, "short and stout", headers={"x-tea": "earl grey"})

    @failing.get("/gone")
    async def gone() -> Response:
        raise HTTPException(410, "gone")

    @failing.get("/unhandled")
    async def unhandled() -> Response:
        raise Unhandled("boom")

    # A route with a parameter that matches a fixed path after it: FastAPI picks the first.
    @failing.get("/shadow/{name}")
    async def shadow(name: str) -> Response:
        return Response(f"param {name}")

    @failing.get("/shadow/fixed")
    async def shadowed() -> Response:
        return Response("fixed")

    app.include_router(failing)

    @app.exception_handler(Refused)
    async def refused(_: Request, exc: Refused) -> JSONResponse:
        return JSONResponse({"refused": str(exc)}, status_code=403)

    @app.exception_handler(410)
    async def by_status(_: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse({"status handler": exc.detail}, status_code=410)

    if with_lane:
        app.add_middleware(RouteLane, routers=[router, failing])
    return app


REQUESTS = [*ROUTING_REQUESTS,
            ("POST", "/fixed", {"x-who": "ada"}, b"payload"),
            ("POST", "/fixed", {"x-refuse": "1"}, b""),
            ("POST", "/fixed?extra=1", {}, b"x"),
            ("POST", "/fixed/", {}, b""),
            ("GET", "/fixed", {}, b""),
            ("PUT", "/fixed", {}, b""),
            ("GET", "/teapot", {}, b""),
            ("GET", "/gone", {}, b""),
            ("GET", "/unhandled", {}, b""),
            ("GET", "/shadow/fixed", {}, b""),
            ("GET", "/shadow/other", {}, b"")]


async def answers(app: FastAPI) -> list[tuple[int, str, list[tuple[str, str]]]]:
    """test_routing's answers to REQUESTS, without the header that says who handled /fixed."""
    return [(status, text, [(k, v) for k, v in headers if k != FASTAPI_RAN])
            for status, text, headers in await routing_answers(app, REQUESTS)]


async def test_the_lane_answers_as_fastapi_does():
    through_lane, through_fastapi = await answers(lane_app(True)), await answers(lane_app(False))
    for request, lane_answer, fastapi_answer in zip(REQUESTS, through_lane, through_fastapi, strict=True):
        assert lane_answer == fastapi_answer, request
    statuses = {status for status, _, _ in through_lane}
    assert {200, 401, 403, 404, 405, 410, 418, 500} <= statuses


async def test_the_lane_serves_what_it_can_and_leaves_the_rest_to_fastapi():
    app = lane_app(True)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        served = await http.post("/fixed", headers={"x-who": "ada"}, content=b"x")
        routed = await http.get("/items/abc")  # a path with a parameter: FastAPI's routing
        app.dependency_overrides[object] = object  # any override: every request goes to FastAPI
        overridden = await http.post("/fixed", headers={"x-who": "ada"}, content=b"x")
    assert served.text == "ada|b'x'|/fixed" and served.headers[FASTAPI_RAN] == "False"  # the lane answered
    assert routed.status_code == 200
    assert overridden.text == served.text and overridden.headers[FASTAPI_RAN] == "True"
    _, router, _ = build(LeanRoute)
    table = lanes([router])
    assert ("POST", "/work") in table and ("GET", "/required") in table
    assert not any("{" in path for _, path in table)  # fixed paths only
    assert ("GET", "/sync") not in table and ("GET", "/model") not in table  # not lean


def test_a_route_fastapi_would_not_pick_keeps_fastapis_routing():
    first, second = APIRouter(route_class=LeanRoute), APIRouter(route_class=LeanRoute)

    @first.get("/things/{name}")
    async def named(name: str) -> Response:
        return Response(name)

    @second.get("/things/new")
    async def new() -> Response:
        return Response("new")

    @second.get("/fresh")
    async def fresh() -> Response:
        return Response("fresh")

    assert set(lanes([first, second])) == {("GET", "/fresh")}
    assert set(lanes([second, first])) == {("GET", "/things/new"), ("GET", "/fresh")}


@pytest.mark.parametrize(("exc", "expected"), [
    (HTTPException(410), "status"), (HTTPException(404), "http"), (HTTPException(500), "http"),
    (Refused(), "refused"), (Unhandled(), None), (KeyError(), None)])
def test_exception_handlers_are_looked_up_as_starlettes_exception_middleware_does(exc, expected):
    handlers = {410: "status", HTTPException: "http", Refused: "refused", Exception: "server", 500: "server"}
    assert exception_handler(handlers, exc) == expected


def test_the_edges_hot_routes_take_the_lane():
    table = lanes(list(ROUTERS))
    for hot in [("POST", "/v1/chat/completions"), ("POST", "/v1/images/edits"), ("POST", "/v1/images/generations"),
                ("POST", "/v1/images/generations/batch"), ("POST", "/v1/images/upscale")]:
        assert hot in table, hot


def without_lane(settings):
    app = create_app(settings)
    app.user_middleware = [m for m in app.user_middleware if m.cls is not RouteLane]
    return app


def counted(route: str) -> float:
    return REGISTRY.get_sample_value("univence_edge_requests_total",
                                     {"method": "POST", "route": route, "status": "200"}) or 0.0


def comparable(response: httpx.Response) -> tuple:
    """A chat answer's status, header names and, for an error, its body; a completion's JSON keys (its id
    and times differ between any two)."""
    names = sorted({k for k in response.headers if k not in ("date", "x-request-id", "content-length")})
    if response.status_code != 200:
        return response.status_code, names, response.content
    return response.status_code, names, sorted(response.json())


async def test_chats_through_the_lane_answer_as_through_fastapi(tmp_path):
    async with serve_llm() as (_, llm), \
            running_platform(tmp_path, modalities=["llm"], modality_addresses={"llm": f"127.0.0.1:{llm.port}"},
                             credit_leases=False) as platform:
        _, key = await platform.user_with_key("vip@example.com", premium=True)
        _, free_key = await platform.user_with_key("free@example.com")
        settings = platform.edge_settings.model_copy(update={"port": free_port()})
        chat = {"model": "x", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4, "temperature": 0}
        cases = [({"X-API-Key": key}, chat), ({"X-API-Key": free_key}, chat), ({}, chat),
                 ({"X-API-Key": "sk-wrong"}, chat), ({"X-API-Key": key}, {**chat, "messages": []}),
                 ({"X-API-Key": key}, {**chat, "temperature": "hot"}), ({"X-API-Key": key}, [1, 2]),
                 ({"X-API-Key": key, "Content-Type": "text/plain"}, "not json")]
        async with running_edge(settings, without_lane(settings)) as (plain_url, _), \
                httpx.AsyncClient(base_url=plain_url, timeout=60) as plain, \
                httpx.AsyncClient(base_url=platform.base_url, timeout=60) as http:
            before = counted("/v1/chat/completions")
            for headers, body in cases:
                kwargs = {"content": body} if isinstance(body, str) else {"json": body}
                through_lane = await http.post("/v1/chat/completions", headers=headers, **kwargs)
                through_fastapi = await plain.post("/v1/chat/completions", headers=headers, **kwargs)
                assert comparable(through_lane) == comparable(through_fastapi), (headers, body)
            assert counted("/v1/chat/completions") == before + 2  # the premium chat, through each edge
            async with http.stream("POST", "/v1/chat/completions", headers={"X-API-Key": key},
                                   json={**chat, "stream": True}) as stream:
                events = [line async for line in stream.aiter_lines() if line.startswith("data: ")]
            assert stream.status_code == 200 and events[-1] == "data: [DONE]" and len(events) >= 3
