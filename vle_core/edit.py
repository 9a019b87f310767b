"""Token editing: pure functions from tokens to new tokens, and from pictures to edited pictures.
They never change their input.

Because each token decodes independently of the others (`loop.decode_tokens`), any edited
sequence decodes: an edit costs one decode, never an encode. Positions are in pixels; a token's
latent grid has one cell per 8x8 pixels, so a move of 8 px is a shift of one cell.
A masked VLE's region token is also an object: `layered` edits it as a layer of the picture, which
is what `VLE.apply_edits` shows.
"""

import numpy as np
import torch
from scipy import ndimage

from .config import DOWNSAMPLING
from .fill import fill_holes
from .tokens import Tokens, latent_grid


def token_indices(tokens: Tokens, indices) -> list[int]:
    """0-based indices into `tokens` (negative ones count from the end), checked: a ValueError names
    one out of range."""
    indices = [indices] if isinstance(indices, int) else list(indices)
    for i in indices:
        if not -len(tokens) <= i < len(tokens):
            raise ValueError(f"token index {i} is out of range for {len(tokens)} tokens")
    return [i % len(tokens) for i in indices]


def keep(tokens: Tokens, indices) -> Tokens:
    """Only the tokens at `indices`, in the original order."""
    return tokens[sorted(set(token_indices(tokens, indices)))]


def drop(tokens: Tokens, indices) -> Tokens:
    """Every token but those at `indices`."""
    dropped = set(token_indices(tokens, indices))
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
    (i,) = token_indices(tokens, index)
    latents = tokens.latents.clone()
    latents[i] = _shift(tokens.latents[i], dx / DOWNSAMPLING, dy / DOWNSAMPLING, vacated)
    return Tokens(latents, tokens.mean.clone(), tokens.std.clone(), tokens.image_size, tokens.stage.clone())


def scale(tokens: Tokens, index: int, factor: float) -> Tokens:
    """Multiply token `index`'s addition to the image by `factor` (0 silences it, 2 doubles it).
    The addition is D(z) * std + mean (times the mask), so scaling std and mean scales it exactly."""
    (i,) = token_indices(tokens, index)
    mean, std = tokens.mean.clone(), tokens.std.clone()
    mean[i] *= factor
    std[i] *= factor
    return Tokens(tokens.latents.clone(), mean, std, tokens.image_size, tokens.stage.clone())


def transplant(tokens: Tokens, donor: Tokens, donor_index: int, dx: float = 0.0, dy: float = 0.0) -> Tokens:
    """Append token `donor_index` of another image's tokens, at the same pixel position in this
    image (then moved by dx, dy): its latent map is cropped or zero-padded at the bottom and right
    to this image's grid. Both must come from the same model (same latent channels)."""
    (j,) = token_indices(donor, donor_index)
    if donor.latents.shape[1] != tokens.latents.shape[1]:
        raise ValueError(
            f"the donor tokens have {donor.latents.shape[1]} latent channels, these have {tokens.latents.shape[1]}: "
            "they come from different models"
        )
    C, h, w = tokens.latents.shape[1:]
    z = torch.zeros(C, h, w)
    dh, dw = min(h, donor.latents.shape[2]), min(w, donor.latents.shape[3])
    z[:, :dh, :dw] = donor.latents[j, :, :dh, :dw]
    z = shift_latent(z, dx / DOWNSAMPLING, dy / DOWNSAMPLING)
    return Tokens.cat(
        [
            tokens,
            Tokens(z[None], donor.mean[j : j + 1], donor.std[j : j + 1], tokens.image_size, donor.stage[j : j + 1]),
        ]
    )


def scatter_offsets(n: int, image_size: tuple[int, int], seed: int = 0) -> list[tuple[int, int]]:
    """n random moves (dx, dy) in pixels, whole cells of up to half the image each way: Section
    4's proposed experiment of randomising where the objects are."""
    rng = np.random.default_rng(seed)
    h, w = latent_grid(image_size)
    cells = [(int(rng.integers(-(w // 2), w // 2 + 1)), int(rng.integers(-(h // 2), h // 2 + 1))) for _ in range(n)]
    return [(dx * DOWNSAMPLING, dy * DOWNSAMPLING) for dx, dy in cells]


def scatter(tokens: Tokens, seed: int = 0, vacated: str = "zeros") -> Tokens:
    """Move every token by its own `scatter_offsets` move. vacated: as translate."""
    offsets = scatter_offsets(len(tokens), tokens.image_size, seed)
    latents = (
        torch.stack(
            [_shift(z, dx / DOWNSAMPLING, dy / DOWNSAMPLING, vacated) for z, (dx, dy) in zip(tokens.latents, offsets)]
        )
        if len(tokens)
        else tokens.latents.clone()
    )
    return Tokens(latents, tokens.mean.clone(), tokens.std.clone(), tokens.image_size, tokens.stage.clone())


def shift_pixels(picture: np.ndarray, dx: int, dy: int) -> np.ndarray:
    """picture [H, W, ...] moved by whole pixels (right and down positive): what enters is zero,
    what leaves is gone, nothing wraps around."""
    out = np.zeros_like(picture)
    H, W = picture.shape[:2]
    if abs(dx) < W and abs(dy) < H:
        out[max(dy, 0) : H + min(dy, 0), max(dx, 0) : W + min(dx, 0)] = picture[
            max(-dy, 0) : H + min(-dy, 0), max(-dx, 0) : W + min(-dx, 0)
        ]
    return out


# A token's object is where its decoded mask passes OBJECT_FROM: a decoded mask is softer than the
# region it coded, so at 0.5 an object would leave its rim behind (docs/object-edits.md).
OBJECT_FROM = 0.2
HOLE_GROW = 1  # px a hole reaches past the object: what the mask's faint outer rim still shows of it
EDGE = 4.0  # a moved object's alpha is its mask sharpened about OBJECT_FROM by this factor: a crisp edge


def layered(
    picture: np.ndarray,
    masks: np.ndarray,
    contributions: np.ndarray,
    on: list[bool],
    offsets: list[tuple[int, int]],
    object_from: float = OBJECT_FROM,
) -> np.ndarray:
    """Object edits on a picture: each region token's object is a layer, the picture under its mask.

    A region token adds a difference to what the tokens before it drew, so switching it off in the
    sum leaves what was drawn before it (a grey hole, for the first token of a region), and moving
    its latent moves that difference over whatever is where it lands. Here, instead, a token
    switched off or moved takes its object out of the picture, and what was never drawn under it
    is filled from the surroundings (`fill.fill_holes`); a moved token's object is then painted
    where it lands, over what is there (MONet's alpha compositing), later tokens over earlier ones.
    Its colour is the picture with the token's own colour at full strength: a decoded mask's soft
    rim fades what the token adds, which would blur the object's edges into what was around it.

    picture: [H, W, 3] in [0, 1], what every token draws where it was encoded;
    masks: [m, H, W] in [0, 1], each region token's decoded mask where it was encoded;
    contributions: [m, H, W, 3], each region token's addition there (its colour times its mask);
    on: m flags; offsets: m whole-pixel moves (dx, dy), right and down positive;
    object_from: the mask past which a pixel is the token's object (OBJECT_FROM).
    Returns [H, W, 3] float32 in [0, 1]; the inputs are unchanged."""
    edited = [i for i in range(len(masks)) if not on[i] or tuple(offsets[i]) != (0, 0)]
    if not edited:
        return picture.astype(np.float32, copy=True)
    kept = np.prod([1 - masks[i] for i in edited], axis=0)  # how much of each pixel no edited object holds
    hole = ndimage.binary_dilation(kept < 1 - object_from, iterations=HOLE_GROW)
    out = fill_holes(picture, hole)
    transparent = max(object_from - 0.5 / EDGE, 0.01)  # the mask under which alpha is 0, so no colour is needed
    for i in edited:
        if on[i]:
            mask = masks[i][..., None]
            alpha = np.clip((mask - object_from) * EDGE + 0.5, 0, 1)
            colour = np.clip(picture + (1 - mask) * contributions[i] / np.maximum(mask, transparent), 0, 1)
            dx, dy = (int(round(v)) for v in offsets[i])
            out = out * (1 - shift_pixels(alpha, dx, dy)) + shift_pixels(colour * alpha, dx, dy)
    return np.clip(out, 0, 1).astype(np.float32)
