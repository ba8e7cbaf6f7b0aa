"""Bad requests are refused before any work, as INVALID_ARGUMENT with the ErrorInfo reason and the field
named, and a message that says what is accepted; a TurboDiffusion deployment refuses 1080p."""

from __future__ import annotations

import grpc
import pytest

from services.common.errors import ServiceError
from services.video.catalog import DIFFUSERS, TURBODIFFUSION
from services.video.fixtures import settings_for
from services.video.requests import plan
from tests.video.helpers import bomb_png, refused, request
from univence.video.v1 import video_pb2 as pb


@pytest.mark.parametrize(("fields", "reason", "param", "words"), [
    ({"image": b"this is not an image"}, "INVALID_REQUEST", "image", "not an image"),
    ({"image": b""}, "INVALID_REQUEST", "image", "required"),
    ({"image": bomb_png()}, "PAYLOAD_TOO_LARGE", "image", "pixels"),
    ({"num_frames": 0}, "INVALID_REQUEST", "num_frames", "between 5 and 81"),
    ({"num_frames": 10000}, "INVALID_REQUEST", "num_frames", "between 5 and 81"),
    ({"num_frames": 10}, "INVALID_REQUEST", "num_frames", "4k+1"),
    ({"num_inference_steps": 0}, "INVALID_REQUEST", "num_inference_steps", "between 1 and 4"),
    ({"num_inference_steps": 9}, "INVALID_REQUEST", "num_inference_steps", "between 1 and 4"),
    ({"resolution": 7}, "INVALID_REQUEST", "resolution", "480p, 720p, 1080p"),
    ({"prompt": ""}, "INVALID_REQUEST", "prompt", "required"),
    ({"prompt": "   "}, "INVALID_REQUEST", "prompt", "required"),
    ({"prompt": "x" * 2001}, "PAYLOAD_TOO_LARGE", "prompt", "at most 2000"),
    ({"negative_prompt": "x" * 2001}, "PAYLOAD_TOO_LARGE", "negative_prompt", "at most 2000"),
    ({"prompt": "a\x00b"}, "INVALID_REQUEST", "prompt", "NUL"),
    ({"seed": -1}, "INVALID_REQUEST", "seed", "between 0"),
])
@pytest.mark.asyncio(loop_scope="session")
async def test_a_bad_request_is_refused_naming_the_field(video, fields, reason, param, words):
    error = await refused(video, request(**fields))
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert (error.reason, error.param) == (reason, param), error
    assert words in error.message, error.message


@pytest.mark.asyncio(loop_scope="session")
async def test_a_refused_request_costs_no_queue_place(video):
    for _ in range(5):  # more than the queue holds
        await refused(video, request(num_frames=0))
    assert video.servicer.queue.pending == 0


def test_a_turbodiffusion_deployment_refuses_1080p_and_diffusers_makes_it():
    settings = settings_for()
    req = request(resolution=pb.RESOLUTION_1080P)
    with pytest.raises(ServiceError) as caught:
        plan(req, settings, profile="full", backend=TURBODIFFUSION)
    assert caught.value.param == "resolution"
    assert "480p and 720p only" in caught.value.message and "TurboDiffusion" in caught.value.message
    job = plan(req, settings, profile="full", backend=DIFFUSERS)
    assert (job.width, job.height) == (1920, 1080) and job.image.size == (1920, 1080)
    assert plan(request(resolution=pb.RESOLUTION_720P), settings, profile="full",
                backend=TURBODIFFUSION).resolution == "720p"
