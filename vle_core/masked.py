"""The masked VLE (Algorithm 2): a precursor S, a memory in the encoder, and a mask per token.

Where the paper and the authors' code part ways, this implementation chooses:
- The mask a token carries is decoded from its latent (the decoder's 4th channel, as in the
  authors' code), not S's output: a token must rebuild its mask by itself, or an edited or
  relocated token could not show where it acts. S's proposal conditions the encoder, as
  Algorithm 2's E(X~_n | M~_n): the encoder sees the proposal and the residual inside it.
- A token's mask gates what it adds: it shows mask * rgb, and in the residual loop S's proposal
  gates its rgb (loop.residual_loop). Algorithm 2 and the authors add rgb ungated; trained so on
  the CPU, an ungated token paints everywhere and its masks do not find objects (foreground ARI
  0.10; docs/design.md). Gating is MONet's "scope": a token cannot change pixels outside its mask.
- Optionally (`whole_tokens`, for photos) the first tokens' proposals are the whole image, and
  S's regions, grouped on the image itself (`precursor_input`), refine what they left.
"""

from dataclasses import replace

import torch
import torch.nn as nn

from .config import MaskedVLEConfig
from .loop import denormalise, residual_loop
from .nets import Decoder, Encoder, LearnedPrecursor, Precursor, start_as_linear_code


class MaskedVLE(nn.Module):
    def __init__(self, config: MaskedVLEConfig):
        super().__init__()
        self.config = config
        self.precursor = LearnedPrecursor(config) if config.precursor == "learned" else Precursor(config)
        self.encoder = Encoder(config, in_channels=4, memory_channels=config.memory_channels)
        self.decoder = Decoder(config, out_channels=4)

    @property
    def whole_tokens(self) -> int:
        """Tokens 1..whole_tokens propose the whole image; S's regions start after them."""
        return self.config.whole_tokens

    @property
    def new_pass(self) -> float:
        """Share of the image S's proposals cover before S forgets them and starts over; 0: never."""
        return self.config.precursor_new_pass

    @property
    def stage_by_pass(self) -> bool:
        """Whether a region token's stage is its pass of S (whole_tokens + 1, + 2, ...), not its step."""
        return self.config.stage_by_pass

    def forward(self, x, n_tokens: int):
        """The residual loop on x [B, 3, H, W] in [-1, 1] (a forward, so DistributedDataParallel syncs it)."""
        return residual_loop(self, x, n_tokens)

    def encode_step(self, residual, taken, memory=None, stage=None, image=None):
        """residual: [B, 3, H, W] normalised; taken: [B, 1, H, W], the clamped sum of S's proposals
        in this pass of S (loop.residual_loop); memory: the conv-LSTM state (None for an image's
        first token); stage: [B] the token step (1-based); image: [B, 3, H, W] the normalised image,
        which S groups when precursor_input is "image".
        Returns (z [B, 4, H/8, W/8], memory, proposal [B, 1, H, W])."""
        if stage is not None and int(stage[0]) <= self.whole_tokens:
            proposal = torch.ones_like(taken)
        else:
            proposal = self.precursor(residual, taken, image if self.config.precursor_input == "image" else None)
        z, memory = self.encoder(torch.cat([proposal * residual, proposal], dim=1), memory, stage)
        return z, memory, proposal

    def decode(self, z, mean, std, stage=None):
        """Returns (de-normalised rgb [B, 3, 8h, 8w], mask [B, 1, 8h, 8w] in (0, 1)); the token's
        contribution is their product, the loop's gating is S's proposal (loop.residual_loop)."""
        out = self.decoder(z, stage)
        return denormalise(out[:, :3], mean, std), torch.sigmoid(out[:, 3:])

    def coders(self) -> list:
        """Every E and D pair: a masked VLE's tokens share one."""
        return [(self.encoder, self.decoder)]

    def set_precursor(self, **settings) -> None:
        """Change the weightless S's settings (precursor_*) on a trained model: S has no weights,
        so E and D stay as trained (`python -m vle_core.evaluate CKPT --tune-precursor`)."""
        if self.config.precursor != "grown":
            raise ValueError("only a masked VLE with the weightless S (precursor='grown') has S settings to change")
        self.config = replace(self.config, **settings)
        self.precursor = Precursor(self.config)

    @torch.no_grad()
    def init_linear_code(self, components: torch.Tensor) -> None:
        """Start a staged masked VLE's colour as patch-PCA (nets.start_as_linear_code)."""
        start_as_linear_code(self, components)
