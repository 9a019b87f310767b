"""The networks' shortcuts compute what the layers they stand for compute: the upsampling
convolution at the low resolution, a stage's scale and shift folded into the normalisation, and
the loop's two-pass normalisation."""

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from vle_core.loop import STD_EPS, from_pixels, normalise, to_pixels
from vle_core.nets import ChannelNorm, ResBlock, StageFiLM, run_layers, upsample_conv


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("shape", [(1, 8, 5, 7, 9), (3, 16, 4, 8, 8), (2, 32, 24, 1, 6)])
def test_upsample_conv_is_a_convolution_of_the_upsampled_input(shape, channels_last):
    B, cin, cout, H, W = shape
    conv = nn.Conv2d(cin, cout, 3, padding=1)
    x = torch.randn(B, cin, H, W)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    got = upsample_conv(x, conv)
    torch.testing.assert_close(got, conv(F.interpolate(x, scale_factor=2, mode="nearest")), atol=1e-5, rtol=1e-5)
    assert got.is_contiguous(memory_format=torch.channels_last if channels_last else torch.contiguous_format)


def test_upsample_conv_learns_as_the_layers_it_stands_for():
    conv = nn.Conv2d(4, 3, 3, padding=1)
    x = torch.randn(2, 4, 6, 5, requires_grad=True)
    (upsample_conv(x, conv) ** 2).sum().backward()
    fused = x.grad.clone(), conv.weight.grad.clone(), conv.bias.grad.clone()
    x.grad = conv.weight.grad = conv.bias.grad = None
    (conv(F.interpolate(x, scale_factor=2, mode="nearest")) ** 2).sum().backward()
    for got, want in zip(fused, (x.grad, conv.weight.grad, conv.bias.grad)):
        torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)


def test_upsample_conv_refuses_a_convolution_it_cannot_stand_for():
    with pytest.raises(ValueError, match="3x3 convolution with padding 1"):
        upsample_conv(torch.randn(1, 4, 6, 6), nn.Conv2d(4, 4, 5, padding=2))


def test_run_layers_runs_an_upsampling_with_the_convolution_after_it():
    layers = [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(4, 3, 3, padding=1)]
    x = torch.randn(2, 4, 5, 6)
    torch.testing.assert_close(run_layers(layers, x, None), layers[1](layers[0](x)), atol=1e-5, rtol=1e-5)
    for other in (nn.Upsample(scale_factor=2, mode="bilinear"), nn.Upsample(scale_factor=4, mode="nearest")):
        with pytest.raises(ValueError, match="only a nearest 2x upsampling"):
            run_layers([other, layers[1]], x, None)


@pytest.fixture
def film() -> StageFiLM:
    film = StageFiLM(6, 8)
    with torch.no_grad():
        film.weight.normal_()
    return film


@pytest.mark.parametrize("stage", [[3], [2, 2, 2], [1, 4, 6]])
def test_a_folded_film_is_the_film_after_the_norm(film, stage):
    norm = ChannelNorm(8)
    with torch.no_grad():
        norm.weight.normal_(), norm.bias.normal_()
    x, stage = torch.randn(len(stage), 8, 5, 7), torch.tensor(stage)
    torch.testing.assert_close(norm(x, film, stage), film(norm(x), stage), atol=1e-5, rtol=1e-5)


def test_a_block_with_film_gives_each_token_its_own_stage_in_a_mixed_batch(film):
    block = ResBlock(8, 8, stages=6)
    with torch.no_grad():
        for p in block.parameters():
            p.normal_(std=0.3)
    x, stage = torch.randn(3, 8, 6, 6), torch.tensor([1, 4, 6])
    together = block(x, stage)
    for i in range(3):  # alone, each token's batch has one stage: the folded path
        torch.testing.assert_close(together[i : i + 1], block(x[i : i + 1], stage[i : i + 1]), atol=1e-5, rtol=1e-5)


def test_normalise_gives_each_channel_zero_mean_and_unit_deviation():
    residual = torch.randn(2, 3, 17, 23) * torch.tensor([0.1, 2.0, 30.0])[:, None, None] + 5
    normalised, mean, std = normalise(residual)
    torch.testing.assert_close(mean, residual.mean(dim=(2, 3)))
    torch.testing.assert_close(std, residual.std(dim=(2, 3), correction=0) + STD_EPS)
    torch.testing.assert_close(normalised.mean(dim=(2, 3)), torch.zeros(2, 3), atol=1e-5, rtol=0)


def test_pixels_and_the_loops_units_convert_both_ways():
    pixels = torch.rand(5, 7, 3).numpy()
    x = from_pixels(pixels)
    assert x.shape == (1, 3, 5, 7) and float(x.min()) >= -1 and float(x.max()) <= 1
    np.testing.assert_allclose(to_pixels(x[0]), pixels, atol=1e-6)
    assert to_pixels(torch.full((2, 3, 4, 4), 3.0)).shape == (2, 4, 4, 3)
    assert to_pixels(torch.full((3, 4, 4), 3.0)).max() == 1 and to_pixels(torch.full((3, 4, 4), -3.0)).min() == 0
