"""The edge reads what each modality service says about itself (GetServiceInfo, cached per service): the
limits it checks before reserving credits are the service's own, and a response's profile header
asks the service that answers it, no other."""

from __future__ import annotations

import asyncio

import grpc

from tests.edge.test_auth import assert_envelope
from tests.edge.test_images import START_MC, stack_with
from tests.support.platform import free_port
from univence.common.v1 import common_pb2, common_pb2_grpc


async def test_the_edge_checks_the_limits_the_image_service_publishes(tmp_path):
    # UNIVENCE_IMAGE_MAX_N=8 on the image service: the edge accepts n=8 and refuses n=9 itself.
    async for stack in stack_with(tmp_path, max_n=8):
        user_id, headers = await stack.user("eight@example.com")
        seen = stack.watch_service()
        body = {"prompt": "a tree", "image_size": "256x256"}
        nine = await stack.http.post("/v1/images/generations", json={**body, "n": 9}, headers=headers)
        error = assert_envelope(nine, 400, "invalid_request_error")
        assert error["param"] == "n" and "between 1 and 8" in error["message"]
        assert seen == [] and stack.holds() == 0, "n=9 reached the service or reserved credits"
        eight = await stack.http.post("/v1/images/generations", json={**body, "n": 8}, headers=headers)
        assert eight.status_code == 200 and len(eight.json()["data"]) == 8
        assert await stack.balance(user_id) == (START_MC - 8 * 250, 0)


class SilentInfo(common_pb2_grpc.ServiceInfoServiceServicer):
    """A service that is asked what it serves and takes its time to say."""

    def __init__(self) -> None:
        self.asked = 0

    async def GetServiceInfo(self, request, context) -> common_pb2.GetServiceInfoResponse:
        self.asked += 1
        await asyncio.sleep(30)
        return common_pb2.GetServiceInfoResponse(service="llm")


async def test_an_image_request_asks_only_the_image_service_for_its_profile(tmp_path):
    server = grpc.aio.server()
    silent = SilentInfo()
    common_pb2_grpc.add_ServiceInfoServiceServicer_to_server(silent, server)
    port = free_port()
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    try:
        async for stack in stack_with(tmp_path, others={"llm": f"127.0.0.1:{port}"}):
            _, headers = await stack.user("profile@example.com")
            response = await stack.http.post("/v1/images/generations", headers=headers,
                                             json={"prompt": "a boat", "image_size": "256x256"})
            assert response.status_code == 200 and response.headers["x-univence-profile"] == "tiny"
            assert silent.asked == 0, "the image request waited on the llm service's GetServiceInfo"
    finally:
        await server.stop(0)
