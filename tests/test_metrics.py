import numpy as np
import pytest

from vle_core import metrics


def test_mse_and_psnr_agree():
    a = np.zeros((8, 8, 3), np.float32)
    b = np.full((8, 8, 3), 0.1, np.float32)
    assert metrics.mse(a, b) == pytest.approx(0.01)
    assert metrics.psnr(a, b) == pytest.approx(20.0)
    assert metrics.psnr(a, a) == float("inf")
    assert metrics.mse(np.zeros((2, 2, 3), np.uint8), np.full((2, 2, 3), 255, np.uint8)) == pytest.approx(1.0)


def test_ssim_is_one_for_identical_and_lower_for_noise():
    rng = np.random.default_rng(0)
    a = rng.random((32, 32, 3))
    assert metrics.ssim(a, a) == pytest.approx(1.0)
    assert metrics.ssim(a, np.clip(a + rng.normal(0, 0.2, a.shape), 0, 1)) < 0.9
    assert metrics.ssim(a[:4, :5], a[:4, :5]) == pytest.approx(1.0)  # small images shrink the window


def test_entropy_of_flat_and_two_level_images():
    flat = np.full((16, 16, 3), 0.5)
    assert metrics.entropy(flat) == 0.0
    halves = np.zeros((16, 16, 3))
    halves[:8] = 1.0
    assert metrics.entropy(halves) == pytest.approx(1.0)


def test_ari_ignores_label_names_and_foreground_ari_ignores_background():
    truth = np.array([[0, 0, 1, 1], [0, 0, 2, 2]])
    renamed = np.array([[5, 5, 7, 7], [5, 5, 9, 9]])
    assert metrics.ari(truth, renamed) == pytest.approx(1.0)
    background_split = np.array([[3, 4, 7, 7], [4, 3, 9, 9]])  # wrong on the background only
    objects_merged = np.array([[3, 3, 7, 7], [3, 3, 7, 7]])
    assert metrics.ari(truth, background_split) < 1.0
    assert metrics.foreground_ari(truth, background_split) == pytest.approx(1.0)
    assert metrics.foreground_ari(truth, objects_merged) < 1.0
    with pytest.raises(ValueError, match="shape"):
        metrics.ari(truth, truth[:1])


def test_masks_to_labels_takes_the_first_mask_on_else_the_strongest():
    masks = np.zeros((3, 2, 2))
    masks[2, 0, 0] = masks[1, 1, 1] = 1
    assert metrics.masks_to_labels(masks).tolist() == [[2, 0], [0, 1]]
    masks[2, 1, 1] = 1.0  # token 3 refines what token 2 took (a later pass of S): still token 2's
    masks[1, 1, 1] = 0.9
    masks[:, 0, 1] = [0.1, 0.4, 0.3]  # nobody's mask is on: the strongest
    assert metrics.masks_to_labels(masks).tolist() == [[2, 1], [0, 1]]
