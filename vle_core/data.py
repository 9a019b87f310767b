"""Training images: random crops from photo folders, synthetic scenes, or both; and the paths of
the evaluation's photos, read in place.

Every dataset returned by `resolve_data` yields a single float32 tensor [3, crop, crop] in
[-1, 1] per item (synthetic scenes drop their labels here; use `scenes.SceneSet` directly
when labels are wanted).

Held-out data (BSDS500 `test`, Kodak) must never be trained on, so `ImageFolder` refuses
any folder whose resolved path has a component named `test` or `kodak` (any case).

Data location: `<data root>/bsds500/images/{train,val}`, where the data root is the
environment variable VLE_DATA if set, else `../shared/data` relative to the repository
root (the folder holding `vle_core/`).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from scipy.io import loadmat
from torch.utils.data import ConcatDataset, Dataset

from .scenes import TRAIN_SEED, SceneSet

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
HELD_OUT_NAMES = ("test", "kodak")
SPEC_FORMS = "'bsds', 'scenes', 'folder:PATH', or several joined by '+' (e.g. 'bsds+scenes')"


def data_root() -> Path:
    """The shared data folder: $VLE_DATA, else <repository root>/../shared/data."""
    override = os.environ.get("VLE_DATA")
    if override:
        return Path(override)
    repository = Path(__file__).resolve().parent.parent
    return repository.parent / "shared" / "data"


# Evaluation data: read in place, never trained on.
DATA_HINT = "point --data or $VLE_DATA at the folder holding kodak/ and bsds500/ (see vle_core/data.py)"


def image_paths(folder: Path, pattern: str = "*.png") -> list[Path]:
    """The images matching `pattern` in `folder`, sorted by name; a missing data set is a
    one-line ValueError that says where the data is looked for and how to point elsewhere."""
    paths = sorted(Path(folder).glob(pattern))
    if not paths:
        raise ValueError(f"no {pattern} images in {folder}: {DATA_HINT}")
    return paths


def read_image(path) -> np.ndarray:
    """One image as HxWx3 float32 in [0, 1]."""
    return np.asarray(Image.open(path).convert("RGB"), np.float32) / 255


def use_data(folder: str | None) -> None:
    """--data DIR: the data root for this process and any it starts (data_root() reads $VLE_DATA)."""
    if folder:
        os.environ["VLE_DATA"] = str(folder)


def kodak_paths() -> list[Path]:
    return image_paths(data_root() / "kodak")


def bsds_test_paths() -> list[Path]:
    return image_paths(data_root() / "bsds500" / "images" / "test", "*.jpg")


def train_val_paths() -> list[Path]:
    """BSDS500 train + val photos, where settings are picked (test stays held out)."""
    root = data_root() / "bsds500" / "images"
    return image_paths(root / "train", "*.jpg") + image_paths(root / "val", "*.jpg")


def bsds_training_images() -> list[np.ndarray]:
    """BSDS500 train + val photos, HxWx3 float32 in [0, 1]: what the patch-PCA baseline is fitted on."""
    return [read_image(path) for path in train_val_paths()]


def ground_truth_path(image_path: Path) -> Path:
    """BSDS500's groundTruth/<split>/<id>.mat beside images/<split>/<id>.jpg."""
    return image_path.parents[2] / "groundTruth" / image_path.parent.name / f"{image_path.stem}.mat"


def human_segmentations(path) -> list[np.ndarray]:
    """The label maps (H x W, one per annotator) of a BSDS500 groundTruth .mat file: a 1 x N cell
    array of structs whose 'Segmentation' field is the map itself."""
    return [np.asarray(cell[0, 0]["Segmentation"]) for cell in loadmat(path)["groundTruth"][0]]


def _refuse_held_out(path: Path) -> None:
    parts = [p.lower() for p in path.resolve().parts]
    for name in HELD_OUT_NAMES:
        if name in parts:
            raise ValueError(f"refusing to train on {path}: a folder named '{name}' holds evaluation data")


class ImageFolder(Dataset):
    """Random crops of the .jpg/.jpeg/.png images directly inside `roots`.

    All images are decoded once, as RGB uint8 arrays [H, W, 3], and kept in memory.
    Item i is a random `crop` x `crop` window, flipped left-right with probability 1/2, of
    image `order[i % n]`, as a float32 tensor [3, crop, crop] in [-1, 1]. The window and
    flip come from torch's global RNG, so `torch.manual_seed`, DataLoader worker seeding
    and a saved training RNG state govern them. `order` is a fixed permutation of the n
    images drawn from `seed`; it matters only when `length` (default n) is not a multiple
    of n, e.g. a `length` below n gives a seeded subset rather than the first files by name.
    """

    def __init__(
        self,
        roots: list[str | Path],
        crop: int = 64,
        length: int | None = None,
        seed: int = 0,
    ):
        self.crop = crop
        paths: list[Path] = []
        for root in map(Path, roots):
            _refuse_held_out(root)
            if not root.is_dir():
                raise FileNotFoundError(f"image folder not found: {root}")
            paths += sorted(p for p in root.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not paths:
            raise ValueError(f"no {'/'.join(IMAGE_SUFFIXES)} images in {[str(r) for r in roots]}")
        self.paths = paths
        self.images = [self._load(p) for p in paths]
        self.length = len(paths) if length is None else length
        self.order = np.random.default_rng(seed).permutation(len(paths))

    def _load(self, path: Path) -> np.ndarray:
        # A file linked in from a held-out folder is as forbidden as the folder itself.
        _refuse_held_out(path)
        try:
            with Image.open(path) as img:
                rgb = np.asarray(img.convert("RGB"))
        # PIL signals undecodable files with any of these, depending on the format.
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
            raise ValueError(f"cannot read image {path}: {err}") from err
        height, width = rgb.shape[:2]
        if height < self.crop or width < self.crop:
            raise ValueError(f"image {path} is {width}x{height}, smaller than the {self.crop}x{self.crop} crop")
        return rgb

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> torch.Tensor:
        if i < 0:
            i += self.length
        if not 0 <= i < self.length:
            raise IndexError(f"index {i} out of range for {self.length} crops")
        image = self.images[self.order[i % len(self.images)]]
        height, width = image.shape[:2]
        top = int(torch.randint(height - self.crop + 1, ()))
        left = int(torch.randint(width - self.crop + 1, ()))
        window = image[top : top + self.crop, left : left + self.crop]
        if torch.rand(()) < 0.5:
            window = window[:, ::-1]
        pixels = torch.from_numpy(np.ascontiguousarray(window)).permute(2, 0, 1)
        return pixels.float() / 127.5 - 1.0


class ImagesOnly(Dataset):
    """View of a dataset of (image, ...) tuples that yields just the image."""

    def __init__(self, dataset: Dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.dataset[i][0]


def resolve_data(spec: str, crop: int, length: int | None) -> Dataset:
    """The training dataset for the CLI's `--data SPEC`; items are image tensors only.

    spec: 'bsds' (BSDS500 train + val under data_root()), 'scenes' (synthetic scenes,
    seed TRAIN_SEED, `length` or 100,000 of them), 'folder:PATH', or several of these
    joined by '+', which concatenates them (each part gets the same `length`).
    crop: side of the square training crops (and of the generated scenes).
    length: items per part; None means the part's natural size (number of images).
    """
    parts = [part.strip() for part in spec.split("+")]
    datasets: list[Dataset] = []
    for part in parts:
        if part == "bsds":
            images = data_root() / "bsds500" / "images"
            if not images.is_dir():
                raise FileNotFoundError(
                    f"BSDS500 not found: no folder {images}. Set VLE_DATA to the folder that holds bsds500/ (default: "
                    "../shared/data beside the repository)"
                )
            datasets.append(ImageFolder([images / "train", images / "val"], crop, length))
        elif part == "scenes":
            scenes = SceneSet(length or 100_000, size=crop, seed=TRAIN_SEED)
            datasets.append(ImagesOnly(scenes))
        elif part.startswith("folder:") and part[len("folder:") :]:
            datasets.append(ImageFolder([part[len("folder:") :]], crop, length))
        else:
            raise ValueError(f"unknown data spec {part!r} in {spec!r}; valid forms: {SPEC_FORMS}")
    return datasets[0] if len(datasets) == 1 else ConcatDataset(datasets)
