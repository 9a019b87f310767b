"""Token editing: pure functions from tokens to new tokens. They never change their input.

Because each token decodes independently of the others (`loop.decode_tokens`), any edited
sequence decodes: an edit costs one decode, never an encode. Positions are in pixels; a token's
latent grid has one cell per 8x8 pixels, so a move of 8 px is a shift of one cell.
"""

import numpy as np
import torch

from .config import DOWNSAMPLING
from .tokens import Tokens


def _indices(tokens: Tokens, indices) -> list[int]:
    indices = [indices] if isinstance(indices, int) else list(indices)
    for i in indices:
        if not -len(tokens) <= i < len(tokens):
            raise ValueError(f"token index {i} is out of range for {len(tokens)} tokens")
    return [i % len(tokens) for i in indices]


def keep(tokens: Tokens, indices) -> Tokens:
    """Only the tokens at `indices`, in the original order."""
    return tokens[sorted(set(_indices(tokens, indices)))]


def drop(tokens: Tokens, indices) -> Tokens:
    """Every token but those at `indices`."""
    dropped = set(_indices(tokens, indices))
    return tokens[[i for i in range(len(tokens)) if i not in dropped]]


def _shift_cells(z, cells: int, dim: int):
    """Shift z along dim by a whole number of cells; what leaves is gone, what enters is zero."""
    size = z.shape[dim]
    out = torch.zeros_like(z)
    if abs(cells) < size:
        src = z.narrow(dim, max(0, -cells), size - abs(cells))
        out.narrow(dim, max(0, cells), size - abs(cells)).copy_(src)
    return out


def shift_latent(z, dx: float, dy: float):
    """Move a latent map z [..., h, w] by (dx, dy) cells: right and down are positive.
    A fractional shift blends the two nearest whole shifts (bilinear interpolation); whole
    shifts are exact. Nothing wraps around."""
    for delta, dim in ((dx, -1), (dy, -2)):
        whole = int(np.floor(delta))
        frac = float(delta - whole)
        shifted = _shift_cells(z, whole, dim)
        z = shifted if frac == 0 else (1 - frac) * shifted + frac * _shift_cells(z, whole + 1, dim)
    return z


VACATED = ("zeros", "background")


def background(z):
    """A latent map's background z [C, h, w] -> [C, 1, 1]: per channel, the median over its cells.
    A masked token covers an object and codes "not mine" everywhere else, so most of its cells
    hold that value."""
    return z.flatten(1).median(dim=1).values[:, None, None]


def _shift(z, dx: float, dy: float, vacated: str):
    """shift_latent, with the cells a move vacates set to zero or to the map's background. Zeros
    are "nothing" for a vanilla token; for a masked token they are no code at all, and its decoded
    mask lights up along the edge between them and its background: a rectangular seam. Moving the
    token's difference from its background fills what it vacates with background instead."""
    if vacated not in VACATED:
        raise ValueError(f"vacated is one of {VACATED}, not {vacated!r}")
    if vacated == "zeros":
        return shift_latent(z, dx, dy)
    b = background(z)
    return shift_latent(z - b, dx, dy) + b


def translate(tokens: Tokens, index: int, dx: float, dy: float, vacated: str = "zeros") -> Tokens:
    """Relocate what token `index` encodes by (dx, dy) pixels (right and down positive). vacated:
    what fills the cells the move leaves, "zeros" or (for a masked VLE's tokens) "background"."""
    (i,) = _indices(tokens, index)
    latents = tokens.latents.clone()
    latents[i] = _shift(tokens.latents[i], dx / DOWNSAMPLING, dy / DOWNSAMPLING, vacated)
    return Tokens(latents, tokens.mean.clone(), tokens.std.clone(), tokens.image_size, tokens.stage.clone())


def scale(tokens: Tokens, index: int, factor: float) -> Tokens:
    """Multiply token `index`'s addition to the image by `factor` (0 silences it, 2 doubles it).
    The addition is D(z) * std + mean (times the mask), so scaling std and mean scales it exactly."""
    (i,) = _indices(tokens, index)
    mean, std = tokens.mean.clone(), tokens.std.clone()
    mean[i] *= factor
    std[i] *= factor
    return Tokens(tokens.latents.clone(), mean, std, tokens.image_size, tokens.stage.clone())


def transplant(tokens: Tokens, donor: Tokens, donor_index: int, dx: float = 0.0, dy: float = 0.0) -> Tokens:
    """Append token `donor_index` of another image's tokens, at the same pixel position in this
    image (then moved by dx, dy): its latent map is cropped or zero-padded at the bottom and right
    to this image's grid. Both must come from the same model (same latent channels)."""
    (j,) = _indices(donor, donor_index)
    if donor.latents.shape[1] != tokens.latents.shape[1]:
        raise ValueError(
            f"the donor tokens have {donor.latents.shape[1]} latent channels, these have {tokens.latents.shape[1]}: they come from different models"
        )
    C, h, w = tokens.latents.shape[1:]
    z = torch.zeros(C, h, w)
    dh, dw = min(h, donor.latents.shape[2]), min(w, donor.latents.shape[3])
    z[:, :dh, :dw] = donor.latents[j, :, :dh, :dw]
    z = shift_latent(z, dx / DOWNSAMPLING, dy / DOWNSAMPLING)
    return Tokens.cat([tokens, Tokens(z[None], donor.mean[j : j + 1], donor.std[j : j + 1], tokens.image_size, donor.stage[j : j + 1])])


def scatter(tokens: Tokens, seed: int = 0, vacated: str = "zeros") -> Tokens:
    """Move every token by its own random offset, in whole cells, of up to half the image each
    way: Section 4's proposed experiment of randomising where the objects are. vacated: as translate."""
    rng = np.random.default_rng(seed)
    h, w = tokens.latents.shape[2:]
    latents = (
        torch.stack([_shift(z, int(rng.integers(-(w // 2), w // 2 + 1)), int(rng.integers(-(h // 2), h // 2 + 1)), vacated) for z in tokens.latents])
        if len(tokens)
        else tokens.latents.clone()
    )
    return Tokens(latents, tokens.mean.clone(), tokens.std.clone(), tokens.image_size, tokens.stage.clone())


def _shift_pixels(picture: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """picture [H, W] or [H, W, C] moved by whole pixels (dx, dy rounded) as shift_latent moves a
    latent map: what enters is zero, nothing wraps around."""
    channels_last = picture.ndim == 3
    moved = shift_latent(torch.from_numpy(np.ascontiguousarray(np.moveaxis(picture, -1, 0) if channels_last else picture)), round(dx), round(dy)).numpy()
    return np.moveaxis(moved, 0, -1) if channels_last else moved


def carry_objects(contributions: np.ndarray, source_masks: np.ndarray, whole: list[bool], on: list[bool], offsets: list[tuple[float, float]]) -> np.ndarray:
    """Object edits for a masked VLE whose first tokens code the whole image (`whole_tokens`).

    There a region token only refines what the whole-image tokens drew, so switching it off or
    moving it changes detail, not the object. Here a region token's object is its mask where it
    was encoded and everything the tokens draw there: moved, it carries the whole-image tokens'
    picture under its mask along and covers what they drew where it lands; moved or off, it takes
    that picture away from where it was, which then shows what no token draws (as a switched-off
    token of a regions-only model does).
    This acts on what the tokens decode to, in pixels: the tokens themselves are edited as usual.

    contributions: [m, H, W, 3], every token of the edited sequence decoded (on or off);
    source_masks: [m, H, W] in [0, 1], each region token's mask where it was encoded (zeros for
    the rest); whole: which tokens code the whole image; on: which are switched on; offsets: each
    token's (dx, dy) in pixels. Returns new contributions, [m, H, W, 3]; the input is unchanged."""
    out = contributions.astype(np.float32, copy=True)
    drawn = sum((out[i] for i in range(len(out)) if whole[i] and on[i]), np.zeros(out.shape[1:], np.float32))  # the whole-image tokens' picture
    holes = np.ones(out.shape[1:3], np.float32)
    for i in range(len(out)):
        if whole[i] or not source_masks[i].any() or (on[i] and offsets[i] == (0.0, 0.0)):
            continue  # a whole-image token, a token without a region, or a region left where it was
        holes *= 1 - source_masks[i]
        if on[i]:
            out[i] += _shift_pixels(source_masks[i][..., None] * drawn, *offsets[i])
            holes *= 1 - _shift_pixels(source_masks[i], *offsets[i])  # where it goes, it covers what the whole-image tokens drew
    for i in range(len(out)):
        if whole[i]:
            out[i] *= holes[..., None]
    return out
