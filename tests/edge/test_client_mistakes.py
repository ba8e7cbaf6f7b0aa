"""Inputs that are the client's mistake get a 4xx envelope, never a 500 with a traceback (issue 9): a role
that is not a string, integers beyond the protos' int32/int64, lone surrogates, JSON nested too deep,
Range positions beyond int64, schemas nested too deep, and an upload the client aborts."""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import urlsplit

import pytest
from prometheus_client import REGISTRY

from edge import jsonbody
from edge.endpoints.media.translate import parse_range
from services.common.errors import ServiceError
from services.llm import requests as llm_requests
from tests.edge.test_auth import assert_envelope
from tests.edge.test_chat import stack as chat_stack  # noqa: F401  (the fixture)
from tests.edge.test_images import stack as image_stack  # noqa: F401  (the fixture)
from tests.edge.test_media import stored
from univence.llm.v1 import llm_pb2
from univence.media.v1 import media_pb2

USER = [{"role": "user", "content": "hi"}]


def nested(depth: int) -> object:
    value: object = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


def deep_schema(depth: int) -> dict:
    schema: dict = {"type": "string"}
    for _ in range(depth):
        schema = {"type": "object", "properties": {"x": schema}}
    return schema


def no_tracebacks(caplog) -> None:
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info], caplog.text


async def test_chat_mistakes_are_400_naming_the_field(chat_stack, caplog):  # noqa: F811
    http, headers = chat_stack.http, {"Authorization": f"Bearer {chat_stack.key}"}
    cases = [
        ({"messages": [{"role": {"x": 1}, "content": "hi"}]}, "messages[0].role"),
        ({"messages": [{"role": ["user"], "content": "hi"}]}, "messages[0].role"),
        # Found by tests/fuzz: a tool_call_id that is not a string, on any role.
        ({"messages": [{"role": "system", "content": "hi", "tool_call_id": True}, *USER]}, "messages[0].tool_call_id"),
        ({"messages": USER, "n": 2 ** 40}, "n"),
        ({"messages": USER, "max_tokens": 2 ** 70}, "max_tokens"),
        ({"messages": USER, "max_completion_tokens": 2 ** 31}, "max_completion_tokens"),
        ({"messages": USER, "seed": 2 ** 70}, "seed"),
        ({"messages": USER, "seed": -(2 ** 64)}, "seed"),
        ({"messages": USER, "logprobs": True, "top_logprobs": 2 ** 70}, "top_logprobs"),
        ({"messages": USER, "response_format": {"type": "json_schema", "json_schema": {
            "name": "x", "schema": deep_schema(20)}}}, "response_format.json_schema.schema"),
        ({"messages": USER, "tools": [{"type": "function", "function": {
            "name": "f", "parameters": deep_schema(20)}}]}, "tools[0].function.parameters"),
    ]
    with caplog.at_level(logging.INFO):
        for body, param in cases:
            response = await http.post("/v1/chat/completions", json=body, headers=headers)
            error = assert_envelope(response, 400, "invalid_request_error")
            assert error["param"] == param, (body, error)
        surrogate = await http.post("/v1/chat/completions", headers={**headers, "Content-Type": "application/json"},
                                    content=b'{"messages": [{"role": "user", "content": "a\\ud800b"}]}')
        error = assert_envelope(surrogate, 400, "invalid_request_error")
        assert error["param"] == "messages[0].content" and error["code"] == "invalid_unicode"
        paired = await http.post("/v1/chat/completions", headers={**headers, "Content-Type": "application/json"},
                                 content=b'{"messages": [{"role": "user", "content": "\\ud83d\\ude00"}], '
                                         b'"max_tokens": 2}')
        assert paired.status_code == 200, paired.text
        deep = await http.post("/v1/chat/completions", headers=headers,
                               json={"messages": USER, "metadata": nested(500)})
        assert assert_envelope(deep, 400, "invalid_request_error")["code"] == "json_too_deep"
    no_tracebacks(caplog)
    assert all(state != "held" for state, _, _ in chat_stack.holds())


async def test_image_mistakes_are_400_naming_the_field(image_stack, caplog):  # noqa: F811
    stack = image_stack
    _, headers = await stack.user("mistakes@example.com")
    seen = stack.watch_service()
    generation = [({"n": 2 ** 40}, "n"), ({"num_inference_steps": 2 ** 40}, "num_inference_steps"),
                  ({"seed": 2 ** 70}, "seed")]
    edit = [({"n": 2 ** 40}, "n"), ({"num_steps": 2 ** 40}, "num_steps"), ({"seed": 2 ** 70}, "seed"),
            ({"width": 2 ** 40}, "width")]
    with caplog.at_level(logging.INFO):
        for fields, param in generation:
            response = await stack.http.post("/v1/images/generations", json={"prompt": "x", **fields},
                                             headers=headers)
            assert assert_envelope(response, 400, "invalid_request_error")["param"] == param
            batch = await stack.http.post("/v1/images/generations/batch", headers=headers,
                                          json={"requests": [{"prompt": "x", **fields}]})
            assert assert_envelope(batch, 400, "invalid_request_error")["param"] == f"requests.0.{param}"
        for fields, param in edit:
            response = await stack.http.post("/v1/images/edits", headers=headers,
                                             json={"prompt": "x", "input_images": ["iVBORw0KGgo"], **fields})
            assert assert_envelope(response, 400, "invalid_request_error")["param"] == param
            form = await stack.http.post("/v1/images/edits", headers=headers, files={"image": b"x"},
                                         data={"prompt": "x", **{k: str(v) for k, v in fields.items()}})
            assert assert_envelope(form, 400, "invalid_request_error")["param"] == param
        for path in ("/v1/images/generations", "/v1/images/edits"):
            surrogate = await stack.http.post(path, headers={**headers, "Content-Type": "application/json"},
                                              content=b'{"prompt": "\\udfff"}')
            error = assert_envelope(surrogate, 400, "invalid_request_error")
            assert error["param"] == "prompt" and error["code"] == "invalid_unicode"
            deep = await stack.http.post(path, headers=headers, json={"prompt": "x", "user": nested(100)})
            assert assert_envelope(deep, 400, "invalid_request_error")["code"] == "json_too_deep"
    no_tracebacks(caplog)
    assert seen == [] and stack.holds() == 0


async def test_json_depth_is_one_limit_for_every_json_body(platform, http):
    at_limit = await http.post("/v1/images/generations", json=nested(jsonbody.MAX_DEPTH))
    assert at_limit.status_code == 401  # read past the check: authentication answers
    for path in ("/v1/images/generations", "/v1/chat/completions", "/v1/anything"):
        deep = await http.post(path, content=b"[" * 10_000 + b"]" * 10_000,
                               headers={"Content-Type": "application/json"})
        assert assert_envelope(deep, 400, "invalid_request_error")["code"] == "json_too_deep"


def test_the_json_scan_ignores_brackets_and_escapes_inside_strings():
    jsonbody.check(b'{"a": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["}')
    jsonbody.check(b'{"a": "\\"[[[[", "b": "\\\\", "c": "\\ud83d\\ude00"}', max_depth=1)
    jsonbody.check(b'{"a": "\\\\ud800"}')  # an escaped backslash, then text
    with pytest.raises(Exception, match="nested more than 2"):
        jsonbody.check(b'{"a": "\\\\", "b": [[1]]}', max_depth=2)
    with pytest.raises(Exception, match="surrogate"):
        jsonbody.check(b'["\\ud83d"]')
    with pytest.raises(Exception, match="nested more than 64"):  # a string never closed: still one linear scan
        jsonbody.check(b"[" * 70 + b'"' + b'\\"' * 200_000)
    with pytest.raises(Exception, match="surrogate"):
        jsonbody.check(b'["\\ude00x"]')


async def test_a_range_beyond_int64_is_416(platform, http):
    data = bytes(range(256)) * 4
    media_id = await stored(platform, data, mime="video/mp4", kind=media_pb2.MEDIA_KIND_VIDEO)
    url = f"/v1/media/{media_id}"
    for header in (f"bytes={2 ** 70}-", f"bytes={2 ** 64}-{2 ** 70}", "bytes=" + "9" * 5000 + "-"):
        beyond = await http.get(url, headers={"Range": header})
        assert beyond.status_code == 416 and beyond.headers["content-range"] == f"bytes */{len(data)}"
    to_the_end = await http.get(url, headers={"Range": f"bytes=1000-{2 ** 70}"})
    assert to_the_end.status_code == 206 and to_the_end.content == data[1000:]
    suffix = await http.get(url, headers={"Range": f"bytes=-{2 ** 70}"})
    assert suffix.status_code == 206 and suffix.content == data
    assert parse_range(f"bytes=0-{2 ** 70}") == (0, 2 ** 63 - 2)


def _server_errors() -> float:
    total = 0.0
    for metric in REGISTRY.collect():
        if metric.name == "univence_edge_requests":
            total += sum(s.value for s in metric.samples
                         if s.name.endswith("_total") and s.labels.get("status", "").startswith("5"))
    return total


async def test_an_aborted_upload_is_a_disconnect_not_a_500(image_stack, caplog):  # noqa: F811
    stack = image_stack
    _, headers = await stack.user("aborts@example.com")
    address = urlsplit(stack.platform.base_url)
    before = _server_errors()
    with caplog.at_level(logging.INFO):
        _, writer = await asyncio.open_connection(address.hostname, address.port)
        head = (f"POST /v1/images/edits HTTP/1.1\r\nHost: {address.netloc}\r\n"
                + "".join(f"{name}: {value}\r\n" for name, value in headers.items()) +
                "Content-Type: multipart/form-data; boundary=XyZ\r\nContent-Length: 1000000\r\n\r\n")
        writer.write(head.encode() + b'--XyZ\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n'
                     b"Content-Type: image/png\r\n\r\n" + b"\x89PNG" + b"\0" * 5000)
        await writer.drain()
        await asyncio.sleep(0.3)
        writer.close()
        await writer.wait_closed()
        for _ in range(100):
            if any("disconnected" in r.getMessage() for r in caplog.records):
                break
            await asyncio.sleep(0.05)
    assert any("disconnected" in r.getMessage() and r.levelno <= logging.WARNING for r in caplog.records), \
        caplog.text
    no_tracebacks(caplog)
    assert _server_errors() == before
    assert stack.holds() == 0


def test_the_llm_service_bounds_schema_depth_for_grpc_callers():
    deep = llm_pb2.CreateChatCompletionRequest(response_format=llm_pb2.ResponseFormat(
        type=llm_pb2.RESPONSE_FORMAT_TYPE_JSON_SCHEMA, json_schema=str(deep_schema(400)).replace("'", '"')))
    with pytest.raises(ServiceError) as caught:
        llm_requests._response_format(deep.response_format)
    assert "nested more than" in str(caught.value)
    very_deep = '{"a":' * 100_000 + "1" + "}" * 100_000  # json.loads would overflow the stack
    with pytest.raises(ServiceError):
        llm_requests._response_format(llm_pb2.ResponseFormat(
            type=llm_pb2.RESPONSE_FORMAT_TYPE_JSON_SCHEMA, json_schema=very_deep))
    tools = llm_pb2.CreateChatCompletionRequest(tools=[llm_pb2.Tool(
        name="f", parameters=str(deep_schema(400)).replace("'", '"'))])
    with pytest.raises(ServiceError) as caught:
        llm_requests.parse_tools(tools, llm_requests.SamplingOptions())
    assert "tools[0].function.parameters" in str(caught.value) or "nested" in str(caught.value)
    shallow = llm_requests._response_format(llm_pb2.ResponseFormat(
        type=llm_pb2.RESPONSE_FORMAT_TYPE_JSON_SCHEMA, json_schema='{"type": "object"}'))
    assert shallow.schema == {"type": "object"}
