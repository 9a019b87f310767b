"""An image's own length beside the held-out photos': how many tokens they need for the same
target, read from the results page's measurements (docs/results/results.json, written by
`python -m vle_core.report`)."""

import json
from functools import lru_cache

import numpy as np

from . import settings
from .views import count


@lru_cache(maxsize=1)
def heldout_psnr() -> dict[str, np.ndarray]:
    """Checkpoint name -> [photos, tokens] PSNR of each held-out photo after 1..tokens tokens; {}
    where the results page is missing or unreadable (the caption then compares with nothing)."""
    try:
        results = json.loads(settings.RESULTS.read_text())
        curves = {name: np.asarray(c["psnr"], np.float64) for name, c in results["curves"].items()}
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    return {name: psnr for name, psnr in curves.items() if psnr.ndim == 2 and psnr.size}


def heldout_needed(checkpoint: str, target_psnr: float) -> np.ndarray | None:
    """Per held-out photo, the fewest tokens that reach target_psnr; measured + 1 where none do."""
    psnr = heldout_psnr().get(checkpoint)
    if psnr is None:
        return None
    reached = psnr >= target_psnr
    return np.where(reached.any(1), reached.argmax(1) + 1, psnr.shape[1] + 1)


def compared(checkpoint: str, target_psnr: float, k: int, reached: bool) -> str:
    """A clause saying how k tokens (reached or not) compare with the held-out photos, or ""."""
    needed = heldout_needed(checkpoint, target_psnr)
    if needed is None:
        return ""
    measured, photos = heldout_psnr()[checkpoint].shape[1], len(needed)
    of = f"of the {photos} held-out photos (docs/results)"
    if not reached:
        return f"{(needed <= measured).mean():.0%} {of} reach it within {count(measured)}"
    if k > measured:
        return f"{(needed > measured).mean():.0%} {of} also need more than {count(measured)}, the most measured"
    return f"{(needed > k).mean():.0%} {of} need more, {(needed < k).mean():.0%} fewer"
