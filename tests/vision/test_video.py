"""RemoveVideoBackground through a real gRPC client: the stream (probe first, a step per frame, then the
result), WebM VP9 with alpha of the input's frame count, the frames with the object counted for
billing, cancellation, and every bad video refused before any model work."""

from __future__ import annotations

import asyncio
import io
import time

import av
import grpc
import numpy as np
import pytest
from PIL import Image

from tests.support.grpc_errors import error_info
from tests.vision.helpers import encoded, input_frames, make_video, read_webm
from univence.vision.v1 import vision_pb2 as pb

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def run(vision, data: bytes, prompt: str | None = "person") -> tuple[list, pb.VideoBackgroundResult]:
    """(the progress events, the result)."""
    request = pb.RemoveVideoBackgroundRequest(video=data, **({} if prompt is None else {"prompt": prompt}))
    events = [message async for message in vision.stub.RemoveVideoBackground(request)]
    assert all(e.HasField("progress") for e in events[:-1]) and events[-1].HasField("result")
    return [e.progress for e in events[:-1]], events[-1].result


async def refused(vision, data: bytes, reason: str, **fields):
    """The call's error, which must come before any message."""
    messages = []
    with pytest.raises(grpc.RpcError) as caught:
        async for message in vision.stub.RemoveVideoBackground(pb.RemoveVideoBackgroundRequest(video=data, **fields)):
            messages.append(message)
    error = error_info(caught.value)
    assert error.reason == reason, error
    assert not messages, "a refused video must not get a first (probe) message"
    return error


async def test_the_stream_probes_first_then_a_step_per_frame_then_the_result(vision):
    data = make_video(frames=10)
    progress, result = await run(vision, data)
    first = progress[0]
    assert (first.step, first.total_steps, first.stage) == (0, 10, "probed")
    assert [p.step for p in progress] == list(range(11)) and {p.total_steps for p in progress} == {10}
    assert {p.stage for p in progress[1:]} == {"segmenting"}
    assert (result.total_frames, result.mime_type, result.fps, result.has_audio) == (10, "video/webm", 12, False)


async def test_the_result_is_vp9_with_alpha_with_the_input_s_frames(vision):
    data = make_video(frames=12, width=63, height=47, pix_fmt="yuv444p")
    _, result = await run(vision, data)
    raw = result.video
    assert raw[:4] == b"\x1a\x45\xdf\xa3" and b"webm" in raw[:64]
    with av.open(io.BytesIO(raw)) as c:
        stream = c.streams.video[0]
        assert stream.codec_context.name == "vp9" and stream.average_rate == 12
        assert {k.lower(): v for k, v in stream.metadata.items()}.get("alpha_mode") == "1"
        assert next(c.decode(video=0)).format.name == "yuv420p"  # FFmpeg's own vp9 decoder drops the alpha
    frames = read_webm(raw)
    assert len(frames) == 12 == result.total_frames and {f.format.name for f in frames} == {"yuva420p"}
    assert (frames[0].width, frames[0].height) == (63, 47)
    assert [round(f.time * 12) for f in frames] == list(range(12))  # the input's timestamps
    # The real model path: each frame's alpha is SAM3's mask of that frame (VP9 alpha is lossy), and
    # the frames counted are those where the engine finds the object.
    text = vision.servicer.models.text
    found = text.segment(input_frames(data), "person")
    source = input_frames(data)
    for frame, mask, rgb in zip(frames, found, source, strict=True):
        rgba = frame.to_ndarray(format="rgba")
        assert np.abs(rgba[..., 3].astype(int) - np.rint(mask.soft * 255)).mean() < 6
        assert np.abs(rgba[..., :3].astype(int) - rgb).mean() < 8  # the colours survive too
    assert result.frames_with_object == sum(m.found for m in found)


async def test_only_frames_with_the_object_are_counted(vision, monkeypatch):
    """The test decides which frames hold the object: SAM3 runs for real, and its answer is then kept for
    the chosen frames (opaque) and dropped for the others (transparent)."""
    models = vision.servicer.models
    real, seen = models.frame_masks, []
    present = {0, 3, 4, 9, 10}

    def chosen(frames, prompt, best_only):
        answers = real(frames, prompt, best_only)
        out = []
        for alpha, _ in answers:
            index = len(seen)
            seen.append(index)
            out.append((np.full_like(alpha, 255) if index in present else np.zeros_like(alpha), index in present))
        return out

    monkeypatch.setattr(models, "frame_masks", chosen)
    _, result = await run(vision, make_video(frames=11))
    assert (result.total_frames, result.frames_with_object) == (11, len(present))
    alphas = [f.to_ndarray(format="rgba")[..., 3] for f in read_webm(result.video)]
    assert [int(a.mean() > 128) for a in alphas] == [int(i in present) for i in range(11)]


async def test_audio_is_kept_as_opus(vision):
    _, result = await run(vision, make_video(frames=12, audio=True))
    assert result.has_audio
    with av.open(io.BytesIO(result.video)) as c:
        audio = c.streams.audio[0]
        assert audio.codec_context.name == "opus" and audio.sample_rate == 48000
        samples = sum(f.samples for f in c.decode(audio=0))
    assert samples / 48000 == pytest.approx(1.0, abs=0.05)
    assert len(read_webm(result.video)) == 12


async def test_a_video_without_a_prompt_keeps_the_salient_object_and_webm_mkv_are_read(vision):
    _, result = await run(vision, make_video(frames=5, container="matroska"), prompt=None)
    assert result.total_frames == 5 and len(read_webm(result.video)) == 5
    _, again = await run(vision, result.video, prompt="")  # our own output is a valid input
    assert again.total_frames == 5


async def test_cancelling_stops_the_frame_loop(vision, monkeypatch):
    models = vision.servicer.models
    real, segmented = models.frame_masks, []

    def slow(frames, prompt, best_only):
        segmented.extend(frames)
        time.sleep(0.05)
        return real(frames, prompt, best_only)

    monkeypatch.setattr(models, "frame_masks", slow)
    call = vision.stub.RemoveVideoBackground(pb.RemoveVideoBackgroundRequest(video=make_video(frames=120)))
    async for message in call:
        if message.progress.step >= 8:
            call.cancel()
            break
    for _ in range(100):  # the work stops at the next batch, and its queue slot is free again
        if vision.servicer.queue.pending == 0:
            break
        await asyncio.sleep(0.05)
    assert vision.servicer.queue.pending == 0
    stopped_at = len(segmented)
    await asyncio.sleep(0.3)
    assert len(segmented) == stopped_at < 60


def truncated(data: bytes, fraction: float) -> bytes:
    return data[:int(len(data) * fraction)]


@pytest.mark.parametrize(("make", "reason", "words"), [
    (lambda: b"", "INVALID_REQUEST", "empty"),
    (lambda: np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes(), "INVALID_REQUEST",
     "not a readable video"),
    (lambda: truncated(make_video(frames=24), 0.5), "INVALID_REQUEST", "truncated"),  # moov at the end
    (lambda: truncated(make_video(frames=24, faststart=True), 0.9), "INVALID_REQUEST", "truncated"),
    (lambda: encoded(Image.new("RGB", (20, 10), "red"), "PNG"), "INVALID_REQUEST", "an image"),
    (lambda: encoded(Image.new("RGB", (20, 10), "red"), "JPEG"), "INVALID_REQUEST", "an image"),
    (lambda: encoded(Image.new("RGB", (20, 10), "red"), "GIF"), "INVALID_REQUEST", "an image"),
    (lambda: make_video(frames=4, width=1936, height=1088), "PAYLOAD_TOO_LARGE", "pixels a frame"),
    (lambda: make_video(frames=3601, width=16, height=16, fps=60), "PAYLOAD_TOO_LARGE", "3601 frames"),
    (lambda: b"\x00" * (1024 * 1024 + 1), "PAYLOAD_TOO_LARGE", "bytes"),
])
async def test_bad_videos_are_refused_before_the_first_message(vision, make, reason, words):
    error = await refused(vision, make(), reason, prompt="person")
    assert error.param == "video" and words in error.message


async def test_an_audio_only_file_and_a_huge_prompt_are_refused(vision):
    out = io.BytesIO()
    with av.open(out, "w", format="mp4") as c:
        stream = c.add_stream("aac", rate=44100)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate, frame.pts = 44100, 0
        c.mux(stream.encode(frame))
        c.mux(stream.encode(None))
    assert "no video stream" in (await refused(vision, out.getvalue(), "INVALID_REQUEST")).message
    assert (await refused(vision, make_video(frames=2), "PAYLOAD_TOO_LARGE", prompt="x" * 1001)).param == "prompt"


async def test_a_twenty_minute_video_is_refused_from_its_headers(vision):
    data = make_video(frames=1200, width=16, height=16, fps=1)  # 20 minutes at one frame a second
    start = time.perf_counter()
    error = await refused(vision, data, "PAYLOAD_TOO_LARGE")
    assert error.param == "video" and "lasts 1200.0 s" in error.message  # the header's duration: no scan
    assert time.perf_counter() - start < 2
