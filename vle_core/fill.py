"""A classical fill: what a hole in a picture holds, continued smoothly from what surrounds it.

An object edit (`edit.layered`) takes a region token's object out of the picture, and nothing
was ever drawn under it: this fill is what shows there. It is a push-pull pyramid (Gortler et
al. 1996, "The Lumigraph", section 3.4; the normalised convolution of Knutsson and Westin 1993):
the known pixels are averaged down a pyramid of halvings until every cell has some, then each
level fills its unknown pixels from the smoothed level above. A hole of any size fills in one
pass over the pyramid, in O(H W): a 512 x 512 picture takes a few milliseconds, where
scikit-image's biharmonic inpainting solves a sparse system per hole (seconds for a large one).
"""

import numpy as np
from scipy import ndimage


def fill_holes(picture: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """picture: [H, W, C] float; hole: [H, W] bool, True where the picture is unknown.
    Returns [H, W, C] float32: the picture where it is known, a smooth continuation of it in the
    hole. A picture that is all hole comes back as it was (there is nothing to continue)."""
    known = ~np.asarray(hole, bool)
    if known.all() or not known.any():
        return picture.astype(np.float32, copy=True)
    weight = known.astype(np.float32)
    values = picture.astype(np.float32) * weight[..., None]
    levels = []
    while True:  # push: sum values and weights over 2 x 2 cells, down to one cell
        levels.append((values, weight))
        if max(weight.shape) == 1:
            break
        values, weight = _halve(values), _halve(weight[..., None])[..., 0]
    filled = values / np.maximum(weight, 1e-12)[..., None]
    for values, weight in reversed(levels[:-1]):  # pull: fill each level's gaps from the one above
        H, W = weight.shape
        coarse = np.repeat(np.repeat(filled, 2, axis=0), 2, axis=1)[:H, :W]
        coarse = ndimage.uniform_filter(coarse, size=(3, 3, 1), mode="nearest")  # no blocks of 2^k pixels
        trust = np.minimum(weight, 1.0)[..., None]  # a cell with a whole known pixel's weight keeps its own mean
        filled = trust * values / np.maximum(weight, 1e-12)[..., None] + (1 - trust) * coarse
    return np.where(known[..., None], picture, filled).astype(np.float32)


def _halve(array: np.ndarray) -> np.ndarray:
    """[H, W, C] -> [ceil(H/2), ceil(W/2), C]: sums over 2 x 2 cells (an odd side padded with zeros)."""
    H, W = array.shape[:2]
    array = np.pad(array, ((0, H % 2), (0, W % 2), (0, 0)))
    return array.reshape((H + 1) // 2, 2, (W + 1) // 2, 2, -1).sum(axis=(1, 3))
