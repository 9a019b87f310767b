"""The vanilla VLE (Algorithm 1): one encoder and one decoder, applied to the residual."""

import torch
import torch.nn as nn

from .config import VLEConfig
from .loop import denormalise, residual_loop
from .nets import Decoder, Encoder, start_as_linear_code


class VanillaVLE(nn.Module):
    """E and D of Algorithm 1. The residual loop that drives them is `vle_core.loop`."""

    def __init__(self, config: VLEConfig):
        super().__init__()
        self.config = config
        self.encoder = Encoder(config, in_channels=3)
        self.decoder = Decoder(config, out_channels=3)

    def forward(self, x, n_tokens: int):
        """The residual loop on x [B, 3, H, W] in [-1, 1] (a forward, so DistributedDataParallel syncs it)."""
        return residual_loop(self, x, n_tokens)

    def encode_step(self, residual, taken=None, memory=None, stage=None, image=None):
        """residual: [B, 3, H, W], normalised per image and channel; stage: [B], the token step
        (1-based; used by a staged VLE); taken and image are a masked VLE's (unused). Returns (z, memory, proposal): z [B, 4, H/8, W/8]; a
        vanilla VLE has no memory and no proposal (both None)."""
        z, _ = self.encoder(residual, stage=stage)
        return z, None, None

    def decode(self, z, mean, std, stage=None):
        """A token's addition to the reconstruction: D(z) de-normalised with its residual's
        statistics. z: [B, 4, h, w]; mean, std: [B, 3]; stage: [B]. Returns ([B, 3, 8h, 8w], None)."""
        return denormalise(self.decoder(z, stage), mean, std), None

    @torch.no_grad()
    def init_linear_code(self, components: torch.Tensor) -> None:
        """Start a staged VLE as patch-PCA (nets.start_as_linear_code)."""
        start_as_linear_code(self, components)
