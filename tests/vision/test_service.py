"""The vision service as an operator sees it: settings, what it reports it serves and the limits it
publishes, the tiny models' build (real classes, real checkpoint files through spandrel's loader), the
library facts the engine relies on without torchvision, and the full profile's loading path and its
clear errors when a model cannot load."""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from services.vision import segment
from services.vision.config import VisionSettings
from services.vision.tiny import build_tiny_sam3, build_tiny_swin2sr, tiny_clip_tokenizer, write_tiny_checkpoints
from services.vision.torchvision_standin import import_spandrel
from services.vision.upscale import swin2sr_pad
from tests.support.grpc_errors import expect_error
from tests.vision.helpers import decode, picture, serve, settings_for
from univence.common.v1 import common_pb2
from univence.vision.v1 import vision_pb2 as pb

HAS_TORCHVISION = importlib.util.find_spec("torchvision") is not None


def test_settings_defaults_and_environment(monkeypatch):
    settings = VisionSettings()
    assert (settings.port, settings.metrics_port) == (50058, 9158)
    assert settings.sam3_model == "facebook/sam3" and settings.swin2sr_model.startswith("caidas/swin2SR")
    assert settings.threshold("full") == 0.5 and settings.threshold("tiny") == 0.3
    monkeypatch.setenv("UNIVENCE_VISION_MAX_VIDEO_SECONDS", "30")
    monkeypatch.setenv("UNIVENCE_VISION_REALESRGAN_4X_WEIGHTS", "someone/real-esrgan/RealESRGAN_x4plus.pth")
    settings = VisionSettings()
    assert settings.max_video_seconds == 30 and settings.realesrgan_4x_weights.startswith("someone/")
    with pytest.raises(ValueError, match="max_message_mb"):
        VisionSettings(max_video_mb=100)
    with pytest.raises(ValueError, match="upscale_tile"):
        VisionSettings(upscale_tile=8)


async def test_service_info_lists_sam3_and_the_upscalers_with_their_scales():
    async with serve(settings_for(max_lanczos_scale=3, max_video_seconds=45, max_output_pixels=10**7)) as vision:
        info = await vision.info.GetServiceInfo(common_pb2.GetServiceInfoRequest())
    assert (info.service, info.profile, info.device, info.ready) == ("vision", "tiny", "cpu", True)
    models = {m.id: m for m in info.models}
    assert list(models) == ["sam3", "realesrgan_2x", "realesrgan_4x", "realesrgan_4x_anime", "swin2sr", "lanczos"]
    assert models["sam3"].task == "image.segmentation" and list(models["sam3"].aliases) == ["facebook/sam3"]
    assert {m.id for m in info.models if m.task == "image.upscale"} == set(models) - {"sam3"}
    assert [m.id for m in info.models if m.task_default] == ["sam3", "realesrgan_4x"]
    assert {k: dict(m.limits) for k, m in models.items() if k != "sam3"} == {
        "realesrgan_2x": {"scale": 2}, "realesrgan_4x": {"scale": 4}, "realesrgan_4x_anime": {"scale": 4},
        "swin2sr": {"scale": 4}, "lanczos": {"scale": 2, "max_scale": 3}}
    assert models["swin2sr"].source == "tiny-random" and models["lanczos"].source == "pillow"
    limits = dict(info.limits)
    assert (limits["max_lanczos_scale"], limits["max_video_seconds"], limits["max_output_pixels"]) == (3, 45, 10**7)
    assert (limits["max_video_bytes"], limits["max_video_frames"], limits["max_video_pixels"]) == (
        48 * 2**20, 3600, 1920 * 1080)
    assert (limits["max_input_image_bytes"], limits["max_input_image_pixels"]) == (20 * 2**20, 4096 * 4096)
    assert (limits["max_prompt_chars"], limits["max_points"]) == (1000, 16)


def test_tiny_sam3_is_the_real_classes_the_same_every_build_and_not_flat():
    from transformers import CLIPTokenizer, Sam3Model, Sam3TrackerModel

    tokenizer, text, tracker = build_tiny_sam3()
    assert isinstance(tokenizer, CLIPTokenizer) and type(text) is Sam3Model and type(tracker) is Sam3TrackerModel
    assert (tokenizer.bos_token_id, tokenizer.eos_token_id) == (512, 513) == (
        text.config.text_config.bos_token_id, text.config.text_config.eos_token_id)
    ids = tokenizer("Segment person").input_ids
    assert tokenizer.convert_ids_to_tokens(ids)[1:-1] == [*"segmen", "t</w>", *"perso", "n</w>"]
    _, again, tracker_again = build_tiny_sam3()
    for one, two in ((text, again), (tracker, tracker_again)):
        a, b = one.state_dict(), two.state_dict()
        assert [k for k in a if not torch.equal(a[k], b[k])] == []
    assert len(tiny_clip_tokenizer()) == 514


def test_tiny_real_esrgan_checkpoints_are_real_files_read_by_spandrel(tmp_path):
    spandrel = import_spandrel()
    paths = write_tiny_checkpoints(tmp_path)
    expected = {"realesrgan_4x": ("ESRGAN", 4, ".pth"), "realesrgan_2x": ("ESRGAN", 2, ".safetensors"),
                "realesrgan_4x_anime": ("Compact", 4, ".pth")}
    for method, (architecture, scale, suffix) in expected.items():
        path = paths[method]
        assert path.is_file() and path.suffix == suffix and path.stat().st_size > 1000
        descriptor = spandrel.ModelLoader().load_from_file(str(path))
        assert (descriptor.architecture.id, descriptor.scale) == (architecture, scale), method
    # the recipe that looks right and is not: x2plus built with scale=2 loads as a 1x model
    from spandrel.architectures.ESRGAN import ESRGAN

    wrong = ESRGAN(in_nc=12, out_nc=3, num_filters=8, num_blocks=1, scale=2, shuffle_factor=2)
    assert spandrel.ModelLoader().load_from_state_dict(wrong.state_dict()).scale == 1


def test_spandrel_and_sam3_post_processing_import_without_torchvision_and_leave_no_trace():
    import_spandrel()
    post = segment.library_postprocessor()
    assert type(post).__name__ == "Sam3ImageProcessor"
    from transformers.utils import is_torchvision_available

    assert is_torchvision_available() == HAS_TORCHVISION
    if not HAS_TORCHVISION:
        assert "torchvision" not in sys.modules and importlib.util.find_spec("torchvision") is None
        lama = importlib.import_module("spandrel.architectures.LaMa.__arch.LaMa")
        with pytest.raises(ModuleNotFoundError, match="torchvision is not installed"):
            lama.rotate(torch.zeros(1), 0.0)
        with pytest.raises(ModuleNotFoundError, match="torchvision is not installed"):
            post.post_process_for_mask_generation(torch.zeros(1, 4, 4), torch.ones(1), torch.zeros(1, 4), 0.7)


def _noise(width: int, height: int, seed: int = 0) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8))


def test_sam3_preprocessing_is_the_processor_recipe():
    image = _noise(200, 150)
    pixels = segment.preprocess(np.asarray(image), 224)
    assert pixels.shape == (1, 3, 224, 224) and pixels.dtype == torch.float32
    chw = segment.resize_uint8(torch.from_numpy(np.array(image)).permute(2, 0, 1).contiguous(), 224)
    assert torch.allclose(pixels[0], (chw.float() / 255 - 0.5) / 0.5, atol=1e-6)
    # Pillow's bilinear is the same filter family, within 2 grey levels on noise
    pillow = torch.from_numpy(np.array(image.resize((224, 224), Image.Resampling.BILINEAR))).permute(2, 0, 1)
    assert (pixels[0] - (pillow.float() - 127.5) / 127.5).abs().max() <= 2 / 127.5 + 1e-6


@pytest.mark.skipif(not HAS_TORCHVISION, reason="the library processor needs torchvision (GPU machines have it)")
def test_sam3_preprocessing_equals_the_library_processor_where_torchvision_is_there():
    from transformers import Sam3ImageProcessor

    processor = Sam3ImageProcessor(size={"height": 224, "width": 224})
    for width, height in ((200, 150), (640, 480), (97, 301)):
        image = _noise(width, height)
        library = processor(image, return_tensors="pt")
        assert torch.equal(library.pixel_values, segment.preprocess(np.asarray(image), 224))
        assert tuple(library.original_sizes[0].tolist()) == (height, width)


def test_point_scaling_equals_the_tracker_processor():
    from transformers.models.sam3_tracker.processing_sam3_tracker import Sam3TrackerProcessor

    processor = Sam3TrackerProcessor.__new__(Sam3TrackerProcessor)  # its __init__ needs the image processor
    processor.point_pad_value, processor.target_size = -10, 1008
    points = [(520.0, 375.0), (100.0, 200.0), (0.0, 0.0), (1279.5, 719.0)]
    library = torch.tensor([[points]], dtype=torch.float32)
    processor._normalize_tensor_coordinates(library, [(720, 1280)], preserve_padding=True)
    assert torch.equal(segment.scale_points(points, (720, 1280), 1008), library)


def test_swin2sr_padding_equals_the_library_processor_and_its_pipeline():
    from transformers import Swin2SRImageProcessorPil

    processor = Swin2SRImageProcessorPil()
    for width, height in ((101, 67), (64, 48), (8, 8), (3, 17)):
        image = _noise(width, height)
        library = processor(image, return_tensors="np").pixel_values[0]
        ours = swin2sr_pad(np.asarray(image, np.float32) / 255.0, 8).transpose(2, 0, 1)
        assert library.shape == ours.shape and np.abs(library - ours).max() < 1e-6
    model = build_tiny_swin2sr()
    image = _noise(45, 29)
    with torch.inference_mode():
        reference = model(pixel_values=processor(image, return_tensors="pt").pixel_values).reconstruction
    from services.vision.upscale import swin2sr_upscaler

    ours = swin2sr_upscaler(model, "swin2sr", "cpu").fn(np.asarray(image, np.float32) / 255.0)
    expected = reference[0, :, :29 * 4, :45 * 4].clamp(0, 1).permute(1, 2, 0).numpy()
    assert np.abs(expected - ours).max() < 1e-5


async def _load_error(settings: VisionSettings) -> str:
    async with serve(settings, wait_loaded=False) as vision:
        for _ in range(500):
            info = await vision.info.GetServiceInfo(common_pb2.GetServiceInfoRequest())
            if info.load_error:
                break
            await asyncio.sleep(0.02)
        assert not info.ready
        error = await expect_error(vision.stub.UpscaleImage(pb.UpscaleImageRequest(image=picture(8, 8))),
                                   "MODEL_UNAVAILABLE")
        assert info.load_error in error.message
        return info.load_error


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message for machines without a GPU")
async def test_full_profile_without_a_gpu_says_what_to_do():
    message = await _load_error(settings_for(profile="full", device="auto"))
    assert "CUDA GPU" in message and "UNIVENCE_VISION_PROFILE=tiny" in message


async def test_full_profile_without_sam3_weights_names_the_model_and_what_to_do(tmp_path):
    missing = str(tmp_path / "sam3")
    message = await _load_error(settings_for(profile="full", sam3_model=missing))
    assert missing in message and "download" in message and "UNIVENCE_VISION_SAM3_MODEL" in message


async def test_full_profile_without_real_esrgan_weights_names_the_model_and_what_to_do(tmp_path):
    missing = str(tmp_path / "RealESRGAN_x4plus.pth")
    message = await _load_error(settings_for(profile="full", sam3_model="", realesrgan_2x_weights="",
                                             realesrgan_4x_weights=missing))
    assert "realesrgan_4x" in message and missing in message and "UNIVENCE_VISION_REALESRGAN_4X_WEIGHTS" in message


async def test_full_profile_with_a_wrong_scale_checkpoint_is_a_load_error(tmp_path):
    paths = write_tiny_checkpoints(tmp_path)
    message = await _load_error(settings_for(profile="full", sam3_model="", swin2sr_model="",
                                             realesrgan_2x_weights=str(paths["realesrgan_4x"])))
    assert "realesrgan_2x is 2x" in message and "a 4x" in message


async def test_the_full_profile_loads_local_folders_and_files_and_answers_as_the_tiny_one(tmp_path):
    """Saved tiny models go through the full profile's real loading path (from_pretrained of folders,
    spandrel of checkpoint files, hub-style names not used), and give the tiny profile's answers."""
    tokenizer, text, tracker = build_tiny_sam3()
    text.save_pretrained(tmp_path / "sam3")
    tokenizer.save_pretrained(tmp_path / "sam3")
    tracker.save_pretrained(tmp_path / "sam3-tracker")
    build_tiny_swin2sr().save_pretrained(tmp_path / "swin2sr")
    paths = write_tiny_checkpoints(tmp_path / "realesrgan")
    settings = settings_for(profile="full", sam3_model=str(tmp_path / "sam3"), sam3_tracker_model=str(
        tmp_path / "sam3-tracker"), swin2sr_model=str(tmp_path / "swin2sr"), score_threshold=0.3,
        **{f"{method}_weights": str(path) for method, path in paths.items()})
    segment_request = pb.SegmentImageRequest(image=picture(64, 48, seed=3), prompt="person")
    points_request = pb.SegmentImageRequest(image=picture(64, 48), points=[pb.Point(x=30, y=20)],
                                            multimask_output=True)
    upscale_requests = [pb.UpscaleImageRequest(image=picture(20, 12), method=m) for m in range(1, 6)]

    async def answers(service_settings):
        async with serve(service_settings) as vision:
            info = await vision.info.GetServiceInfo(common_pb2.GetServiceInfoRequest())
            text_mask = (await vision.stub.SegmentImage(segment_request)).mask
            candidates = list((await vision.stub.SegmentImage(points_request)).candidate_masks)
            upscaled = [decode((await vision.stub.UpscaleImage(r)).image).tobytes() for r in upscale_requests]
            return info, (text_mask, candidates, upscaled)

    info, loaded = await answers(settings)
    assert info.profile == "full" and {m.id: m.source for m in info.models}["sam3"] == str(tmp_path / "sam3")
    _, tiny = await answers(settings_for())
    assert loaded[0] == tiny[0] and loaded[1] == tiny[1]
    for method, (a, b) in enumerate(zip(loaded[2], tiny[2], strict=True), start=1):
        assert a == b, pb.UpscaleMethod.Name(method)


async def test_a_deployment_without_some_models_serves_the_others(tmp_path):
    async with serve(settings_for(sam3_model="", swin2sr_model="", realesrgan_2x_weights="")) as vision:
        info = await vision.info.GetServiceInfo(common_pb2.GetServiceInfoRequest())
        assert [m.id for m in info.models] == ["realesrgan_4x", "realesrgan_4x_anime", "lanczos"]
        error = await expect_error(vision.stub.UpscaleImage(pb.UpscaleImageRequest(
            image=picture(8, 8), method=pb.UPSCALE_METHOD_SWIN2SR)), "INVALID_REQUEST")
        assert error.param == "method" and "not served" in error.message
        error = await expect_error(vision.stub.SegmentImage(pb.SegmentImageRequest(image=picture(8, 8), prompt="x")),
                                   "MODEL_UNAVAILABLE")
        assert "UNIVENCE_VISION_SAM3_MODEL" in error.message
