"""The video service: image to video with Wan2.2 I2V (TurboDiffusion on a GPU, diffusers elsewhere)."""
