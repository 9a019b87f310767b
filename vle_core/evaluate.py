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
              images, beside three classical segmenters given as many segments: k-means on colour
              and position, SLIC superpixels and Felzenszwalb's graph segmentation (their settings
              picked on BSDS500 train + val: `python -m vle_core.evaluate --tune-baselines`).
    edits     object edits on held-out scenes against the scene drawn without the object, or with
              it moved (vle_core/edit_suites.py).
    removal   switching off a pasted object's tokens on photo composites, against the photo it
              was pasted on, beside classical fills given the exact mask (vle_core/edit_suites.py).

Data: `--data DIR`, else $VLE_DATA, else ../shared/data beside the repository; DIR holds
`kodak/kodim*.png` and `bsds500/{images,groundTruth}/{train,val,test}` (see vle_core/data.py).
`python -m vle_core.report` runs every suite on every shipped checkpoint, in one results page.

    python -m vle_core.evaluate checkpoints/masked-natural --tune-precursor --tokens 8

compares settings of a masked VLE's weightless S by its masks' ARI on BSDS500 train + val.

    python -m vle_core.evaluate checkpoints/masked-natural --region-bound --tokens 8

bounds what a masked VLE's region tokens can rebuild on Kodak: the PSNR if every token after the
whole-image ones rebuilt the photo losslessly inside S's proposals (`region_bound`); `--linear`
adds what those tokens' values buy under the best linear code, spent on the whole photo, on the
region's frame or on the region alone (`linear_regions`). With
`--precursor tau=1.0` (any of S's settings, repeatable) a suite or the bound runs with S changed
on the trained model, which S allows as it has no weights.
"""

import argparse
import json
import os
import sys
from dataclasses import fields
from pathlib import Path

import numpy as np
import torch
from skimage.segmentation import felzenszwalb, slic
from sklearn.cluster import KMeans
from tqdm import tqdm

from . import metrics
from .checkpoint import load_vle
from .data import bsds_test_paths, data_root, ground_truth_path, human_segmentations, image_paths, kodak_paths, read_image
from .edit_suites import edits_suite, removal_suite
from .loop import residual_loop
from .pca import PATCH, VALUES_PER_TOKEN, PatchPCA, patches, unpatch
from .scenes import HELDOUT_SEED, SceneSet


def image_curves(image: np.ndarray, reconstructions, ssim: bool = True) -> dict:
    """One image's MSE, PSNR and SSIM (nan without ssim) against each of its reconstructions."""
    return {
        "mse": [metrics.mse(image, r) for r in reconstructions],
        "psnr": [metrics.psnr(image, r) for r in reconstructions],
        "ssim": [metrics.ssim(image, r) if ssim else np.nan for r in reconstructions],
    }


def token_curves(vle, images, n_tokens: int, ssim: bool = True) -> dict:
    """Per token count k = 1..n_tokens, over the images: mean PSNR, MSE and SSIM of the
    reconstruction from the first k tokens."""
    rows = [image_curves(image, vle.encode(image, n_tokens).reconstructions, ssim) for image in tqdm(images, desc="encode", leave=False)]
    return {metric: np.mean([row[metric] for row in rows], axis=0).tolist() for metric in ("psnr", "mse", "ssim")}


def train_val_paths() -> list[Path]:
    """BSDS500 train + val photos, where settings are picked (test stays held out)."""
    root = data_root() / "bsds500" / "images"
    return image_paths(root / "train", "*.jpg") + image_paths(root / "val", "*.jpg")


def bsds_training_images() -> list[np.ndarray]:
    return [read_image(path) for path in train_val_paths()]


def kodak_suite(vle, n_tokens: int) -> dict:
    images = [read_image(p) for p in kodak_paths()]
    curves = token_curves(vle, images, n_tokens)
    curves["pca_psnr"] = PatchPCA(bsds_training_images()).psnr_curve(images, n_tokens)
    return curves


def region_bound(vle, images, n_tokens: int, whole_from=None, basis=None) -> dict:
    """How far S's regions let a masked VLE go: mean PSNR over the images if its tokens past the
    whole-image ones (config.whole_tokens) rebuilt the image losslessly inside the union of S's
    proposals and left the rest as the whole-image tokens drew it. `whole_from`, another VLE: the
    same with that model's first whole_tokens tokens drawing the rest. Tokens cannot rebuild
    more than their regions cover, so no training of E and D goes past this with the same S.
    `basis` (residual_basis): also what those tokens' values buy when the best linear code spends
    them (linear_regions), in three places: every patch of the image (linear_whole, as a vanilla
    token), every patch of the region (linear_frame, this model's token format) or, the token's
    values concentrated, only the region's patches (linear_dense).
    Returns psnr (the model's own, n_tokens), bound, bound_whole_from (if given), the linear
    figures (if a basis is given) and coverage, the share of the image the proposals cover."""
    require_masks(vle, "--region-bound")
    whole = vle.config.whole_tokens
    if not whole < n_tokens:
        raise ValueError(f"--region-bound needs region tokens: more than the {whole} whole-image tokens, got --tokens {n_tokens}")

    rows = []
    for image in tqdm(images, desc="bound", leave=False):
        with torch.inference_mode():
            out = residual_loop(vle.model, torch.from_numpy(image).permute(2, 0, 1)[None].to(vle.device) * 2 - 1, n_tokens)
        proposals = [p[0, 0].float().cpu().numpy() for p in out.proposals[whole:]]
        covered = np.stack(proposals).max(0)[..., None]
        # What the tokens show, as VLE.encode renders them (tokens.Rendering: EMPTY + the contributions so far)
        shown = ((torch.cat(out.contributions).float().cumsum(0) + 1) / 2).clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy()
        drawn = [shown[whole - 1] if whole else np.full_like(image, 0.5)]  # what the region tokens start from
        if whole_from is not None:
            drawn.append(whole_from.encode(image, whole).reconstructions[-1] if whole else np.full_like(image, 0.5))
        row = [metrics.psnr(image, shown[-1]), *(metrics.psnr(image, rest + covered * (image - rest)) for rest in drawn)]
        if basis is not None:
            everywhere = [np.ones_like(p) for p in proposals]
            for regions, dense in ((everywhere, False), (proposals, False), (proposals, True)):
                rebuilt = linear_regions(image, drawn[0], regions, basis, dense)
                row.append(metrics.psnr(image[: rebuilt.shape[0], : rebuilt.shape[1]], rebuilt))
        rows.append([*row, float(covered.mean())])
    names = ["psnr", "bound", *(["bound_whole_from"] if whole_from is not None else [])]
    names += [*(["linear_whole", "linear_frame", "linear_dense"] if basis is not None else []), "coverage"]
    return dict(zip(names, np.mean(rows, axis=0).tolist())) | {"images": len(images)}


def residual_basis(vle, images) -> np.ndarray:
    """The best linear code of what a masked VLE's region tokens are given: PCA of the 8x8 RGB
    patches of the residual its whole-image tokens leave (of the image less grey without any).
    (192, 192), patches flattened as pca.patches does, strongest component first."""
    whole = vle.config.whole_tokens
    return PatchPCA([image - (vle.encode(image, whole).reconstructions[-1] if whole else 0.5) for image in images]).components


def linear_regions(image, start, proposals, basis, dense: bool) -> np.ndarray:
    """Tokens that code S's proposals in turn with the best linear code, from `start` (what the
    whole-image tokens drew): at each 8x8 patch mostly inside its proposal, a token codes the
    residual on the next components that patch has not used yet, and adds that gated by the
    proposal, as the residual loop gates a token. A token has VALUES_PER_TOKEN values per patch
    of the image: at every patch (dense False, a token's format in this VLE: its values outside
    its region are spent on nothing) or concentrated on the region's patches (dense True).
    Returns the reconstruction, HxWx3 in [0, 1] (the image cropped to multiples of 8)."""
    H, W = (s - s % PATCH for s in image.shape[:2])
    image, rebuilt = image[:H, :W], start[:H, :W].astype(np.float64)
    used = np.zeros((H // PATCH) * (W // PATCH), int)  # per patch: components spent so far
    for proposal in proposals:
        proposal = proposal[:H, :W]
        inside = proposal.reshape(H // PATCH, PATCH, W // PATCH, PATCH).mean((1, 3)).ravel() > 0.5
        width = VALUES_PER_TOKEN * (used.size // max(int(inside.sum()), 1) if dense else 1)
        residual, coded = patches(image - rebuilt), np.zeros((used.size, basis.shape[0]))
        for first in np.unique(used[inside]):  # patches that used as many components share a code
            at = inside & (used == first)
            components = basis[:, first : first + width]
            coded[at] = residual[at] @ components @ components.T
        used[inside] += width
        rebuilt += proposal[..., None] * unpatch(coded, H, W)
    return rebuilt.clip(0, 1)


def require_masks(vle, suite: str) -> None:
    """Refuse a vanilla model before any work (or progress bar) starts."""
    if vle.kind != "masked":
        raise ValueError(f"the {suite} suite scores masks: this {vle.kind} model has none (use a masked checkpoint)")


def scene_array(scenes: SceneSet, i: int) -> tuple[np.ndarray, np.ndarray]:
    """Scene i as (HxWx3 float32 in [0, 1], HxW true labels, 0 = background)."""
    image, labels = scenes[i]
    return ((image.permute(1, 2, 0).numpy() + 1) / 2).clip(0, 1), labels.numpy()


def scene_suite(vle, n_tokens: int, n_scenes: int = 200, size: int = 64) -> dict:
    """Foreground ARI, and how S spent the tokens: the 8-token PSNR; the share of scenes where a
    token took a speck (a decoded mask under SPECK of the image) while a later one took a larger
    region; the share where some token's mask covers most of the background (background_coded),
    and at which token on average (background_token, over those scenes)."""
    require_masks(vle, "scenes")
    scenes = SceneSet(n_scenes, size=size, seed=HELDOUT_SEED)
    ours, trivial, psnrs, specks, background_at = [], [], [], [], []
    for i in tqdm(range(n_scenes), desc="scenes", leave=False):
        array, labels = scene_array(scenes, i)
        encoding = vle.encode(array, n_tokens)
        ours.append(metrics.foreground_ari(labels, metrics.masks_to_labels(encoding.masks)))
        trivial.append(metrics.foreground_ari(labels, array.argmax(-1)))
        psnrs.append(metrics.psnr(array, encoding.reconstructions[-1]))
        speck, background = token_usage(encoding.masks, labels)
        specks.append(speck)
        background_at.append(background)
    found = [n for n in background_at if n is not None]
    return {
        "fg_ari": float(np.mean(ours)),
        "fg_ari_rgb_argmax": float(np.mean(trivial)),
        "psnr": float(np.mean(psnrs)),
        "speck_first": float(np.mean(specks)),
        "background_coded": len(found) / n_scenes,
        "background_token": float(np.mean(found)) if found else float("nan"),
        "scenes": n_scenes,
        "size": size,
    }


SPECK = 0.01  # share of the image under which a region is a speck (an anti-aliased rim, a highlight)


def token_usage(masks: np.ndarray, labels: np.ndarray) -> tuple[bool, int | None]:
    """How a scene's tokens were spent: whether a token's mask (> 0.5) covered a speck while a
    later one covered more than a speck, and the first token (1-based) whose mask covers at least
    half the background (labels 0), or None."""
    areas = (masks > 0.5).mean(axis=(1, 2))
    speck_first = any(a < SPECK and areas[n + 1 :].max(initial=0) >= SPECK for n, a in enumerate(areas))
    background = labels == 0
    covers = [bool(background.any()) and (mask[background] > 0.5).mean() >= 0.5 for mask in masks]
    return speck_first, covers.index(True) + 1 if any(covers) else None


# The baselines' settings, picked on BSDS500 train + val, never on test, by
# `python -m vle_core.evaluate --tune-baselines`: every 10th train + val image (30), 8 segments (the
# masked VLEs' trained token count), mean ARI against the human maps. It measured k-means 0.259 /
# 0.295 / 0.303 / 0.284 at position 0 / 0.5 / 1 / 2; SLIC 0.222 / 0.235 / 0.270 / 0.307 at
# compactness 1 / 3 / 10 / 30; Felzenszwalb 0.324 at sigma 1.5 and min_size 500 (0.284 and 0.280 at
# sigma 0.5 and 0.8; 0.05-0.10 with min_size 50). SLIC's and Felzenszwalb's best lie at the grid's edge:
# a wider grid may find them a little more.
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


def _count(labels: np.ndarray) -> int:
    return len(np.unique(labels))


def slic_segments(image: np.ndarray, k: int, compactness: float = SLIC_COMPACTNESS) -> np.ndarray:
    """SLIC superpixels (Achanta et al. 2012). SLIC treats its n_segments as a hint, so it is
    nudged (a few tries) until the count is as near k as it gets."""
    best, n_segments = None, k
    for _ in range(4):
        labels = slic(image, n_segments=n_segments, compactness=compactness, start_label=0)
        if best is None or abs(_count(labels) - k) < abs(_count(best) - k):
            best = labels
        if _count(labels) == k:
            break
        n_segments = max(1, n_segments + k - _count(labels))
    return best


def felzenszwalb_segments(image: np.ndarray, k: int, sigma: float = FELZENSZWALB_SIGMA, min_size: int = FELZENSZWALB_MIN_SIZE) -> np.ndarray:
    """Felzenszwalb and Huttenlocher's graph segmentation (2004). It has no segment count, only
    a scale (larger: fewer segments), so the scale is bisected in log10 for the count nearest k."""
    low, high, best = 0.0, 6.0, None  # log10(scale)
    for _ in range(12):
        middle = (low + high) / 2
        labels = felzenszwalb(image, scale=10**middle, sigma=sigma, min_size=min_size)
        if best is None or abs(_count(labels) - k) < abs(_count(best) - k):
            best = labels
        if _count(labels) == k:
            break
        low, high = (middle, high) if _count(labels) > k else (low, middle)
    return best


BASELINES = {"kmeans": kmeans_segments, "slic": slic_segments, "felzenszwalb": felzenszwalb_segments}


def human_ari(truths: list[np.ndarray], labels: np.ndarray) -> float:
    """Mean ARI of one segmentation against every human map of the image."""
    return float(np.mean([metrics.fast_ari(t, labels) for t in truths]))


def bsds_segmentation_suite(vle, n_tokens: int, limit: int | None = None, every: int = 1) -> dict:
    """Every `every`-th BSDS500 test image (the first `limit` of them)."""
    require_masks(vle, "bsds-seg")
    paths = bsds_test_paths()[::every][:limit]
    scores, segments = {name: [] for name in ("ari", *BASELINES)}, []
    for path in tqdm(paths, desc="bsds test", leave=False):
        image = read_image(path)
        truths = human_segmentations(ground_truth_path(path))
        labels = metrics.masks_to_labels(vle.encode(image, n_tokens).masks)
        k = _count(labels)
        scores["ari"].append(human_ari(truths, labels))
        for name, segment in BASELINES.items():
            scores[name].append(human_ari(truths, segment(image, k)))
        segments.append(k)
    result = {"ari": float(np.mean(scores["ari"]))}
    result.update({f"ari_{name}": float(np.mean(scores[name])) for name in BASELINES})
    return {**result, "segments": float(np.mean(segments)), "images": len(paths)}


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


# The S settings `--tune-precursor` compares: the seed rule and the colour tolerance. S's other
# settings (sigma, its blur, its smallest region) stay as the checkpoint has them.
PRECURSOR_GRID = [
    {"precursor_seed": seed, "precursor_tau": tau}
    for seed, tau in (("energy", 1.0), ("energy", 0.7), ("largest", 1.0), ("largest", 0.8), ("largest", 0.7), ("largest", 0.6))
]


def tune_precursor(checkpoint, every: int = 4, n_tokens: int = 8, grid=PRECURSOR_GRID) -> dict:
    """S's settings for a trained masked VLE, by its masks' mean ARI against the human maps of every
    `every`-th BSDS500 train + val image at n_tokens; prints the grid, and SLIC and k-means given as
    many segments as the best. Train and val only: test stays held out."""
    vle = load_vle(checkpoint)
    require_masks(vle, "--tune-precursor")
    paths = train_val_paths()[::every]
    photos = [(read_image(path), human_segmentations(ground_truth_path(path))) for path in paths]
    scores, counts = [], []
    for settings in grid:
        vle.model.set_precursor(**settings)
        labels = [metrics.masks_to_labels(vle.encode(image, n_tokens).masks) for image, _ in tqdm(photos, desc=str(settings), leave=False)]
        scores.append(np.mean([human_ari(truths, label) for (_, truths), label in zip(photos, labels)]))
        counts.append([_count(label) for label in labels])
        print(f"S {settings}: ARI {scores[-1]:.4f}, {np.mean(counts[-1]):.2f} segments, on {len(paths)} train+val images", flush=True)
    best = int(np.argmax(scores))
    for name in ("slic", "kmeans"):
        baseline = np.mean([human_ari(truths, BASELINES[name](image, k)) for (image, truths), k in zip(photos, counts[best])])
        print(f"{name} with as many segments as the best: ARI {baseline:.4f}")
    print(f"best: {grid[best]}")
    return grid[best]


SUITES = {"kodak": kodak_suite, "scenes": scene_suite, "bsds-seg": bsds_segmentation_suite, "edits": edits_suite, "removal": removal_suite}


def run_suite(suite: str, vle, n_tokens: int, every: int = 1) -> dict:
    """One suite's figures; `every` (k-th test image) applies to bsds-seg, the others score their whole set."""
    if every < 1:
        raise ValueError(f"--every must be 1 or more, got {every}")
    return SUITES[suite](vle, n_tokens, every=every) if suite == "bsds-seg" else SUITES[suite](vle, n_tokens)


def markdown(suite: str, result: dict) -> str:
    """A model card table of one suite's result."""
    if suite == "kodak":
        rows = ["| tokens | VLE PSNR (dB) | patch-PCA PSNR (dB) | VLE MSE | VLE SSIM |", "|---|---|---|---|---|"]
        for k, (p, q, m, s) in enumerate(zip(result["psnr"], result["pca_psnr"], result["mse"], result["ssim"]), start=1):
            rows.append(f"| {k} | {p:.2f} | {q:.2f} | {m:.5f} | {s:.3f} |")
        return "\n".join(rows)
    return "\n".join(f"- {key}: {value:.3f}" if isinstance(value, float) else f"- {key}: {value}" for key, value in result.items())


def precursor_settings(pairs: list[str], config) -> dict:
    """--precursor NAME=VALUE pairs -> set_precursor's keyword arguments, each value of its
    field's type: "tau=1.0" (or "precursor_tau=1.0") -> {"precursor_tau": 1.0}."""
    known = {f.name: f.type for f in fields(config) if f.name.startswith("precursor_")}
    if not known:
        raise ValueError("--precursor changes a masked VLE's S: this checkpoint has none")
    settings = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        name = name if name.startswith("precursor_") else f"precursor_{name}"
        if not sep or name not in known:
            raise ValueError(f"--precursor takes NAME=VALUE with NAME one of {sorted(n.removeprefix('precursor_') for n in known)}, got {pair!r}")
        settings[name] = known[name](value)  # the field's type (float, int, str); a value that is no number: ValueError
    return settings


def use_data(folder: str | None) -> None:
    """--data DIR: the data root for this process and any it starts (data_root() reads $VLE_DATA)."""
    if folder:
        os.environ["VLE_DATA"] = str(folder)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m vle_core.evaluate", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", nargs="?", help="a checkpoint folder, e.g. checkpoints/vanilla-natural")
    parser.add_argument("--suite", choices=sorted(SUITES))
    parser.add_argument("--tokens", type=int, default=12, help="tokens per image (default 12)")
    parser.add_argument("--data", help="the data root holding kodak/ and bsds500/ (default: $VLE_DATA, else ../shared/data)")
    parser.add_argument("--every", type=int, default=1, help="bsds-seg: score every k-th test image (default 1: all 200)")
    parser.add_argument("--json", help="also write the result to this JSON file")
    parser.add_argument("--device", default="auto", help="auto (cuda, mps, cpu) or a torch device")
    parser.add_argument("--tune-baselines", action="store_true", help="pick the bsds-seg baselines' settings on BSDS500 train+val, and stop")
    parser.add_argument("--tune-precursor", action="store_true", help="compare S settings for the masked checkpoint on BSDS500 train+val, and stop")
    parser.add_argument(
        "--region-bound", action="store_true", help="bound a masked checkpoint's Kodak PSNR by what its region tokens can cover (region_bound), and stop"
    )
    parser.add_argument("--whole-from", metavar="CKPT", help="with --region-bound: also bound with this checkpoint's first tokens as the whole-image ones")
    parser.add_argument(
        "--linear", action="store_true",
        help="with --region-bound: also what the region tokens' values buy under the best linear code (fitted on BSDS500 train + val), spent on the whole image, the region's frame or the region alone",
    )
    parser.add_argument(
        "--precursor", action="append", default=[], metavar="NAME=VALUE", help="a suite or --region-bound with this setting of the weightless S changed (repeatable), e.g. tau=1.0"
    )
    parser.add_argument(
        "--rest-area", type=float, nargs="+", metavar="A",
        help="with --tune-precursor: compare these precursor_rest_area values (S's other settings as the checkpoint has them) instead of seed and tolerance",
    )
    args = parser.parse_args(argv)
    if not args.tune_baselines and not (args.checkpoint and (args.suite or args.tune_precursor or args.region_bound)):
        parser.error("give a checkpoint and --suite, --tune-precursor or --region-bound (or --tune-baselines)")
    if args.linear and not args.region_bound:
        parser.error("--linear is a part of --region-bound")
    if args.precursor and (args.tune_precursor or args.tune_baselines):
        parser.error("--precursor changes S for a suite or --region-bound; --tune-precursor sets S's settings itself")
    use_data(args.data)
    try:
        if args.tune_baselines:
            tune_baselines()
            return
        if args.tune_precursor:
            grid = [{"precursor_rest_area": area} for area in args.rest_area] if args.rest_area else PRECURSOR_GRID
            tune_precursor(args.checkpoint, n_tokens=args.tokens, grid=grid)
            return
        vle = load_vle(args.checkpoint, device=args.device)
        if args.precursor:
            vle.model.set_precursor(**precursor_settings(args.precursor, vle.config))
        if args.region_bound:
            whole_from = load_vle(args.whole_from, device=args.device) if args.whole_from else None
            basis = residual_basis(vle, [read_image(p) for p in train_val_paths()[::16]]) if args.linear else None
            print(markdown("region-bound", region_bound(vle, [read_image(p) for p in kodak_paths()], args.tokens, whole_from, basis)))
            return
        result = run_suite(args.suite, vle, args.tokens, args.every)
    except (ValueError, FileNotFoundError) as e:  # missing data, a bad checkpoint, a vanilla model for a mask suite
        sys.exit(f"vle_core.evaluate: error: {str(e).splitlines()[0]}")
    print(markdown(args.suite, result))
    if args.json:
        Path(args.json).write_text(json.dumps({"suite": args.suite, "tokens": args.tokens, **result}, indent=2) + "\n")


if __name__ == "__main__":
    main()
