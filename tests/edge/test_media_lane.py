"""The media GET's lane below FastAPI (edge.endpoints.media.lane) answers exactly what FastAPI's route
answers: one platform, two edges on the same services, one with the lane and one without, get the same
requests over HTTP and must give the same status, headers and body. The lane's requests are counted under
the route's template, and what it must not answer reaches FastAPI."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
from prometheus_client import REGISTRY

from edge.app import create_app
from edge.endpoints.media.lane import MediaLane
from edge.endpoints.media.router import GET_MEDIA_ROUTE, router
from edge.endpoints.media.translate import MEDIA_PATH
from tests.edge.test_media import png_bytes, stored
from tests.support.platform import running_edge
from tests.support.ports import free_port
from tests.support.waiting import eventually
from univence.media.v1 import media_pb2

# Headers that differ between any two responses, whoever answers.
VARYING = {"date", "x-request-id"}


def without_lane(settings):
    app = create_app(settings)
    app.user_middleware = [m for m in app.user_middleware if m.cls is not MediaLane]
    return app


def answer(response: httpx.Response) -> tuple:
    """Status, headers and body, with the edge's own address (in a redirect's Location) left out."""
    own = f"{response.request.url.host}:{response.request.url.port}"
    headers = sorted((k, v.replace(own, "EDGE")) for k, v in response.headers.multi_items() if k not in VARYING)
    return response.status_code, headers, response.content


def served(route: str, method: str) -> float:
    return REGISTRY.get_sample_value("univence_edge_requests_total",
                                     {"method": method, "route": route, "status": "200"}) or 0.0


async def test_the_lane_answers_as_the_route_does(platform, http):
    image = await stored(platform, png_bytes((40, 30)))
    video_bytes = bytes(range(256)) * 40
    video = await stored(platform, video_bytes, mime="video/mp4", kind=media_pb2.MEDIA_KIND_VIDEO)
    etag = (await http.get(f"/v1/media/{image}")).headers["etag"]
    cases: list[tuple[str, str, dict[str, str] | list[tuple[str, str]]]] = [
        ("GET", f"/v1/media/{image}", {}),
        ("HEAD", f"/v1/media/{image}", {}),
        ("GET", f"/v1/media/{image}", {"If-None-Match": etag}),
        ("GET", f"/v1/media/{image}", {"If-None-Match": f'W/{etag}, "other"'}),
        ("GET", f"/v1/media/{image}", {"If-None-Match": "*"}),
        ("GET", f"/v1/media/{image}", {"If-None-Match": '"stale"'}),
        ("HEAD", f"/v1/media/{image}", {"If-None-Match": etag}),
        ("GET", f"/v1/media/{image}?format=webp", {}),
        ("GET", f"/v1/media/{image}?format=JPEG", {}),
        ("GET", f"/v1/media/{image}?format=bmp", {}),
        ("GET", f"/v1/media/{image}?format=", {}),
        ("GET", f"/v1/media/{image}?format=bmp&format=png", {}),
        ("GET", f"/v1/media/{image}?other=1", {}),
        ("GET", f"/v1/media/{video}", {"Range": "bytes=10-19"}),
        ("GET", f"/v1/media/{video}", {"Range": "bytes=-100"}),
        ("GET", f"/v1/media/{video}", {"Range": f"bytes={len(video_bytes) - 5}-"}),
        ("GET", f"/v1/media/{video}", {"Range": f"bytes={len(video_bytes) + 10}-"}),
        ("GET", f"/v1/media/{video}", {"Range": "bytes=0-1,5-9"}),
        ("GET", f"/v1/media/{video}", {"Range": "items=0-1"}),
        ("HEAD", f"/v1/media/{video}", {"Range": "bytes=10-19"}),
        ("GET", f"/v1/media/{video}", {"Range": "bytes=10-19", "If-None-Match": '"stale"'}),
        ("GET", f"/v1/media/{video}", [("Range", "bytes=0-1"), ("Range", "bytes=2-3")]),
        ("GET", "/v1/media/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", {}),
        ("GET", "/v1/media/short", {}),
        ("GET", "/v1/media/..%2F..%2Fetc%2Fpasswd", {}),
        ("GET", f"/v1/media/{image}/", {}),
        ("GET", f"/v1/media/{image}/more", {}),
        ("GET", "/v1/media/", {}),
        ("POST", f"/v1/media/{image}", {}),
        ("DELETE", f"/v1/media/{image}", {}),
    ]
    settings = platform.edge_settings.model_copy(update={"port": free_port()})
    async with running_edge(settings, without_lane(settings)) as (plain_url, _), \
            httpx.AsyncClient(base_url=plain_url, timeout=30) as plain:
        for method, url, headers in cases:
            with_lane = await http.request(method, url, headers=headers)
            through_fastapi = await plain.request(method, url, headers=headers)
            assert answer(with_lane) == answer(through_fastapi), (method, url, headers)
        # A client's own request id comes back from both.
        for client in (http, plain):
            response = await client.get(f"/v1/media/{image}", headers={"X-Request-Id": "trace-7"})
            assert response.headers["x-request-id"] == "trace-7"
    # The cases did cover what the lane serves: whole files, 304s, ranges and errors.
    statuses = {answer(await http.request(m, u, headers=h))[0] for m, u, h in cases}
    assert {200, 206, 304, 400, 404, 405, 416} <= statuses


async def test_the_lane_is_counted_under_the_route_and_honours_maintenance(platform, http):
    image = await stored(platform, png_bytes())
    before = served(MEDIA_PATH, "GET")
    assert (await http.get(f"/v1/media/{image}")).status_code == 200
    # Counted when the request's handling ends, which is after the answer went out (the media stream's end
    # is read after it): the count comes shortly after the response.
    assert await eventually(lambda: served(MEDIA_PATH, "GET") == before + 1, seconds=5)
    flag = Path(platform.edge_settings.maintenance_file)
    flag.write_text("on")
    try:
        await asyncio.sleep(1.1)  # maintenance is read from its file once a second
        response = await http.get(f"/v1/media/{image}")
        assert response.status_code == 503 and response.json()["error"]["type"] == "maintenance_mode"
    finally:
        flag.unlink()


def test_the_route_the_lane_stands_in_for_has_no_dependencies():
    """The lane calls the serving code directly: a dependency added to the route (or its router) would be
    skipped for the lane's requests, so one must be run by the lane first."""
    assert not router.dependencies
    assert GET_MEDIA_ROUTE.path == MEDIA_PATH and "GET" in GET_MEDIA_ROUTE.methods
    for route in router.routes:
        if getattr(route, "path", None) == MEDIA_PATH:
            assert not route.dependant.dependencies and not route.dependencies, route
