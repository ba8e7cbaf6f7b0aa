"""POST /v1/chat/completions: OpenAI's request → the LLM service's CreateChatCompletionRequest, and the
plan that answers it (its answers: edge.endpoints.chat.answers).

Messages are checked by hand so each refusal names the exact field the way OpenAI spells it
(`messages[0].content[1].type`); the pydantic models of protocol describe the same shapes for the
OpenAPI document and check the scalar fields. The counts the LLM service limits (n, stop sequences,
top_logprobs, tools, images and their bytes) are checked against what it publishes (ChatLimits), before
anything is reserved."""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from edge.catalog import Published
from edge.endpoints.chat.answers import ChunkWriter, completion_dict
from edge.endpoints.chat.protocol import ChatCompletionRequest, NamedToolChoice, ToolCall
from edge.errors import APIError
from edge.outputs import Outputs
from edge.serving import Answer, Modality, StreamPlan, UnaryPlan
from univence import imaging
from univence.accounts.v1 import accounts_pb2
from univence.llm.v1 import llm_pb2, llm_pb2_grpc

LLM = Modality("llm", llm_pb2_grpc.ChatServiceStub)
# The accounts service refuses non-premium callers with PREMIUM_REQUIRED; premium pays nothing.
ITEMS = [accounts_pb2.ChargeItem(operation=accounts_pb2.OPERATION_CHAT_COMPLETION)]

ROLES = {"system": llm_pb2.ROLE_SYSTEM, "developer": llm_pb2.ROLE_DEVELOPER, "user": llm_pb2.ROLE_USER,
         "assistant": llm_pb2.ROLE_ASSISTANT, "tool": llm_pb2.ROLE_TOOL}
DATA_URL = re.compile(
    r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?P<params>(;[\w.+-]+=[^;,]*)*)(?P<b64>;base64)?,(?P<data>.*)$", re.S)
IMAGE_MIMES = {"image/png", "image/jpeg", "image/jpg", "image/webp", "image/gif", "image/bmp", "image/tiff"}
UNSUPPORTED = {"functions": "the legacy function calling (use tools)", "function_call": "the legacy function calling "
               "(use tool_choice)", "audio": "audio output", "prediction": "predicted outputs"}
UNION_MEMBERS = {"str", "int", "float", "bool", "list[str]"}
FIELD_NAME = re.compile(r"^[a-z_][a-z0-9_.\[\]]*$")  # our fields, and prefixes like messages[0].tool_calls[1]
TOOL_CHOICES = {"auto": llm_pb2.TOOL_CHOICE_MODE_AUTO, "none": llm_pb2.TOOL_CHOICE_MODE_NONE,
                "required": llm_pb2.TOOL_CHOICE_MODE_REQUIRED}




@dataclass(frozen=True)
class ChatLimits:
    """The bounds the LLM service publishes (GetServiceInfoResponse.limits). One it does not publish is
    not checked here: the service checks its own."""

    max_n: float = math.inf
    max_stop: float = math.inf
    max_top_logprobs: float = math.inf
    max_tools: float = math.inf
    max_images: float = math.inf
    max_image_bytes: float = math.inf
    max_schema_depth: float = math.inf


# -- request → gRPC --------------------------------------------------------------------------------

def plan_completion(body: Any, published: Published) -> UnaryPlan | StreamPlan:
    """The checked request, whole or streamed. Either may start beside its hold (overlap, see
    edge.serving): a premium caller's first token does not wait for Reserve."""
    request, streaming, include_usage = parse_request(body, published.bounds(ChatLimits))
    if streaming:
        return StreamPlan(request, ITEMS, ChunkWriter(include_usage), overlap=True)

    async def answer(response: llm_pb2.CreateChatCompletionResponse, _: Outputs) -> Answer:
        return Answer(json.dumps(completion_dict(response, logprobs=request.logprobs), ensure_ascii=False).encode())

    return UnaryPlan(request, ITEMS, answer, overlap=True)


def parse_request(body: Any, limits: ChatLimits
                  ) -> tuple[llm_pb2.CreateChatCompletionRequest | llm_pb2.StreamChatCompletionRequest, bool, bool]:
    """(the gRPC request, stream?, include_usage?) or an APIError naming the offending field. The request
    is a StreamChatCompletionRequest when streaming: the same fields as CreateChatCompletionRequest."""
    if not isinstance(body, dict):
        raise APIError(400, "The request body must be a JSON object", param=None, code="invalid_json")
    for field, what in UNSUPPORTED.items():
        if body.get(field) not in (None, [], {}):
            raise APIError(400, f"{field}: {what} is not supported by this server", param=field,
                           code="unsupported_parameter")
    messages = [parse_message(m, i) for i, m in enumerate(_messages(body))]
    response_format = parse_response_format(body.get("response_format"))
    scalars = {k: v for k, v in body.items() if k not in ("messages", "response_format")}
    try:
        request = ChatCompletionRequest.model_validate({**scalars, "messages": [{"role": "user"}]})
    except ValidationError as exc:
        error = exc.errors()[0]
        param = _param(error.get("loc", ()))
        raise APIError(400, f"{param}: {error.get('msg', 'invalid value')}" if param else error.get("msg", ""),
                       param=param, code="invalid_value") from None
    if request.top_logprobs and not request.logprobs:
        raise APIError(400, "top_logprobs needs logprobs set to true", param="top_logprobs")
    check_limits(request, messages, limits)
    if response_format is not None and response_format.json_schema:
        check_schema_depth(body["response_format"]["json_schema"]["schema"], "response_format.json_schema.schema",
                           limits.max_schema_depth)
    for i, tool in enumerate(request.tools or []):
        if tool.function.parameters is not None:
            check_schema_depth(tool.function.parameters, f"tools[{i}].function.parameters", limits.max_schema_depth)
    if request.max_tokens is not None and request.max_completion_tokens is not None \
            and request.max_tokens != request.max_completion_tokens:
        raise APIError(400, "max_tokens and max_completion_tokens disagree; send one of them", param="max_tokens")
    stream = bool(request.stream)
    if request.stream_options is not None and not stream:
        raise APIError(400, "stream_options is only allowed when stream is true", param="stream_options")
    stop = [request.stop] if isinstance(request.stop, str) else list(request.stop or [])
    kind = llm_pb2.StreamChatCompletionRequest if stream else llm_pb2.CreateChatCompletionRequest
    # Only the fields the request sets are given: each default passed (an empty message, list or string) is
    # copied into the request for nothing, ~4 µs of the plan in a loop and several times that in place.
    given = {"model": request.model, "stop": stop, "user": request.user, "logprobs": request.logprobs,
             "top_logprobs": request.top_logprobs, "response_format": response_format,
             "tools": [llm_pb2.Tool(name=t.function.name, description=t.function.description or "",
                                    parameters=json.dumps(t.function.parameters)
                                    if t.function.parameters is not None else "") for t in request.tools or []],
             "tool_choice": _tool_choice(request.tool_choice)}
    grpc_request = kind(messages=messages, n=request.n or 1, include_usage=stream,
                        **{name: value for name, value in given.items() if value})
    if request.parallel_tool_calls is not None:
        grpc_request.parallel_tool_calls = request.parallel_tool_calls
    for field in ("temperature", "top_p", "seed", "presence_penalty", "frequency_penalty"):
        value = getattr(request, field)
        if value is not None:
            setattr(grpc_request, field, value)
    max_tokens = request.max_completion_tokens if request.max_completion_tokens is not None else request.max_tokens
    if max_tokens is not None:
        grpc_request.max_tokens = min(max_tokens, 2 ** 31 - 1)
    include_usage = bool(stream and request.stream_options and request.stream_options.include_usage)
    return grpc_request, stream, include_usage


def check_limits(request: ChatCompletionRequest, messages: list[llm_pb2.ChatMessage], limits: ChatLimits) -> None:
    """The counts the LLM service publishes bounds for. The messages and codes are what a refusal had before
    the edge checked them: the service's (n, stop, images), or the request schema's (top_logprobs, tools)."""
    if request.n is not None and request.n > limits.max_n:
        raise APIError(400, f"n must be between 1 and {limits.max_n}", param="n")
    if isinstance(request.stop, list) and len(request.stop) > limits.max_stop:
        raise APIError(400, f"stop takes at most {limits.max_stop} sequences", param="stop")
    if request.top_logprobs is not None and request.top_logprobs > limits.max_top_logprobs:
        raise APIError(400, f"top_logprobs must be between 0 and {limits.max_top_logprobs}", param="top_logprobs",
                       code="invalid_value")
    if request.tools is not None and len(request.tools) > limits.max_tools:
        raise APIError(400, f"tools: at most {limits.max_tools} tools", param="tools", code="invalid_value")
    images = 0
    for i, message in enumerate(messages):
        if message.role != llm_pb2.ROLE_USER:  # the service refuses images anywhere else
            continue
        for j, part in enumerate(message.content):
            if part.WhichOneof("part") != "image":
                continue
            images += 1
            if images > limits.max_images:
                raise APIError(400, f"at most {limits.max_images} images per request",
                               param=f"messages[{i}].content[{j}]")
            if part.image.data:  # an http(s) image is fetched (and checked) by the service
                imaging.check_bytes(part.image.data, f"messages[{i}].content[{j}].image_url",
                                    max_bytes=limits.max_image_bytes)


def check_schema_depth(schema: dict, param: str, max_depth: float) -> None:
    """A JSON schema nested at most `max_depth` levels (the service compiles it into a grammar, and
    publishes the bound)."""
    deepest, stack = 0, [(schema, 1)]
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else None
        if children is None:
            continue
        deepest = max(deepest, depth)
        if deepest > max_depth:
            raise APIError(400, f"{param}: the schema is nested more than {max_depth:g} levels deep",
                           param=param, code="invalid_value")
        stack.extend((child, depth + 1) for child in children)


def _tool_choice(choice: str | NamedToolChoice | None) -> llm_pb2.ToolChoice | None:
    if choice is None:
        return None
    if isinstance(choice, str):
        return llm_pb2.ToolChoice(mode=TOOL_CHOICES[choice])
    return llm_pb2.ToolChoice(mode=llm_pb2.TOOL_CHOICE_MODE_FUNCTION, function_name=choice.function.name)


def _param(loc: tuple) -> str | None:
    """A pydantic error location as the API spells the field; the names pydantic gives the members of a
    union (`str`, `literal['auto',...]`, `NamedToolChoice`) are left out."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part not in UNION_MEMBERS and FIELD_NAME.match(part):
            out += f".{part}" if out else str(part)
    return out or None


def _messages(body: dict) -> list:
    messages = body.get("messages")
    if messages is None:
        raise APIError(400, "messages is required", param="messages", code="missing_required_parameter")
    if not isinstance(messages, list) or not messages:
        raise APIError(400, "messages must be a non-empty array of messages", param="messages")
    return messages


def parse_message(message: Any, i: int) -> llm_pb2.ChatMessage:
    where = f"messages[{i}]"
    if not isinstance(message, dict):
        raise APIError(400, f"{where} must be an object with a role and content", param=where)
    role = message.get("role")
    if role is None:
        raise APIError(400, f"{where}.role is required", param=f"{where}.role", code="missing_required_parameter")
    if not isinstance(role, str) or role not in ROLES:
        got = repr(role) if isinstance(role, str) else f"a JSON {type(role).__name__}"
        raise APIError(400, f"{where}.role must be one of {', '.join(ROLES)}; got {got}", param=f"{where}.role")
    name = message.get("name")
    if name is not None and not isinstance(name, str):
        raise APIError(400, f"{where}.name must be a string", param=f"{where}.name")
    content = message.get("content")
    parsed = llm_pb2.ChatMessage(role=ROLES[role])  # filled in place: a message or list given is copied
    if isinstance(content, str):
        parsed.content.add(text=content)
    elif isinstance(content, list):
        parsed.content.extend([parse_part(part, f"{where}.content[{j}]") for j, part in enumerate(content)])
    elif content is None:
        if role != "assistant":
            raise APIError(400, f"{where}.content is required for {role} messages", param=f"{where}.content",
                           code="missing_required_parameter")
    else:
        raise APIError(400, f"{where}.content must be a string or an array of content parts",
                       param=f"{where}.content")
    tool_call_id = message.get("tool_call_id")
    if tool_call_id is not None and not isinstance(tool_call_id, str):
        raise APIError(400, f"{where}.tool_call_id must be a string", param=f"{where}.tool_call_id")
    if role == "tool" and not isinstance(tool_call_id, str):
        raise APIError(400, f"{where}.tool_call_id is required for tool messages (the id of the call it answers)",
                       param=f"{where}.tool_call_id", code="missing_required_parameter")
    if name:
        parsed.name = name
    if tool_call_id:
        parsed.tool_call_id = tool_call_id
    calls = parse_tool_calls(message.get("tool_calls"), where)
    if calls:
        parsed.tool_calls.extend(calls)
    return parsed


def parse_tool_calls(calls: Any, where: str) -> list[llm_pb2.ToolCall]:
    """An assistant message's `tool_calls` (what the model answered before) for the conversation."""
    if calls is None:
        return []
    if not isinstance(calls, list):
        raise APIError(400, f"{where}.tool_calls must be an array", param=f"{where}.tool_calls")
    out = []
    for j, call in enumerate(calls):
        try:
            parsed = ToolCall.model_validate(call)
        except ValidationError as exc:
            param = _param((f"{where}.tool_calls[{j}]", *exc.errors()[0].get("loc", ())))
            raise APIError(400, f"{param}: {exc.errors()[0].get('msg', 'invalid value')}", param=param) from None
        out.append(llm_pb2.ToolCall(id=parsed.id, name=parsed.function.name, arguments=parsed.function.arguments))
    return out


def parse_part(part: Any, where: str) -> llm_pb2.ContentPart:
    if not isinstance(part, dict):
        raise APIError(400, f"{where} must be an object with a type", param=where)
    kind = part.get("type")
    if kind is None:
        raise APIError(400, f"{where}.type is required", param=f"{where}.type", code="missing_required_parameter")
    if kind == "text":
        text = part.get("text")
        if not isinstance(text, str):
            raise APIError(400, f"{where}.text must be a string", param=f"{where}.text")
        return llm_pb2.ContentPart(text=text)
    if kind == "image_url":
        image_url = part.get("image_url")
        if isinstance(image_url, str):  # some clients send the URL directly
            image_url = {"url": image_url}
        if not isinstance(image_url, dict) or not isinstance(image_url.get("url"), str):
            raise APIError(400, f"{where}.image_url.url is required", param=f"{where}.image_url.url")
        detail = image_url.get("detail") or ""
        if detail not in ("", "auto", "low", "high"):
            raise APIError(400, f"{where}.image_url.detail must be auto, low or high",
                           param=f"{where}.image_url.detail")
        return llm_pb2.ContentPart(image=parse_image_url(image_url["url"], f"{where}.image_url.url", detail))
    raise APIError(400, f"{where}.type {kind!r} is not supported; use text or image_url", param=f"{where}.type",
                   code="unsupported_content_type")


def parse_image_url(url: str, param: str, detail: str = "") -> llm_pb2.ImageInput:
    if url.startswith(("http://", "https://")):
        return llm_pb2.ImageInput(url=url, detail=detail)
    match = DATA_URL.match(url)
    if not match:
        raise APIError(400, "The image URL must be a data URL (data:image/png;base64,...) or an http(s) URL",
                       param=param, code="invalid_image_url")
    mime = (match["mime"] or "").lower()
    if mime not in IMAGE_MIMES:
        raise APIError(400, f"The data URL's type must be an image type (image/png, image/jpeg, image/webp, "
                            f"image/gif); got {mime or 'none'!r}", param=param, code="invalid_image_url")
    if not match["b64"]:
        raise APIError(400, "The data URL must be base64-encoded (data:image/png;base64,...)", param=param,
                       code="invalid_image_url")
    try:
        data = base64.b64decode(re.sub(r"\s+", "", match["data"]), validate=True)
    except (binascii.Error, ValueError):
        raise APIError(400, "The data URL's base64 payload is malformed", param=param,
                       code="invalid_image_url") from None
    if not data:
        raise APIError(400, "The data URL holds no image", param=param, code="invalid_image_url")
    return llm_pb2.ImageInput(data=data, mime_type=mime, detail=detail)


def parse_response_format(value: Any) -> llm_pb2.ResponseFormat | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise APIError(400, "response_format must be an object with a type", param="response_format")
    kind = value.get("type")
    if kind == "text":
        return llm_pb2.ResponseFormat(type=llm_pb2.RESPONSE_FORMAT_TYPE_TEXT)
    if kind == "json_object":
        return llm_pb2.ResponseFormat(type=llm_pb2.RESPONSE_FORMAT_TYPE_JSON_OBJECT)
    if kind == "json_schema":
        spec = value.get("json_schema")
        if not isinstance(spec, dict):
            raise APIError(400, "response_format.json_schema is required for type json_schema",
                           param="response_format.json_schema")
        schema = spec.get("schema")
        if not isinstance(schema, dict):
            raise APIError(400, "response_format.json_schema.schema must be a JSON schema object",
                           param="response_format.json_schema.schema")
        strict = spec.get("strict")
        return llm_pb2.ResponseFormat(type=llm_pb2.RESPONSE_FORMAT_TYPE_JSON_SCHEMA, json_schema=json.dumps(schema),
                                      schema_name=str(spec.get("name") or ""), strict=bool(strict))
    raise APIError(400, "response_format.type must be text, json_object or json_schema",
                   param="response_format.type")
