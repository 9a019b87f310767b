"""The vanilla VLE (Algorithm 1): one encoder and one decoder, applied to the residual."""

import torch
import torch.nn as nn

from .config import VLEConfig
from .loop import denormalise, residual_loop
from .nets import Decoder, Encoder


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

    def encode_step(self, residual, taken=None, memory=None, stage=None):
        """residual: [B, 3, H, W], normalised per image and channel; stage: [B], the token step
        (1-based; used by a staged VLE). Returns (z, memory, proposal): z [B, 4, H/8, W/8]; a
        vanilla VLE has no memory and no proposal (both None)."""
        z, _ = self.encoder(residual, stage=stage)
        return z, None, None

    def decode(self, z, mean, std, stage=None):
        """A token's addition to the reconstruction: D(z) de-normalised with its residual's
        statistics. z: [B, 4, h, w]; mean, std: [B, 3]; stage: [B]. Returns ([B, 3, 8h, 8w], None)."""
        return denormalise(self.decoder(z, stage), mean, std), None

    @torch.no_grad()
    def init_linear_code(self, components: torch.Tensor) -> None:
        """Start a staged VLE as a linear code: stage n encodes and decodes with components
        4(n-1)..4n-1 (columns of `components`, [192, 192] in PixelUnshuffle's order, strongest
        first; pca.PatchPCA.unshuffled_components). Its convolutional paths start at zero, so the
        model is then that code exactly, up to the loop's per-channel normalisation."""
        if not self.config.stages:
            raise ValueError("only a staged VLE (config.stages > 0) has a linear code")
        C = self.config.latent_channels
        for n in range(min(self.config.stages, components.shape[1] // C)):
            basis = components[:, n * C : (n + 1) * C].to(self.encoder.linear.weight)  # [192, C]
            self.encoder.linear.weight[n] = basis.T
            self.decoder.linear.weight[n] = basis
