"""The library's pictures: pixel conversions that invert each other, the signed heatmap's colours
and scale, the token strip's layout."""

import numpy as np

from vle_core import figures


def test_to_uint8_and_from_uint8_invert_each_other():
    levels = np.arange(256, dtype=np.uint8)
    assert np.array_equal(figures.to_uint8(figures.from_uint8(levels)), levels)
    x = np.random.default_rng(0).random(1000).astype(np.float32)
    assert np.abs(figures.from_uint8(figures.to_uint8(x)) - x).max() <= 0.5 / 255 + 1e-7
    assert np.array_equal(figures.to_uint8(np.array([-1.0, 2.0])), [0, 255])  # clipped


def test_the_signed_heatmap_is_white_at_zero_and_its_ends_at_the_scale():
    contribution = np.zeros((1, 3, 3), np.float32)
    contribution[0, 0] = 0.2  # brightens: the channel sum is 0.6, the largest
    contribution[0, 1] = -0.1  # darkens: half as much
    heat = figures.signed_heatmap(contribution)
    assert np.array_equal(heat[0, 0], figures.to_uint8(figures.POSITIVE))
    assert np.array_equal(heat[0, 2], [255, 255, 255])
    assert np.array_equal(heat[0, 1], figures.to_uint8(1 + 0.5 * (figures.NEGATIVE - 1)))
    at_scale = figures.signed_heatmap(contribution, scale=0.3)  # a smaller scale saturates both ends
    assert np.array_equal(at_scale[0, 1], figures.to_uint8(figures.NEGATIVE))


def test_the_token_strip_has_a_column_per_token_and_a_row_per_view(tiny_vle, image):
    rendering = tiny_vle.render(tiny_vle.encode(image, 3).tokens)
    strip = figures.token_strip(rendering, figures.from_uint8(image))  # the source in [0, 1], as train.py gives it
    H, W = image.shape[:2]
    rows = 3 if rendering.masks is not None else 2
    assert strip.shape == (rows * (H + 2) - 2, 4 * (W + 2) - 2, 3) and strip.dtype == np.uint8
    assert np.array_equal(strip[:H, 3 * (W + 2) :], image)  # the source, last column
    scale = float(np.abs(rendering.contributions.sum(-1)).max())  # one scale for all tokens
    assert np.array_equal(strip[H + 2 : 2 * H + 2, :W], figures.signed_heatmap(rendering.contributions[0], scale))
