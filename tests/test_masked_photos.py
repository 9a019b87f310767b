"""The masked VLE for photos (preset masked-cpu-light-photos, here its tiny twin): token 1 codes
the whole image, every later token one of S's regions of the image itself, and S starts a new
pass once its regions cover the image."""

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import synthetic_image
from PIL import Image

import vle_core
from vle_core import metrics
from vle_core.loop import normalise, residual_loop

ASSETS = Path(__file__).resolve().parents[1] / "assets"


def as_batch(*images):
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 127.5 - 1


def halves(height=32, width=48):
    """Left half one flat colour, right half another: two regions of the image."""
    image = np.zeros((height, width, 3), np.uint8)
    image[:, : width // 2] = (200, 40, 40)
    image[:, width // 2 :] = (30, 60, 190)
    return image


def photo_model(seed=0, **overrides):
    torch.manual_seed(seed)
    return vle_core.build_model(vle_core.preset("masked-tiny-photos", **overrides))


def test_token_1_covers_the_image_and_later_tokens_are_regions():
    with torch.no_grad():
        out = residual_loop(photo_model(), as_batch(halves()), 3)
    assert torch.equal(out.proposals[0], torch.ones_like(out.proposals[0]))
    second, third = out.proposals[1][0, 0], out.proposals[2][0, 0]
    # after the whole image, S proposes one half, then the other (less the blurred seam): regions of the image
    assert 0.45 < float(second.mean()) <= 0.5 and 0.45 < float(third.mean()) <= 0.5
    assert float((second * third).max()) < 1e-5
    left = sorted([float(second[:, :20].mean()), float(third[:, :20].mean())])
    assert left[0] < 1e-6 and left[1] > 1 - 1e-6  # one of them is the left half, the other the right


def test_s_starts_a_new_pass_once_its_regions_cover_the_image():
    with torch.no_grad():
        out = residual_loop(photo_model(), as_batch(halves()), 5)
    halves_seen = [p[0, 0] for p in out.proposals[1:]]
    # tokens 2 and 3 cover the image; token 4 starts over on a region token 2 or 3 already refined
    assert float((halves_seen[2] * (halves_seen[0] + halves_seen[1])).mean()) > 0.45
    without = photo_model(precursor_new_pass=1.0)  # never quite reached: the soft rims stay uncovered
    with torch.no_grad():
        late = residual_loop(without, as_batch(halves()), 5).proposals[3][0, 0]
    assert float(late.mean()) < 0.05


def test_s_groups_the_image_whatever_the_weights():
    """With precursor_input "image", S's proposals are a function of the image alone: two
    differently initialised models propose the same regions, token after token."""
    x = as_batch(synthetic_image(40, 56, seed=3), synthetic_image(40, 56, seed=4))
    with torch.no_grad():
        a = residual_loop(photo_model(seed=0), x, 5).proposals
        b = residual_loop(photo_model(seed=1), x, 5).proposals
    for pa, pb in zip(a, b):
        assert torch.equal(pa, pb)


def test_a_whole_image_token_needs_a_new_pass_and_settings_are_checked():
    with pytest.raises(ValueError, match="precursor_new_pass"):
        vle_core.preset("masked-tiny-photos", precursor_new_pass=0.0)
    with pytest.raises(ValueError, match="precursor_input"):
        vle_core.preset("masked-tiny", precursor_input="edges")
    with pytest.raises(ValueError, match="precursor_new_pass"):
        vle_core.preset("masked-tiny", precursor_new_pass=1.5)


def test_token_1_of_a_staged_masked_vle_starts_as_the_linear_code():
    """Initialised from patch components, token 1 (proposal: the whole image) rebuilds the
    projection of the normalised image on the first 4 components, as a staged vanilla VLE does."""
    model = photo_model()
    components = torch.linalg.qr(torch.randn(192, 192, generator=torch.Generator().manual_seed(0))).Q
    model.init_linear_code(components)
    x = as_batch(synthetic_image(32, 40, seed=1))
    with torch.no_grad():
        rebuilt = residual_loop(model, x, 1).reconstructions[0]
    normalised, mean, std = normalise(x)
    cells = torch.nn.functional.pixel_unshuffle(normalised, 8)
    basis = components[:, :4]
    coded = torch.nn.functional.pixel_shuffle(torch.einsum("bchw,ck,dk->bdhw", cells, basis, basis), 8)
    expected = coded * std[:, :, None, None] + mean[:, :, None, None]
    torch.testing.assert_close(rebuilt, expected, atol=1e-5, rtol=1e-4)


def test_with_stage_by_pass_each_pass_of_s_codes_with_a_stage_of_its_own_and_decodes_alike():
    """Token 1 codes the image; tokens 2 and 3 are the two halves (S's first pass, stage 2), tokens
    4 and 5 the halves again (its second pass, stage 3). The tokens carry the stage they were coded
    with, so a decode of the sequence rebuilds what the encode did."""
    torch.manual_seed(0)
    model = vle_core.build_model(vle_core.preset("masked-tiny-photos-rest"))
    components = torch.linalg.qr(torch.randn(192, 192, generator=torch.Generator().manual_seed(0))).Q
    model.init_linear_code(components)
    vle = vle_core.VLE(model, device="cpu")
    encoding = vle.encode(halves(), 5)
    assert encoding.tokens.stage.tolist() == [1, 2, 2, 3, 3]
    np.testing.assert_allclose(vle.render(encoding.tokens).reconstructions, encoding.reconstructions, atol=1e-6)
    plain = vle_core.VLE(photo_model(stages=4), device="cpu").encode(halves(), 5)
    assert plain.tokens.stage.tolist() == [1, 2, 3, 4, 5]  # without it: the loop step
    with pytest.raises(ValueError, match="stage_by_pass"):
        vle_core.preset("masked-tiny-photos", stage_by_pass=True, stages=1)


def test_a_covering_mask_is_left_out_of_the_segmentation():
    whole = np.ones((1, 4, 6))
    left = np.zeros((1, 4, 6))
    left[..., :3] = 1
    labels = metrics.masks_to_labels(np.concatenate([whole, left, 1 - left]))
    assert set(np.unique(labels)) == {1, 2}  # token 0, the whole image, segments nothing
    assert (labels[:, :3] == 1).all() and (labels[:, 3:] == 2).all()
    assert (metrics.masks_to_labels(np.concatenate([whole, whole])) == 0).all()  # all cover: plain argmax


def photo_crops(n, size=32, seed=0):
    """Random crops of the shipped example photos (assets/): real texture, not generated shapes."""
    rng = np.random.default_rng(seed)
    photos = [np.asarray(Image.open(path).convert("RGB")) for path in sorted(ASSETS.glob("kodak-*.png"))]
    crops = []
    for _ in range(n):
        photo = photos[rng.integers(len(photos))]
        y, x = rng.integers(photo.shape[0] - size), rng.integers(photo.shape[1] - size)
        crops.append(photo[y : y + size, x : x + size])
    return as_batch(*crops)


def test_a_tiny_masked_run_on_photos_lowers_its_loss():
    model = photo_model()
    config = model.config
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    held_out = photo_crops(8, seed=1000)

    def losses():
        with torch.no_grad():
            out = residual_loop(model, held_out, 4)
            return vle_core.vle_loss(config, held_out, out)["loss"].item(), torch.nn.functional.mse_loss(
                out.reconstructions[-1], held_out
            ).item()

    loss_before, mse_before = losses()
    for step in range(40):
        x = photo_crops(8, seed=step)
        loss = vle_core.vle_loss(config, x, residual_loop(model, x, 4))["loss"]
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    loss_after, mse_after = losses()
    assert loss_after < loss_before - 0.05 * abs(loss_before)
    assert mse_after < 0.7 * mse_before


def test_a_learned_s_trains_with_e_and_d_and_keeps_the_invariants():
    """The paper's S (preset masked-cpu-light-photos-learned-s): a network whose proposals lie in
    [0, 1], leave what earlier tokens took alone, and receive gradients from the loss."""
    model = photo_model(precursor="learned", precursor_input="residual", mask_loss_weight=1.0)
    x = photo_crops(2, seed=5)
    out = residual_loop(model, x, 4)
    taken = torch.zeros_like(out.proposals[0])
    for n, proposal in enumerate(out.proposals):
        assert proposal.min() >= 0 and proposal.max() <= 1
        if n:  # token 1 is the whole image; after it, a new pass, then only free pixels
            assert float((proposal.detach() * (taken >= 1)).max()) < 1e-6
        taken = (taken + proposal.detach()).clamp(max=1)
        taken = torch.where(
            taken.flatten(1).mean(1)[:, None, None, None] >= model.config.precursor_new_pass,
            torch.zeros_like(taken),
            taken,
        )
    vle_core.vle_loss(model.config, x, out)["loss"].backward()
    # (inner blocks start as identities: zero gradient at first)
    for layer in (
        model.precursor.conv_in,
        model.precursor.conv_out,
    ):
        assert layer.weight.grad is not None and layer.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="precursor must be"):
        vle_core.preset("masked-tiny", precursor="magic")
