"""Paper-style pictures of a token sequence, as uint8 arrays (save with PIL).

`token_strip` draws one image like the paper's Figs. 3, 5 and 6: a column per token with the
reconstruction so far, the token's own contribution as a signed heatmap and (masked models) its
mask; the last column holds the source and the final reconstruction. The app (explorer/) draws
its views with the same `signed_heatmap` and pixel conversions.
"""

import numpy as np

from .tokens import Rendering

# The heatmap's ends: a token that adds light is drawn red, one that removes it blue, white where it does nothing.
POSITIVE, NEGATIVE = np.array([0.71, 0.02, 0.15], np.float32), np.array([0.23, 0.30, 0.75], np.float32)


def to_uint8(pixels) -> np.ndarray:
    """Pixels in [0, 1] (any shape) as uint8, rounded to the nearest level; values outside are clipped."""
    return (np.clip(pixels, 0, 1) * 255 + 0.5).astype(np.uint8)


def from_uint8(pixels: np.ndarray) -> np.ndarray:
    """uint8 pixels (any shape) as float32 in [0, 1]: the inverse of to_uint8."""
    return pixels.astype(np.float32) / 255


def signed_heatmap(contribution, scale: float | None = None) -> np.ndarray:
    """(H, W, 3) signed contribution -> (H, W, 3) uint8: its sum over the colour channels, red where
    it brightens, blue where it darkens, white where it does nothing. `scale`: the |sum| drawn at
    full colour; by default the token's own largest (as the paper's Fig. 6)."""
    value = np.asarray(contribution).sum(-1, dtype=np.float32)  # float32 even for the app's float16 contributions
    scale = scale or max(float(np.abs(value).max()), 1e-6)
    t = np.clip(value / np.float32(scale), -1, 1)[..., None]
    white = np.ones(3, np.float32)
    return to_uint8(np.where(t >= 0, white + t * (POSITIVE - white), white - t * (NEGATIVE - white)))


def mask_image(mask) -> np.ndarray:
    """(H, W) mask in [0, 1] -> (H, W, 3) uint8 greyscale."""
    return np.repeat(to_uint8(mask)[..., None], 3, axis=-1)


def token_strip(rendering: Rendering, image=None, gap: int = 2) -> np.ndarray:
    """Rows: reconstruction after each token; the token's contribution (signed heatmap); its mask
    (masked models only). The last column: the source `image` (if given) over the final
    reconstruction. Returns a uint8 (rows * H + gaps, (n + 1) * W + gaps, 3) array on white."""
    n = len(rendering.reconstructions)
    if n == 0:
        raise ValueError("no tokens to draw")
    H, W = rendering.reconstructions.shape[1:3]
    # one scale for all tokens: their sizes compare
    scale = float(np.abs(rendering.contributions.sum(axis=-1)).max()) or 1e-6
    rows = [
        [to_uint8(r) for r in rendering.reconstructions],
        [signed_heatmap(c, scale) for c in rendering.contributions],
    ]
    if rendering.masks is not None:
        rows.append([mask_image(m) for m in rendering.masks])
    blank = np.full((H, W, 3), 255, np.uint8)
    last = [to_uint8(image) if image is not None else blank, to_uint8(rendering.reconstructions[-1])]
    last += [blank] * (len(rows) - 2)
    for row, cell in zip(rows, last):
        row.append(cell)
    sheet = np.full((len(rows) * (H + gap) - gap, (n + 1) * (W + gap) - gap, 3), 255, np.uint8)
    for i, row in enumerate(rows):
        for j, cell in enumerate(row):
            sheet[i * (H + gap) : i * (H + gap) + H, j * (W + gap) : j * (W + gap) + W] = cell
    return sheet
