"""Image to video: POST /v1/images/img2video (synchronous: the MP4 itself, as the reference's curl expects),
OpenAI's asynchronous /v1/videos (create → poll → content; list; delete) and the caller's video
library, GET /v1/images/user-videos.

Both POSTs make a job (edge.jobs): checked by translate against what the video service publishes, then
reserved (1 credit; free for premium), created in the jobs table and run on this edge. The synchronous
one waits for its job and answers the video, so it too is in the library and in GET /v1/videos. Every
read is the caller's own: another user's video id is a 404, as an unknown one is.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from starlette.convertors import Convertor, register_url_convertor

from edge.auth import Caller
from edge.clients import Clients, ServiceClients, call
from edge.endpoints.media.serving import media_response
from edge.endpoints.videos import translate
from edge.endpoints.videos.protocol import (
    CONTENT_RESPONSES,
    CREATE_FORM,
    IMG2VIDEO_FORM,
    IMG2VIDEO_RESPONSES,
    MEDIA_ID_HEADER,
    POLL_AFTER_HEADER,
    VIDEO_ID_HEADER,
    UserVideoList,
    VideoCreateFields,
    VideoDeleted,
    VideoFields,
    VideoList,
    VideoObject,
)
from edge.endpoints.videos.translate import KIND, MP4, VIDEO
from edge.errors import COMMON_ERRORS, APIError, error_responses
from edge.jobs import Finished, Jobs
from edge.routing import LeanRoute
from edge.serving import Serve, add_upstream_timing
from univence.media.v1 import media_pb2

router = APIRouter(tags=["videos"], route_class=LeanRoute, responses=COMMON_ERRORS)
# "video_" and the media service's random part (services.media.jobs.new_job_id); anything else is no
# video of anyone's.
VIDEO_ID = re.compile(r"video_[A-Za-z0-9_-]{16,64}")


class VideoIdConvertor(Convertor[str]):
    """`{video_id:video_id}`: the /v1/videos/{id} routes match only what can be a video id, so a sibling
    path (POST /v1/videos/remove-background) is no id: GET there is a 405 naming POST, not a 404."""

    regex = VIDEO_ID.pattern

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("video_id", VideoIdConvertor())
# The same shape in the OpenAPI document (the route does not match another: a 404 `unknown_url`).
VideoId = Annotated[str, Path(pattern=f"^{VIDEO_ID.pattern}$", description="The video's id, `video_…`")]
POLL_AFTER_MS = "1000"
LIVE = (media_pb2.JOB_STATUS_QUEUED, media_pb2.JOB_STATUS_IN_PROGRESS)


def not_found(video_id: str) -> APIError:
    return APIError(404, f"no video with id {video_id!r}", code="not_found", param="video_id")


async def owned(jobs: Jobs, video_id: str, owner_id: str) -> media_pb2.Job:
    """The caller's video job; 404 for an unknown id, another user's, or a job of another kind."""
    if not VIDEO_ID.fullmatch(video_id):
        raise not_found(video_id)
    try:
        job = await jobs.get(video_id, owner_id)
    except APIError as exc:
        raise (not_found(video_id) if exc.status == 404 else exc) from None
    if job.kind != KIND:
        raise not_found(video_id)
    return job


def answer(job: media_pb2.Job, request: Request) -> JSONResponse:
    headers = {POLL_AFTER_HEADER: POLL_AFTER_MS} if job.status in LIVE else {}
    return JSONResponse(translate.video_object(job, request).model_dump(), headers=headers)


@router.post("/v1/images/img2video", summary="Animate an image into a video (synchronous; 1 credit)",
             response_class=Response, responses={**IMG2VIDEO_RESPONSES, **error_responses(402, 409, 413)},
             openapi_extra=IMG2VIDEO_FORM)
async def image_to_video(request: Request, serve: Serve, jobs: Jobs) -> Response:
    published = await serve.published(VIDEO)
    fields, image = await translate.read_upload(request, VideoFields, "image", published)
    spec = translate.plan_video(fields, image, "image", published)
    await serve.mark_profile(VIDEO)
    job, task = await jobs.submit(request, serve.principal, spec)
    done = await jobs.wait(request, job, task)
    if isinstance(done, Finished):  # it ran here: its video in hand, and how long the service took
        job, video = done.job, done.result.video
        add_upstream_timing(request, VIDEO, done.upstream_ms)
    else:  # an earlier request's job (the same Idempotency-Key), perhaps run by another replica
        job, video = done, await serve.meter.read_media(done.result_media_ids[0])
    media_id = job.result_media_ids[0]
    return Response(video, media_type=MP4, headers={MEDIA_ID_HEADER: media_id, VIDEO_ID_HEADER: job.job_id})


@router.post("/v1/videos", response_model=VideoObject, responses=error_responses(402, 409, 413),
             summary="Create a video job (OpenAI's videos API; poll GET /v1/videos/{id}); 1 credit",
             openapi_extra=CREATE_FORM)
async def create_video(request: Request, serve: Serve, jobs: Jobs) -> Response:
    published = await serve.published(VIDEO)
    fields, image = await translate.read_upload(request, VideoCreateFields, "input_reference", published)
    spec = translate.plan_video(fields, image, "input_reference", published, seconds=fields.seconds,
                                size=fields.size)
    await serve.mark_profile(VIDEO)
    job, _ = await jobs.submit(request, serve.principal, spec)
    return answer(job, request)


@router.get("/v1/videos", response_model=VideoList, summary="List the caller's videos (newest first)")
async def list_videos(
    request: Request, caller: Caller, clients: Clients,
    after: Annotated[str | None, Query(description="The id of the last video of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    order: Annotated[Literal["asc", "desc"], Query()] = "desc",
) -> VideoList:
    if after is not None and not VIDEO_ID.fullmatch(after):
        raise not_found(after)
    page = await call("media", clients.media.ListJobs, media_pb2.ListJobsRequest(
        owner_id=caller.user_id, kind=KIND, order=_order(order == "asc"), page_size=limit,
        after_job_id=after or ""), timeout=30)
    data = [translate.video_object(job, request) for job in page.jobs]
    return VideoList(data=data, first_id=data[0].id if data else None, last_id=data[-1].id if data else None,
                     has_more=bool(page.next_page_token))


@router.get("/v1/videos/{video_id:video_id}", response_model=VideoObject, summary="Get a video job (status, progress)",
            responses=error_responses(404))
async def get_video(video_id: VideoId, request: Request, caller: Caller, jobs: Jobs) -> Response:
    return answer(await owned(jobs, video_id, caller.user_id), request)


@router.get("/v1/videos/{video_id:video_id}/content", response_class=Response, responses={
    **CONTENT_RESPONSES, **error_responses(404, 409)}, summary="Download a completed video (or its thumbnail)")
async def video_content(
    video_id: VideoId, request: Request, caller: Caller, jobs: Jobs,
    variant: Annotated[str, Query(description="video (the MP4) or thumbnail (a JPEG)")] = "video",
) -> Response:
    job = await owned(jobs, video_id, caller.user_id)
    return await media_response(request.app.state.clients.media, translate.content_media_id(job, variant),
                                method=request.method, format=None, headers=request.headers)


@router.delete("/v1/videos/{video_id:video_id}", response_model=VideoDeleted, responses=error_responses(404),
               summary="Delete a completed or failed video and its files; cancel a queued or running one")
async def delete_video(video_id: VideoId, caller: Caller, jobs: Jobs) -> VideoDeleted:
    """OpenAI deletes only completed or failed videos (the job and its stored assets). A live one is
    cancelled instead (its GPU slot freed, nothing charged) and kept, so its end (failed, code
    `cancelled`) can be read: `deleted` is false then, and a second DELETE removes it."""
    job = await owned(jobs, video_id, caller.user_id)
    if job.status in LIVE:
        job = await jobs.cancel(video_id, caller.user_id)
        if job.status == media_pb2.JOB_STATUS_CANCELLED:
            return VideoDeleted(id=video_id, deleted=False)
    try:  # ended (it may have completed just before the cancel): the job and its files go
        await jobs.delete(video_id, caller.user_id)
    except APIError as exc:
        raise (not_found(video_id) if exc.status == 404 else exc) from None
    return VideoDeleted(id=video_id, deleted=True)


@router.get("/v1/images/user-videos", response_model=UserVideoList, summary="List the caller's videos")
async def user_videos(
    request: Request,
    caller: Caller,
    clients: Clients,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    sort_by: Annotated[Literal["newest", "oldest", "createdAt", "created_at"], Query(alias="sortBy")] = "newest",
    sort_order: Annotated[Literal["asc", "desc"], Query(alias="sortOrder")] = "desc",
) -> UserVideoList:
    oldest_first = (sort_by == "oldest") != (sort_order == "asc")
    return await library(request, clients, caller.user_id, limit=limit, offset=offset, oldest_first=oldest_first)


async def library(request: Request, clients: ServiceClients, owner_id: str, *, limit: int, offset: int = 0,
                  oldest_first: bool = False) -> UserVideoList:
    """One page of a user's videos (their video jobs, whatever their status), as user-videos and the
    /account page show them."""
    page = await call("media", clients.media.ListJobs, media_pb2.ListJobsRequest(
        owner_id=owner_id, kind=KIND, order=_order(oldest_first), page_size=limit, offset=offset), timeout=30)
    data = [translate.user_video(job, request) for job in page.jobs]
    return UserVideoList(data=data, total=page.total_size, limit=limit, offset=offset,
                         has_more=offset + len(data) < page.total_size)


def _order(oldest_first: bool) -> int:
    return media_pb2.SORT_ORDER_OLDEST_FIRST if oldest_first else media_pb2.SORT_ORDER_NEWEST_FIRST
