"""Object edits scored against exact ground truth: `python -m vle_core.evaluate CKPT --suite edits`
(generated scenes) and `--suite removal` (photo composites).

edits    On held-out generated scenes: the token that took the top-most object (the one whose
         mask overlaps it best) is switched off, and then moved by whole 8 px cells, through
         `VLE.apply_edits`. The truth is the same scene drawn without the object, or with it
         moved (`scenes.edited_scene`). Beside it, the paper's own edit: the token left out of
         the sum, or its latent moved (`edit.drop`, `edit.translate`).
removal  An object cut from a BSDS500 test photo along a human outline, pasted on a Kodak
         photo (neither was trained on): the tokens that took it (region tokens whose mask lies
         mostly inside it) are switched off, which should give back the Kodak photo. Scored over
         the pasted pixels beside doing nothing, a grey fill, and classical fills given the
         exact mask: scikit-image's biharmonic inpainting and this library's push-pull fill.

PSNRs are means over images of each image's PSNR in dB, as the scenes suite's.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from skimage.restoration import inpaint_biharmonic
from tqdm import tqdm

from . import edit, metrics
from .config import DOWNSAMPLING
from .data import bsds_test_paths, ground_truth_path, human_segmentations, kodak_paths, read_image
from .fill import fill_holes
from .scenes import HELDOUT_SEED, SEED_STRIDE, TRAIN_SEED, Scene, edited_scene, make_scene

MOVE_CELLS = 2  # a scene's object moves by up to this many 8 px cells each way (never by none)


def psnr_over(a: np.ndarray, b: np.ndarray, where: np.ndarray) -> float:
    """PSNR in dB of a against b over the pixels `where` ([H, W] bool), pixels in [0, 1]; nan over none."""
    return metrics.psnr(a[where], b[where]) if where.any() else float("nan")


def object_token(vle, encoding, obj: np.ndarray) -> tuple[int, float]:
    """(index, IoU) of the region token whose mask (over 0.5) overlaps `obj` best."""
    regions = np.flatnonzero(vle.region_tokens(encoding.tokens))
    masks = encoding.masks > 0.5
    ious = [float(masks[i][obj].sum() / max((masks[i] | obj).sum(), 1)) for i in regions]
    best = int(np.argmax(ious))
    return int(regions[best]), ious[best]


def scene_move(rng: np.random.Generator) -> tuple[int, int]:
    """A move by whole cells, at most MOVE_CELLS each way, never (0, 0)."""
    while True:
        dx, dy = (int(v) * DOWNSAMPLING for v in rng.integers(-MOVE_CELLS, MOVE_CELLS + 1, size=2))
        if (dx, dy) != (0, 0):
            return dx, dy


@dataclass
class SceneEdit:
    """One scene's object edit and its truth: the top-most object (label K, pixels `obj`), the
    token that took it (t, IoU), a move (dx, dy), and the scene drawn without the object
    (`removed`, [H, W, 3] in [0, 1]) and with it moved (`moved`, and its labels)."""

    scene: Scene
    encoding: object
    t: int
    iou: float
    move: tuple[int, int]
    removed: np.ndarray
    moved: np.ndarray
    moved_labels: np.ndarray

    @property
    def image(self) -> np.ndarray:
        return self.scene.image.astype(np.float32) / 255

    @property
    def obj(self) -> np.ndarray:
        return self.scene.labels == self.scene.num_objects

    @property
    def entered(self) -> np.ndarray:
        return self.moved_labels == self.scene.num_objects


def scene_edit(vle, seed: int, rng: np.random.Generator, n_tokens: int, size: int) -> SceneEdit:
    """Scene `seed` encoded, its top-most object's token found and a move drawn from `rng`."""
    scene = make_scene(seed, size)
    K = scene.num_objects
    encoding = vle.encode(scene.image, n_tokens)
    t, iou = object_token(vle, encoding, scene.labels == K)
    move = scene_move(rng)
    truth = edited_scene(seed, size, moves={K: move})
    removed = edited_scene(seed, size, removed=(K,)).image.astype(np.float32) / 255
    return SceneEdit(scene, encoding, t, iou, move, removed, truth.image.astype(np.float32) / 255, truth.labels)


def edits_suite(
    vle, n_tokens: int, n_scenes: int = 200, size: int = 64, every: int = 1, limit: int | None = None
) -> dict:
    """Removing and moving each held-out scene's top-most object (module docstring)."""
    if vle.kind != "masked":
        raise ValueError(
            f"the edits suite edits objects: this {vle.kind} model has no region tokens (use a masked checkpoint)"
        )
    rng = np.random.default_rng(0)
    rows = []
    for i in tqdm(list(range(n_scenes))[::every][:limit], desc="edits", leave=False):
        case = scene_edit(vle, HELDOUT_SEED * SEED_STRIDE + i, rng, n_tokens, size)
        encoding, t, (dx, dy), plain = case.encoding, case.t, case.move, case.encoding.reconstructions[-1]
        region = case.obj | case.entered  # the pixels the object left and entered
        ours_off = vle.apply_edits(encoding, off=[t])
        ours_moved = vle.apply_edits(encoding, moves={t: (dx, dy)})
        paper_off = vle.decode(edit.drop(encoding.tokens, t))
        paper_moved = vle.decode(edit.translate(encoding.tokens, t, dx, dy))
        rows.append(
            {
                "iou": case.iou,
                "fg_ari": metrics.foreground_ari(case.scene.labels, metrics.masks_to_labels(encoding.masks)),
                "psnr_plain": metrics.psnr(case.image, plain),
                "psnr_plain_object": psnr_over(plain, case.image, case.obj),
                "removed_psnr": metrics.psnr(case.removed, ours_off),
                "removed_psnr_left": psnr_over(ours_off, case.removed, case.obj),
                "removed_psnr_left_paper": psnr_over(paper_off, case.removed, case.obj),
                "removed_psnr_left_nothing": psnr_over(plain, case.removed, case.obj),
                "moved_psnr": metrics.psnr(case.moved, ours_moved),
                "moved_psnr_region": psnr_over(ours_moved, case.moved, region),
                "moved_psnr_entered": psnr_over(ours_moved, case.moved, case.entered),
                "moved_psnr_region_paper": psnr_over(paper_moved, case.moved, region),
            }
        )
    # nan: a move took the object out of the image
    result = {key: float(np.nanmean([row[key] for row in rows])) for key in rows[0]}
    result["removed_gap"] = result["psnr_plain"] - result["removed_psnr"]
    result["moved_gap"] = result["psnr_plain"] - result["moved_psnr"]
    return {**result, "scenes": len(rows), "size": size}


TUNE_FIRST_SEED = 500_000  # training-stream scenes the object threshold is picked on (held-out ones never)


def tune_object_from(
    vle, thresholds=(0.1, 0.15, 0.2, 0.3, 0.5), n_scenes: int = 120, n_tokens: int = 8, size: int = 64
) -> dict:
    """Per threshold (`edit.layered`'s object_from): mean PSNR of removing and of moving the top-most
    object of training-stream scenes, over the whole picture and over the pixels the object left
    (and entered). The whole-picture figures are what a looser object costs: more of its
    surroundings go with it."""
    rng = np.random.default_rng(0)
    rows = {T: [] for T in thresholds}
    for i in tqdm(range(n_scenes), desc="tune", leave=False):
        case = scene_edit(vle, TRAIN_SEED * SEED_STRIDE + TUNE_FIRST_SEED + i, rng, n_tokens, size)
        picture, masks, contributions = (
            case.encoding.reconstructions[-1],
            case.encoding.masks,
            case.encoding.contributions,
        )
        offsets = [(0, 0)] * len(masks)
        offsets[case.t] = case.move
        others = [j != case.t for j in range(len(masks))]
        for T in thresholds:
            off = edit.layered(picture, masks, contributions, others, [(0, 0)] * len(masks), object_from=T)
            moved = edit.layered(picture, masks, contributions, [True] * len(masks), offsets, object_from=T)
            rows[T].append(
                (
                    metrics.psnr(case.removed, off),
                    psnr_over(off, case.removed, case.obj),
                    metrics.psnr(case.moved, moved),
                    psnr_over(moved, case.moved, case.obj | case.entered),
                )
            )
    names = ("removed_psnr", "removed_psnr_left", "moved_psnr", "moved_psnr_region")
    return {T: dict(zip(names, np.nanmean(rows[T], axis=0).tolist())) for T in thresholds}


COMPOSITE_SIDE = 384  # px, the Kodak photo's long side in a composite (half size: a cheap encode)
SEGMENT_AREA = (0.03, 0.2)  # share of the BSDS500 photo a pasted segment covers
TAKEN = 0.5  # a region token took the pasted object if this share of its mask lies inside it


def pasted_segment(path, scale: float, fit: tuple[int, int]) -> tuple[np.ndarray, np.ndarray] | None:
    """(pixels [h, w, 3], mask [h, w] bool) of the largest segment of the first human
    segmentation of a BSDS500 test photo that covers SEGMENT_AREA of it and does not touch its
    border (a whole object), scaled by `scale`, or less to fit in `fit` (H, W); None if the
    photo has none."""
    labels = human_segmentations(ground_truth_path(path))[0]
    interior = np.setdiff1d(
        np.unique(labels), np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    )
    areas = {int(k): float((labels == k).mean()) for k in interior}
    fits = [k for k, a in areas.items() if SEGMENT_AREA[0] <= a <= SEGMENT_AREA[1]]
    if not fits:
        return None
    mask = labels == max(fits, key=areas.get)
    ys, xs = np.nonzero(mask)
    box = (slice(ys.min(), ys.max() + 1), slice(xs.min(), xs.max() + 1))
    photo = Image.fromarray((read_image(path)[box] * 255).round().astype(np.uint8))
    scale = min(scale, fit[0] / photo.height, fit[1] / photo.width)
    size = (max(1, round(photo.width * scale)), max(1, round(photo.height * scale)))
    pixels = np.asarray(photo.resize(size, Image.BICUBIC), np.float32) / 255
    cut = np.asarray(Image.fromarray(mask[box]).resize(size, Image.NEAREST))
    return pixels, cut


def composites(n: int, seed: int = 0):
    """Up to n (Kodak photo, composite, pasted mask) triples: Kodak photo i % 24 at COMPOSITE_SIDE,
    a segment of a BSDS500 test photo pasted at a seeded place."""
    rng = np.random.default_rng(seed)
    kodak, bsds = kodak_paths(), bsds_test_paths()
    step = max(1, len(bsds) // max(n, 1))
    made = 0
    for path in bsds[::step] + [p for p in bsds if p not in bsds[::step]]:  # spread over the set, then the rest
        if made == n:
            return
        photo = Image.open(kodak[made % len(kodak)]).convert("RGB")
        photo.thumbnail((COMPOSITE_SIDE, COMPOSITE_SIDE), Image.BICUBIC)
        background = np.asarray(photo, np.float32) / 255
        # as large as in the BSDS500 photo
        segment = pasted_segment(path, scale=COMPOSITE_SIDE / 481, fit=background.shape[:2])
        if segment is None:
            continue
        pixels, cut = segment
        H, W = background.shape[:2]
        h, w = cut.shape
        y, x = int(rng.integers(0, H - h + 1)), int(rng.integers(0, W - w + 1))
        pasted = np.zeros((H, W), bool)
        pasted[y : y + h, x : x + w] = cut
        composite = background.copy()
        composite[y : y + h, x : x + w][cut] = pixels[cut]
        made += 1
        yield background, composite, pasted


def biharmonic(picture: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """scikit-image's biharmonic inpainting of `hole` in `picture`, one region at a time: its
    single-system path (0.26) leaves sparse indices unset and fails on reused memory."""
    return inpaint_biharmonic(picture, hole, channel_axis=-1, split_into_regions=True)


def taken_tokens(vle, encoding, pasted: np.ndarray) -> list[int]:
    """The region tokens whose mask (over 0.5) lies at least TAKEN inside `pasted`."""
    regions = np.flatnonzero(vle.region_tokens(encoding.tokens))
    taken = []
    for i in regions:
        mask = encoding.masks[i] > 0.5
        if mask.any() and mask[pasted].sum() >= TAKEN * mask.sum():
            taken.append(int(i))
    return taken


def removal_suite(vle, n_tokens: int, n_photos: int = 24, every: int = 1, limit: int | None = None) -> dict:
    """Switching off the tokens that took a pasted object, on photo composites (module docstring)."""
    if vle.kind != "masked":
        raise ValueError(
            f"the removal suite switches off objects: this {vle.kind} model has no region tokens (use a masked "
            "checkpoint)"
        )
    rows = []
    for background, composite, pasted in tqdm(list(composites(n_photos))[::every][:limit], desc="removal", leave=False):
        encoding = vle.encode(composite, n_tokens)
        plain = encoding.reconstructions[-1]
        taken = taken_tokens(vle, encoding, pasted)
        ours = vle.apply_edits(encoding, off=taken)
        grey = np.where(pasted[..., None], 0.5, composite)
        covered = np.zeros(pasted.shape, bool)
        for i in taken:
            covered |= encoding.masks[i] > 0.5
        rows.append(
            {
                "psnr_pasted": psnr_over(ours, background, pasted),
                "psnr_pasted_nothing": psnr_over(plain, background, pasted),
                "psnr_pasted_grey": psnr_over(grey, background, pasted),
                "psnr_pasted_biharmonic": psnr_over(biharmonic(composite, pasted), background, pasted),
                "psnr_pasted_fill_exact_mask": psnr_over(fill_holes(composite, pasted), background, pasted),
                "psnr_pasted_paper": psnr_over(vle.decode(edit.drop(encoding.tokens, taken)), background, pasted),
                "psnr_photo": metrics.psnr(background, ours),
                "psnr_plain": metrics.psnr(composite, plain),
                "tokens_off": len(taken),
                "pasted_found": float(covered[pasted].mean()),
                "pasted_share": float(pasted.mean()),
            }
        )
    return {
        **{key: float(np.mean([row[key] for row in rows])) for key in rows[0]},
        "photos": len(rows),
        "side": COMPOSITE_SIDE,
    }


def figure_rows(scenes_vle, photos_vle, photos: list) -> list[tuple[str, list[np.ndarray]]]:
    """(title, [reconstruction, removed, moved]) for two held-out scenes (their top object's token) and
    each of `photos` ((path, 0-based token, (dx, dy))), through VLE.apply_edits."""
    rows, rng = [], np.random.default_rng(1)
    for i in range(200):
        if len(rows) == 2:
            break
        case = scene_edit(scenes_vle, HELDOUT_SEED * SEED_STRIDE + i, rng, n_tokens=8, size=64)
        if case.obj.mean() < 0.06 or case.iou < 0.9:
            continue
        encoding, t = case.encoding, case.t
        pictures = [
            encoding.reconstructions[-1],
            scenes_vle.apply_edits(encoding, off=[t]),
            scenes_vle.apply_edits(encoding, moves={t: case.move}),
        ]
        rows.append((f"held-out scene {i}, token {t + 1}", pictures))
    for path, t, move in photos:
        encoding = photos_vle.encode(Image.open(path), 8)
        pictures = [
            encoding.reconstructions[-1],
            photos_vle.apply_edits(encoding, off=[t]),
            photos_vle.apply_edits(encoding, moves={t: move}),
        ]
        rows.append((f"{Path(path).stem}, token {t + 1}", pictures))
    return rows


def edits_figure(rows, height: int = 192) -> Image.Image:
    """The rows as one picture: a title over each row, columns reconstruction / removed / moved."""
    font, gap, top = ImageFont.load_default(size=16), 8, 26
    widths = [round(height * p[0].shape[1] / p[0].shape[0]) for _, p in rows]
    canvas = Image.new("RGB", (gap + 3 * (max(widths) + gap), top + len(rows) * (height + top)), "white")
    draw = ImageDraw.Draw(canvas)
    for c, name in enumerate(("8 tokens", "token removed", "token moved")):
        draw.text((gap + c * (max(widths) + gap), 4), name, fill="black", font=font)
    for r, ((title, pictures), w) in enumerate(zip(rows, widths)):
        y = top + r * (height + top)
        draw.text((gap, y + 4), title, fill="#444444", font=font)
        for c, picture in enumerate(pictures):
            tile = Image.fromarray((np.clip(picture, 0, 1) * 255).round().astype(np.uint8))
            resample = Image.Resampling.NEAREST if tile.height < height else Image.Resampling.LANCZOS
            canvas.paste(tile.resize((w, height), resample), (gap + c * (max(widths) + gap), y + 24))
    return canvas


def main() -> None:
    """python -m vle_core.edit_suites [OUT]: docs/edits.png from the shipped checkpoints and assets.
    python -m vle_core.edit_suites --tune: edit.OBJECT_FROM compared on training-stream scenes."""
    import sys

    from .checkpoint import load_vle

    root = Path(__file__).resolve().parents[1]
    scenes_vle = load_vle(root / "checkpoints" / "masked-scenes")
    if sys.argv[1:] == ["--tune"]:
        print(
            "| object_from | removed | removed, where it was | moved | moved, where it left and entered |\n"
            "|---|---|---|---|---|"
        )
        for T, row in tune_object_from(scenes_vle).items():
            print(f"| {T:g} | " + " | ".join(f"{v:.2f}" for v in row.values()) + " |")
        return
    photos = [
        (root / "assets" / "kodak-parrots.png", 6, (-96, 0)),
        (root / "assets" / "kodak-hats.png", 7, (-200, -40)),
    ]
    rows = figure_rows(scenes_vle, load_vle(root / "checkpoints" / "masked-natural"), photos)
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else root / "docs" / "edits.png"
    edits_figure(rows).save(out)
    print(out)


if __name__ == "__main__":
    main()
