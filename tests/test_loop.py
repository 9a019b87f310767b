"""The residual loop and its inverse: sizes, normalisation, and decode(encode(x)) consistency."""

import numpy as np
import pytest
import torch
from conftest import synthetic_image

import vle_core
from vle_core.loop import denormalise, normalise


@pytest.mark.parametrize("size", [(1, 1), (5, 7), (37, 53), (64, 64), (17, 120)])
def test_outputs_have_the_input_size(tiny_vle, size):
    encoding = tiny_vle.encode(synthetic_image(*size), n_tokens=3)
    H, W = size
    assert encoding.contributions.shape == (3, H, W, 3)
    assert encoding.reconstructions.shape == (3, H, W, 3)
    assert encoding.tokens.latents.shape == (3, 4, -(-H // 8), -(-W // 8))
    assert encoding.tokens.image_size == size
    if tiny_vle.kind == "masked":
        assert encoding.masks.shape == (3, H, W)
        assert encoding.masks.min() >= 0 and encoding.masks.max() <= 1
    else:
        assert encoding.masks is None
    assert tiny_vle.decode(encoding.tokens).shape == (H, W, 3)


def test_normalisation_round_trip():
    residual = torch.randn(2, 3, 9, 11) * torch.tensor([0.01, 1.0, 5.0])[:, None, None] + 0.3
    normalised, mean, std = normalise(residual)
    assert torch.allclose(normalised.mean(dim=(2, 3)), torch.zeros(2, 3), atol=1e-5)
    assert torch.allclose(normalised.std(dim=(2, 3), correction=0), torch.ones(2, 3), atol=2e-2)
    assert torch.allclose(denormalise(normalised, mean, std), residual, atol=1e-5)


def test_decode_of_encoded_tokens_is_the_last_reconstruction(tiny_vle, image):
    encoding = tiny_vle.encode(image, n_tokens=5)
    np.testing.assert_allclose(tiny_vle.decode(encoding.tokens), encoding.reconstructions[-1], atol=1e-5)


def test_contributions_sum_to_each_reconstruction(tiny_vle, image):
    encoding = tiny_vle.encode(image, n_tokens=5)
    summed = np.clip(vle_core.EMPTY + np.cumsum(encoding.contributions, axis=0), 0, 1)
    np.testing.assert_allclose(summed, encoding.reconstructions, atol=1e-5)
    assert encoding.reconstructions.dtype == np.float32 and encoding.contributions.dtype == np.float32


def test_more_tokens_than_trained_and_prefixes_agree(tiny_vle, image):
    """Encoding is sequential: the first k of 12 tokens are the k tokens of a shorter encode."""
    long, short = tiny_vle.encode(image, 12), tiny_vle.encode(image, 4)
    assert len(long.tokens) == 12
    np.testing.assert_allclose(long.reconstructions[:4], short.reconstructions, atol=1e-5)


def test_encode_accepts_pil_and_rejects_bad_input(tiny_vle, image):
    from PIL import Image

    np.testing.assert_allclose(
        tiny_vle.encode(Image.fromarray(image), 2).reconstructions, tiny_vle.encode(image, 2).reconstructions
    )
    with pytest.raises(ValueError, match="HxWx3"):
        tiny_vle.encode(np.zeros((8, 8)), 2)
    with pytest.raises(ValueError, match="n_tokens"):
        tiny_vle.encode(image, 0)


def test_tokens_needed_finds_the_first_count_that_reaches_the_target(tiny_vle, image):
    encoding = tiny_vle.encode(image, 6)
    errors = [vle_core.metrics.mse(encoding.image, r) for r in encoding.reconstructions]
    target = errors[2] + 1e-9
    expected = next(k for k, e in enumerate(errors, start=1) if e <= target)
    assert tiny_vle.tokens_needed(image, 6, mse=target) == expected
    assert tiny_vle.tokens_needed(image, 6, mse=-1.0) is None
    with pytest.raises(ValueError):
        tiny_vle.tokens_needed(image, 6)
