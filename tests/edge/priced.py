"""A priced test route that drives edge.metering exactly as edge.serving's flows do for the modality
endpoints (reserve → the work, cancelled if the client leaves → store the output in media → commit),
with a real file stored in the media service as its "work". The edge tests mount it in-process
(`add_priced_route`); the crash tests run it as its own edge process:

    python -m tests.edge.priced      # an edge (settings from UNIVENCE_EDGE_*) with the route mounted

The body says how the work goes: `mode: "fail"` fails; `seconds` of work (cancelled when the client
leaves); `store_seconds` spent once the result exists (the client may leave meanwhile: the result is
charged and kept); `pad` bytes of padding in the response (a response larger than accounts keeps).
"""

from __future__ import annotations

import asyncio
import json

import uvicorn
from fastapi import APIRouter, Depends, FastAPI, Request, Response

from edge.app import create_app
from edge.auth import Principal, require_principal
from edge.clients import call
from edge.config import EdgeSettings
from edge.errors import APIError
from edge.http_protocol import EdgeHTTPProtocol
from edge.metering import until_disconnect
from univence.accounts.v1 import accounts_pb2 as apb
from univence.media.v1 import media_pb2

PATH = "/v1/test/priced"
PRICE_MC = 500  # OPERATION_IMAGE_EDIT in the default price table
PNG_1PX = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360f8cfc0f01f0005000201a5d6a6a60000000049454e44ae426082")


def add_priced_route(app: FastAPI) -> None:
    router = APIRouter()

    @router.post(PATH)
    async def priced(request: Request, body: dict, principal: Principal = Depends(require_principal)):  # noqa: B008
        items = [apb.ChargeItem(operation=apb.OPERATION_IMAGE_EDIT)]
        async with request.app.state.meter.hold(request, principal, items) as hold:
            if hold.replay is not None:
                return hold.replay
            if body.get("mode") == "fail":
                raise APIError(500, "the model failed", "processing_error")
            if body.get("mode") == "slow":
                await until_disconnect(request, asyncio.sleep(30))
            await until_disconnect(request, asyncio.sleep(float(body.get("seconds", 0))))
            # The result exists from here on: what follows is storing it and answering.
            await asyncio.sleep(float(body.get("store_seconds", 0)))
            stored = await call("media", request.app.state.clients.media.CreateMedia, media_pb2.CreateMediaRequest(
                owner_id=principal.user_id, kind=media_pb2.MEDIA_KIND_IMAGE, mime_type="image/png", data=PNG_1PX))
            content = json.dumps({"id": stored.media.media_id, "pad": "x" * int(body.get("pad", 0))}).encode()
            await hold.commit(response_body=content)
            return Response(content, media_type="application/json")

    app.include_router(router)


def main() -> None:
    settings = EdgeSettings()
    app = create_app(settings)
    add_priced_route(app)
    uvicorn.run(app, host="127.0.0.1", port=settings.port, log_level="warning", http=EdgeHTTPProtocol)


if __name__ == "__main__":
    main()
