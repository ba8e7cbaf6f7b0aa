"""The floor of an HTTP → gRPC hop on this machine: the least a Python edge can do for the edge-overhead
benchmark's rows, as a raw ASGI app on the edge's own server (uvicorn, the edge's HTTP protocol, uvloop).

It is a measuring instrument, never served to users: no authentication, metering, validation, error
envelope, request ids, metrics or storage. Each request is one gRPC call with the body parsed as little as
the call needs, and the answer written as it comes:

- GET /v1/media/{id}: media.GetMedia, the file's bytes;
- POST /v1/images/edits: image.EditImages, `{"data": [{"b64_json": …}]}`;
- POST /v1/chat/completions (stream): llm.StreamChatCompletion, one `data:` event per chunk, then [DONE].

benchmarks/edge_overhead.py runs it beside the edge on the same services, so a row's "floor" column is
what the hop itself costs over calling the service directly (the HTTP server, a socket hop, one more
process on the same cores), and the edge's figure over the floor's is what the edge's own code adds.

    python benchmarks/floor_proxy.py --port P --media HOST:PORT --image HOST:PORT --llm HOST:PORT
"""

from __future__ import annotations

import univence.transport  # noqa: F401  (before grpc: gRPC's transport, as the stack's processes have it)

# isort: split
import argparse
import base64
import json
import time
from collections.abc import Awaitable, Callable

import grpc
import uvicorn

from edge.http_protocol import EdgeHTTPProtocol
from univence.image.v1 import image_pb2, image_pb2_grpc
from univence.llm.v1 import llm_pb2, llm_pb2_grpc
from univence.media.v1 import media_pb2, media_pb2_grpc

Send = Callable[[dict], Awaitable[None]]
ROLES = {"system": llm_pb2.ROLE_SYSTEM, "user": llm_pb2.ROLE_USER, "assistant": llm_pb2.ROLE_ASSISTANT}
MEDIA_PREFIX = "/v1/media/"


class FloorProxy:
    """The raw ASGI app; its stubs are made on the first request (inside uvicorn's event loop)."""

    def __init__(self, media: str, image: str, llm: str):
        self.addresses = {"media": media, "image": image, "llm": llm}
        self.stubs: tuple | None = None

    async def __call__(self, scope: dict, receive: Callable, send: Send) -> None:
        if scope["type"] != "http":
            return
        if self.stubs is None:
            options = [("grpc.max_receive_message_length", 64 << 20), ("grpc.max_send_message_length", 64 << 20)]
            channel = {name: grpc.aio.insecure_channel(address, options=options)
                       for name, address in self.addresses.items()}
            self.stubs = (media_pb2_grpc.MediaServiceStub(channel["media"]),
                          image_pb2_grpc.ImageServiceStub(channel["image"]),
                          llm_pb2_grpc.ChatServiceStub(channel["llm"]))
        path = scope["path"]
        if scope["method"] == "GET" and path.startswith(MEDIA_PREFIX):
            await self.media(path[len(MEDIA_PREFIX):], send)
        elif scope["method"] == "POST" and path == "/v1/images/edits":
            await self.edit(await _body(receive), send)
        elif scope["method"] == "POST" and path == "/v1/chat/completions":
            await self.chat(await _body(receive), send)
        else:
            await _answer(send, 404, b"text/plain", b"not a floor route")

    async def media(self, media_id: str, send: Send) -> None:
        data, mime = [], b"application/octet-stream"
        async for message in self.stubs[0].GetMedia(media_pb2.GetMediaRequest(media_id=media_id)):
            if message.HasField("media"):
                mime = message.media.mime_type.encode()
            data.append(message.chunk)
        await _answer(send, 200, mime, b"".join(data))

    async def edit(self, body: dict, send: Send) -> None:
        request = image_pb2.EditImagesRequest(
            model=body["model"], prompt=body["prompt"],
            input_images=[base64.b64decode(image) for image in body["input_images"]],
            width=body["width"], height=body["height"], num_inference_steps=body["num_steps"], seed=body["seed"],
            n=1)
        started = time.perf_counter()
        answer = await self.stubs[1].EditImages(request)
        timing = _upstream("image", started)
        images = [{"b64_json": base64.b64encode(image.data).decode()} for image in answer.images]
        await _answer(send, 200, b"application/json", json.dumps({"data": images}).encode(), timing)

    async def chat(self, body: dict, send: Send) -> None:
        request = llm_pb2.StreamChatCompletionRequest(
            messages=[llm_pb2.ChatMessage(role=ROLES[m["role"]], content=[llm_pb2.ContentPart(text=m["content"])])
                      for m in body["messages"]],
            max_tokens=body["max_tokens"], temperature=body["temperature"],
            include_usage=bool(body.get("stream_options", {}).get("include_usage")))
        started, head = time.perf_counter(), None
        async for chunk in self.stubs[2].StreamChatCompletion(request):
            if head is None:  # the head once the first chunk is in, as the edge sends it
                head = [(b"content-type", b"text/event-stream"), _upstream("llm", started)]
                await send({"type": "http.response.start", "status": 200, "headers": head})
            event = {"choices": [{"index": c.index, "delta": {"content": c.content}} for c in chunk.choices]}
            if chunk.HasField("usage"):
                event["usage"] = {"completion_tokens": chunk.usage.completion_tokens}
            await send({"type": "http.response.body", "body": b"data: " + json.dumps(event).encode() + b"\n\n",
                        "more_body": True})
        if head is None:
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"text/event-stream")]})
        await send({"type": "http.response.body", "body": b"data: [DONE]\n\n", "more_body": False})


async def _body(receive: Callable) -> dict:
    parts = []
    while True:
        message = await receive()
        parts.append(message.get("body", b""))
        if not message.get("more_body"):
            return json.loads(b"".join(parts))


def _upstream(service: str, started: float) -> tuple[bytes, bytes]:
    """The edge's Server-Timing entry for the service's time (edge.serving), so both hops are read alike."""
    return b"server-timing", f'upstream;desc="{service}";dur={(time.perf_counter() - started) * 1e3:.3f}'.encode()


async def _answer(send: Send, status: int, content_type: bytes, body: bytes,
                  *headers: tuple[bytes, bytes]) -> None:
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", content_type), (b"content-length", str(len(body)).encode()), *headers]})
    await send({"type": "http.response.body", "body": body})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, required=True)
    for service in ("media", "image", "llm"):
        parser.add_argument(f"--{service}", required=True, help="the service's host:port")
    args = parser.parse_args()
    uvicorn.run(FloorProxy(args.media, args.image, args.llm), host="127.0.0.1", port=args.port,
                log_level="warning", access_log=False, lifespan="off", http=EdgeHTTPProtocol)


if __name__ == "__main__":
    main()
