"""A tiny model trained for a few dozen steps on generated images lowers its loss."""

import numpy as np
import pytest
import torch
from conftest import synthetic_image

import vle_core
from vle_core.pca import PatchPCA


def batch(seeds):
    images = np.stack([synthetic_image(32, 32, seed=int(s)) for s in seeds])
    return torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1


def train_on_generated_images(model, optimiser, steps: int = 60):
    """Steps of 8 generated images each, 3 tokens, none of them the held-out seeds (1000 on)."""
    for step in range(steps):
        x = batch(range(step * 8, step * 8 + 8))
        loss = vle_core.vle_loss(model.config, x, vle_core.residual_loop(model, x, 3))["loss"]
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()


@pytest.mark.parametrize("name", ["vanilla-tiny", "masked-tiny"])
def test_training_lowers_the_loss_on_held_out_images(name):
    torch.manual_seed(0)
    config = vle_core.preset(name)
    model = vle_core.build_model(config)
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    held_out = batch(range(1000, 1008))

    def evaluate():
        with torch.no_grad():
            out = vle_core.residual_loop(model, held_out, 3)
            return vle_core.vle_loss(config, held_out, out)["loss"].item(), torch.nn.functional.mse_loss(
                out.reconstructions[-1], held_out
            ).item()

    loss_before, mse_before = evaluate()
    train_on_generated_images(model, optimiser)
    loss_after, mse_after = evaluate()
    assert loss_after < loss_before - 0.05 * abs(loss_before)
    assert mse_after < 0.7 * mse_before


def test_a_staged_vle_learns_beyond_the_linear_code_it_starts_as():
    torch.manual_seed(0)
    config = vle_core.preset("vanilla-tiny-staged", psnr_loss=True)
    model = vle_core.build_model(config)
    model.init_linear_code(
        torch.from_numpy(
            PatchPCA([synthetic_image(32, 32, seed=s) / 255.0 for s in range(200)]).unshuffled_components().copy()
        ).float()
    )
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    held_out = batch(range(1000, 1008))

    def mse():  # after each token count
        with torch.no_grad():
            return np.array(
                [
                    torch.nn.functional.mse_loss(r, held_out).item()
                    for r in vle_core.residual_loop(model, held_out, 3).reconstructions
                ]
            )

    mse_before = mse()
    train_on_generated_images(model, optimiser)
    mse_after = mse()
    assert (mse_after < mse_before).all() and mse_after[0] < 0.9 * mse_before[0], (mse_before, mse_after)
