"""Paper-style pictures of a token sequence, as uint8 arrays (save with PIL).

`token_strip` draws one image like the paper's Figs. 3, 5 and 6: a column per token with the
reconstruction so far, the token's own contribution as a signed heatmap and (masked models) its
mask; the last column holds the source and the final reconstruction.
"""

import numpy as np

from .tokens import Rendering


def signed_heatmap(contribution, scale: float | None = None) -> np.ndarray:
    """(H, W, 3) signed contribution -> (H, W, 3) uint8: blue where it darkens, red where it
    brightens, white where it does nothing; `scale` is the |value| drawn at full colour."""
    value = np.asarray(contribution).mean(axis=-1)
    scale = scale or max(float(np.abs(value).max()), 1e-6)
    t = np.clip(value / scale, -1, 1)[..., None]
    white, red, blue = np.ones(3), np.array([0.8, 0.1, 0.1]), np.array([0.1, 0.3, 0.8])
    rgb = np.where(t >= 0, white + t * (red - white), white - t * (blue - white))
    return (rgb * 255).round().astype(np.uint8)


def mask_image(mask) -> np.ndarray:
    """(H, W) mask in [0, 1] -> (H, W, 3) uint8 greyscale."""
    return np.repeat((np.clip(mask, 0, 1) * 255).round().astype(np.uint8)[..., None], 3, axis=-1)


def to_uint8(image) -> np.ndarray:
    return (np.clip(image, 0, 1) * 255).round().astype(np.uint8)


def token_strip(rendering: Rendering, image=None, gap: int = 2) -> np.ndarray:
    """Rows: reconstruction after each token; the token's contribution (signed heatmap); its mask
    (masked models only). The last column: the source `image` (if given) over the final
    reconstruction. Returns a uint8 (rows * H + gaps, (n + 1) * W + gaps, 3) array on white."""
    n = len(rendering.reconstructions)
    if n == 0:
        raise ValueError("no tokens to draw")
    H, W = rendering.reconstructions.shape[1:3]
    # one scale for all tokens: their sizes compare
    scale = float(np.abs(rendering.contributions.mean(axis=-1)).max()) or 1e-6
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
