"""The vision service: SAM3 segmentation and background removal (images and videos), and upscaling
(Real-ESRGAN, Swin2SR, Lanczos)."""
