"""Vision: POST /v1/images/segmentations, /v1/images/upscale, /v1/images/remove-background and
/v1/videos/remove-background."""
