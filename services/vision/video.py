"""Video background removal's plumbing with PyAV: the input probed and checked against the limits before
any work, decoded frame by frame, each frame given its mask as alpha, encoded as WebM VP9 with alpha.

Facts this relies on (PyAV 18 with its own FFmpeg; tests/vision checks them):
- libvpx-vp9 encodes `yuva420p`: the colour planes in the VP9 frames, the alpha plane as a second VP9
  stream in Matroska BlockAdditional side data; the WebM muxer marks the track AlphaMode=1 itself.
- FFmpeg's native `vp9` decoder (PyAV's default) ignores that side data and returns `yuv420p`: read
  the alpha back with the `libvpx-vp9` decoder.
- A truncated MP4 either fails to open (its moov atom was at the end) or opens with intact headers
  (+faststart) and yields fewer packets than its header's sample count: counting packets (demuxing,
  no decoding) finds it before any model work.
- FFmpeg probes content, not names: a PNG sent as a video opens as `png_pipe` with one "video" stream,
  so the container format is checked against the video containers accepted.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction

import av
import numpy as np

# mov/mp4 family, Matroska/WebM, AVI, MPEG-TS: what phones, browsers and editors write.
VIDEO_FORMATS = {"mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm", "avi", "mpegts"}
ACCEPTED = "MP4, MOV, WebM, MKV, AVI or MPEG-TS"
# Per frame (RGB HxWx3 uint8) of a batch: its alpha (HxW, uint8 or float in [0, 1]) and whether the
# object is in it.
MaskFn = Callable[[Sequence[np.ndarray]], Sequence[tuple[np.ndarray, bool]]]
OnFrame = Callable[[int, int], None]
# The audio kept is re-encoded to what WebM carries.
AUDIO_CODEC, AUDIO_RATE, AUDIO_LAYOUT = "libopus", 48000, "stereo"


class VideoError(ValueError):
    """A video that is not accepted: unreadable, not a video, truncated, or over a limit (`too_large`)."""

    def __init__(self, message: str, *, too_large: bool = False):
        super().__init__(message)
        self.message, self.too_large = message, too_large


@dataclass(frozen=True)
class VideoLimits:
    max_bytes: int
    max_seconds: float
    max_frames: int
    max_pixels: int


@dataclass(frozen=True)
class VideoInfo:
    format_name: str
    codec: str
    width: int
    height: int
    fps: Fraction
    duration_s: float
    # Video packets in the file (exact, from a demux-only scan): the frames the result will have.
    frame_count: int
    has_audio: bool


@dataclass(frozen=True)
class Result:
    data: bytes
    frames: int
    frames_with_object: int
    fps: Fraction
    has_audio: bool


def _open(data: bytes) -> av.container.InputContainer:
    try:
        return av.open(io.BytesIO(data), "r")
    except (av.FFmpegError, ValueError) as exc:
        raise VideoError(f"video is not a readable video ({ACCEPTED}): it is truncated, corrupt or of another "
                         f"kind ({exc})") from None


def _check(limits: VideoLimits, width: int, height: int, seconds: float, frames: int) -> None:
    if width <= 0 or height <= 0:
        raise VideoError("video declares no picture size: it is corrupt")
    if width * height > limits.max_pixels:
        raise VideoError(f"video is {width}x{height} ({width * height} pixels a frame); at most {limits.max_pixels}"
                         " are accepted", too_large=True)
    if seconds > limits.max_seconds:
        raise VideoError(f"video lasts {seconds:.1f} s; at most {limits.max_seconds:g} s are accepted", too_large=True)
    if frames > limits.max_frames:
        raise VideoError(f"video has {frames} frames; at most {limits.max_frames} are accepted", too_large=True)


def probe(data: bytes, limits: VideoLimits) -> VideoInfo:
    """The video's headers checked against `limits` (a 20-minute video is refused here without reading
    its packets), then its video packets counted without decoding (a truncated file is refused here,
    not halfway through the work). Cheap: no codec work."""
    if not data:
        raise VideoError("video is empty")
    if len(data) > limits.max_bytes:
        raise VideoError(f"video is {len(data)} bytes; at most {limits.max_bytes} are accepted", too_large=True)
    with _open(data) as container:
        name = container.format.name
        if name not in VIDEO_FORMATS:
            kind = "an image" if name.endswith("_pipe") or name in ("image2", "gif", "apng", "webp") else name
            raise VideoError(f"video is {kind} ({name}), not a video ({ACCEPTED})")
        if not container.streams.video:
            raise VideoError("video has no video stream (audio only, or truncated before its first frame)")
        stream = container.streams.video[0]
        fps = stream.average_rate or stream.guessed_rate or stream.base_rate
        if not fps or fps <= 0:
            raise VideoError("video declares no frame rate: it is corrupt")
        if stream.duration is not None and stream.time_base:
            seconds = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            seconds = container.duration / av.time_base
        else:
            seconds = 0.0
        declared = int(stream.frames or 0)
        width, height = stream.codec_context.width, stream.codec_context.height
        _check(limits, width, height, seconds, declared or round(seconds * float(fps)))
        count, last = 0, 0.0
        try:
            for packet in container.demux(stream):
                if not packet.size:
                    continue
                count += 1
                if packet.pts is not None and packet.time_base:
                    last = max(last, float(packet.pts * packet.time_base))
                if count > limits.max_frames or last > limits.max_seconds:  # headers that under-declare
                    _check(limits, width, height, last, count)
        except av.FFmpegError as exc:
            raise VideoError(f"video is corrupt after {count} frames ({exc})") from None
        info = VideoInfo(name, stream.codec_context.name, width, height, Fraction(fps), seconds, count,
                         bool(container.streams.audio))
    if count == 0:
        raise VideoError("video holds no frames: it is truncated or corrupt")
    if declared and count < declared:
        raise VideoError(f"video's header declares {declared} frames but only {count} are in the file: it is "
                         "truncated")
    return info


def composite_rgba(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """HxWx3 uint8 and an HxW alpha (uint8, or float in [0, 1]) as HxWx4 uint8. The colour stays under
    transparent pixels (straight alpha): VP9's alpha is lossy, so edges stay clean."""
    if alpha.shape != rgb.shape[:2]:
        raise ValueError(f"the mask is {alpha.shape} but the frame is {rgb.shape[:2]}")
    if alpha.dtype != np.uint8:
        alpha = np.clip(np.rint(alpha * 255.0), 0, 255).astype(np.uint8)
    return np.concatenate([rgb, alpha[..., None]], axis=2)


class _Encoder:
    """The WebM output: VP9 with alpha, carrying the input's timestamps (same frames, same rate)."""

    def __init__(self, out: av.container.OutputContainer, source: av.VideoStream, info: VideoInfo, *, crf: int,
                 cpu_used: int):
        self.out = out
        self.stream = out.add_stream("libvpx-vp9", rate=info.fps, options={
            "crf": str(crf), "b": "0", "deadline": "good", "cpu-used": str(cpu_used), "row-mt": "1"})
        self.stream.width, self.stream.height, self.stream.pix_fmt = info.width, info.height, "yuva420p"
        self.stream.time_base = self.stream.codec_context.time_base = source.time_base
        self.time_base = source.time_base
        self.last_pts: int | None = None

    def write(self, rgba: np.ndarray, pts: int | None) -> None:
        frame = av.VideoFrame.from_ndarray(rgba, format="rgba")
        if pts is None or (self.last_pts is not None and pts <= self.last_pts):
            pts = 0 if self.last_pts is None else self.last_pts + 1
        frame.pts, frame.time_base = pts, self.time_base
        self.last_pts = pts
        self.out.mux(self.stream.encode(frame))

    def flush(self) -> None:
        self.out.mux(self.stream.encode(None))


def remove_background(data: bytes, info: VideoInfo, mask_fn: MaskFn, *, batch: int, crf: int, cpu_used: int,
                      on_frame: OnFrame | None = None) -> Result:
    """Decodes `data` frame by frame, asks `mask_fn` for the alpha of each batch of frames, and writes
    WebM VP9 with alpha; the audio, if any, is kept, re-encoded as Opus (WebM carries Opus or Vorbis
    only). `on_frame(done, total)` runs after each frame; raising in it stops the work."""
    done = with_object = 0
    pending: list[tuple[np.ndarray, int | None]] = []
    output = io.BytesIO()

    def run_batch(encoder: _Encoder) -> None:
        nonlocal done, with_object
        masks = mask_fn([rgb for rgb, _ in pending])
        for (rgb, pts), (alpha, found) in zip(pending, masks, strict=True):
            encoder.write(composite_rgba(rgb, alpha), pts)
            done += 1
            with_object += bool(found)
            if on_frame is not None:
                on_frame(done, info.frame_count)
        pending.clear()

    with _open(data) as container, av.open(output, "w", format="webm") as out:
        source = container.streams.video[0]
        encoder = _Encoder(out, source, info, crf=crf, cpu_used=cpu_used)
        audio_in = container.streams.audio[0] if container.streams.audio else None
        audio_out = out.add_stream(AUDIO_CODEC, rate=AUDIO_RATE) if audio_in is not None else None
        resampler = av.AudioResampler(format="s16", layout=AUDIO_LAYOUT, rate=AUDIO_RATE) if audio_in else None
        try:
            for packet in container.demux(*(s for s in (source, audio_in) if s is not None)):
                if packet.stream is source:
                    for frame in packet.decode():
                        pending.append((frame.to_ndarray(format="rgb24"), frame.pts))
                        if len(pending) >= batch:
                            run_batch(encoder)
                elif audio_out is not None:
                    for audio in packet.decode():
                        for resampled in resampler.resample(audio):
                            out.mux(audio_out.encode(resampled))
        except av.FFmpegError as exc:
            raise VideoError(f"video is corrupt: decoding failed after {done + len(pending)} frames ({exc})") from None
        if pending:
            run_batch(encoder)
        encoder.flush()
        if audio_out is not None:
            for resampled in resampler.resample(None):
                out.mux(audio_out.encode(resampled))
            out.mux(audio_out.encode(None))
    if done != info.frame_count:
        raise VideoError(f"video is corrupt: {done} frames decoded of the {info.frame_count} it holds")
    return Result(output.getvalue(), done, with_object, info.fps, audio_out is not None)
