"""Loaded by a side edge that benchmarks/edge_timeline.py starts with this folder first on its PYTHONPATH:
wraps the steps of an image edit's and a chat stream's path through the edge so that each records when it
starts and ends (time.perf_counter, in memory). SIGUSR1 writes the marks to $TIMELINE_OUT and clears them.
Nothing of the edge's code is changed: the steps are wrapped where they are looked up at call time."""

import functools
import inspect
import os
import signal
import time
import traceback

MARKS: list[tuple[float, str]] = []
PATHS = {"/v1/images/edits": "edit", "/v1/chat/completions": "chat"}


def mark(label: str) -> None:
    MARKS.append((time.perf_counter(), label))


def dump(*_) -> None:
    with open(os.environ["TIMELINE_OUT"], "w") as out:
        out.writelines(f"{t:.7f} {label}\n" for t, label in MARKS)
    MARKS.clear()


def around(owner, name: str, before: str, after: str) -> None:
    original = getattr(owner, name)
    if inspect.iscoroutinefunction(original):
        @functools.wraps(original)
        async def wrapped(*args, **kwargs):
            mark(before)
            result = await original(*args, **kwargs)
            mark(after)
            return result
    else:
        @functools.wraps(original)
        def wrapped(*args, **kwargs):
            mark(before)
            result = original(*args, **kwargs)
            mark(after)
            return result
    setattr(owner, name, wrapped)


def install() -> None:
    import starlette.routing

    from edge import http_protocol, lane, lease_charges, metering, middleware, outputs, serving
    from edge.endpoints.chat import router as chat_router
    from edge.endpoints.chat import translate as chat
    from edge.endpoints.images import translate as images

    edge_call = middleware.EdgeMiddleware.__call__

    async def call(self, scope, receive, send):
        kind = PATHS.get(scope.get("path")) if scope["type"] == "http" else None
        if kind:
            mark(f"start:{kind}")
        await edge_call(self, scope, receive, send)
        if kind:
            mark("end")
    middleware.EdgeMiddleware.__call__ = call

    router_call = starlette.routing.Router.__call__

    async def route(self, scope, receive, send):
        mark("router")
        await router_call(self, scope, receive, send)
    starlette.routing.Router.__call__ = route  # the requests FastAPI routes
    serve = lane._serve

    async def served(*args):
        mark("lane")  # the requests edge.lane answers
        return await serve(*args)
    lane._serve = served

    around(images, "read_edit", "read_body", "body_read")
    around(images, "plan_edit", "plan", "planned")
    around(chat_router, "read_json_object", "read_body", "body_read")
    around(chat, "plan_completion", "plan", "planned")
    around(serving.Serving, "mark_profile", "profile", "profiled")
    around(serving.Serving, "_admit", "admit", "admitted")
    around(metering.Meter, "acquire", "acquire", "acquired")
    around(serving, "call", "call", "called")
    around(serving.Answer, "settle", "settle", "settled")
    around(lease_charges.Journal, "put", "journal", "journaled")
    around(outputs.BackgroundStores, "start", "store_start", "store_started")

    stream = serving.stream

    class Marked:
        """A stream (edge.clients.ServiceStream, started when made) whose first two messages are marked."""

        def __init__(self, inner):
            self.inner, self.count, self.started = inner, 0, inner.started

        def __aiter__(self):
            return self

        async def __anext__(self):
            chunk = await self.inner.__anext__()
            self.count += 1
            if self.count <= 2:
                mark(f"chunk{self.count}")
            return chunk

        async def aclose(self):
            await self.inner.aclose()

    def chunks(*args, **kwargs):
        mark("call")
        return Marked(stream(*args, **kwargs))
    serving.stream = chunks

    write = http_protocol._HeadWithBody.write

    def written(self, data):
        if data.startswith(b"HTTP/1.1"):
            mark("head_written")
        elif b'"content":"' in data and b'"content":""' not in data:
            mark("token_written")
        return write(self, data)
    http_protocol._HeadWithBody.write = written
    signal.signal(signal.SIGUSR1, dump)


try:
    install()
except Exception:  # noqa: BLE001 (the probe must not stop the edge: it says why it is missing)
    with open(os.environ.get("TIMELINE_OUT", "/tmp/timeline") + ".error", "w") as error:
        error.write(traceback.format_exc())
