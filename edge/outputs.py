"""Where a modality's outputs go: stored in the media service (owner = the caller) and served from
its public link, GET /v1/media/{id}.

An answer that needs the stored id (a `url`, an `X-Media-Id` header) waits for the store (`store`). One
that does not (`response_format=b64_json`: the file is in the answer itself) is answered without waiting
on storage (`keep`): the CreateMedia call starts as a background task of the process
(`BackgroundStores`) once the response has gone out (edge.middleware.after_response: started earlier, it
took the loop from the commit and the answer), is retried while media does not answer, and is waited for
at shutdown, so the caller's library still gets every output. A request with an
Idempotency-Key keeps the store before its answer, as before (its replay must find everything in place).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from fastapi import Request

from edge.auth import Principal
from edge.clients import ServiceClients, call
from edge.errors import APIError
from edge.middleware import after_response
from univence.media.v1 import media_pb2

log = logging.getLogger(__name__)
KINDS = {"image": media_pb2.MEDIA_KIND_IMAGE, "video": media_pb2.MEDIA_KIND_VIDEO, "audio": media_pb2.MEDIA_KIND_AUDIO}
# A background store media does not take is tried again after each of these pauses (then logged as lost).
RETRY_SECONDS = (0.2, 1.0, 3.0, 10.0, 30.0)


def media_url(request: Request, media_id: str) -> str:
    """The public link of a media file: the configured public base URL, else the request's own."""
    base = request.app.state.clients.settings.public_base_url or str(request.base_url)
    return f"{base.rstrip('/')}/v1/media/{media_id}"


@dataclass(frozen=True)
class Stored:
    media_id: str
    url: str


class BackgroundStores:
    """The stores answers did not wait for, in flight in this process: each is retried while media fails
    with a status worth retrying (unavailable, internal), and `drain` waits for them at shutdown."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task] = set()

    def start(self, clients: ServiceClients, request: media_pb2.CreateMediaRequest) -> None:
        task = asyncio.ensure_future(_store_until_taken(clients, request))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self, timeout: float = 30.0) -> None:
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout)


async def _store_until_taken(clients: ServiceClients, request: media_pb2.CreateMediaRequest) -> None:
    for pause in (*RETRY_SECONDS, None):
        try:
            await call("media", clients.media.CreateMedia, request, timeout=60)
            return
        except APIError as error:
            if pause is None or error.status < 500:
                log.error("an output of user %s (%s, %d bytes) was answered but could not be stored in media: "
                          "%s", request.owner_id, request.mime_type, len(request.data), error.message)
                return
        await asyncio.sleep(pause)


@dataclass(frozen=True)
class Outputs:
    """Stores one request's outputs for its caller."""

    request: Request
    principal: Principal
    clients: ServiceClients
    # Where `keep` puts the stores it does not wait for (None: it waits, as `store` does).
    background: BackgroundStores | None = None

    def _create(self, data: bytes, mime_type: str, width: int, height: int) -> media_pb2.CreateMediaRequest:
        return media_pb2.CreateMediaRequest(owner_id=self.principal.user_id, kind=KINDS[mime_type.split("/", 1)[0]],
                                            mime_type=mime_type, data=data, width=width, height=height)

    async def store(self, data: bytes, mime_type: str, *, width: int = 0, height: int = 0) -> Stored:
        """Stores an output whose id the answer needs."""
        response = await call("media", self.clients.media.CreateMedia,
                              self._create(data, mime_type, width, height), timeout=60)
        media_id = response.media.media_id
        return Stored(media_id, media_url(self.request, media_id))

    async def keep(self, data: bytes, mime_type: str, *, width: int = 0, height: int = 0) -> None:
        """Stores an output the answer carries itself (its id is not needed): once the answer has gone out
        (edge.middleware.after_response), unless the request has an Idempotency-Key (then before it, as
        `store`)."""
        if self.background is None or self.request.headers.get("idempotency-key"):
            await self.store(data, mime_type, width=width, height=height)
            return
        background = self.background
        after_response(self.request, lambda: background.start(self.clients,
                                                              self._create(data, mime_type, width, height)))
