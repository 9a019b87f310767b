"""The classical segmenters the masks are scored beside (bsds-seg, the results page): k-means on
colour and position, SLIC superpixels and Felzenszwalb's graph segmentation, each asked for k
segments, and how their settings were picked on BSDS500 train + val.

Each segmenter takes an image HxWx3 float in [0, 1] and k, and returns HxW integer labels.
"""

import numpy as np
from skimage.segmentation import felzenszwalb, slic
from sklearn.cluster import KMeans
from tqdm import tqdm

from .data import ground_truth_path, human_segmentations, read_image, train_val_paths
from .metrics import human_ari

# The baselines' settings, picked on BSDS500 train + val, never on test, by
# `python -m vle_core.evaluate --tune-baselines` (the figures: docs/experiments.md).
KMEANS_POSITION = 1.0  # weight of (y, x), in units of the longer side, beside (r, g, b) in [0, 1]
SLIC_COMPACTNESS = 30.0  # colour vs space in SLIC's Lab distance (skimage's default is 10)
FELZENSZWALB_SIGMA = 1.5  # Gaussian pre-smoothing, pixels
FELZENSZWALB_MIN_SIZE = 500  # smallest component, pixels: small ones are merged into neighbours


def kmeans_segments(image: np.ndarray, k: int, seed: int = 0, position: float = KMEANS_POSITION) -> np.ndarray:
    """k-means on (r, g, b, y, x), position scaled to the unit square times `position`."""
    H, W = image.shape[:2]
    ys, xs = np.mgrid[0:H, 0:W] / max(H, W) * position
    features = np.concatenate([image.reshape(-1, 3), ys.reshape(-1, 1), xs.reshape(-1, 1)], axis=1)
    return KMeans(k, n_init=3, random_state=seed).fit_predict(features).reshape(H, W)


def segment_count(labels: np.ndarray) -> int:
    """How many segments a label map has."""
    return len(np.unique(labels))


def slic_segments(image: np.ndarray, k: int, compactness: float = SLIC_COMPACTNESS) -> np.ndarray:
    """SLIC superpixels (Achanta et al. 2012). SLIC treats its n_segments as a hint, so it is
    nudged (a few tries) until the count is as near k as it gets."""
    best, n_segments = None, k
    for _ in range(4):
        labels = slic(image, n_segments=n_segments, compactness=compactness, start_label=0)
        if best is None or abs(segment_count(labels) - k) < abs(segment_count(best) - k):
            best = labels
        if segment_count(labels) == k:
            break
        n_segments = max(1, n_segments + k - segment_count(labels))
    return best


def felzenszwalb_segments(
    image: np.ndarray, k: int, sigma: float = FELZENSZWALB_SIGMA, min_size: int = FELZENSZWALB_MIN_SIZE
) -> np.ndarray:
    """Felzenszwalb and Huttenlocher's graph segmentation (2004). It has no segment count, only
    a scale (larger: fewer segments), so the scale is bisected in log10 for the count nearest k."""
    low, high, best = 0.0, 6.0, None  # log10(scale)
    for _ in range(12):
        middle = (low + high) / 2
        labels = felzenszwalb(image, scale=10**middle, sigma=sigma, min_size=min_size)
        if best is None or abs(segment_count(labels) - k) < abs(segment_count(best) - k):
            best = labels
        if segment_count(labels) == k:
            break
        low, high = (middle, high) if segment_count(labels) > k else (low, middle)
    return best


BASELINES = {"kmeans": kmeans_segments, "slic": slic_segments, "felzenszwalb": felzenszwalb_segments}


def tune_baselines(every: int = 10, k: int = 8) -> dict:
    """Each baseline's settings by mean ARI on every `every`-th BSDS500 train + val image at k
    segments; prints the grid. Train and val only: test stays held out."""
    paths = train_val_paths()[::every]
    grids = {
        "kmeans": [{"position": p} for p in (0.0, 0.5, 1.0, 2.0)],
        "slic": [{"compactness": c} for c in (1.0, 3.0, 10.0, 30.0)],
        "felzenszwalb": [{"sigma": s, "min_size": m} for s in (0.5, 0.8, 1.5) for m in (50, 500)],
    }
    scores = {(name, i): [] for name, grid in grids.items() for i in range(len(grid))}
    for path in tqdm(paths, desc="tune on train+val", leave=False):
        image, truths = read_image(path), human_segmentations(ground_truth_path(path))
        for name, grid in grids.items():
            for i, settings in enumerate(grid):
                scores[name, i].append(human_ari(truths, BASELINES[name](image, k, **settings)))
    best = {}
    for name, grid in grids.items():
        for i, settings in enumerate(grid):
            print(f"{name} {settings}: ARI {np.mean(scores[name, i]):.4f} on {len(paths)} train+val images")
        best[name] = grid[int(np.argmax([np.mean(scores[name, i]) for i in range(len(grid))]))]
    print(f"best: {best}")
    return best
