"""The held-out evaluation as a library: the suites behind the model cards (`vle_core.evaluate`,
`vle_core.ship`), the scores the results page reuses (`vle_core.report`), a masked VLE's region
bound, and the tuning of its weightless S on BSDS500 train + val.

Images are HxWx3 float32 arrays in [0, 1]; a suite takes a `VLE` and a token count and returns a
dict of JSON-ready figures. The data sets are read in place (vle_core/data.py); the classical
segmenters are in vle_core/baselines.py.
"""

import numpy as np
import torch
from tqdm import tqdm

from . import metrics
from .baselines import BASELINES, segment_count
from .checkpoint import load_vle
from .data import (
    bsds_test_paths,
    bsds_training_images,
    ground_truth_path,
    human_segmentations,
    kodak_paths,
    read_image,
    train_val_paths,
)
from .edit_suites import edits_suite, removal_suite
from .loop import from_pixels, residual_loop, to_pixels
from .metrics import human_ari
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
    rows = [
        image_curves(image, vle.encode(image, n_tokens).reconstructions, ssim)
        for image in tqdm(images, desc="encode", leave=False)
    ]
    return {metric: np.mean([row[metric] for row in rows], axis=0).tolist() for metric in ("psnr", "mse", "ssim")}


def subset(items, every: int = 1, limit: int | None = None) -> list:
    """Every `every`-th item, at most `limit` of them: a suite's quicker look at its set."""
    return list(items)[::every][:limit]


def kodak_suite(vle, n_tokens: int, every: int = 1, limit: int | None = None) -> dict:
    images = [read_image(p) for p in subset(kodak_paths(), every, limit)]
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
        raise ValueError(
            f"--region-bound needs region tokens: more than the {whole} whole-image tokens, got --tokens {n_tokens}"
        )

    rows = []
    for image in tqdm(images, desc="bound", leave=False):
        with torch.inference_mode():
            out = residual_loop(vle.model, from_pixels(image, vle.device), n_tokens)
        proposals = [p[0, 0].float().cpu().numpy() for p in out.proposals[whole:]]
        covered = np.stack(proposals).max(0)[..., None]
        # What the tokens show, as VLE.encode renders them (tokens.Rendering: EMPTY + the contributions so far)
        shown = to_pixels(torch.cat(out.contributions).float().cumsum(0))
        drawn = [shown[whole - 1] if whole else np.full_like(image, 0.5)]  # what the region tokens start from
        if whole_from is not None:
            drawn.append(whole_from.encode(image, whole).reconstructions[-1] if whole else np.full_like(image, 0.5))
        row = [
            metrics.psnr(image, shown[-1]),
            *(metrics.psnr(image, rest + covered * (image - rest)) for rest in drawn),
        ]
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
    return PatchPCA(
        [image - (vle.encode(image, whole).reconstructions[-1] if whole else 0.5) for image in images]
    ).components


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
    return to_pixels(image), labels.numpy()


def scene_suite(
    vle, n_tokens: int, n_scenes: int = 200, size: int = 64, every: int = 1, limit: int | None = None
) -> dict:
    """Foreground ARI, and how S spent the tokens: the 8-token PSNR; the share of scenes where a
    token took a speck (a decoded mask under SPECK of the image) while a later one took a larger
    region; the share where some token's mask covers most of the background (background_coded),
    and at which token on average (background_token, over those scenes)."""
    require_masks(vle, "scenes")
    scenes = SceneSet(n_scenes, size=size, seed=HELDOUT_SEED)
    ours, trivial, psnrs, specks, background_at = [], [], [], [], []
    for i in tqdm(subset(range(n_scenes), every, limit), desc="scenes", leave=False):
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
        "background_coded": len(found) / len(ours),
        "background_token": float(np.mean(found)) if found else float("nan"),
        "scenes": len(ours),
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


def bsds_segmentation_suite(vle, n_tokens: int, limit: int | None = None, every: int = 1) -> dict:
    """Every `every`-th BSDS500 test image (the first `limit` of them)."""
    require_masks(vle, "bsds-seg")
    paths = subset(bsds_test_paths(), every, limit)
    scores, segments = {name: [] for name in ("ari", *BASELINES)}, []
    for path in tqdm(paths, desc="bsds test", leave=False):
        image = read_image(path)
        truths = human_segmentations(ground_truth_path(path))
        labels = metrics.masks_to_labels(vle.encode(image, n_tokens).masks)
        k = segment_count(labels)
        scores["ari"].append(human_ari(truths, labels))
        for name, segment in BASELINES.items():
            scores[name].append(human_ari(truths, segment(image, k)))
        segments.append(k)
    result = {"ari": float(np.mean(scores["ari"]))}
    result.update({f"ari_{name}": float(np.mean(scores[name])) for name in BASELINES})
    return {**result, "segments": float(np.mean(segments)), "images": len(paths)}


# The S settings `--tune-precursor` compares: the seed rule and the colour tolerance. S's other
# settings (sigma, its blur, its smallest region) stay as the checkpoint has them.
PRECURSOR_GRID = [
    {"precursor_seed": seed, "precursor_tau": tau}
    for seed, tau in (
        ("energy", 1.0),
        ("energy", 0.7),
        ("largest", 1.0),
        ("largest", 0.8),
        ("largest", 0.7),
        ("largest", 0.6),
    )
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
        labels = [
            metrics.masks_to_labels(vle.encode(image, n_tokens).masks)
            for image, _ in tqdm(photos, desc=str(settings), leave=False)
        ]
        scores.append(np.mean([human_ari(truths, label) for (_, truths), label in zip(photos, labels)]))
        counts.append([segment_count(label) for label in labels])
        print(
            f"S {settings}: ARI {scores[-1]:.4f}, {np.mean(counts[-1]):.2f} segments, on {len(paths)} train+val images",
            flush=True,
        )
    best = int(np.argmax(scores))
    for name in ("slic", "kmeans"):
        baseline = np.mean(
            [human_ari(truths, BASELINES[name](image, k)) for (image, truths), k in zip(photos, counts[best])]
        )
        print(f"{name} with as many segments as the best: ARI {baseline:.4f}")
    print(f"best: {grid[best]}")
    return grid[best]


SUITES = {
    "kodak": kodak_suite,
    "scenes": scene_suite,
    "bsds-seg": bsds_segmentation_suite,
    "edits": edits_suite,
    "removal": removal_suite,
}


def run_suite(suite: str, vle, n_tokens: int, every: int = 1, limit: int | None = None) -> dict:
    """One suite's figures on every `every`-th image or scene of its set, at most `limit` of them
    (default: the whole set)."""
    if every < 1 or (limit is not None and limit < 1):
        raise ValueError(f"--every and --limit must be 1 or more, got {every} and {limit}")
    return SUITES[suite](vle, n_tokens, every=every, limit=limit)


def markdown(suite: str, result: dict) -> str:
    """A model card table of one suite's result."""
    if suite == "kodak":
        rows = ["| tokens | VLE PSNR (dB) | patch-PCA PSNR (dB) | VLE MSE | VLE SSIM |", "|---|---|---|---|---|"]
        for k, (p, q, m, s) in enumerate(
            zip(result["psnr"], result["pca_psnr"], result["mse"], result["ssim"]), start=1
        ):
            rows.append(f"| {k} | {p:.2f} | {q:.2f} | {m:.5f} | {s:.3f} |")
        return "\n".join(rows)
    return "\n".join(
        f"- {key}: {value:.3f}" if isinstance(value, float) else f"- {key}: {value}" for key, value in result.items()
    )
