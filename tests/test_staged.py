"""A staged VLE (config.stages): token n is coded by stage n's linear code plus the shared
convolutional path, and starts out as patch-PCA."""

import numpy as np
import pytest
import torch
from conftest import random_staged_model, synthetic_image
from safetensors.torch import save_file

import vle_core
from vle_core.data import resolve_data
from vle_core.loop import denormalise, normalise
from vle_core.pca import PatchPCA
from vle_core.train import TrainConfig, linear_code, train


def linear_model(components):
    """A staged VLE that is its linear code alone (the convolutional paths at their zero start)."""
    model = vle_core.build_model(vle_core.preset("vanilla-tiny-staged"))
    model.init_linear_code(components)
    return vle_core.VLE(model, device="cpu")


def as_tensor(image):
    return torch.from_numpy(image.astype(np.float32) / 255).permute(2, 0, 1)[None] * 2 - 1


def project(residual, basis):
    """De-normalised projection of a [1, 3, H, W] residual on 192 x k patch basis columns."""
    normalised, mean, std = normalise(residual)
    cells = torch.nn.functional.pixel_unshuffle(normalised, 8)  # [1, 192, h, w]
    coded = torch.einsum("bchw,ck,dk->bdhw", cells, basis, basis)
    return denormalise(torch.nn.functional.pixel_shuffle(coded, 8), mean, std)


def test_token_n_is_stage_n_of_the_linear_code():
    torch.manual_seed(0)
    components = torch.linalg.qr(torch.randn(192, 192)).Q
    vle = linear_model(components)
    image = synthetic_image(48, 64)
    encoding = vle.encode(image, 4)  # one past the 3 stages: token 4 is coded by stage 3 again
    x = as_tensor(image)
    reconstruction = torch.zeros_like(x)
    for n, contribution in enumerate(encoding.contributions):
        block = min(n, 2)
        expected = project(x - reconstruction, components[:, 4 * block : 4 * block + 4])
        np.testing.assert_allclose(contribution, expected[0].permute(1, 2, 0).numpy() / 2, atol=1e-5)
        reconstruction = reconstruction + expected


def test_a_token_decodes_with_its_own_stage_wherever_it_moves(tiny_vle, image):
    encoding = tiny_vle.encode(image, 3)
    alone = tiny_vle.render(encoding.tokens[[2, 0]])  # reordered: token 3 first
    np.testing.assert_allclose(alone.contributions[0], encoding.contributions[2], atol=1e-5)
    np.testing.assert_allclose(alone.contributions[1], encoding.contributions[0], atol=1e-5)


def test_stages_change_what_a_token_decodes_to():
    """The same latent, told another stage, decodes differently: the stage is really used."""
    torch.manual_seed(0)
    vle = vle_core.VLE(random_staged_model(), device="cpu")
    tokens = vle.encode(synthetic_image(48, 64), 2).tokens
    restaged = vle_core.Tokens(tokens.latents, tokens.mean, tokens.std, tokens.image_size, torch.tensor([2, 1]))
    assert np.abs(vle.render(restaged).contributions - vle.render(tokens).contributions).max() > 1e-3


def test_starting_as_patch_pca_does_as_well_as_patch_pca():
    """With the PCA of the images themselves, k tokens of the untrained staged VLE rebuild them
    about as well as 4k components (per-channel normalisation makes it a little different; a
    wrong component order or patch layout loses many dB)."""
    images = [synthetic_image(64, 64, seed) for seed in range(8)]
    pca = PatchPCA([im.astype(np.float32) / 255 for im in images])
    vle = linear_model(torch.from_numpy(pca.unshuffled_components().copy()).float())
    for image in images[:3]:
        target = image.astype(np.float32) / 255
        encoding = vle.encode(image, 3)
        for k in range(3):
            ours = vle_core.metrics.psnr(target, encoding.reconstructions[k])
            linear = vle_core.metrics.psnr(target, pca.reconstruct(target, 4 * (k + 1)))
            assert ours > linear - 1.5, (k, ours, linear)


def test_stages_must_not_be_negative():
    with pytest.raises(ValueError, match="stages"):
        vle_core.preset("vanilla-tiny", stages=-1)


def test_training_a_staged_vle_starts_from_the_linear_code_of_its_data(tmp_path):
    out = tmp_path / "run"
    cfg = TrainConfig(
        preset="vanilla-tiny-staged",
        data="scenes",
        batch=2,
        crop=32,
        max_tokens=2,
        warmup=1,
        steps=1,
        save_every=1,
        sample_every=1,
        lr=1e-12,
        out=str(out),
    )
    train(cfg)
    model, _ = vle_core.read_checkpoint(out / "model")
    expected = linear_code(resolve_data("scenes", crop=32, length=None))
    np.testing.assert_allclose(model.decoder.linear.weight[1].detach().numpy(), expected[:, 4:8].numpy(), atol=1e-5)


def test_stages_travel_with_saved_tokens(tmp_path):
    tokens = vle_core.Tokens(
        torch.randn(3, 4, 2, 2), torch.zeros(3, 3), torch.ones(3, 3), (16, 16), torch.tensor([5, 2, 9])
    )
    tokens.save(tmp_path / "t.safetensors")
    assert vle_core.Tokens.load(tmp_path / "t.safetensors").stage.tolist() == [5, 2, 9]
    # A file from before stages were saved: its tokens are steps 1..n, as the loop made them.
    save_file(
        {"latents": tokens.latents, "mean": tokens.mean, "std": tokens.std},
        str(tmp_path / "old.safetensors"),
        metadata={"height": "16", "width": "16"},
    )
    assert vle_core.Tokens.load(tmp_path / "old.safetensors").stage.tolist() == [1, 2, 3]
    assert vle_core.Tokens.cat([tokens[2], tokens[0]]).stage.tolist() == [9, 5]
    with pytest.raises(ValueError, match="stages"):
        vle_core.Tokens(tokens.latents, tokens.mean, tokens.std, (16, 16), torch.tensor([1, 0, 2]))


def test_stage_film_starts_as_the_model_without_it_and_then_shapes_each_stage_alone():
    """A staged VLE's weights load into the same model with stage_film, which then rebuilds
    exactly what it did; a stage's scale and shift change that stage's tokens and no other's."""
    torch.manual_seed(0)
    plain = random_staged_model()
    with torch.no_grad():  # residual blocks start as the identity, where a scale inside them shows nothing
        for name, weight in plain.named_parameters():
            if ".conv2." in name:
                weight.normal_(0, 0.1)
    film = vle_core.build_model(vle_core.preset("vanilla-tiny-staged-film"))
    missing, unexpected = film.load_state_dict(plain.state_dict(), strict=False)
    assert missing and all(".film" in name for name in missing) and not unexpected
    image = synthetic_image(48, 64)
    before = vle_core.VLE(plain, device="cpu").encode(image, 3)
    after = vle_core.VLE(film, device="cpu").encode(image, 3)
    np.testing.assert_allclose(after.reconstructions, before.reconstructions, atol=1e-6)
    with torch.no_grad():
        for name, weight in film.named_parameters():
            if ".film" in name:
                weight[1].normal_(0, 0.5)  # stage 2 only
    changed = vle_core.VLE(film, device="cpu").render(before.tokens).contributions
    np.testing.assert_allclose(changed[0], before.contributions[0], atol=1e-6)
    np.testing.assert_allclose(changed[2], before.contributions[2], atol=1e-6)
    assert np.abs(changed[1] - before.contributions[1]).max() > 1e-3


def test_stage_film_needs_stages():
    with pytest.raises(ValueError, match="stage_film"):
        vle_core.preset("vanilla-tiny", stage_film=True)


TINY_RUN = dict(data="scenes", batch=2, crop=32, max_tokens=2, warmup=1, save_every=1, sample_every=1)


def continued(tmp_path, base: str, steps: int, preset: str):
    """A tiny run of preset `base`, then one step of `preset` from its weights at learning rate 0:
    (the first run's model, the second's)."""
    train(TrainConfig(preset=base, **TINY_RUN, steps=steps, out=str(tmp_path / "base")))
    train(
        TrainConfig(
            preset=preset,
            **TINY_RUN,
            steps=1,
            lr=0.0,
            init=str(tmp_path / "base" / "model"),
            out=str(tmp_path / "continued"),
        )
    )
    return vle_core.read_checkpoint(tmp_path / "base" / "model")[0], vle_core.read_checkpoint(
        tmp_path / "continued" / "model"
    )[0]


def test_init_continues_a_staged_run_with_stage_film_but_not_back(tmp_path):
    plain, film = continued(tmp_path, "vanilla-tiny-staged", 2, "vanilla-tiny-staged-film")
    for name, weight in film.state_dict().items():
        expected = torch.zeros_like(weight) if ".film" in name else plain.state_dict()[name]
        torch.testing.assert_close(weight, expected, msg=name)
    with pytest.raises(SystemExit, match="different model"):
        train(
            TrainConfig(
                preset="vanilla-tiny-staged",
                **TINY_RUN,
                steps=1,
                init=str(tmp_path / "continued" / "model"),
                out=str(tmp_path / "back"),
            )
        )


def test_a_context_block_starts_as_the_identity_and_its_decodes_still_move_with_their_latents():
    """A film model's weights load into the same model with context, which then rebuilds exactly
    what it did; trained (here: random) context weights change the decode, which still moves by
    exactly 8 px per latent cell (dilated, not strided), away from the border."""
    torch.manual_seed(0)
    film = random_staged_model("vanilla-tiny-staged-film")
    context = vle_core.build_model(vle_core.preset("vanilla-tiny-staged-context"))
    missing, unexpected = context.load_state_dict(film.state_dict(), strict=False)
    assert missing and all(".context." in name for name in missing) and not unexpected
    image = synthetic_image(48, 64)
    before = vle_core.VLE(film, device="cpu").encode(image, 2)
    np.testing.assert_allclose(
        vle_core.VLE(context, device="cpu").encode(image, 2).reconstructions, before.reconstructions, atol=1e-6
    )

    with torch.no_grad():
        for name, weight in context.named_parameters():
            if ".context.expand" in name:
                weight.normal_(0, 0.5)
    z = torch.randn(1, 4, 40, 40, generator=torch.Generator().manual_seed(1))
    stage = torch.tensor([2])
    with torch.no_grad():
        original = context.decoder(z, stage)[0]
        moved = context.decoder(torch.roll(z, (1, 2), dims=(2, 3)), stage)[0]
        assert (original - film.decoder(z, stage)[0]).abs().max() > 1e-3
    inner = np.s_[:, 140:180, 140:180]  # 17 cells from every border: past both receptive fields
    torch.testing.assert_close(moved[inner], torch.roll(original, (8, 16), dims=(1, 2))[inner], atol=1e-5, rtol=0)


def test_context_must_not_be_negative():
    with pytest.raises(ValueError, match="context"):
        vle_core.preset("vanilla-tiny-staged", context=-1)


def test_init_continues_a_film_run_with_context(tmp_path):
    film, context = continued(tmp_path, "vanilla-tiny-staged-film", 1, "vanilla-tiny-staged-context")
    for name, weight in context.state_dict().items():
        if ".context." not in name:
            torch.testing.assert_close(weight, film.state_dict()[name], msg=name)
        elif ".expand." in name:
            assert torch.count_nonzero(weight) == 0, name


def test_init_grows_the_stages_of_a_checkpoint_and_not_back(tmp_path):
    """masked-tiny-photos (2 stages) continues as masked-tiny-photos-rest (4): every weight and
    the first 2 rows of each stage table as trained; a new stage's convolutional rows are the
    last trained stage's, and its linear code is new (the next patch-PCA components)."""
    two, four = continued(tmp_path, "masked-tiny-photos", 1, "masked-tiny-photos-rest")
    grown = 0
    for name, weight in four.state_dict().items():
        old = two.state_dict()[name]
        if weight.shape == old.shape:
            torch.testing.assert_close(weight, old, msg=name)
            continue
        grown += 1
        torch.testing.assert_close(weight[:2], old, msg=name)
        if name.endswith("linear.weight"):
            assert weight[2:].abs().sum() > 0 and not torch.allclose(weight[2], old[-1]), name
        else:
            torch.testing.assert_close(weight[2:], old[-1:].expand_as(weight[2:]), msg=name)
    assert grown == 4  # E's and D's stage embedding and linear code
    with pytest.raises(SystemExit, match="different model"):
        train(
            TrainConfig(
                preset="masked-tiny-photos",
                **TINY_RUN,
                steps=1,
                init=str(tmp_path / "continued" / "model"),
                out=str(tmp_path / "back"),
            )
        )


def test_init_gives_each_token_a_copy_of_the_shared_e_and_d_and_not_back(tmp_path):
    """A film run continues with own_stages: each own E and D starts as the shared pair, so the
    model codes exactly as the checkpoint did; a model with them does not load back into one without."""
    film, own = continued(tmp_path, "vanilla-tiny-staged-film", 1, "vanilla-tiny-staged-own")
    for name, weight in own.state_dict().items():
        shared = name.split(".", 2)[-1] if name.startswith("own_") else name
        prefix = "encoder." if name.startswith(("own_encoders.", "encoder.")) else "decoder."
        torch.testing.assert_close(weight, film.state_dict()[prefix + shared.removeprefix(prefix)], msg=name)
    image = synthetic_image(48, 64)
    before = vle_core.VLE(film, device="cpu").encode(image, 4).reconstructions
    np.testing.assert_allclose(vle_core.VLE(own, device="cpu").encode(image, 4).reconstructions, before, atol=1e-5)
    with pytest.raises(SystemExit, match="different model"):
        train(
            TrainConfig(
                preset="vanilla-tiny-staged-film",
                **TINY_RUN,
                steps=1,
                init=str(tmp_path / "continued" / "model"),
                out=str(tmp_path / "back"),
            )
        )


def test_each_token_runs_its_own_e_and_d_and_later_tokens_the_shared_pair():
    """Token n <= own_stages trains and decodes with its own pair alone; a batch of tokens of
    mixed stages (an edit's) decodes each with its own, as the loop coded it."""
    torch.manual_seed(0)
    model = random_staged_model("vanilla-tiny-staged-own")
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    out = model(x, 4)
    out.reconstructions[1].sum().backward()  # tokens 1 and 2: own pairs 0 and 1, the shared pair untouched
    grads = {
        name: p.grad is not None and p.grad.abs().sum() > 0
        for name, p in model.named_parameters()
        if name.endswith("conv_in.weight")
    }
    assert grads == {
        "encoder.conv_in.weight": False,
        "own_encoders.0.conv_in.weight": True,
        "own_encoders.1.conv_in.weight": True,
    }
    with torch.no_grad():
        out = model(x, 4)
        tokens = [3, 0, 2, 1]  # stages 4 (shared), 1, 3 (shared), 2 in one batch
        latents, mean, std, stage = (
            torch.cat([getattr(out, f)[t] for t in tokens]) for f in ("latents", "mean", "std", "stages")
        )
        contributions, _ = vle_core.decode_tokens(model, latents, mean, std, stage, (32, 32))
        torch.testing.assert_close(contributions, torch.cat([out.contributions[t] for t in tokens]), atol=1e-5, rtol=0)
        shared = denormalise(model.decoder(out.latents[0], out.stages[0]), out.mean[0], out.std[0])
        assert (out.contributions[0] - shared).abs().max() > 1e-3  # token 1 is not the shared pair's


def test_own_stages_are_a_vanilla_vles_and_not_negative():
    with pytest.raises(ValueError, match="own_stages"):
        vle_core.preset("vanilla-tiny-staged", own_stages=-1)
    with pytest.raises(ValueError, match="own_stages"):
        vle_core.preset("masked-tiny", own_stages=2)
