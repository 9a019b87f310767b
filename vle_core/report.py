"""The paper's Table 1, Fig. 1 and Fig. 2, and the masks' scores, for every shipped checkpoint on
held-out data only, written as one results page with its plots.

    python -m vle_core.report --out docs/results
    torchrun --standalone --nproc_per_node=2 -m vle_core.report --out docs/results   # sharded

Held-out data only: Kodak (24 photos), BSDS500 test (200 photos with human segmentations) and
generated scenes from HELDOUT_SEED (training draws TRAIN_SEED). The data root is `--data DIR`, else
$VLE_DATA, else ../shared/data beside the repository. Every checkpoint folder under
`--checkpoints` (default checkpoints/) is evaluated, whatever their set is today.

Under torchrun, each process takes every world-th piece of work (one checkpoint on one image) and
rank 0 gathers the results in their original order, so the numbers are those of one process.
`--every N` keeps every N-th photo of each set, a quicker look than the full held-out sets that the
default measures; the page says which it is.
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from scipy import stats
from tqdm import tqdm

from . import metrics
from .baselines import BASELINES
from .checkpoint import load_vle
from .data import (
    bsds_test_paths,
    bsds_training_images,
    ground_truth_path,
    human_segmentations,
    kodak_paths,
    read_image,
    use_data,
)
from .evaluation import image_curves, scene_array
from .metrics import human_ari
from .pca import VALUES_PER_TOKEN, PatchPCA
from .scenes import HELDOUT_SEED, SceneSet

# Table 1 of the paper (MSE on [-1, 1] pixels, SSIM), token counts 1..7, copied from its text;
# tests/test_report.py checks these against the paper's text where it is at hand.
PAPER_TABLE_1 = {
    "vanilla VLE": [
        (0.0119, 0.645),
        (0.0073, 0.742),
        (0.0053, 0.804),
        (0.0045, 0.829),
        (0.0041, 0.841),
        (0.0038, 0.849),
        (0.0036, 0.854),
    ],
    "mask VLE": [
        (0.2162, 0.368),
        (0.1355, 0.272),
        (0.1156, 0.285),
        (0.0098, 0.656),
        (0.0115, 0.640),
        (0.0099, 0.655),
        (0.0103, 0.654),
    ],
    "VAE": [(0.0113, 0.654)],
}
PAPER_SCALE = 4  # MSE on [-1, 1] pixels is 4x the MSE on [0, 1] pixels
FIG2_MSE = 0.003 / PAPER_SCALE  # Fig. 2's threshold, 0.003 on [-1, 1], on [0, 1] pixels
PCA = "patch-PCA"
SETS = {"kodak": "Kodak", "bsds-test": "BSDS500 test"}


# --- what to evaluate ---------------------------------------------------------------------------


def discover(folder) -> dict:
    """Every checkpoint folder (one holding config.json) under `folder`, by name: its kind and
    training record, read without loading weights."""
    found = {}
    for path in sorted(Path(folder).iterdir()) if Path(folder).is_dir() else []:
        if (path / "config.json").is_file():
            meta = json.loads((path / "config.json").read_text())
            found[path.name] = {"path": str(path), "kind": meta["kind"], "training": meta.get("training", {})}
    if not found:
        raise ValueError(f"no checkpoint folders (with a config.json) in {folder}: point --checkpoints at them")
    return found


def is_fixed(info: dict) -> bool:
    """A model trained with one token is a fixed-length autoencoder run in the residual loop (Fig. 1)."""
    return info["training"].get("max_tokens") == 1


def photos(every: int) -> list[dict]:
    """Kodak then BSDS500 test, every `every`-th image of each; a missing set is a one-line error."""
    sets = {"kodak": kodak_paths(), "bsds-test": bsds_test_paths()}
    chosen = [{"set": name, "path": str(p), "name": p.stem} for name, paths in sets.items() for p in paths[::every]]
    for photo in chosen:
        if photo["set"] == "bsds-test" and not ground_truth_path(Path(photo["path"])).is_file():
            raise ValueError(
                f"no human segmentation {ground_truth_path(Path(photo['path']))}: the BSDS500 test set is incomplete"
            )
    return chosen


def complexity(image) -> dict:
    """What an image's length is set against: grayscale entropy (the paper's Fig. 2) and the
    variance of the Laplacian (DOVE)."""
    return {"entropy": metrics.entropy(image), "laplacian": metrics.laplacian_variance(image)}


# --- the work, one piece at a time ---------------------------------------------------------------


class Worker:
    """Does one piece of work. Every model is loaded up front, so that a checkpoint replaced while the
    report runs cannot mix old and new weights; the patch-PCA fit is made on first use."""

    def __init__(self, checkpoints: dict, tokens: int, n_scenes: int, device: str):
        self.tokens = tokens
        self.scenes = SceneSet(n_scenes, size=64, seed=HELDOUT_SEED)
        self.models = {name: load_vle(info["path"], device=device) for name, info in checkpoints.items()}
        self.pca = None

    def model(self, name):
        return self.models[name]

    def __call__(self, unit: tuple):
        kind, *args = unit
        return getattr(self, kind)(*args)

    def photo(self, name: str, path: str) -> dict:
        """One checkpoint on one photo: MSE, PSNR, SSIM after each token count; for a masked model
        on a BSDS500 test photo, also the mean ARI of its first k masks against the human maps."""
        image = read_image(path)
        encoding = self.model(name).encode(image, self.tokens)
        row = image_curves(image, encoding.reconstructions)
        if encoding.masks is not None and Path(path).parent.name == "test":
            truths = human_segmentations(ground_truth_path(Path(path)))
            labels = [metrics.masks_to_labels(encoding.masks[:k]) for k in range(1, self.tokens + 1)]
            row["ari"] = [human_ari(truths, label) for label in labels]
            row["segments"] = [len(np.unique(label)) for label in labels]
        return row

    def pca_photo(self, path: str) -> dict:
        """Patch-PCA with 4k components as token count k, and the photo's Shannon entropy (Fig. 2)."""
        if self.pca is None:
            self.pca = PatchPCA(bsds_training_images())
        image = read_image(path)
        reconstructions = [self.pca.reconstruct(image, VALUES_PER_TOKEN * k) for k in range(1, self.tokens + 1)]
        H, W = reconstructions[0].shape[:2]  # PCA codes whole 8x8 patches: scored on that crop
        return {**image_curves(image[:H, :W], reconstructions), **complexity(image)}

    def baselines(self, path: str, k: int) -> dict:
        """The classical segmenters at k segments on one BSDS500 test photo: ARI and the count they gave."""
        image, truths = read_image(path), human_segmentations(ground_truth_path(Path(path)))
        row = {}
        for method, segment in BASELINES.items():
            labels = segment(image, k)
            row[method], row[f"{method}_segments"] = human_ari(truths, labels), len(np.unique(labels))
        return row

    def scene(self, name: str, i: int) -> dict:
        """Foreground ARI of the argmax over the first k masks against the true objects, k = 1..tokens."""
        image, labels = scene_array(self.scenes, i)
        masks = self.model(name).encode(image, self.tokens).masks
        return {
            "fg_ari": [
                metrics.foreground_ari(labels, metrics.masks_to_labels(masks[:k])) for k in range(1, self.tokens + 1)
            ]
        }

    def scene_rgb(self, i: int) -> dict:
        """The trivial segmentation, the argmax of the RGB channels, on the same scene."""
        image, labels = scene_array(self.scenes, i)
        return {"fg_ari": metrics.foreground_ari(labels, image.argmax(-1))}


# --- sharding: the DDP block, as in train.py -----------------------------------------------------


def start_processes() -> tuple[int, int]:
    """(rank, world): under torchrun a gloo group (results are gathered as Python objects on the
    CPU, wherever the models run); else one process."""
    if int(os.environ.get("RANK", -1)) != -1:
        dist.init_process_group(backend="gloo")
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def run_sharded(units: list, work, rank: int, world: int, desc: str) -> list:
    """work(unit) for every unit, each process taking every world-th; every process gets all the
    results, in the units' order, so the next phase can be planned from them on every rank."""
    mine = [(i, work(units[i])) for i in tqdm(range(rank, len(units), world), desc=desc, disable=rank != 0)]
    if world == 1:
        return [result for _, result in mine]
    gathered = [None] * world
    dist.all_gather_object(gathered, mine)
    return [result for _, result in sorted((pair for part in gathered for pair in part), key=lambda pair: pair[0])]


def measure(
    checkpoints: dict, photo_list: list[dict], tokens: int, n_scenes: int, rank: int, world: int, device: str = "auto"
) -> dict:
    """Every number the page shows, per image (JSON-ready)."""
    worker = Worker(checkpoints, tokens, n_scenes, device)
    masked = [name for name, info in checkpoints.items() if info["kind"] == "masked"]
    units = [("photo", name, p["path"]) for name in checkpoints for p in photo_list] + [
        ("pca_photo", p["path"]) for p in photo_list
    ]
    units += [("scene", name, i) for name in masked for i in range(n_scenes)] + [
        ("scene_rgb", i) for i in range(n_scenes)
    ]
    results = dict(zip(units, run_sharded(units, worker, rank, world, "encode")))

    # The baselines get as many segments as each masked model used at its trained token count.
    test_photos = [p for p in photo_list if p["set"] == "bsds-test"]
    counts = {name: min(checkpoints[name]["training"].get("max_tokens") or tokens, tokens) for name in masked}
    wanted = {
        (p["path"], results["photo", name, p["path"]]["segments"][counts[name] - 1])
        for name in masked
        for p in test_photos
    }
    baseline_units = [("baselines", path, k) for path, k in sorted(wanted)]
    baselines = dict(zip(baseline_units, run_sharded(baseline_units, worker, rank, world, "baselines")))

    out = {"photos": photo_list, "curves": {}, "bsds_seg": {}, "scenes": {}}
    for name in [*checkpoints, PCA]:
        rows = [results[("photo", name, p["path"]) if name != PCA else ("pca_photo", p["path"])] for p in photo_list]
        out["curves"][name] = {metric: [row[metric] for row in rows] for metric in ("mse", "psnr", "ssim")}
    for measure_name in ("entropy", "laplacian"):
        out[measure_name] = [results["pca_photo", p["path"]][measure_name] for p in photo_list]
    for name in masked:
        rows = [results["photo", name, p["path"]] for p in test_photos]
        k = counts[name]
        entry = {"tokens": k, "ari": [row["ari"] for row in rows], "segments": [row["segments"] for row in rows]}
        for method in BASELINES:
            picked = [baselines["baselines", p["path"], row["segments"][k - 1]] for p, row in zip(test_photos, rows)]
            entry[method] = [b[method] for b in picked]
            entry[f"{method}_segments"] = [b[f"{method}_segments"] for b in picked]
        out["bsds_seg"][name] = entry
        out["scenes"][name] = [results["scene", name, i]["fg_ari"] for i in range(n_scenes)]
    out["scenes_rgb_argmax"] = [results["scene_rgb", i]["fg_ari"] for i in range(n_scenes)]
    return out


# --- the page ------------------------------------------------------------------------------------


def mean_curve(per_image, rows=None) -> np.ndarray:
    """Mean over images (optionally a subset of rows) of a per-image, per-token-count list."""
    values = np.asarray(per_image, np.float64)
    return (values if rows is None else values[rows]).mean(0)


def tokens_needed(mse_rows, target: float = FIG2_MSE) -> np.ndarray:
    """Per image, the fewest tokens whose MSE is at most `target`; tokens + 1 where none reach it."""
    mse = np.asarray(mse_rows)
    reached = mse <= target
    return np.where(reached.any(1), reached.argmax(1) + 1, mse.shape[1] + 1)


def correlation(x, y) -> dict:
    """Pearson's and Spearman's correlations with their two-sided p-values (nan when y is constant)."""
    if np.ptp(y) == 0 or np.ptp(x) == 0:
        return {
            "pearson": float("nan"),
            "pearson_p": float("nan"),
            "spearman": float("nan"),
            "spearman_p": float("nan"),
        }
    pearson, spearman = stats.pearsonr(x, y), stats.spearmanr(x, y)
    return {
        "pearson": float(pearson[0]),
        "pearson_p": float(pearson[1]),
        "spearman": float(spearman[0]),
        "spearman_p": float(spearman[1]),
    }


def table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows])


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only: no display, nothing fetched
    import matplotlib.pyplot as plt

    return plt


def _names(checkpoints: dict, which: str) -> list[str]:
    vanilla = [n for n, i in checkpoints.items() if i["kind"] == "vanilla"]
    return {
        "vle": [n for n in vanilla if not is_fixed(checkpoints[n])],
        "fixed": [n for n in vanilla if is_fixed(checkpoints[n])],
        "masked": [n for n, i in checkpoints.items() if i["kind"] == "masked"],
    }[which]


def measure_table1(data: dict, checkpoints: dict) -> dict:
    """Mean curves per token count, per model (every checkpoint, then patch-PCA): "mse" and "ssim"
    over every photo, and "sets": per set of SETS that has photos, its photo count and each model's
    mean MSE, PSNR and SSIM over that set's photos."""
    models = [*checkpoints, PCA]
    found = {
        "mse": {m: mean_curve(data["curves"][m]["mse"]) for m in models},
        "ssim": {m: mean_curve(data["curves"][m]["ssim"]) for m in models},
        "sets": {},
    }
    for key in SETS:
        subset = [i for i, p in enumerate(data["photos"]) if p["set"] == key]
        if subset:
            curves = {
                m: {metric: mean_curve(data["curves"][m][metric], subset) for metric in ("mse", "psnr", "ssim")}
                for m in models
            }
            found["sets"][key] = {"photos": len(subset), "curves": curves}
    return found


def plot_table1(found: dict, out: Path, tokens: int, n_photos: int) -> None:
    """table1.png: mean MSE (on the paper's scale) and SSIM per token count, each model's beside the paper's."""
    plt = _pyplot()
    figure, (left, right) = plt.subplots(1, 2, figsize=(14, 4.8))
    ks = np.arange(1, tokens + 1)
    for m in found["mse"]:
        style = dict(color="grey", linestyle=":", marker="s") if m == PCA else dict(marker="o")
        left.plot(ks, PAPER_SCALE * found["mse"][m], label=m, **style)
        right.plot(ks, found["ssim"][m], label=m, **style)
    for variant, colour in (("vanilla VLE", "black"), ("mask VLE", "brown")):
        values = np.asarray(PAPER_TABLE_1[variant])
        counts = np.arange(1, len(values) + 1)
        left.plot(counts, values[:, 0], "--", color=colour, marker="x", label=f"paper: {variant}")
        right.plot(counts, values[:, 1], "--", color=colour, marker="x", label=f"paper: {variant}")
    left.set(yscale="log", xlabel="tokens", ylabel="MSE on [-1, 1] pixels (log)", title="MSE (lower is better)")
    right.set(xlabel="tokens", ylabel="SSIM", title="SSIM (higher is better)")
    for axis in (left, right):
        axis.set_xticks(ks)
        axis.grid(alpha=0.3)
    # beside the plot: inside, it hid the masked models' curves
    right.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    figure.suptitle(f"Table 1 as curves: {n_photos} held-out photos (Kodak + BSDS500 test) beside the paper's figures")
    figure.tight_layout()
    figure.savefig(out / "table1.png", dpi=110)
    plt.close(figure)


def _model_header(models) -> list[str]:
    return [f"`{m}`" if m != PCA else m for m in models]


def tables_table1(found: dict, tokens: int) -> list[str]:
    """Table 1 beside the paper's, on its scale, then one table per set on [0, 1] pixels."""
    mse, ssim = found["mse"], found["ssim"]
    models = list(mse)

    def paper(variant, k):
        values = PAPER_TABLE_1[variant]
        return f"{values[k - 1][0]:.4f} / {values[k - 1][1]:.3f}" if k <= len(values) else "-"

    header = ["tokens", *(f"paper {v}" for v in PAPER_TABLE_1), *_model_header(models)]
    ours = [[f"{PAPER_SCALE * mse[m][k - 1]:.4f} / {ssim[m][k - 1]:.3f}" for m in models] for k in range(1, tokens + 1)]
    lines = [table(header, [[k, *(paper(v, k) for v in PAPER_TABLE_1), *ours[k - 1]] for k in range(1, tokens + 1)])]
    lines += ["", "![MSE and SSIM per token count, ours beside the paper's](table1.png)", ""]
    for key, subset in found["sets"].items():
        c = subset["curves"]
        rows = []
        for k in range(1, tokens + 1):
            cells = [
                f"{c[m]['mse'][k - 1]:.5f} / {c[m]['psnr'][k - 1]:.2f} / {c[m]['ssim'][k - 1]:.3f}" for m in models
            ]
            rows.append([k, *cells])
        lines += [
            f"On [0, 1] pixels, {SETS[key]} ({subset['photos']} photos): MSE / PSNR (dB, mean of per-image PSNR) / "
            "SSIM.",
            "",
            table(["tokens", *_model_header(models)], rows),
            "",
        ]
    return lines


def section_table1(data: dict, checkpoints: dict, out: Path, tokens: int) -> str:
    found = measure_table1(data, checkpoints)
    n_photos = len(data["photos"])
    plot_table1(found, out, tokens, n_photos)
    text = [
        "## 1. Table 1: reconstruction error per token count",
        "",
        f"MSE on the paper's [-1, 1] scale (4x the MSE on [0, 1] pixels) / SSIM, mean over the {n_photos} held-out "
        "photos (Kodak and BSDS500 test, full resolution). The paper's columns are its Table 1 (iNaturalist + "
        "ImageNet validation, 10,000 images); patch-PCA is the best linear code with a token's 4 values per 8x8 "
        "patch, fitted on BSDS500 train + val.",
        "",
        *tables_table1(found, tokens),
    ]
    text += ["**Reading.**", ""] + reading_table1(found["mse"], found["ssim"], checkpoints, tokens) + [""]
    return "\n".join(text)


def reading_table1(mse: dict, ssim: dict, checkpoints: dict, tokens: int) -> list[str]:
    lines = []
    pairs = (
        ("vanilla VLE", _names(checkpoints, "vle")),
        ("VAE", _names(checkpoints, "fixed")),
        ("mask VLE", _names(checkpoints, "masked")),
    )
    for variant, names in pairs:  # a fixed-length model beside the paper's fixed-length VAE
        paper = np.asarray(PAPER_TABLE_1[variant])
        for name in names:
            counts = sorted({1, min(len(paper), tokens)})
            said = [
                f"{PAPER_SCALE * mse[name][k - 1]:.4f} at {k} token{'s' if k > 1 else ''} vs {paper[k - 1, 0]:.4f}, "
                f"{_verdict(mse[name][k - 1] * PAPER_SCALE, paper[k - 1, 0])}"
                for k in counts
            ]
            ssims = (
                " and ".join(f"{ssim[name][k - 1]:.3f}" for k in counts),
                " and ".join(f"{paper[k - 1, 1]:.3f}" for k in counts),
            )
            lines.append(
                f"- `{name}` against the paper's {variant}: MSE {'; '.join(said)}; SSIM {ssims[0]} vs {ssims[1]}."
            )
    for name in checkpoints:
        better = [k for k in range(1, tokens + 1) if mse[name][k - 1] < mse[PCA][k - 1]]
        lines.append(f"- `{name}` has a lower mean MSE than patch-PCA at {_counts(better, tokens)}.")
    lines.append(
        "- Why the figures differ from the paper's: other images (Kodak and BSDS500 test at full resolution, not "
        "iNaturalist and ImageNet validation), and far less compute. The paper trained ~7M-parameter models for "
        "120,000 updates of 16 images at 512x512 on 4 A100 GPUs; ours, on a 2-core CPU: "
        + "; ".join(f"`{n}` {_training(i)}" for n, i in checkpoints.items())
        + ". A model trained on small crops sees little of a full photo's large-scale structure. The mask VLE's "
        "figures compare with a mask VLE trained on photos at the paper's scale."
        + "".join(
            f" `{n}` was trained on generated scenes only and never saw a photo."
            for n in _names(checkpoints, "masked")
            if checkpoints[n]["training"].get("data") == "scenes"
        )
    )
    return lines


def _verdict(ours: float, theirs: float) -> str:
    ratio = ours / theirs
    size = f"{abs(ratio - 1):.0%}" if 0.5 < ratio < 2 else f"{max(ratio, 1 / ratio):.1f}x"
    return f"{'lower (better)' if ours < theirs else 'higher (worse)'} by {size}"


def _training(info: dict) -> str:
    t = info["training"]
    crop, tokens = t.get("crop", "?"), t.get("max_tokens", "?")
    return (
        f"{t.get('steps', '?')} steps of {t.get('batch', '?')} {crop}x{crop} crops of {t.get('data', '?')} "
        f"({t.get('hours', '?')} h, at most {tokens} token{'' if tokens == 1 else 's'})"
    )


def _counts(ks: list[int], tokens: int) -> str:
    if not ks:
        return "no token count"
    if len(ks) == tokens:
        return f"every token count 1-{tokens}"
    return "token count" + ("s " if len(ks) > 1 else " ") + ", ".join(map(str, ks))


def measure_fig1(data: dict, checkpoints: dict) -> dict:
    """Per vanilla checkpoint (the VLEs, then the fixed-length models): "mse", each photo's MSE per
    token count [photos, tokens], and "mean", its mean per token count."""
    models = _names(checkpoints, "vle") + _names(checkpoints, "fixed")
    return {
        name: {"mse": np.asarray(data["curves"][name]["mse"]), "mean": mean_curve(data["curves"][name]["mse"])}
        for name in models
    }


def plot_fig1(found: dict, checkpoints: dict, out: Path, tokens: int) -> None:
    """fig1.png: per token count, a violin of the photos' MSE (log) for each model side by side."""
    plt = _pyplot()
    models = list(found)
    figure, axis = plt.subplots(figsize=(max(8, tokens * 0.9), 4.8))
    width = 0.8 / len(models)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for j, name in enumerate(models):
        colour = colours[j % len(colours)]
        values = np.log10(np.maximum(found[name]["mse"], 1e-12))
        positions = np.arange(1, tokens + 1) + (j - (len(models) - 1) / 2) * width
        parts = axis.violinplot(
            [values[:, k] for k in range(tokens)], positions=positions, widths=width * 0.95, showmedians=True
        )
        for body in parts["bodies"]:
            body.set(facecolor=colour, alpha=0.55)
        for key in ("cmedians", "cmins", "cmaxes", "cbars"):
            parts[key].set(color=colour, linewidth=1)
        label = name + (" (fixed-length AE)" if is_fixed(checkpoints[name]) else "")
        axis.plot([], [], color=colour, linewidth=8, alpha=0.55, label=label)
    low, high = axis.get_ylim()
    ticks = np.arange(np.floor(low), np.ceil(high) + 1)
    axis.set_yticks(ticks, [f"$10^{{{int(t)}}}$" for t in ticks])
    axis.set(
        xticks=np.arange(1, tokens + 1),
        xlabel="tokens",
        ylabel="per-image MSE on [0, 1] pixels (log)",
        title="Fig. 1: MSE per image as the token count grows (lines: medians)",
    )
    axis.grid(axis="y", alpha=0.3)
    axis.legend(fontsize=9)
    figure.tight_layout()
    figure.savefig(out / "fig1.png", dpi=110)
    plt.close(figure)


def reading_fig1(found: dict, checkpoints: dict, tokens: int) -> list[str]:
    """The reading, generated from the numbers: whether each model's mean MSE falls with every token."""
    lines = []
    for name, curves in found.items():
        mean = curves["mean"]
        stalls = [k + 1 for k in range(1, tokens) if mean[k] >= mean[k - 1]]
        trained = checkpoints[name]["training"].get("max_tokens")
        shape = "falls with every added token" if not stalls else f"does not fall at {_counts(stalls, tokens)}"
        if not stalls and trained and trained < tokens:
            shape += f", also past the {trained} it was trained with"
        lines.append(
            f"- `{name}` (trained with at most {trained} token{'s' if trained != 1 else ''}): mean MSE {mean[0]:.5f} "
            f"at 1 token, {mean[-1]:.5f} at {tokens}, {mean[-1] / mean[0]:.2f} times the first; the mean {shape}."
        )
    lines.append(
        "- The paper's claim: a VLE's error keeps falling past the token count it was trained with, while a "
        "fixed-length autoencoder in the same loop does not generalise to the later residuals. A VLE whose mean "
        "falls with every token, past its trained count, and a fixed-length model whose mean stays near its first, "
        "match that; anything else does not. The paper's fixed-length model was a pretrained 80M-parameter VAE; ours "
        "is a small network like our VLEs, trained with one token."
    )
    return lines


def section_fig1(data: dict, checkpoints: dict, out: Path, tokens: int) -> str:
    found = measure_fig1(data, checkpoints)
    text = [
        "## 2. Fig. 1: per-image MSE against token count",
        "",
        f"The distribution over the {len(data['photos'])} held-out photos of each image's MSE (on [0, 1] pixels) "
        "after k tokens: each VLE beside a fixed-length autoencoder (a model trained with one token) run in the "
        "same residual loop, as the paper ran a pretrained VAE.",
        "",
        "![Per-image MSE per token count as violins](fig1.png)",
        "",
        "**Reading.**",
        "",
    ]
    if not found:
        return "\n".join(text + ["- No vanilla checkpoint is shipped; nothing to plot.", ""])
    plot_fig1(found, checkpoints, out, tokens)
    return "\n".join(text + reading_fig1(found, checkpoints, tokens) + [""])


def measure_fig2(data: dict, checkpoints: dict) -> dict:
    """Per checkpoint: (tokens needed per photo to reach Fig. 2's MSE, their correlation with the
    photos' grayscale entropy)."""
    entropy = np.asarray(data["entropy"])
    found = {}
    for name in checkpoints:
        needed = tokens_needed(data["curves"][name]["mse"])
        found[name] = (needed, correlation(entropy, needed))
    return found


def row_fig2(name: str, needed: np.ndarray, c: dict, tokens: int) -> list[str]:
    """One checkpoint's row of the Fig. 2 table."""
    reached = needed <= tokens
    median = f"{np.median(needed):.0f}" if np.median(needed) <= tokens else f">{tokens}"
    if np.isnan(c["pearson"]):
        return [f"`{name}`", f"{reached.mean():.0%}", median, "-", "-"]
    pearson, spearman = (
        f"{c['pearson']:.3f} (p = {c['pearson_p']:.2g})",
        f"{c['spearman']:.3f} (p = {c['spearman_p']:.2g})",
    )
    return [f"`{name}`", f"{reached.mean():.0%}", median, pearson, spearman]


def plot_fig2(data: dict, found: dict, names: list[str], out: Path, tokens: int) -> None:
    """fig2.png: per VLE in `names`, tokens needed against entropy, one point per photo (x: not reached)."""
    plt = _pyplot()
    entropy = np.asarray(data["entropy"])
    figure, axes = plt.subplots(1, len(names), figsize=(5.5 * len(names), 4.3), squeeze=False)
    jitter = np.random.default_rng(0).uniform(-0.15, 0.15, len(entropy))  # integers overlap: spread them a little
    is_kodak = np.array([p["set"] == "kodak" for p in data["photos"]])
    for axis, name in zip(axes[0], names):
        needed, c = found[name]
        reached = needed <= tokens
        for mask, label, marker in ((is_kodak, "Kodak", "o"), (~is_kodak, "BSDS500 test", "^")):
            shown, missed = mask & reached, mask & ~reached
            axis.scatter(entropy[shown], needed[shown] + jitter[shown], s=14, marker=marker, alpha=0.7, label=label)
            axis.scatter(entropy[missed], needed[missed] + jitter[missed], s=14, marker="x", color="grey", alpha=0.7)
        axis.set_yticks(range(1, tokens + 2), [*map(str, range(1, tokens + 1)), f">{tokens}"])
        axis.set(
            xlabel="Shannon entropy of the grayscale image (bits)",
            ylabel=f"tokens to MSE {FIG2_MSE:.5f} on [0, 1]",
            title=f"{name}\nPearson r {c['pearson']:.2f}, Spearman rho {c['spearman']:.2f}",
        )
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8, loc="upper left")
    figure.tight_layout()
    figure.savefig(out / "fig2.png", dpi=110)
    plt.close(figure)


def reading_fig2(found: dict, names: list[str]) -> list[str]:
    """The reading, generated from the numbers: whether each VLE's length rises with entropy."""
    lines = []
    for name in names:
        c = found[name][1]
        if np.isnan(c["spearman"]):
            lines.append(f"- `{name}`: every photo needs the same count, so no correlation can be measured.")
            continue
        sign = "positive" if c["spearman"] > 0 else "negative"
        significant = c["spearman_p"] < 0.05 and c["pearson_p"] < 0.05
        match = (
            "the paper's upward trend, matched" if c["spearman"] > 0 and significant else "not the paper's upward trend"
        )
        lines.append(
            f"- `{name}`: a {sign} rank correlation, rho = {c['spearman']:.2f} (p = {c['spearman_p']:.2g}), r = "
            f"{c['pearson']:.2f} (p = {c['pearson_p']:.2g}): {match} at the 5% level."
        )
    lines.append(
        "- The paper shows the trend as a plot without a coefficient, on other images; its point, that a vanilla "
        "VLE's length follows pixel statistics rather than content, is what a positive correlation here supports. "
        "Grayscale entropy measures the spread of grey levels, not texture, so a smooth gradient can score high and "
        "need few tokens."
    )
    if not names:
        lines.append("- No vanilla VLE is shipped; nothing to plot.")
    return lines


def section_fig2(data: dict, checkpoints: dict, out: Path, tokens: int) -> str:
    found = measure_fig2(data, checkpoints)
    plotted = _names(checkpoints, "vle")
    if plotted:
        plot_fig2(data, found, plotted, out, tokens)
    rows = [row_fig2(name, *found[name], tokens) for name in checkpoints]
    text = [
        "## 3. Fig. 2: tokens needed against image entropy",
        "",
        f"Per held-out photo ({len(data['entropy'])}: Kodak + BSDS500 test), the fewest tokens whose reconstruction "
        f"has MSE at most {FIG2_MSE:.5f} on [0, 1] pixels (the paper's 0.003 on [-1, 1]), against the Shannon "
        f"entropy of its grayscale (scikit-image, bits). A photo that {tokens} tokens do not bring under the "
        f"threshold counts as {tokens + 1} (a lower bound).",
        "",
        table(
            ["checkpoint", f"photos reaching it in {tokens} tokens", "median tokens", "Pearson r", "Spearman rho"], rows
        ),
        "",
        "![Tokens needed against entropy](fig2.png)",
        "",
        "**Reading.**",
        "",
    ]
    return "\n".join(text + reading_fig2(found, plotted) + [""])


LENGTH_PSNR = (28.0, 34.0)  # dB: a lower and a higher bar beside the paper's threshold (31.25 dB)


def length_targets() -> dict:
    """Label -> MSE threshold on [0, 1] pixels: the paper's, and LENGTH_PSNR's."""
    paper = f"paper's MSE {FIG2_MSE:.5f} ({10 * np.log10(1 / FIG2_MSE):.2f} dB)"
    return {
        f"PSNR {LENGTH_PSNR[0]:g} dB": 10 ** (-LENGTH_PSNR[0] / 10),
        paper: FIG2_MSE,
        f"PSNR {LENGTH_PSNR[1]:g} dB": 10 ** (-LENGTH_PSNR[1] / 10),
    }


def measure_length(data: dict, checkpoints: dict) -> dict:
    """Per checkpoint and target: tokens needed per photo, and Spearman's rho of that against each
    complexity measure."""
    found = {}
    for name in checkpoints:
        for label, target in length_targets().items():
            needed = tokens_needed(data["curves"][name]["mse"], target)
            found[name, label] = {
                "needed": needed,
                **{m: correlation(np.asarray(data[m]), needed) for m in ("entropy", "laplacian")},
            }
    return found


def _rho(c: dict) -> str:
    return "-" if np.isnan(c["spearman"]) else f"{c['spearman']:.2f} (p = {c['spearman_p']:.2g})"


def plot_length(data: dict, found: dict, names: list[str], out: Path, tokens: int) -> None:
    """length.png: per checkpoint, the histogram of tokens needed for each target, and tokens
    needed for the paper's threshold against the Laplacian's variance."""
    plt = _pyplot()
    labels = list(length_targets())
    figure, axes = plt.subplots(len(names), 2, figsize=(11, 3.4 * len(names)), squeeze=False)
    counts = np.arange(1, tokens + 2)
    width = 0.8 / len(labels)
    for row, name in zip(axes, names):
        for j, label in enumerate(labels):
            needed = found[name, label]["needed"]
            row[0].bar(counts + (j - 1) * width, [(needed == k).sum() for k in counts], width, label=label)
        row[0].set_xticks(counts, [*map(str, range(1, tokens + 1)), f">{tokens}"])
        row[0].set(xlabel="tokens needed", ylabel="photos", title=f"{name}: tokens needed per photo")
        row[0].legend(fontsize=7)
        paper = found[name, labels[1]]
        jitter = np.random.default_rng(0).uniform(-0.15, 0.15, len(paper["needed"]))
        row[1].scatter(np.asarray(data["laplacian"]), paper["needed"] + jitter, s=14, alpha=0.7)
        row[1].set_xscale("log")
        row[1].set_yticks(counts, [*map(str, range(1, tokens + 1)), f">{tokens}"])
        row[1].set(
            xlabel="variance of the Laplacian (log scale)",
            ylabel="tokens needed (paper's threshold)",
            title=f"{name}: Spearman rho {_rho(paper['laplacian'])}",
        )
        for axis in row:
            axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(out / "length.png", dpi=100)
    plt.close(figure)


def reading_length(found: dict, names: list[str], tokens: int) -> list[str]:
    """The reading, generated from the numbers: which complexity measure length follows, and how."""
    labels = list(length_targets())
    lines = []
    for name in names:
        paper = found[name, labels[1]]
        reached = paper["needed"] <= tokens
        if not reached.any():
            lines.append(
                f"- `{name}`: no photo reaches the paper's threshold within {tokens} tokens, so its length there is "
                "not measured."
            )
            continue
        most = paper["needed"].max() if reached.all() else f"more than {tokens}"
        spread = f"from {paper['needed'].min()} to {most} tokens"
        parts = []
        for measure_name, title in (("entropy", "grayscale entropy"), ("laplacian", "the Laplacian's variance")):
            c = paper[measure_name]
            if np.isnan(c["spearman"]):
                parts.append(f"no correlation with {title} can be measured (every photo needs the same count)")
            else:
                strength = (
                    "strong" if abs(c["spearman"]) >= 0.6 else "moderate" if abs(c["spearman"]) >= 0.3 else "weak"
                )
                sign = "rising" if c["spearman"] > 0 else "falling"
                significant = "significant" if c["spearman_p"] < 0.05 else "not significant"
                parts.append(
                    f"a {strength} {sign} rank correlation with {title} (rho = {c['spearman']:.2f}, {significant} at "
                    "5%)"
                )
        lines.append(
            f"- `{name}`: at the paper's threshold the photos need {spread} ({reached.mean():.0%} reach it within "
            f"{tokens}); " + "; ".join(parts) + "."
        )
    if not names:
        lines.append("- No VLE is shipped; nothing to read.")
    lines.append(
        "- A photo that does not reach a target within the tokens measured counts as one past them, a lower bound: "
        "the rank correlations are then ties at the top. The Laplacian's variance measures edges and fine texture, "
        "which is what a residual coder spends tokens on; entropy measures only the spread of grey levels."
    )
    return lines


def section_length(data: dict, checkpoints: dict, out: Path, tokens: int) -> str:
    found = measure_length(data, checkpoints)
    labels = list(length_targets())
    rows = []
    for name in checkpoints:
        for label in labels:
            f = found[name, label]
            reached = f["needed"] <= tokens
            median = f"{np.median(f['needed']):.0f}" if np.median(f["needed"]) <= tokens else f">{tokens}"
            rows.append([f"`{name}`", label, f"{reached.mean():.0%}", median, _rho(f["entropy"]), _rho(f["laplacian"])])
    plotted = _names(checkpoints, "vle") + _names(checkpoints, "masked")
    if plotted:
        plot_length(data, found, plotted, out, tokens)
    text = [
        "## 4. Length: how many tokens each photo takes",
        "",
        "Per held-out photo, the fewest tokens whose reconstruction reaches each target, the length "
        f"`VLE.encode(image, target_psnr=...)` stops at; a photo that {tokens} tokens do not bring there counts as "
        f"{tokens + 1}. Beside each: Spearman's rank correlation of that length with the photo's grayscale entropy "
        "(the paper's Fig. 2) and with the variance of its Laplacian (DOVE's measure of complexity), with two-sided "
        "p-values.",
        "",
        table(
            [
                "checkpoint",
                "target",
                f"photos reaching it in {tokens} tokens",
                "median tokens",
                "Spearman rho, entropy",
                "Spearman rho, Laplacian variance",
            ],
            rows,
        ),
        "",
        *(["![Tokens needed per photo, and against the Laplacian's variance](length.png)", ""] if plotted else []),
        "**Reading.**",
        "",
        *reading_length(found, plotted, tokens),
    ]
    return "\n".join(text + [""])


MARKERS = ("s", "D", "^")  # one per baseline, in BASELINES' order


def measure_masks(data: dict, checkpoints: dict) -> dict:
    """What the masks section shows beside data["bsds_seg"]: the masked checkpoints, the scene count,
    the RGB argmax's foreground ARI, each model's mean foreground ARI per token count on scenes, and
    the number of BSDS500 test photos."""
    masked = _names(checkpoints, "masked")
    n_scenes = len(data["scenes_rgb_argmax"])
    return {
        "masked": masked,
        "n_scenes": n_scenes,
        "rgb": float(np.mean(data["scenes_rgb_argmax"])) if n_scenes else float("nan"),
        "scenes": {name: mean_curve(data["scenes"][name]) for name in masked},
        "n_test": sum(p["set"] == "bsds-test" for p in data["photos"]),
    }


def row_masks(name: str, s: dict) -> list:
    """One masked checkpoint's row of the BSDS500 table: its masks at its trained token count beside
    each baseline (in brackets: the segments it gave)."""
    k = s["tokens"]
    segments = np.asarray(s["segments"])[:, k - 1] if len(s["segments"]) else np.array([np.nan])
    ours = np.asarray(s["ari"])[:, k - 1] if len(s["ari"]) else np.array([np.nan])
    baselines = (f"{np.mean(s[m]):.3f} ({np.mean(s[m + '_segments']):.1f})" for m in BASELINES)
    return [f"`{name}`", k, f"{segments.mean():.1f}", f"{ours.mean():.3f}", *baselines]


def plot_masks(found: dict, seg: dict, out: Path, tokens: int) -> None:
    """masks.png: foreground ARI per token count on scenes; ARI on BSDS500 test per token count,
    with the baselines at each model's trained count."""
    plt = _pyplot()
    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    ks = np.arange(1, tokens + 1)
    for name in found["masked"]:
        left.plot(ks, found["scenes"][name], marker="o", label=name)
        if len(seg[name]["ari"]):
            line = right.plot(ks, mean_curve(seg[name]["ari"]), marker="o", label=f"{name} masks")[0]
            for m, marker in zip(BASELINES, MARKERS):
                at = ([seg[name]["tokens"]], [np.mean(seg[name][m])])
                right.scatter(*at, marker=marker, color=line.get_color(), edgecolor="black", zorder=3, s=50)
    for m, marker in zip(BASELINES, MARKERS):
        right.scatter([], [], marker=marker, color="white", edgecolor="black", label=f"{m}, as many segments")
    left.axhline(found["rgb"], color="grey", linestyle=":", label="RGB argmax")
    left.set(
        xticks=ks, xlabel="tokens", ylabel="foreground ARI", title=f"Generated scenes ({found['n_scenes']}, held out)"
    )
    title = f"BSDS500 test ({found['n_test']} photos)"
    right.set(xticks=ks, xlabel="tokens", ylabel="ARI against human segmentations", title=title)
    for axis in (left, right):
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(out / "masks.png", dpi=110)
    plt.close(figure)


def reading_masks(found: dict, seg: dict, checkpoints: dict) -> list[str]:
    """The reading, generated from the numbers: each model against the RGB argmax and the baselines."""
    lines, rgb = [], found["rgb"]
    for name in found["masked"]:
        scenes, trained = found["scenes"][name], seg[name]["tokens"]
        best = int(np.argmax(scenes)) + 1
        side = "above" if scenes[trained - 1] > rgb else "below"
        lines.append(
            f"- `{name}` on scenes: foreground ARI {scenes[trained - 1]:.3f} at its {trained} trained tokens (best "
            f"{scenes[best - 1]:.3f} at {best}), {side} the RGB argmax's {rgb:.3f}."
        )
        if len(seg[name]["ari"]):
            ours = float(np.mean(np.asarray(seg[name]["ari"])[:, trained - 1]))
            beaten = [m for m in BASELINES if ours > np.mean(seg[name][m])]
            lost = [m for m in BASELINES if m not in beaten]
            lines.append(
                f"- `{name}` on BSDS500 test: ARI {ours:.3f}; "
                + (f"above {', '.join(beaten)}" if beaten else "above none of the baselines")
                + (f"; below {', '.join(lost)}." if lost else ".")
            )
    for name in found["masked"]:
        if checkpoints[name]["training"].get("data") == "scenes":
            lines.append(
                f"- `{name}` was trained on generated scenes only: its masks on photos say how far that training "
                "carries, not what a masked VLE can do on photos."
            )
        else:
            lines.append(
                f"- `{name}` was trained on photos: {_training(checkpoints[name])}; the paper's models had 120,000 "
                "updates of 16 images at 512x512."
            )
    lines.append(
        "- The paper shows masks as pictures (its Fig. 3) and reports no mask score, so there is no figure of its to "
        "match. ARI against people's segmentations rewards regions that follow objects; a classical segmenter that "
        "follows colour edges is a demanding baseline at a handful of segments."
    )
    return lines


def section_masks(data: dict, checkpoints: dict, out: Path, tokens: int) -> str:
    found = measure_masks(data, checkpoints)
    masked, seg = found["masked"], data["bsds_seg"]
    text = [
        "## 5. Masks: objects in generated scenes, regions in photos",
        "",
        "Foreground ARI (background pixels ignored) of the per-pixel argmax over the first k tokens' decoded masks "
        f"against the true objects of {found['n_scenes']} held-out generated scenes (64x64, seeds training never "
        f"draws); the argmax of the RGB channels, a trivial segmentation, scores {found['rgb']:.3f}.",
        "",
    ]
    if not masked:
        return "\n".join(text + ["No masked checkpoint is shipped.", ""])
    plot_masks(found, seg, out, tokens)
    scenes = [[k, *(f"{found['scenes'][n][k - 1]:.3f}" for n in masked)] for k in range(1, tokens + 1)]
    text += [
        table(["tokens", *(f"`{n}`" for n in masked)], scenes),
        "",
        f"ARI against the human segmentations of the {found['n_test']} BSDS500 test photos (the mean over each "
        "photo's 4-9 annotators), the model's masks at its trained token count beside three classical segmenters "
        "given as many segments as the model used on that photo (in brackets: the segments they gave). Their "
        "settings were picked on BSDS500 train + val (`python -m vle_core.evaluate --tune-baselines`; see "
        "`vle_core/evaluate.py`).",
        "",
        table(
            ["checkpoint", "tokens", "segments", "VLE masks", *(f"{m}" for m in BASELINES)],
            [row_masks(n, seg[n]) for n in masked],
        ),
        "",
        "![Foreground ARI per token count on scenes; ARI on BSDS500 test per token count beside the "
        "baselines](masks.png)",
        "",
        "**Reading.**",
        "",
        *reading_masks(found, seg, checkpoints),
    ]
    return "\n".join(text + [""])


def page(data: dict, checkpoints: dict, out: Path, tokens: int, settings: dict) -> str:
    counts = {key: sum(p["set"] == key for p in data["photos"]) for key in SETS}
    scope = (
        "all of both sets"
        if settings["every"] == 1
        else f"every {settings['every']}th photo of each set: a quick look, not the full held-out sets"
    )
    head = [
        "# Results: the paper's Table 1, Fig. 1 and Fig. 2, length per image, and the masks",
        "",
        f"Written by `{settings['command']}` ({settings['processes']} "
        f"process{'es' if settings['processes'] > 1 else ''}, {settings['minutes']:.0f} minutes on "
        f"{settings['hardware']}). Every number and every sentence with a number below is generated from the "
        "measurements; `results.json` holds them per image.",
        "",
        f"Data, held out from all training: {counts['kodak']} Kodak photos and {counts['bsds-test']} BSDS500 test "
        f"photos ({scope}), and {len(data['scenes_rgb_argmax'])} generated scenes from seed {HELDOUT_SEED} (training "
        f"draws another). Checkpoints: {', '.join(f'`{n}`' for n in checkpoints)}, each encoding up to {tokens} "
        "tokens.",
        "",
    ]
    return "\n".join(
        head
        + [
            section_table1(data, checkpoints, out, tokens),
            section_fig1(data, checkpoints, out, tokens),
            section_fig2(data, checkpoints, out, tokens),
            section_length(data, checkpoints, out, tokens),
            section_masks(data, checkpoints, out, tokens),
        ]
    )


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m vle_core.report", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--out",
        default="docs/results",
        help="folder for README.md, the PNG plots and results.json (default docs/results)",
    )
    parser.add_argument(
        "--data", help="the data root holding kodak/ and bsds500/ (default: $VLE_DATA, else ../shared/data)"
    )
    parser.add_argument(
        "--checkpoints", default="checkpoints", help="evaluate every checkpoint folder in here (default checkpoints/)"
    )
    parser.add_argument(
        "--tokens", type=int, default=12, help="token counts 1..N (default 12, as the authors' evaluation)"
    )
    parser.add_argument(
        "--every", type=int, default=1, help="keep every N-th photo of each set (default 1: all of them)"
    )
    parser.add_argument("--scenes", type=int, default=200, help="held-out generated scenes (default 200)")
    parser.add_argument("--device", default="auto", help="auto (cuda, mps, cpu) or a torch device")
    parser.add_argument(
        "--replot",
        action="store_true",
        help="measure nothing: rewrite README.md and the plots from --out's results.json",
    )
    args = parser.parse_args(argv)
    if args.tokens < 1 or args.every < 1 or args.scenes < 0:
        parser.error("--tokens and --every must be at least 1, --scenes at least 0")
    out = Path(args.out)
    if args.replot:
        if not (out / "results.json").is_file():
            sys.exit(f"vle_core.report: error: no {out / 'results.json'} to replot: run the report first")
        results = json.loads((out / "results.json").read_text())
        if "laplacian" not in results:  # measured before the length section: only the photos are needed
            use_data(args.data)
            results["laplacian"] = [metrics.laplacian_variance(read_image(p["path"])) for p in results["photos"]]
            (out / "results.json").write_text(json.dumps(results) + "\n")
        data = {key: value for key, value in results.items() if key not in ("tokens", "checkpoints", "settings")}
        (out / "README.md").write_text(page(data, results["checkpoints"], out, results["tokens"], results["settings"]))
        return
    use_data(args.data)
    started = time.time()
    rank, world = start_processes()
    try:
        checkpoints = discover(args.checkpoints)
        data = measure(checkpoints, photos(args.every), args.tokens, args.scenes, rank, world, args.device)
    except (ValueError, FileNotFoundError) as e:  # missing data or checkpoints: one line, no traceback
        sys.exit(f"vle_core.report: error: {str(e).splitlines()[0]}")
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        launcher = (
            f"torchrun --standalone --nproc_per_node={world} -m vle_core.report"
            if world > 1
            else "python -m vle_core.report"
        )
        command = " ".join([launcher, *(argv if argv is not None else sys.argv[1:])])
        hardware = torch.cuda.get_device_name() if torch.cuda.is_available() else f"a {os.cpu_count()}-core CPU"
        settings = {
            "command": command,
            "processes": world,
            "minutes": (time.time() - started) / 60,
            "hardware": hardware,
            "every": args.every,
        }
        (out / "results.json").write_text(
            json.dumps({"tokens": args.tokens, "checkpoints": checkpoints, "settings": settings, **data}) + "\n"
        )
        (out / "README.md").write_text(page(data, checkpoints, out, args.tokens, settings))
        print(f"wrote {out / 'README.md'} in {settings['minutes']:.1f} minutes")
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
