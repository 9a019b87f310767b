"""Evaluate a checkpoint on the held-out sets; the figures in the model cards come from here.

    python -m vle_core.evaluate checkpoints/vanilla-natural --suite kodak --tokens 12
    python -m vle_core.evaluate checkpoints/masked-scenes --suite scenes --tokens 6
    python -m vle_core.evaluate checkpoints/masked-natural --suite bsds-seg --tokens 8

Suites:
    kodak     PSNR / MSE / SSIM per token count on Kodak at full resolution, beside the best
              linear code with the same number of latent values: PCA of 8x8 RGB patches fitted
              on BSDS500 train+val, 4 components per token (a token holds 4 values per 8x8 patch).
    scenes    foreground ARI of the per-pixel argmax token against the true objects, on held-out
              generated scenes, beside a trivial segmentation (the argmax of the RGB channels).
    bsds-seg  mean ARI of the argmax token against each human segmentation of the BSDS500 test
              images, beside k-means on colour and position with the same number of segments.
"""

import argparse
import json
from pathlib import Path

import numpy as np
from PIL import Image
from scipy.io import loadmat
from sklearn.cluster import KMeans
from tqdm import tqdm

from . import metrics
from .checkpoint import load_vle
from .data import data_root
from .pca import PatchPCA
from .scenes import HELDOUT_SEED, SceneSet


def load_images(folder: Path, pattern: str = "*.png") -> list[np.ndarray]:
    """Every image matching `pattern` in `folder`, sorted by name, as HxWx3 float32 in [0, 1]."""
    paths = sorted(folder.glob(pattern))
    if not paths:
        raise ValueError(f"no {pattern} images in {folder}")
    return [np.asarray(Image.open(p).convert("RGB"), np.float32) / 255 for p in paths]


def token_curves(vle, images, n_tokens: int, ssim: bool = True) -> dict:
    """Per token count k = 1..n_tokens, over the images: mean PSNR, MSE and SSIM of the
    reconstruction from the first k tokens."""
    psnr, mse, ssim_ = (np.zeros((len(images), n_tokens)) for _ in range(3))
    for i, image in enumerate(tqdm(images, desc="encode", leave=False)):
        encoding = vle.encode(image, n_tokens)
        for k, reconstruction in enumerate(encoding.reconstructions):
            mse[i, k] = metrics.mse(image, reconstruction)
            psnr[i, k] = metrics.psnr(image, reconstruction)
            ssim_[i, k] = metrics.ssim(image, reconstruction) if ssim else np.nan
    return {"psnr": psnr.mean(0).tolist(), "mse": mse.mean(0).tolist(), "ssim": ssim_.mean(0).tolist()}


def bsds_training_images() -> list[np.ndarray]:
    root = data_root() / "bsds500" / "images"
    return load_images(root / "train", "*.jpg") + load_images(root / "val", "*.jpg")


def kodak_suite(vle, n_tokens: int) -> dict:
    images = load_images(data_root() / "kodak")
    curves = token_curves(vle, images, n_tokens)
    curves["pca_psnr"] = PatchPCA(bsds_training_images()).psnr_curve(images, n_tokens)
    return curves


def scene_suite(vle, n_tokens: int, n_scenes: int = 200, size: int = 64) -> dict:
    scenes = SceneSet(n_scenes, size=size, seed=HELDOUT_SEED)
    ours, trivial = [], []
    for i in tqdm(range(n_scenes), desc="scenes", leave=False):
        image, labels = scenes[i]
        array = ((image.permute(1, 2, 0).numpy() + 1) / 2).clip(0, 1)
        encoding = vle.encode(array, n_tokens)
        if encoding.masks is None:
            raise ValueError("the scenes suite scores masks: this model has none")
        ours.append(metrics.foreground_ari(labels.numpy(), metrics.masks_to_labels(encoding.masks)))
        trivial.append(metrics.foreground_ari(labels.numpy(), array.argmax(-1)))
    return {"fg_ari": float(np.mean(ours)), "fg_ari_rgb_argmax": float(np.mean(trivial)), "scenes": n_scenes, "size": size}


def kmeans_segments(image: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    """k-means on (r, g, b, y, x), position scaled to the unit square: a simple segmentation."""
    H, W = image.shape[:2]
    ys, xs = np.mgrid[0:H, 0:W] / max(H, W)
    features = np.concatenate([image.reshape(-1, 3), ys.reshape(-1, 1), xs.reshape(-1, 1)], axis=1)
    return KMeans(k, n_init=3, random_state=seed).fit_predict(features).reshape(H, W)


def human_segmentations(path) -> list[np.ndarray]:
    """The label maps (H x W, one per annotator) of a BSDS500 groundTruth .mat file: a 1 x N cell
    array of structs whose 'Segmentation' field is the map itself."""
    return [np.asarray(cell[0, 0]["Segmentation"]) for cell in loadmat(path)["groundTruth"][0]]


def bsds_segmentation_suite(vle, n_tokens: int, limit: int | None = None) -> dict:
    root = data_root() / "bsds500"
    paths = sorted((root / "images" / "test").glob("*.jpg"))[:limit]
    ours, baseline, segments = [], [], []
    for path in tqdm(paths, desc="bsds test", leave=False):
        image = np.asarray(Image.open(path).convert("RGB"), np.float32) / 255
        truths = human_segmentations(root / "groundTruth" / "test" / f"{path.stem}.mat")
        labels = metrics.masks_to_labels(vle.encode(image, n_tokens).masks)
        k = len(np.unique(labels))
        kmeans = kmeans_segments(image, k)
        ours.append(np.mean([metrics.ari(t, labels) for t in truths]))
        baseline.append(np.mean([metrics.ari(t, kmeans) for t in truths]))
        segments.append(k)
    return {"ari": float(np.mean(ours)), "ari_kmeans": float(np.mean(baseline)), "segments": float(np.mean(segments)), "images": len(paths)}


SUITES = {"kodak": kodak_suite, "scenes": scene_suite, "bsds-seg": bsds_segmentation_suite}


def markdown(suite: str, result: dict) -> str:
    """A model card table of one suite's result."""
    if suite == "kodak":
        rows = ["| tokens | VLE PSNR (dB) | patch-PCA PSNR (dB) | VLE MSE | VLE SSIM |", "|---|---|---|---|---|"]
        for k, (p, q, m, s) in enumerate(zip(result["psnr"], result["pca_psnr"], result["mse"], result["ssim"]), start=1):
            rows.append(f"| {k} | {p:.2f} | {q:.2f} | {m:.5f} | {s:.3f} |")
        return "\n".join(rows)
    return "\n".join(f"- {key}: {value:.3f}" if isinstance(value, float) else f"- {key}: {value}" for key, value in result.items())


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint")
    parser.add_argument("--suite", choices=sorted(SUITES), required=True)
    parser.add_argument("--tokens", type=int, default=12)
    parser.add_argument("--json", help="also write the result to this JSON file")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)
    vle = load_vle(args.checkpoint, device=args.device)
    result = SUITES[args.suite](vle, args.tokens)
    print(markdown(args.suite, result))
    if args.json:
        Path(args.json).write_text(json.dumps({"suite": args.suite, "tokens": args.tokens, **result}, indent=2) + "\n")


if __name__ == "__main__":
    main()
