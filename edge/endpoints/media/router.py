"""GET /v1/media/{id}: public, cached, ranged and transcodable (the caller's video library, GET
/v1/images/user-videos, is the videos group's: edge.endpoints.videos). The answer itself is
edge.endpoints.media.serving's; most requests reach it through the lane below FastAPI
(edge.endpoints.media.lane), and this route documents the operation and serves what the lane passes on."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from edge.endpoints.media.serving import media_response
from edge.endpoints.media.translate import MEDIA_PATH
from edge.errors import error_responses
from edge.routing import LeanRoute

router = APIRouter(tags=["media"], route_class=LeanRoute)


@router.get(MEDIA_PATH, summary="Get a media file by id (public; HEAD works too)",
            responses={**error_responses(400, 404), 206: {"description": "Partial content"},
                       304: {"description": "Not modified"}, 416: {"description": "Range not satisfiable"}},
            response_class=Response)
async def get_media(media_id: str, request: Request,
                    format: Annotated[str | None, Query(description="Transcode an image: webp, jpeg or png")] = None,
                    ) -> Response:
    # Public and the hottest read: no authentication, and the process's stub straight from app.state.
    return await media_response(request.app.state.clients.media, media_id, method=request.method, format=format,
                                headers=request.headers)


router.add_api_route(MEDIA_PATH, get_media, methods=["HEAD"], include_in_schema=False)
# The route edge.endpoints.media.lane stands in for (create_app gives it to the lane).
GET_MEDIA_ROUTE = next(route for route in router.routes if getattr(route, "endpoint", None) is get_media
                       and "GET" in getattr(route, "methods", ()))
