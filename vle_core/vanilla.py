"""The vanilla VLE (Algorithm 1): one encoder and one decoder, applied to the residual; with
config.own_stages, each of the first tokens has an encoder and a decoder of its own."""

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
        # config.own_stages: tokens 1..k use own_encoders[n - 1] and own_decoders[n - 1]; later ones the pair above
        self.own_encoders = nn.ModuleList(Encoder(config, in_channels=3) for _ in range(config.own_stages))
        self.own_decoders = nn.ModuleList(Decoder(config, out_channels=3) for _ in range(config.own_stages))

    # What the residual loop asks of a model (masked.MaskedVLE answers from its config): a vanilla
    # VLE has no precursor S, so no whole-image tokens before S's regions and no passes of S; each
    # token is coded with its step's stage.
    whole_tokens = 0
    new_pass = 0.0
    stage_by_pass = False

    def forward(self, x, n_tokens: int):
        """The residual loop on x [B, 3, H, W] in [-1, 1] (a forward, so DistributedDataParallel syncs it)."""
        return residual_loop(self, x, n_tokens)

    def encode_step(self, residual, taken=None, memory=None, stage=None, image=None):
        """residual: [B, 3, H, W], normalised per image and channel; stage: [B], the token step
        (1-based; used by a staged VLE); taken and image are a masked VLE's (unused).
        Returns (z, memory, proposal): z [B, 4, H/8, W/8]; a vanilla VLE has no memory and no
        proposal (both None)."""
        z = by_stage(self.own_encoders, self.encoder, lambda encoder, x, n: encoder(x, stage=n)[0], residual, stage)
        return z, None, None

    def decode(self, z, mean, std, stage=None):
        """A token's addition to the reconstruction: D(z) de-normalised with its residual's
        statistics. z: [B, 4, h, w]; mean, std: [B, 3]; stage: [B]. Returns ([B, 3, 8h, 8w], None)."""
        y = by_stage(self.own_decoders, self.decoder, lambda decoder, z, n: decoder(z, n), z, stage)
        return denormalise(y, mean, std), None

    def coders(self) -> list[tuple[Encoder, Decoder]]:
        """Every E and D pair: the shared one, then each own_stages token's."""
        return [(self.encoder, self.decoder), *zip(self.own_encoders, self.own_decoders)]

    @torch.no_grad()
    def init_linear_code(self, components: torch.Tensor) -> None:
        """Start a staged VLE as patch-PCA (nets.start_as_linear_code)."""
        start_as_linear_code(self, components)


def by_stage(own, shared, run, x, stage):
    """run(net, x, stage) with each token's net: own[n - 1] for a token of stage n <= len(own), else
    shared. x: [B, ...]; stage: [B] (None: shared). A batch of one stage (training's) runs as one."""
    if not len(own) or stage is None:
        return run(shared, x, stage)
    index = stage.clamp(1, len(own) + 1) - 1  # len(own): the shared net
    nets = [*own, shared]
    first = int(index[0])
    if bool((index == first).all()):
        return run(nets[first], x, stage)
    out = None
    for i in index.unique().tolist():
        rows = index == i
        y = run(nets[i], x[rows], stage[rows])
        out = y.new_empty((len(x), *y.shape[1:])) if out is None else out
        out[rows] = y
    return out
