"""The small helpers every modality shares instead of keeping its own copy: a local model folder's check
and a library error's first line (devices.py), the prompt check and the model-failure status (errors.py),
the result image encoder (univence.imaging) and the message size in bytes (config.py)."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from services.common.config import ServiceSettings
from services.common.devices import first_line, local_model
from services.common.errors import ModelLoadError, Reason, ServiceError, check_text, model_failed
from univence.imaging import encode


def test_local_model_passes_hub_ids_and_expands_folders_that_hold_the_marker(tmp_path, monkeypatch):
    assert local_model("owner/model", "config.json", "the model", "do this") == "owner/model"
    (tmp_path / "config.json").write_text("{}")
    monkeypatch.setenv("HOME", str(tmp_path.parent))
    assert local_model(f"~/{tmp_path.name}", "config.json", "the model", "do this") == str(tmp_path)


def test_local_model_names_the_folder_kind_marker_and_what_to_do(tmp_path):
    missing = str(tmp_path / "klein")
    with pytest.raises(ModelLoadError) as error:
        local_model(missing, "model_index.json", "the image model", "download it", kind="diffusers pipeline")
    assert str(error.value) == (f"cannot load the image model {missing!r}: {missing} is not a diffusers pipeline "
                                "folder (no model_index.json); download it")
    with pytest.raises(ModelLoadError, match="is not a model folder"):
        local_model(missing, "config.json", "the model", "download it")


def test_first_line_is_the_message_head_or_the_type_name():
    assert first_line(OSError("no such file\n  a long traceback-like tail")) == "no such file"
    assert first_line(ValueError("  \n")) == "ValueError"


def test_check_text_refuses_long_text_and_nul_naming_the_field():
    check_text("a cat", 5, "prompt")
    with pytest.raises(ServiceError) as long:
        check_text("a cat!", 5, "prompt")
    assert (long.value.reason, long.value.param) == (Reason.ERROR_REASON_PAYLOAD_TOO_LARGE, "prompt")
    assert "6 characters; at most 5" in long.value.message
    with pytest.raises(ServiceError) as nul:
        check_text("a\x00b", 5, "negative_prompt")
    assert (nul.value.reason, nul.value.param) == (Reason.ERROR_REASON_INVALID_REQUEST, "negative_prompt")


def test_model_failed_is_processing_failed_naming_the_modality_and_the_exception():
    error = model_failed("vision", RuntimeError("CUDA out of memory"))
    assert error.reason == Reason.ERROR_REASON_PROCESSING_FAILED
    assert error.message == "the vision model failed while running the request (RuntimeError: CUDA out of memory)"


@pytest.mark.parametrize(("fmt", "mode"), [("PNG", "RGBA"), ("JPEG", "RGB"), ("WEBP", "RGBA")])
def test_encode_writes_the_format_and_jpeg_drops_alpha(fmt, mode):
    data = encode(Image.new("RGBA", (8, 6), (10, 20, 30, 128)), fmt, png_level=1)
    decoded = Image.open(io.BytesIO(data))
    assert (decoded.format, decoded.size, decoded.mode) == (fmt, (8, 6), mode)


def test_max_message_bytes_follows_the_setting():
    assert ServiceSettings(max_message_mb=3).max_message_bytes == 3 * 1024 * 1024
