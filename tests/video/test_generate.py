"""GenerateVideo through a real gRPC client against the tiny service: an MP4 (H.264, yuv420p, 16 fps)
of num_frames frames at the resolution class's size in the input's orientation, a JPEG thumbnail of the
first frame, a progress stream that only rises, seeds that reproduce, and what the service publishes."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from services.video.catalog import RESOLUTIONS
from tests.video.helpers import picture, read_mp4, request, run
from univence.common.v1 import common_pb2
from univence.video.v1 import video_pb2 as pb

pytestmark = pytest.mark.asyncio(loop_scope="session")
TINY = {r.name: r.tiny for r in RESOLUTIONS}


@pytest.mark.parametrize(("size", "resolution", "name", "portrait"), [
    ((120, 80), pb.RESOLUTION_UNSPECIFIED, "480p", False),
    ((80, 120), pb.RESOLUTION_720P, "720p", True),
    ((64, 64), pb.RESOLUTION_1080P, "1080p", False),
])
async def test_a_video_has_the_frames_asked_for_at_the_class_size_in_the_input_s_orientation(
        video, size, resolution, name, portrait):
    _, result = await run(video, request(picture(*size), num_frames=13, resolution=resolution))
    width, height = TINY[name][::-1] if portrait else TINY[name]
    mp4 = read_mp4(result.video)
    assert (mp4.codec, mp4.pix_fmt, mp4.fps) == ("h264", "yuv420p", 16.0)
    assert len(mp4.frames) == result.num_frames == 13
    assert mp4.size == (result.width, result.height) == (width, height)
    assert result.mime_type == "video/mp4" and result.fps == 16.0
    thumbnail = Image.open(io.BytesIO(result.thumbnail))
    assert thumbnail.format == "JPEG" and thumbnail.size == (width, height)


async def test_the_image_conditions_the_video(video):
    """Same seed and prompt, another image: another video (the image reaches the model, not only the size)."""
    def flat(colour: tuple[int, int, int]) -> bytes:
        out = io.BytesIO()
        Image.new("RGB", (120, 80), colour).save(out, format="PNG")
        return out.getvalue()

    _, red = await run(video, request(flat((200, 40, 40))))
    _, blue = await run(video, request(flat((40, 40, 200))))
    frames_red, frames_blue = np.stack(read_mp4(red.video).frames), np.stack(read_mp4(blue.video).frames)
    assert np.abs(frames_red.astype(int) - frames_blue.astype(int)).mean() > 2


async def test_progress_rises_through_the_stages_then_the_result(video):
    progress, result = await run(video, request(num_inference_steps=3))
    stages = [p.stage for p in progress]
    assert stages == ["encoding prompt", "denoising", "denoising", "denoising", "decoding", "encoding video"]
    assert [p.step for p in progress] == [0, 1, 2, 3, 3, 4]
    assert {p.total_steps for p in progress} == {5}
    fractions = [p.step / p.total_steps for p in progress]
    assert fractions == sorted(fractions)
    assert all(p.queue_position == 0 for p in progress)
    assert result.num_frames == 9


async def test_a_seed_reproduces_its_video_and_another_seed_differs(video):
    """Both samplers: the stochastic one draws fresh noise at every step, from the seed too."""
    _, first = await run(video, request(seed=11))
    _, again = await run(video, request(seed=11))
    _, other = await run(video, request(seed=12))
    assert first.video == again.video and first.seed == 11
    assert first.video != other.video
    _, ode = await run(video, request(seed=11, use_ode=True))
    _, ode_again = await run(video, request(seed=11, use_ode=True))
    assert ode.video == ode_again.video != first.video


async def test_without_a_seed_one_is_drawn_and_reported(video):
    """The reported seed gives the drawn video again. Compared by its frames, not its bytes: for some seeds
    the tiny profile's random weights (a VAE drawn from N(0, 0.5)) amplify CPU float noise (which differs
    from run to run) into a few pixels; byte equality failed about one run in five. One such seed,
    1349452887, gave three different videos in eight runs: 6 % of pixels apart, by 0.25 of 255 on average,
    where another seed's video differs by ~75. Seeds 5, 7 and 11 gave one video in every run."""
    req = request()
    req.ClearField("seed")
    _, result = await run(video, req)
    _, again = await run(video, request(seed=result.seed))
    _, other = await run(video, request(seed=(result.seed + 1) % 2**31))
    drawn, reproduced, different = (np.stack(read_mp4(r.video).frames).astype(float) for r in (result, again, other))
    assert np.abs(reproduced - drawn).mean() < 2 < 20 < np.abs(different - drawn).mean()


async def test_the_limits_and_sizes_are_published(video):
    info = await video.info.GetServiceInfo(common_pb2.GetServiceInfoRequest())
    settings = video.settings
    assert info.ready and info.profile == "tiny"
    assert info.limits["max_frames"] == settings.max_frames and info.limits["min_frames"] == settings.min_frames
    assert info.limits["frame_multiple"] == 4 and info.limits["max_steps"] == 4
    assert info.limits["max_prompt_chars"] == settings.max_prompt_chars
    assert info.limits["max_input_image_pixels"] == settings.max_input_image_pixels
    (model,) = info.models
    assert model.task == "video.generation" and model.task_default and model.source == "tiny-random"
    assert list(model.sizes) == ["480p", "720p", "1080p"] and model.default_size == "480p"
    for name, (width, height) in TINY.items():
        assert (model.limits[f"{name}_width"], model.limits[f"{name}_height"]) == (width, height)
