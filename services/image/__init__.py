"""The image service: text-to-image, batches and multi-image edits on FLUX.2 [klein] 4B (diffusers)."""
