"""Checks of the training image datasets (vle_core/data.py)."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import ConcatDataset

from vle_core.data import ImageFolder, data_root, resolve_data


def write_png(path: Path, width: int, height: int, seed: int = 0) -> np.ndarray:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return pixels


def to_uint8(crop: torch.Tensor) -> np.ndarray:
    return ((crop + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).numpy()


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "photos"
    write_png(root / "a.png", 20, 16, seed=1)
    write_png(root / "b.png", 18, 24, seed=2)
    (root / "notes.txt").write_text("not an image, and not picked up")
    return root


def test_crops_have_shape_and_range(folder):
    data = ImageFolder([folder], crop=8)
    assert len(data) == 2 and len(data.images) == 2
    for i in range(len(data)):
        crop = data[i]
        assert crop.shape == (3, 8, 8) and crop.dtype == torch.float32
        assert crop.min() >= -1.0 and crop.max() <= 1.0
    assert len(ImageFolder([folder], crop=8, length=50)) == 50


def test_crops_are_windows_or_mirrored_windows(folder):
    data = ImageFolder([folder], crop=6, length=40)
    flips = set()
    for i in range(len(data)):
        crop = to_uint8(data[i])
        image = data.images[data.order[i % 2]]
        h, w = image.shape[:2]
        windows = {
            (flip, top, left)
            for top in range(h - 5)
            for left in range(w - 5)
            for flip in (False, True)
            if np.array_equal(image[top : top + 6, left : left + 6][:, :: -1 if flip else 1], crop)
        }
        assert windows, f"crop {i} is not a window of its image"
        flips |= {flip for flip, _, _ in windows}
    assert flips == {False, True}


def test_crops_follow_torch_seed(folder):
    data = ImageFolder([folder], crop=8, length=10)
    torch.manual_seed(0)
    first = torch.stack([data[i] for i in range(10)])
    torch.manual_seed(0)
    again = torch.stack([data[i] for i in range(10)])
    torch.manual_seed(1)
    other = torch.stack([data[i] for i in range(10)])
    assert torch.equal(first, again)
    assert not torch.equal(first, other)


@pytest.mark.parametrize("held_out", ["test", "Kodak", "kodak/sub"])
def test_refuses_held_out_folders(tmp_path, held_out):
    root = tmp_path / held_out
    write_png(root / "x.png", 16, 16)
    with pytest.raises(ValueError, match="refusing"):
        ImageFolder([root], crop=8)


def test_refuses_link_to_held_out_folder(tmp_path):
    write_png(tmp_path / "test" / "x.png", 16, 16)
    (tmp_path / "innocent").symlink_to(tmp_path / "test")
    with pytest.raises(ValueError, match="refusing"):
        ImageFolder([tmp_path / "innocent"], crop=8)


def test_corrupt_file_is_named(folder):
    (folder / "broken.jpg").write_bytes(b"\xff\xd8 definitely not a jpeg")
    with pytest.raises(ValueError, match="broken.jpg"):
        ImageFolder([folder], crop=8)


def test_small_image_is_named(folder):
    with pytest.raises(ValueError, match=r"a\.png.*smaller"):
        ImageFolder([folder], crop=17)


def test_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        ImageFolder([tmp_path / "nowhere"], crop=8)


def test_empty_folder(tmp_path):
    with pytest.raises(ValueError, match="no "):
        ImageFolder([tmp_path], crop=8)


def test_resolve_folder_and_scenes(folder):
    single = resolve_data(f"folder:{folder}", crop=8, length=None)
    assert isinstance(single, ImageFolder) and len(single) == 2
    scenes = resolve_data("scenes", crop=32, length=5)
    assert len(scenes) == 5
    item = scenes[0]
    assert isinstance(item, torch.Tensor) and item.shape == (3, 32, 32)
    both = resolve_data(f"scenes+folder:{folder}", crop=8, length=3)
    assert isinstance(both, ConcatDataset) and len(both) == 6
    for i in range(len(both)):
        assert isinstance(both[i], torch.Tensor) and both[i].shape == (3, 8, 8)
    assert len(resolve_data("scenes", crop=16, length=None)) == 100_000


def test_resolve_bsds_uses_vle_data(tmp_path, monkeypatch):
    images = tmp_path / "bsds500" / "images"
    write_png(images / "train" / "1.jpg", 20, 20)
    write_png(images / "val" / "2.png", 20, 20)
    write_png(images / "test" / "3.png", 20, 20)
    monkeypatch.setenv("VLE_DATA", str(tmp_path))
    data = resolve_data("bsds", crop=8, length=None)
    assert [p.name for p in data.paths] == ["1.jpg", "2.png"]


@pytest.mark.parametrize("spec", ["bsd", "folder:", "", "scenes+", "kodak"])
def test_unknown_spec(spec):
    with pytest.raises(ValueError, match="folder:PATH"):
        resolve_data(spec, crop=8, length=None)


def test_default_data_root_is_next_to_repository(monkeypatch):
    monkeypatch.delenv("VLE_DATA", raising=False)
    repository = Path(__file__).resolve().parent.parent
    assert data_root() == repository.parent / "shared" / "data"


def test_real_bsds(monkeypatch):
    monkeypatch.delenv("VLE_DATA", raising=False)
    images = data_root() / "bsds500" / "images"
    if not (images / "train").is_dir():
        pytest.skip(f"BSDS500 not found at {images}")
    with pytest.raises(ValueError, match="refusing"):
        ImageFolder([images / "test"])
    data = resolve_data("bsds", crop=64, length=None)
    assert len(data) == 300
    assert {img.shape[:2] for img in data.images} <= {(321, 481), (481, 321)}
    assert data[0].shape == (3, 64, 64)
