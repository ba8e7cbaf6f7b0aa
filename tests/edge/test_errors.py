"""Every failure answers in the envelope: unknown routes, validation, maintenance, size limits,
rate limits; and every response carries a request id."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from edge.auth import require_principal
from edge.routing import api_routes, depends_on
from tests.edge.test_auth import assert_envelope
from tests.support.platform import running_platform
from tests.support.ports import free_port


async def test_unknown_route_and_wrong_method(http):
    error = assert_envelope(await http.get("/v1/nothing-here"), 404, "invalid_request_error")
    assert "/v1/nothing-here" in error["message"]
    assert_envelope(await http.delete("/v1/models"), 405, "invalid_request_error")


async def test_validation_errors_name_the_param(platform, http):
    _, secret = await platform.user_with_key("v@example.com")
    response = await http.get("/v1/images/user-videos", params={"limit": 0}, headers={"X-API-Key": secret})
    error = assert_envelope(response, 400, "invalid_request_error")
    assert error["param"] == "limit"
    response = await http.get("/v1/images/user-videos", params={"sortOrder": "sideways"},
                              headers={"X-API-Key": secret})
    assert assert_envelope(response, 400, "invalid_request_error")["param"] == "sortOrder"


async def test_malformed_json_says_so_without_a_character_offset_as_param(platform, http):
    _, secret = await platform.user_with_key("json@example.com")
    response = await http.post("/v1/images/generations", content=b'{"prompt": "a fox",,}',
                               headers={"X-API-Key": secret, "Content-Type": "application/json"})
    error = assert_envelope(response, 400, "invalid_request_error")
    assert error["code"] == "invalid_json" and error["param"] is None
    assert error["message"].startswith("The request body is not valid JSON") and "character 19" in error["message"]


async def test_request_ids_are_returned_and_client_ids_kept(http):
    response = await http.get("/healthz")
    assert response.headers["x-request-id"].startswith("req_")
    response = await http.get("/healthz", headers={"X-Request-ID": "trace-123"})
    assert response.headers["x-request-id"] == "trace-123"


async def test_maintenance_mode_switches_with_its_file(platform, http):
    _, secret = await platform.user_with_key("m@example.com")
    flag = Path(platform.edge_settings.maintenance_file)
    flag.write_text("on")
    try:
        import asyncio

        await asyncio.sleep(1.1)  # the flag is checked once a second
        assert_envelope(await http.get("/v1/models", headers={"X-API-Key": secret}), 503, "maintenance_mode")
        assert (await http.get("/healthz")).status_code == 200  # probes still answer
    finally:
        flag.unlink()
    await asyncio.sleep(1.1)
    assert (await http.get("/v1/models", headers={"X-API-Key": secret})).status_code == 200


async def test_metrics_are_served_on_their_own_port_not_the_api_s(tmp_path):
    port = free_port()
    async with running_platform(tmp_path, metrics_port=port) as platform, \
            httpx.AsyncClient(base_url=platform.base_url, timeout=30) as http:
        assert (await http.get("/healthz")).status_code == 200
        for path in ("/metrics", "/metrics/"):
            assert_envelope(await http.get(path), 404, "invalid_request_error")
        scraped = await http.get(f"http://127.0.0.1:{port}/metrics")
        assert scraped.status_code == 200 and "univence_edge_requests_total" in scraped.text
        flag = Path(platform.edge_settings.maintenance_file)
        flag.write_text("on")
        try:
            import asyncio

            await asyncio.sleep(1.1)  # the flag is checked once a second
            assert_envelope(await http.get("/metrics"), 503, "maintenance_mode")
            assert (await http.get(f"http://127.0.0.1:{port}/metrics")).status_code == 200
        finally:
            flag.unlink()
    with pytest.raises(httpx.ConnectError):  # closed with the edge
        httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)


async def test_bodies_over_the_limit_get_413(tmp_path):
    async with running_platform(tmp_path, max_body_mb=1) as platform, \
            httpx.AsyncClient(base_url=platform.base_url) as http:
        big = b"x" * (2 * 1024 * 1024)
        response = await http.post("/v1/images/generations", content=big, headers={"Content-Type": "application/json"})
        assert_envelope(response, 413, "invalid_request_error")

        async def chunks():
            for _ in range(3):
                yield b"y" * (512 * 1024)

        response = await http.post("/v1/media-upload-probe", content=chunks())  # chunked: no Content-Length
        assert response.status_code in (404, 413)


async def test_rate_limit_per_key_with_retry_after(tmp_path):
    async with running_platform(tmp_path, rate_limit_per_minute=60, rate_limit_burst=3) as platform, \
            httpx.AsyncClient(base_url=platform.base_url) as http:
        _, secret = await platform.user_with_key("r@example.com")
        _, other = await platform.user_with_key("r2@example.com")
        statuses = []
        for _ in range(4):
            response = await http.get("/v1/models", headers={"X-API-Key": secret})
            statuses.append(response.status_code)
        assert statuses == [200, 200, 200, 429]
        assert int(response.headers["retry-after"]) >= 1
        assert response.headers["x-ratelimit-limit-requests"] == "60"
        assert assert_envelope(response, 429, "rate_limit_error")["code"] == "rate_limit_exceeded"
        ok = await http.get("/v1/models", headers={"X-API-Key": other})  # limits are per key
        assert ok.status_code == 200 and ok.headers["x-ratelimit-remaining-requests"] == "2"


async def test_readyz_reports_the_services(http):
    response = await http.get("/readyz")
    assert response.status_code == 200
    assert response.json()["services"] == {"accounts": "SERVING", "media": "SERVING"}


async def test_openapi_document_matches_the_served_routes(platform, http):
    document = (await http.get("/openapi.json")).json()
    served = {(re.sub(r":\w+}", "}", route.path), method.lower())  # OpenAPI drops {x:path} converters
              for route in api_routes(platform.app.routes) for method in route.methods}
    documented = {(path, method) for path, item in document["paths"].items() for method in item}
    assert served == documented
    envelope = document["components"]["schemas"]["ErrorResponse"]
    assert envelope["properties"]["error"]


def _operations(document: dict):
    for path, item in document["paths"].items():
        for method, operation in item.items():
            yield path, method, operation


async def test_every_authenticated_operation_lists_the_security_schemes(platform, http):
    document = (await http.get("/openapi.json")).json()
    schemes = document["components"]["securitySchemes"]
    assert schemes["ApiKeyHeader"] == {**schemes["ApiKeyHeader"], "type": "apiKey", "in": "header",
                                       "name": "X-API-Key"}
    assert schemes["BearerAuth"]["type"] == "http" and schemes["BearerAuth"]["scheme"] == "bearer"
    assert schemes["SessionCookie"] == {**schemes["SessionCookie"], "type": "apiKey", "in": "cookie",
                                        "name": platform.edge_settings.session_cookie}
    every = [{"ApiKeyHeader": []}, {"BearerAuth": []}, {"SessionCookie": []}]
    authenticated = {(re.sub(r":\w+}", "}", route.path), method.lower())
                     for route in api_routes(platform.app.routes) if depends_on(route.dependant, require_principal)
                     for method in route.methods}
    assert ("/v1/models", "get") in authenticated and ("/v1/images/generations", "post") in authenticated
    public = {("/healthz", "get"), ("/readyz", "get"), ("/v1/media/{media_id}", "get"), ("/v1/auth/token", "post"),
              ("/v1/auth/refresh", "post")}
    for path, method, operation in _operations(document):
        if (path, method) in authenticated:
            assert operation.get("security") == every, (path, method)
        else:
            assert (path, method) in public, (path, method)
            assert not any(operation.get("security", [{}])[-1:] == [requirement] for requirement in every[:2])
    # The token endpoint takes a password (no credential) or the session cookie.
    assert document["paths"]["/v1/auth/token"]["post"]["security"] == [{}, {"SessionCookie": []}]


# The operations whose answer a model makes (or whose job one runs): they say which profile answered and
# how long the service took.
MODEL_ANSWERS = {("/v1/chat/completions", "post"), ("/v1/images/generations", "post"),
                 ("/v1/images/generations/batch", "post"), ("/v1/images/edits", "post"),
                 ("/v1/images/segmentations", "post"), ("/v1/images/upscale", "post"),
                 ("/v1/images/remove-background", "post"), ("/v1/videos/remove-background", "post"),
                 ("/v1/images/img2video", "post"), ("/v1/videos", "post")}


async def test_a_model_answer_documents_its_profile_and_server_timing_headers(http):
    document = (await http.get("/openapi.json")).json()
    documented = set()
    for path, method, operation in _operations(document):
        headers = operation.get("responses", {}).get("200", {}).get("headers", {})
        if "Server-Timing" in headers:
            documented.add((path, method))
            assert headers["X-Univence-Profile"]["schema"]["enum"] == ["full", "tiny"]
            assert "upstream;desc=" in headers["Server-Timing"]["description"]
    assert documented == MODEL_ANSWERS


async def test_no_operation_documents_a_422_and_400_is_the_envelope(http):
    document = (await http.get("/openapi.json")).json()
    envelope = {"$ref": "#/components/schemas/ErrorResponse"}
    for path, method, operation in _operations(document):
        assert "422" not in operation["responses"], (path, method)
        if operation.get("parameters") or operation.get("requestBody"):
            invalid = operation["responses"]["400"]
            assert invalid["content"]["application/json"]["schema"] == envelope, (path, method)
    assert not {"HTTPValidationError", "ValidationError"} & set(document["components"]["schemas"])


async def test_a_405_names_the_allowed_methods(http):
    response = await http.delete("/v1/models")
    assert_envelope(response, 405, "invalid_request_error")
    assert "GET" in {method.strip() for method in response.headers["allow"].split(",")}
    response = await http.get("/v1/images/generations")
    assert_envelope(response, 405, "invalid_request_error")
    assert response.headers["allow"] == "POST"
    # /login is two route objects (the page, and the form's POST): Allow names the methods of both.
    response = await http.put("/login")
    assert_envelope(response, 405, "invalid_request_error")
    assert response.headers["allow"] == "GET, POST"


async def test_the_document_states_the_bounds_the_api_enforces(http):
    document = (await http.get("/openapi.json")).json()

    def non_null(schema):
        return next(member for member in schema.get("anyOf", [schema]) if member.get("type") != "null")

    schemas = document["components"]["schemas"]

    def body(path):  # read by the endpoint itself, documented as the model's component (edge.inputs.json_body)
        ref = document["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        return schemas[ref.removeprefix("#/components/schemas/")]["properties"]

    generation = body("/v1/images/generations")
    assert generation == schemas["ImageGenerationRequest"]["properties"]
    assert generation["prompt"]["minLength"] == 1
    assert (non_null(generation["n"])["minimum"], non_null(generation["n"])["maximum"]) == (1, 4)
    batch = body("/v1/images/generations/batch")["requests"]
    assert (batch["minItems"], batch["maxItems"]) == (1, 5)
    assert batch["items"] == {"$ref": "#/components/schemas/ImageGenerationRequest"}
    assert body("/v1/chat/completions")["messages"]["minItems"] == 1
    assert body("/v1/images/upscale")["image"]["minLength"] == 1
    edit = document["paths"]["/v1/images/edits"]["post"]["requestBody"]["content"]
    assert non_null(edit["application/json"]["schema"]["properties"]["input_images"])["minItems"] == 1
    assert edit["application/json"]["schema"]["properties"]["prompt"]["minLength"] == 1
    form = edit["multipart/form-data"]["schema"]["properties"]
    assert form["image"]["minItems"] == 1 and form["prompt"]["minLength"] == 1


def test_no_two_endpoint_groups_match_the_same_request():
    # edge.app.ROUTERS is in the order requests are matched (the hottest first), which is safe only
    # while no request could match routes of two groups.
    from edge.app import ROUTERS

    routes = [(group, route) for group, router in enumerate(ROUTERS) for route in router.routes]
    for group, route in routes:
        sample = re.sub(r"\{[^}]+\}", "x_1", route.path)  # a request to this route
        for other_group, other in routes:
            if other_group != group and (route.methods or set()) & (other.methods or set()):
                assert not other.path_regex.match(sample), (route.path, other.path)


async def test_the_openapi_sections_are_declared_in_reading_order(http):
    from edge.app import TAGS

    document = (await http.get("/openapi.json")).json()
    used = {tag for _, _, operation in _operations(document) for tag in operation.get("tags", [])}
    assert [tag["name"] for tag in document["tags"]] == [tag["name"] for tag in TAGS]
    assert used == {tag["name"] for tag in TAGS}


# (POST /v1/images/edits reads its JSON alike, once the image service has said how large its images may be.)
JSON_BODIES = ["/v1/images/generations", "/v1/images/generations/batch", "/v1/images/upscale", "/v1/chat/completions"]


@pytest.mark.parametrize("path", JSON_BODIES)
async def test_json_bodies_are_read_alike_by_every_endpoint(platform, http, path):
    """The endpoints that read their own JSON bodies (edge.inputs.read_json_object, json_model) refuse a broken one
    with the same envelope, after authentication, whatever the endpoint."""
    _, secret = await platform.user_with_key(f"json{JSON_BODIES.index(path)}@example.com")
    json_type = {"Content-Type": "application/json"}
    assert_envelope(await http.post(path, content=b"{broken", headers=json_type), 401, "authentication_error")
    headers = {"X-API-Key": secret, **json_type}
    broken = "The request body is not valid JSON"
    not_object = "The request body must be a JSON object"
    cases = [(b"", f"{broken} (Expecting value at character 0)"),
             (b'{"a": 1,,}', f"{broken} (Expecting property name enclosed in double quotes at character 8)"),
             (b'{"prompt": "\xff"}', f"{broken} (it is not UTF-8 text)"),
             (b"[1, 2]", not_object), (b"null", not_object)]
    for content, message in cases:
        error = assert_envelope(await http.post(path, content=content, headers=headers), 400, "invalid_request_error")
        assert error["code"] == "invalid_json" and error["param"] is None, (content, error)
        assert error["message"] == message, (content, error)


@pytest.mark.parametrize("path", JSON_BODIES[:3])
async def test_a_json_body_labelled_otherwise_is_refused_and_an_unlabelled_one_read(platform, http, path):
    _, secret = await platform.user_with_key(f"label{JSON_BODIES.index(path)}@example.com")
    key = {"X-API-Key": secret}
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    refused = await http.post(path, content=b"prompt=a+fox", headers={**key, **form})
    error = assert_envelope(refused, 400, "invalid_request_error")
    assert error["code"] == "unsupported_media_type"
    assert error["message"] == "send the request body as application/json, not application/x-www-form-urlencoded"
    # No label (or text/plain) is read as JSON, as chat reads it: here its fields are checked.
    for label in ({}, {"Content-Type": "text/plain"}):
        response = await http.post(path, content=b"{}", headers={**key, **label})
        assert assert_envelope(response, 400, "invalid_request_error")["param"] in ("prompt", "requests", "image")


def test_a_body_model_named_as_another_schema_is_refused_when_the_document_is_built(monkeypatch):
    """A body an endpoint reads itself is documented by name among the components (edge.inputs.json_body):
    a second, different schema under that name would silently replace one of them, so it fails loudly."""
    from pydantic import BaseModel

    from edge import inputs
    from edge.app import api_document, create_app
    from edge.config import EdgeSettings

    class ErrorResponse(BaseModel):  # the name of the error envelope's schema, another shape
        other: int

    monkeypatch.setitem(inputs._DOCUMENTED, "ErrorResponse", ErrorResponse)
    settings = EdgeSettings()
    with pytest.raises(RuntimeError, match="two schemas named ErrorResponse"):
        api_document(create_app(settings), settings)
