"""Invariants of the synthetic scene generator (vle_core/scenes.py)."""

import numpy as np
import pytest
import torch

from vle_core.scenes import (
    BACKGROUND_KINDS,
    HELDOUT_SEED,
    SEED_STRIDE,
    SHAPE_KINDS,
    TRAIN_SEED,
    SceneSet,
    make_scene,
)

SEEDS = range(300)


@pytest.fixture(scope="module")
def scenes():
    return [make_scene(seed) for seed in SEEDS]


def test_same_seed_same_scene():
    a, b = make_scene(12345), make_scene(12345)
    assert np.array_equal(a.image, b.image)
    assert np.array_equal(a.labels, b.labels)
    assert a.kinds == b.kinds and a.background == b.background


def test_different_seeds_differ(scenes):
    images = {scene.image.tobytes() for scene in scenes}
    assert len(images) == len(scenes)


def test_image_and_label_format(scenes):
    for scene in scenes:
        assert scene.image.shape == (64, 64, 3) and scene.image.dtype == np.uint8
        assert scene.labels.shape == (64, 64) and scene.labels.dtype == np.uint8
        assert not scene.image.flags.writeable and not scene.labels.flags.writeable


def test_labels_are_consecutive_and_objects_visible(scenes):
    for seed, scene in zip(SEEDS, scenes):
        k = scene.num_objects
        assert 2 <= k <= 5, seed
        assert len(scene.kinds) == k
        counts = np.bincount(scene.labels.ravel(), minlength=k + 1)
        assert len(counts) == k + 1, f"seed {seed}: label above {k}"
        assert (counts[1:] >= 20).all(), f"seed {seed}: object pixel counts {counts[1:]}"
        assert counts[0] > 0, f"seed {seed}: no background left"


def test_objects_stand_out_from_background(scenes):
    # An object whose pixels equal the background around it could never be found; check
    # that each object's mean colour differs clearly (L1 over 0..255 RGB) from the mean
    # background colour.
    for seed, scene in zip(SEEDS, scenes):
        image = scene.image.astype(np.float64)
        background = image[scene.labels == 0].mean(axis=0)
        for k in range(1, scene.num_objects + 1):
            colour = image[scene.labels == k].mean(axis=0)
            assert np.abs(colour - background).sum() > 45, (seed, k)


def test_variety(scenes):
    assert {kind for scene in scenes for kind in scene.kinds} == set(SHAPE_KINDS)
    assert {scene.background for scene in scenes} == set(BACKGROUND_KINDS)
    assert {scene.num_objects for scene in scenes} == {2, 3, 4, 5}
    # Objects overlap or touch in a fair share of scenes (horizontal neighbours with two
    # different object ids), so occlusion is part of the task.
    touching = 0
    for scene in scenes:
        lab = scene.labels
        horizontal = (lab[:, 1:] != lab[:, :-1]) & (lab[:, 1:] > 0) & (lab[:, :-1] > 0)
        touching += bool(horizontal.any())
    assert touching > len(scenes) // 10


def test_other_sizes():
    for size in (32, 128):
        scene = make_scene(3, size)
        assert scene.image.shape == (size, size, 3) and scene.labels.shape == (size, size)


def test_scene_set_items():
    train = SceneSet(4, size=32, seed=TRAIN_SEED)
    held_out = SceneSet(4, size=32, seed=HELDOUT_SEED)
    assert len(train) == 4
    image, labels = train[2]
    assert image.shape == (3, 32, 32) and image.dtype == torch.float32
    assert labels.shape == (32, 32) and labels.dtype == torch.int64
    assert image.min() >= -1.0 and image.max() <= 1.0
    expected = make_scene(TRAIN_SEED * SEED_STRIDE + 2, 32)
    assert torch.equal(labels, torch.from_numpy(expected.labels.astype(np.int64)))
    assert torch.equal(image, torch.from_numpy(expected.image.astype(np.float32)).permute(2, 0, 1).float() / 127.5 - 1)
    assert not torch.equal(train[0][0], held_out[0][0])
    with pytest.raises(IndexError):
        train[4]


def test_edited_scenes_are_the_exact_truth_of_an_object_edit():
    from vle_core.scenes import edited_scene

    for seed in range(40):
        scene = make_scene(seed)
        K = scene.num_objects
        assert np.array_equal(edited_scene(seed).image, scene.image)
        removed = edited_scene(seed, removed=(K,))
        assert not (removed.labels == K).any()
        top = scene.labels == K  # the top-most object is whole: everything else is as drawn without it
        assert np.array_equal(removed.image[~top], scene.image[~top])
        moved = edited_scene(seed, moves={K: (8, -16)})
        shifted = np.zeros_like(top)
        shifted[: 64 - 16, 8:] = top[16:, : 64 - 8]
        assert np.array_equal(moved.labels == K, shifted)
        assert np.array_equal(moved.image[shifted], scene.image[np.roll(np.roll(shifted, 16, axis=0), -8, axis=1)])
    with pytest.raises(ValueError, match="objects"):
        edited_scene(0, removed=(9,))
