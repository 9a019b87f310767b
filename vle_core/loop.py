"""The residual loop (Algorithms 1 and 2) and its inverse. Training, inference, evaluation and
the app all go through these two functions.

Tensors are [B, 3, H, W] images in [-1, 1]. Any H and W work: the image is padded by edge
replication to a multiple of 8 and every output is cropped back to H x W.
"""

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from .config import DOWNSAMPLING

STD_EPS = 1e-4  # as the authors: keeps the nearly-flat residuals of late tokens finite


@dataclass
class LoopOutput:
    """Per token step n = 1..N (lists of length N), for a batch of B images:
    latents [B, C, h, w]; mean, std [B, 3]; contributions [B, 3, H, W], what each token shows,
    decoded from its latent alone (a masked token: its decoded mask times its colour);
    reconstructions [B, 3, H, W], what the loop has rebuilt after step n, which the next residual
    and the training losses are taken from (for a masked VLE, each token's colour gated by S's
    proposal); masks and proposals [B, 1, H, W] for a masked VLE, else None."""

    latents: list
    mean: list
    std: list
    contributions: list
    reconstructions: list
    masks: list | None
    proposals: list | None
    stages: list = field(default_factory=list)  # [B] int64 per step: the stage each token was coded with


def from_pixels(pixels, device=None) -> torch.Tensor:
    """(H, W, 3) float pixels in [0, 1] -> [1, 3, H, W] in the loop's [-1, 1] units."""
    return torch.as_tensor(pixels).permute(2, 0, 1)[None].to(device) * 2 - 1


def to_pixels(x: torch.Tensor) -> np.ndarray:
    """[..., 3, H, W] in the loop's [-1, 1] units -> (..., H, W, 3) float32 pixels in [0, 1], clipped."""
    return ((x.detach().float().movedim(-3, -1).cpu().numpy() + 1) / 2).clip(0, 1)


def pad_to_grid(x):
    """Pad [B, C, H, W] on the bottom and right to multiples of 8 by repeating the edge."""
    H, W = x.shape[-2:]
    ph, pw = -H % DOWNSAMPLING, -W % DOWNSAMPLING
    return F.pad(x, (0, pw, 0, ph), mode="replicate") if ph or pw else x


def normalise(residual):
    """Per image and channel: (residual - mean) / (std + eps). Returns (normalised, mean [B, 3], std [B, 3]).
    Late residuals are tiny; normalised, every token's input looks alike, as in the authors' code."""
    mean = residual.mean(dim=(2, 3))
    centred = residual - mean[:, :, None, None]
    std = centred.pow(2).mean(dim=(2, 3)).sqrt() + STD_EPS  # two passes: a tenth of torch.std's time on a CPU
    return centred / std[:, :, None, None], mean, std


def denormalise(y, mean, std):
    """The inverse of `normalise` for an output y [B, 3, H, W]."""
    return y * std[:, :, None, None] + mean[:, :, None, None]


def residual_loop(model, x, n_tokens: int, stop=None) -> LoopOutput:
    """Encode x into n_tokens tokens, each from what the earlier ones have not yet rebuilt.
    stop: None, or a function called after each token with what the tokens so far show, the sum
    of their contributions [B, 3, H, W] in [-1, 1] units; the loop ends early when it returns True
    (an image's own length: VLE.encode with a target).
    model: a VanillaVLE or MaskedVLE: encode_step and decode, and what the loop asks of its S
    (whole_tokens, new_pass, stage_by_pass; a vanilla VLE's are 0, 0.0 and False)."""
    H, W = x.shape[-2:]
    target = pad_to_grid(x)
    reconstruction = torch.zeros_like(target)  # X^_0 = 0
    taken = target.new_zeros(target.shape[0], 1, *target.shape[2:])  # the sum of S's proposals so far (masked VLE)
    new_pass = model.new_pass  # masked VLE: S starts over once this share is taken; vanilla: 0
    memory = image = None
    # A token is coded with its step's stage, except a masked VLE's region token with stage_by_pass:
    # it takes its pass of S's stage (whole_tokens + 1 for the first pass), so a second pass codes
    # what the first left in a region instead of repeating its code, where nothing is left.
    whole, by_pass = model.whole_tokens, model.stage_by_pass
    passes = torch.zeros(target.shape[0], dtype=torch.long, device=target.device)  # per image: S's passes completed
    # what the tokens so far show (differs from `reconstruction` only for a masked VLE)
    shown_sum = torch.zeros_like(target)
    out = LoopOutput([], [], [], [], [], [], [])
    for n in range(1, n_tokens + 1):
        stage = torch.full((target.shape[0],), n, dtype=torch.long, device=target.device)
        if by_pass and n > whole:
            stage = whole + 1 + passes
        normalised, mean, std = normalise(target - reconstruction)
        image = normalised if image is None else image  # the first residual is the image itself
        z, memory, proposal = model.encode_step(normalised, taken.clamp(max=1.0), memory, stage, image)
        rgb, mask = model.decode(z, mean, std, stage)
        # E and D may run in bf16 (train.py); the sums stay float32
        rgb, mask = rgb.float(), None if mask is None else mask.float()
        if proposal is None:  # vanilla: the token adds its whole output
            reconstruction = reconstruction + rgb
            shown = rgb
        else:
            # A masked token shows its decoded mask times its colour, but the loop gates the colour by
            # S's proposal, as Algorithm 2 records S's mask: a soft decoded mask would leak colour
            # around an object, and S would spend later tokens on the rim it leaves.
            reconstruction = reconstruction + proposal * rgb
            taken = taken + proposal
            if new_pass:  # per image: a covered image's S forgets what was taken and starts over
                covered = taken.clamp(max=1.0).flatten(1).mean(1) >= new_pass
                taken = torch.where(covered[:, None, None, None], torch.zeros_like(taken), taken)
                passes = passes + (covered & (n > whole)).long()  # the whole-image tokens' cover is no pass of S
            shown = mask * rgb
            out.masks.append(mask[..., :H, :W])
            out.proposals.append(proposal[..., :H, :W])
        out.latents.append(z)
        out.stages.append(stage)
        out.mean.append(mean)
        out.std.append(std)
        out.contributions.append(shown[..., :H, :W])
        out.reconstructions.append(reconstruction[..., :H, :W])
        shown_sum = shown_sum + shown
        if stop is not None and stop(shown_sum[..., :H, :W]):
            break
    if not out.masks:
        out.masks = out.proposals = None
    return out


def decode_tokens(model, latents, mean, std, stage, image_size: tuple[int, int]):
    """The inverse: each token's contribution (and mask), decoded independently of the others,
    so any subset or edit of a token sequence decodes. latents [n, C, h, w]; mean, std [n, 3];
    stage [n], the step each token was encoded at. Returns (contributions [n, 3, H, W], masks
    [n, 1, H, W] or None)."""
    H, W = image_size
    rgb, masks = model.decode(latents, mean, std, stage)
    contributions = rgb if masks is None else masks * rgb
    return contributions[..., :H, :W], None if masks is None else masks[..., :H, :W]
