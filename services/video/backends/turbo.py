"""The TurboDiffusion backend: TurboWan2.2-I2V-A14B with its own rCM sampler (1-4 steps) and sparse
attention, following its repo's `turbodiffusion/inference/wan2.2_i2v_infer.py`. CUDA only, 480p and 720p.

TurboDiffusion is not a pip dependency: it builds CUDA extensions and needs torchvision, triton and
flash-attn, none of which exist on a CPU machine. It is imported only here, only when this backend is
chosen; where it is missing, or there is no GPU, loading fails with what to install (the service stays
up answering MODEL_UNAVAILABLE with that message). Never a stand-in.

Differences from the script, on purpose: the image is fitted with Pillow (frames.fit) instead of
torchvision transforms; both experts stay on the GPU (no CPU round trips between requests); the
umT5 encoder stays loaded; progress and cancellation go through `Progress` at each rCM step.
"""

from __future__ import annotations

import itertools
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch

from services.common.errors import ModelLoadError
from services.video.backends import (
    DECODING,
    DENOISING,
    ENCODING_PROMPT,
    Progress,
    VideoJob,
    rcm_sigmas,
    turbo_installed,
)
from services.video.catalog import TURBODIFFUSION
from services.video.config import VideoSettings

INSTALL = ("install TurboDiffusion on a CUDA machine: `git clone https://github.com/thu-ml/TurboDiffusion && pip "
           "install -e TurboDiffusion --no-build-isolation` (it builds CUDA extensions and needs torchvision, triton, "
           "flash-attn; SpargeAttn for sagesla attention), then put TurboDiffusion/turbodiffusion and "
           "TurboDiffusion/turbodiffusion/inference on PYTHONPATH; or set UNIVENCE_VIDEO_BACKEND=diffusers")


def unavailable_reason(profile: str, device: str) -> str | None:
    """Why TurboDiffusion cannot run here (None when it can)."""
    if profile == "tiny":
        return ("TurboDiffusion has no tiny profile (its checkpoints are the only weights it runs); use "
                "UNIVENCE_VIDEO_BACKEND=diffusers for the tiny profile")
    if not device.startswith("cuda") or not torch.cuda.is_available():
        return (f"TurboDiffusion runs on CUDA only and this service runs on {device}: run it on a GPU machine, "
                f"or {INSTALL}")
    if not turbo_installed():
        return f"TurboDiffusion is not installed: {INSTALL}"
    return None


class TurboBackend:
    name = TURBODIFFUSION

    def __init__(self, settings: VideoSettings, device: str):
        from modify_model import create_model, tensor_kwargs  # TurboDiffusion's inference folder
        from rcm.tokenizers.wan2pt1 import Wan2pt1VAEInterface
        from rcm.utils.umt5 import get_umt5_embedding

        self.settings = settings
        self.device = device
        self.tensor_kwargs = tensor_kwargs
        self._embed = get_umt5_embedding
        args = SimpleNamespace(model="Wan2.2-A14B", attention_type=settings.turbo_attention,
                               sla_topk=settings.turbo_sla_topk, quant_linear=settings.turbo_quant_linear,
                               default_norm=False)
        self.high = create_model(dit_path=settings.turbo_high_noise_model, args=args).to(device)
        self.low = create_model(dit_path=settings.turbo_low_noise_model, args=args).to(device)
        self.vae = Wan2pt1VAEInterface(vae_pth=settings.turbo_vae)
        self._lock = threading.Lock()

    def generate(self, job: VideoJob, progress: Progress) -> np.ndarray:
        s, kw = self.settings, self.tensor_kwargs
        with self._lock, torch.no_grad():
            progress.stage(ENCODING_PROMPT, 0)
            text = self._embed(checkpoint_path=s.turbo_text_encoder, prompts=job.prompt).to(**kw)
            h, w, frames = job.height, job.width, job.num_frames
            factor = self.vae.spatial_compression_factor
            lat_t, lat_h, lat_w = self.vae.get_latent_num_frames(frames), h // factor, w // factor
            pixels = torch.from_numpy(np.asarray(job.image, dtype=np.float32) / 127.5 - 1.0)
            first = pixels.permute(2, 0, 1)[None, :, None].to(self.device)  # B C T H W in [-1, 1]
            clip = torch.cat([first, torch.zeros(1, 3, frames - 1, h, w, device=self.device)], dim=2)
            latents = self.vae.encode(clip)
            mask = torch.zeros(1, 4, lat_t, lat_h, lat_w, **kw)
            mask[:, :, 0] = 1.0
            condition = {"crossattn_emb": text, "y_B_C_T_H_W": torch.cat([mask, latents.to(**kw)], dim=1)}
            generator = torch.Generator(device=self.device).manual_seed(job.seed)
            noise = torch.randn(1, self.vae.latent_ch, lat_t, lat_h, lat_w, dtype=torch.float32, device=self.device,
                                generator=generator)
            times = torch.tensor([*rcm_sigmas(job.steps, s.sigma_max), 0.0], dtype=torch.float64, device=self.device)
            x = noise.to(torch.float64) * times[0]
            ones = torch.ones(1, 1, device=self.device, dtype=x.dtype)
            for i, (t_cur, t_next) in enumerate(itertools.pairwise(times)):
                net = self.high if t_cur.item() >= s.turbo_boundary else self.low
                velocity = net(x_B_C_T_H_W=x.to(**kw), timesteps_B_T=(t_cur.float() * ones * 1000).to(**kw),
                               **condition).to(torch.float64)
                if job.use_ode:
                    x = x - (t_cur - t_next) * velocity
                else:
                    fresh = torch.randn(*x.shape, dtype=torch.float32, device=self.device, generator=generator)
                    x = (1 - t_next) * (x - t_cur * velocity) + t_next * fresh
                progress.stage(DENOISING, i + 1)
            progress.stage(DECODING, job.steps)
            video = self.vae.decode(x.float()).float().clamp(-1, 1)  # B C T H W
        frames_rgb = ((video[0].permute(1, 2, 3, 0) + 1.0) * 127.5).round().to(torch.uint8)
        return frames_rgb.cpu().numpy()

    def warm_up(self) -> None:
        from PIL import Image

        job = VideoJob(Image.new("RGB", (832, 480), (90, 120, 150)), "warm-up", None, 5, 1, 832, 480, "480p", True, 0)
        self.generate(job, Progress(lambda *_: None, threading.Event()))


def load_turbo(settings: VideoSettings, profile: str, device: str) -> Any:
    """The TurboDiffusion backend, or a ModelLoadError that says what to install or download."""
    reason = unavailable_reason(profile, device)
    if reason:
        raise ModelLoadError(reason)
    for name in ("turbo_high_noise_model", "turbo_low_noise_model", "turbo_vae", "turbo_text_encoder"):
        path = Path(getattr(settings, name)).expanduser()
        if not path.is_file():
            raise ModelLoadError(f"cannot load TurboDiffusion: {name} {str(path)!r} is not a file; download the "
                                 "TurboWan2.2-I2V-A14B-720P checkpoints, the Wan2.1 VAE and the umT5 encoder (see "
                                 f"TurboDiffusion's README) and point UNIVENCE_VIDEO_{name.upper()} at them")
    return TurboBackend(settings, device)
