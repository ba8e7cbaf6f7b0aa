"""A chat request (Create- or StreamChatCompletionRequest) checked and turned into what the backends
take: messages with decoded images, and sampling options. Every refusal names the field the way the
HTTP API spells it (`messages[0].content[1].image_url`), so the edge can pass it on unchanged."""

from __future__ import annotations

import json
import math
import re
import urllib.request
from dataclasses import dataclass

from PIL import Image

from services.common.errors import image_input, invalid, too_large
from services.llm.backends.base import Message, ResponseFormat, SamplingOptions
from services.llm.config import LlmSettings
from services.llm.tools import ToolSpec, forced_opening
from univence.imaging import decode
from univence.llm.v1 import llm_pb2

ROLES = {
    llm_pb2.ROLE_SYSTEM: "system",
    llm_pb2.ROLE_DEVELOPER: "system",
    llm_pb2.ROLE_USER: "user",
    llm_pb2.ROLE_ASSISTANT: "assistant",
    llm_pb2.ROLE_TOOL: "tool",
}
MAX_STOP = 4
MAX_TOP_LOGPROBS = 20
MAX_TOOLS = 128
# OpenAI's ranges of the sampling fields (the edge's request schema documents and checks the same;
# tests/edge/test_contract_copies.py ties them).
RANGES = {"temperature": (0.0, 2.0), "top_p": (0.0, 1.0), "presence_penalty": (-2.0, 2.0),
          "frequency_penalty": (-2.0, 2.0)}
# How deeply a response_format schema or a tool's parameters may nest (objects and arrays): grammar
# compilation recurses through them, so a deeper one would cost seconds of CPU or overflow the stack. The
# edge checks the bound this service publishes (limits).
MAX_SCHEMA_DEPTH = 32
TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
CHOICE_MODES = {llm_pb2.TOOL_CHOICE_MODE_UNSPECIFIED: "auto", llm_pb2.TOOL_CHOICE_MODE_AUTO: "auto",
                llm_pb2.TOOL_CHOICE_MODE_NONE: "none", llm_pb2.TOOL_CHOICE_MODE_REQUIRED: "required",
                llm_pb2.TOOL_CHOICE_MODE_FUNCTION: "function"}
# The two RPCs' requests: the same fields with the same numbers (tests/test_protos.py keeps them so).
ChatRequest = llm_pb2.CreateChatCompletionRequest | llm_pb2.StreamChatCompletionRequest


def limits(settings: LlmSettings) -> dict[str, float]:
    """The bounds the edge checks before reserving credits (GetServiceInfoResponse.limits)."""
    return {"max_n": settings.max_n, "max_images": settings.max_images, "max_image_bytes": settings.max_image_bytes,
            "max_image_pixels": settings.max_image_pixels, "max_stop": MAX_STOP,
            "max_top_logprobs": MAX_TOP_LOGPROBS, "max_tools": MAX_TOOLS, "max_schema_depth": MAX_SCHEMA_DEPTH}


@dataclass
class ToolUse:
    """The request's tools and how they may be used; `parallel` False keeps the first call only."""

    tools: list[ToolSpec]
    mode: str  # auto, none, required or function
    parallel: bool
    opening: str


def parse_tools(request: ChatRequest, options: SamplingOptions) -> ToolUse | None:
    """Checks tools and tool_choice, and sets what the model is shown (options.tools, options.opening).
    None when the model is to answer in text alone."""
    if len(request.tools) > MAX_TOOLS:
        raise invalid(f"at most {MAX_TOOLS} tools", "tools")
    tools, names = [], set()
    for i, tool in enumerate(request.tools):
        if not TOOL_NAME.match(tool.name):
            raise invalid("a function name has 1 to 64 letters, digits, underscores or dashes",
                          f"tools[{i}].function.name")
        if tool.name in names:
            raise invalid(f"two tools are named {tool.name!r}", f"tools[{i}].function.name")
        names.add(tool.name)
        parameters = _schema(tool.parameters or "{}", f"tools[{i}].function.parameters",
                             "parameters must be a JSON schema object")
        tools.append(ToolSpec(tool.name, tool.description, parameters))
    mode = CHOICE_MODES.get(request.tool_choice.mode)
    if mode is None:
        raise invalid(f"unknown tool_choice mode {request.tool_choice.mode}", "tool_choice")
    if mode == "function" and request.tool_choice.function_name not in names:
        raise invalid(f"tool_choice names {request.tool_choice.function_name!r}, which is not among the tools",
                      "tool_choice")
    if not tools:
        if mode in ("required", "function"):
            raise invalid("tool_choice asks for a tool call, but the request has no tools", "tool_choice")
        return None
    if mode == "none":
        return None
    opening = forced_opening(mode, request.tool_choice.function_name)
    options.tools = [tool.template() for tool in tools]
    options.opening = opening
    parallel = request.parallel_tool_calls if request.HasField("parallel_tool_calls") else True
    return ToolUse(tools, mode, parallel, opening)


def parse_options(request: ChatRequest, settings: LlmSettings) -> SamplingOptions:
    options = SamplingOptions()
    if request.HasField("temperature"):
        options.temperature = _bounded(request.temperature, "temperature")
    if request.HasField("top_p"):
        options.top_p = _bounded(request.top_p, "top_p")
    if request.HasField("max_tokens"):
        if request.max_tokens < 1:
            raise invalid("max_tokens must be at least 1", "max_tokens")
        options.max_tokens = request.max_tokens
    if len(request.stop) > MAX_STOP:
        raise invalid(f"stop takes at most {MAX_STOP} sequences", "stop")
    for i, stop in enumerate(request.stop):
        if not stop:
            raise invalid("stop sequences must not be empty", f"stop[{i}]")
    options.stop = list(request.stop)
    if request.HasField("seed"):
        options.seed = request.seed
    n = request.n or 1
    if not 1 <= n <= settings.max_n:
        raise invalid(f"n must be between 1 and {settings.max_n}", "n")
    options.n = n
    if request.HasField("presence_penalty"):
        options.presence_penalty = _bounded(request.presence_penalty, "presence_penalty")
    if request.HasField("frequency_penalty"):
        options.frequency_penalty = _bounded(request.frequency_penalty, "frequency_penalty")
    options.response_format = _response_format(request.response_format)
    if request.top_logprobs and not request.logprobs:
        raise invalid("top_logprobs needs logprobs set to true", "top_logprobs")
    if not 0 <= request.top_logprobs <= MAX_TOP_LOGPROBS:
        raise invalid(f"top_logprobs must be between 0 and {MAX_TOP_LOGPROBS}", "top_logprobs")
    if request.logprobs:
        options.logprobs = request.top_logprobs
    return options


def _bounded(value: float, param: str) -> float:
    low, high = RANGES[param]
    if not math.isfinite(value) or not low <= value <= high:
        raise invalid(f"{param} must be between {low:g} and {high:g}", param)
    return float(value)


def _response_format(fmt: llm_pb2.ResponseFormat) -> ResponseFormat | None:
    kind = fmt.type
    if kind in (llm_pb2.RESPONSE_FORMAT_TYPE_UNSPECIFIED, llm_pb2.RESPONSE_FORMAT_TYPE_TEXT):
        return None
    if kind == llm_pb2.RESPONSE_FORMAT_TYPE_JSON_OBJECT:
        return ResponseFormat("json_object")
    if kind == llm_pb2.RESPONSE_FORMAT_TYPE_JSON_SCHEMA:
        schema = _schema(fmt.json_schema, "response_format.json_schema.schema",
                         "response_format.json_schema.schema must be a JSON schema object")
        return ResponseFormat("json_schema", schema=schema, strict=fmt.strict)
    raise invalid(f"unknown response_format type {kind}", "response_format.type")


def _schema(text: str, param: str, message: str) -> dict:
    """A JSON schema object from its text, nested at most MAX_SCHEMA_DEPTH levels (INVALID_REQUEST else)."""
    try:
        schema = json.loads(text)
    except (ValueError, RecursionError):
        schema = None
    if not isinstance(schema, dict):
        raise invalid(message, param)
    if json_depth(schema) > MAX_SCHEMA_DEPTH:
        raise invalid(f"the schema is nested more than {MAX_SCHEMA_DEPTH} levels deep", param)
    return schema


def json_depth(value: object) -> int:
    """How many objects and arrays deep `value` nests (a scalar: 0), without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in children)
    return deepest


def parse_messages(request: ChatRequest, settings: LlmSettings) -> list[Message]:
    """Blocking (image decoding, and fetching where allowed): call it off the event loop."""
    if not request.messages:
        raise invalid("messages must hold at least one message", "messages")
    messages: list[Message] = []
    images = 0
    for i, message in enumerate(request.messages):
        role = ROLES.get(message.role)
        if role is None:
            raise invalid("each message needs a role: system, developer, user, assistant or tool",
                          f"messages[{i}].role")
        parts: list[str | Image.Image] = []
        for j, part in enumerate(message.content):
            which = part.WhichOneof("part")
            if which == "text":
                parts.append(part.text)
            elif which == "image":
                if role != "user":
                    raise invalid("images are only accepted in user messages", f"messages[{i}].content[{j}]")
                images += 1
                if images > settings.max_images:
                    raise invalid(f"at most {settings.max_images} images per request", f"messages[{i}].content[{j}]")
                parts.append(load_image(part.image, settings, f"messages[{i}].content[{j}].image_url"))
            else:
                raise invalid("a content part must be text or an image", f"messages[{i}].content[{j}]")
        messages.append(Message(role, parts, tool_calls=_tool_calls(message, i), tool_call_id=message.tool_call_id))
    return messages


def _tool_calls(message: llm_pb2.ChatMessage, i: int) -> list[dict]:
    """An assistant message's calls as chat templates take them (arguments as an object)."""
    calls = []
    for j, call in enumerate(message.tool_calls):
        where = f"messages[{i}].tool_calls[{j}]"
        if message.role != llm_pb2.ROLE_ASSISTANT:
            raise invalid("only assistant messages carry tool_calls", where)
        if not call.name:
            raise invalid("a tool call needs its function's name", f"{where}.function.name")
        try:
            arguments = json.loads(call.arguments or "{}")
        except ValueError:
            arguments = None
        if not isinstance(arguments, dict):
            raise invalid("arguments must be a JSON object, in text", f"{where}.function.arguments")
        calls.append({"type": "function", "id": call.id, "function": {"name": call.name, "arguments": arguments}})
    return calls


def load_image(image: llm_pb2.ImageInput, settings: LlmSettings, param: str) -> Image.Image:
    """The image of a content part in RGB (inline, or fetched where allowed), checked by univence.imaging."""
    data = image.data
    if not data:
        if not image.url:
            raise invalid("the image has neither data nor a URL", param)
        data = fetch_image(image.url, settings, param + ".url")
    with image_input():
        return decode(data, param, max_bytes=settings.max_image_bytes, max_pixels=settings.max_image_pixels)


def fetch_image(url: str, settings: LlmSettings, param: str) -> bytes:
    if not url.startswith(("http://", "https://")):
        raise invalid("image URLs must be data: URLs (or http(s) URLs where fetching is enabled)", param)
    if not settings.allow_remote_images:
        raise invalid("Fetching images from http(s) URLs is disabled on this server; send the image inline as a "
                      "data URL (data:image/png;base64,...)", param)
    request = urllib.request.Request(url, headers={"User-Agent": "univence-llm/1"})
    try:
        with urllib.request.urlopen(request, timeout=settings.remote_image_timeout_seconds) as response:
            data = response.read(settings.max_image_bytes + 1)
    except (OSError, ValueError) as exc:
        raise invalid(f"the image URL could not be fetched: {exc}", param) from None
    if len(data) > settings.max_image_bytes:
        raise too_large(f"the image at the URL is larger than {settings.max_image_bytes} bytes", param)
    return data
