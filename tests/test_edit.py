"""Token edits: pure functions whose effects on the decoded image are exact where they can be."""

import numpy as np
import pytest
import torch
from conftest import synthetic_image

import vle_core
from vle_core import edit


@pytest.fixture
def encoding(tiny_vle):
    return tiny_vle.encode(synthetic_image(160, 160, seed=3), n_tokens=4)


def test_dropping_every_token_gives_the_empty_reconstruction(tiny_vle, encoding):
    nothing = edit.drop(encoding.tokens, range(4))
    assert len(nothing) == 0
    np.testing.assert_array_equal(tiny_vle.decode(nothing), np.full((160, 160, 3), vle_core.EMPTY, np.float32))


def test_keep_and_drop_are_complements(tiny_vle, encoding):
    kept = tiny_vle.render(edit.keep(encoding.tokens, [0, 2]))
    np.testing.assert_allclose(kept.contributions, encoding.contributions[[0, 2]], atol=1e-5)
    np.testing.assert_allclose(edit.drop(encoding.tokens, [1, 3]).latents, edit.keep(encoding.tokens, [2, 0]).latents)
    with pytest.raises(ValueError, match="out of range"):
        edit.keep(encoding.tokens, [7])


@pytest.mark.parametrize("dx, dy", [(16, 0), (0, -24), (8, 8), (-32, 16)])
def test_translating_by_whole_cells_moves_the_contribution_exactly(tiny_vle, encoding, dx, dy):
    if tiny_vle.config.attention:
        pytest.skip("attention couples all positions")
    # Random latents: an untrained encoder's latents may be nearly flat, which would move invisibly.
    tokens = vle_core.Tokens(
        torch.randn(2, 4, 20, 20, generator=torch.Generator().manual_seed(0)),
        encoding.tokens.mean[:2],
        encoding.tokens.std[:2],
        (160, 160),
    )
    moved = tiny_vle.render(edit.translate(tokens, 1, dx, dy)).contributions[1]
    original = tiny_vle.render(tokens).contributions[1]
    margin = 56  # beyond the decoder's receptive field from the border and the vacated cells
    inner = np.s_[margin : 160 - margin, margin : 160 - margin]
    shifted = np.roll(original, (dy, dx), axis=(0, 1))  # the interior is far from any wrap-around
    np.testing.assert_allclose(moved[inner], shifted[inner], atol=1e-5)
    assert not np.allclose(moved[inner], original[inner], atol=1e-3)


def test_fractional_translation_interpolates_between_whole_shifts(encoding):
    z = encoding.tokens.latents[0]
    half = edit.shift_latent(z, 0.5, 0)
    expected = 0.5 * edit.shift_latent(z, 0, 0) + 0.5 * edit.shift_latent(z, 1, 0)
    torch.testing.assert_close(half, expected)


def test_content_that_leaves_the_frame_is_gone_not_wrapped(encoding):
    z = encoding.tokens.latents[0]
    w = z.shape[-1]
    gone = edit.shift_latent(z, w, 0)
    assert torch.count_nonzero(gone) == 0
    back = edit.shift_latent(edit.shift_latent(z, 3, 0), -3, 0)
    torch.testing.assert_close(back[..., : w - 3], z[..., : w - 3])
    assert torch.count_nonzero(back[..., w - 3 :]) == 0


def test_scaling_scales_the_addition(tiny_vle, encoding):
    doubled = tiny_vle.render(edit.scale(encoding.tokens, 2, 2.0)).contributions
    np.testing.assert_allclose(doubled[2], 2 * encoding.contributions[2], atol=1e-5)
    np.testing.assert_allclose(doubled[[0, 1, 3]], encoding.contributions[[0, 1, 3]], atol=1e-5)
    silenced = tiny_vle.decode(edit.scale(encoding.tokens, 2, 0.0))
    np.testing.assert_allclose(silenced, tiny_vle.decode(edit.drop(encoding.tokens, 2)), atol=1e-5)


def test_transplant_appends_the_donor_token_at_its_position(tiny_vle, encoding):
    donor = tiny_vle.encode(synthetic_image(80, 200, seed=9), n_tokens=2)
    grafted = edit.transplant(encoding.tokens, donor.tokens, 1)
    assert len(grafted) == 5 and grafted.image_size == (160, 160)
    contribution = tiny_vle.render(grafted).contributions[4]
    assert contribution.shape == (160, 160, 3)
    # Away from the crop and pad edges, the graft adds what it added in its own image.
    np.testing.assert_allclose(contribution[24:56, 24:136], donor.contributions[1][24:56, 24:136], atol=1e-5)
    with pytest.raises(ValueError, match="latent channels"):
        edit.transplant(
            encoding.tokens,
            vle_core.Tokens(torch.zeros(1, 3, 20, 20), torch.zeros(1, 3), torch.ones(1, 3), (160, 160)),
            0,
        )


def test_scatter_is_seeded_and_moves_tokens(encoding):
    a, b = edit.scatter(encoding.tokens, seed=1), edit.scatter(encoding.tokens, seed=1)
    torch.testing.assert_close(a.latents, b.latents)
    assert not torch.equal(a.latents, edit.scatter(encoding.tokens, seed=2).latents)
    torch.testing.assert_close(a.mean, encoding.tokens.mean)


def test_edits_leave_the_original_encoding_untouched(tiny_vle, encoding):
    before = {name: getattr(encoding.tokens, name).clone() for name in ("latents", "mean", "std")}
    reconstructions = encoding.reconstructions.copy()
    for edited in (
        edit.translate(encoding.tokens, 0, 12.5, -3),
        edit.scale(encoding.tokens, 1, 0.0),
        edit.keep(encoding.tokens, [1]),
        edit.drop(encoding.tokens, [0]),
        edit.transplant(encoding.tokens, encoding.tokens, 2),
        edit.scatter(encoding.tokens, seed=0),
    ):
        tiny_vle.decode(edited)
    for name, tensor in before.items():
        assert torch.equal(getattr(encoding.tokens, name), tensor), name
    np.testing.assert_array_equal(encoding.reconstructions, reconstructions)


def test_tokens_from_another_model_are_refused(tiny_vle):
    alien = vle_core.Tokens(torch.zeros(2, 4, 3, 3), torch.zeros(2, 3), torch.ones(2, 3), (40, 40))
    with pytest.raises(ValueError, match="do not fit"):
        tiny_vle.decode(alien)


def test_tokens_file_round_trip(tmp_path, encoding):
    path = tmp_path / "tokens.safetensors"
    encoding.tokens.save(path, metadata={"checkpoint": "tiny"})
    loaded = vle_core.Tokens.load(path)
    assert vle_core.Tokens.metadata(path)["checkpoint"] == "tiny"
    assert loaded.image_size == encoding.tokens.image_size
    torch.testing.assert_close(loaded.latents, encoding.tokens.latents)
    (tmp_path / "junk.safetensors").write_bytes(b"not a tokens file")
    with pytest.raises(ValueError, match="not a VLE tokens file"):
        vle_core.Tokens.load(tmp_path / "junk.safetensors")


def test_joining_tokens_keeps_order_and_refuses_mixed_image_sizes(encoding):
    joined = vle_core.Tokens.cat([encoding.tokens[[2]], encoding.tokens[[0, 1]]])
    torch.testing.assert_close(joined.latents, encoding.tokens.latents[[2, 0, 1]])
    other = vle_core.Tokens.empty(4, (80, 200))
    with pytest.raises(ValueError, match="different image sizes"):
        vle_core.Tokens.cat([encoding.tokens, other])


# Object edits: VLE.apply_edits, edit.layered, fill.fill_holes


def test_apply_edits_without_edits_is_the_reconstruction(tiny_vle, encoding):
    np.testing.assert_allclose(tiny_vle.apply_edits(encoding), encoding.reconstructions[-1], atol=1e-5)


def test_apply_edits_on_additive_tokens_is_the_edited_tokens_decoded(tiny_vle, encoding):
    """A vanilla VLE's tokens are additions: off leaves a token out of the sum, a move moves its latent."""
    if tiny_vle.kind == "masked":
        pytest.skip("a masked VLE's region tokens are layers")
    off = tiny_vle.apply_edits(encoding, off=[1])
    np.testing.assert_allclose(off, tiny_vle.decode(edit.drop(encoding.tokens, 1)), atol=1e-5)
    moved = tiny_vle.apply_edits(encoding, moves={2: (16, -8)})
    np.testing.assert_allclose(moved, tiny_vle.decode(edit.translate(encoding.tokens, 2, 16, -8)), atol=1e-5)


def test_apply_edits_refuses_impossible_edits(tiny_vle, encoding):
    for bad in (
        {"off": [4]},
        {"off": [-5]},
        {"moves": {9: (8, 0)}},
        {"moves": {0: (float("nan"), 0)}},
        {"moves": {0: (161, 0)}},
        {"moves": {0: "far"}},
    ):
        with pytest.raises(ValueError):
            tiny_vle.apply_edits(encoding, **bad)


RED = np.array([0.8, 0.1, 0.1], np.float32)


def square_scene(size=64, box=(slice(16, 32), slice(8, 24)), rim: float = 1.0):
    """A red square on a horizontal grey ramp, drawn by a token that adds (red - ramp) times its
    mask, which is 1 inside the box and `rim` on the box's outermost pixels: (picture, mask, the
    token's addition)."""
    ramp = np.linspace(0.2, 0.8, size, dtype=np.float32)
    background = np.repeat(np.broadcast_to(ramp, (size, size))[..., None], 3, axis=-1).copy()
    mask = np.zeros((size, size), np.float32)
    mask[box] = rim
    mask[box][1:-1, 1:-1] = 1
    addition = mask[..., None] * (RED - background)
    return background + addition, mask, addition


def test_a_removed_object_leaves_its_surroundings_not_grey():
    picture, mask, addition = square_scene()
    removed = edit.layered(picture, mask[None], addition[None], on=[False], offsets=[(0, 0)])
    background, _, _ = square_scene(box=(slice(0, 0), slice(0, 0)))
    hole = mask > 0
    assert np.abs(removed[hole] - background[hole]).max() < 0.08  # the ramp goes on; grey or red would be 0.3 off
    np.testing.assert_array_equal(
        removed[~edit.ndimage.binary_dilation(hole, iterations=edit.HOLE_GROW)],
        picture[~edit.ndimage.binary_dilation(hole, iterations=edit.HOLE_GROW)],
    )


def test_a_moved_object_keeps_its_colour_and_edges():
    picture, mask, addition = square_scene()
    moved = edit.layered(picture, mask[None], addition[None], on=[True], offsets=[(24, 8)])
    landed = edit.shift_pixels(mask, 24, 8) > 0
    np.testing.assert_allclose(moved[landed], np.broadcast_to(RED, (landed.sum(), 3)), atol=1e-6)
    left = (mask > 0) & ~landed
    # grey ramp where it was, not red
    assert (moved[left][:, 0] < 0.85).all() and np.abs(moved[left] - moved[left][:, [1]]).max() < 0.08
    # elsewhere all but unchanged
    assert np.abs(moved[~landed & ~(mask > 0)] - picture[~landed & ~(mask > 0)]).max() < 0.08


def test_a_moved_objects_soft_rim_keeps_its_colour():
    """Where a soft mask (0.25) faded the token's addition into the ramp, the moved object is still
    red, covering what is under it by the rim's alpha (neither 0 nor 1 there)."""
    picture, mask, addition = square_scene(rim=0.25)
    moved = edit.layered(picture, mask[None], addition[None], on=[True], offsets=[(24, 8)])
    rim = edit.shift_pixels((mask > 0) & (mask < 1), 24, 8)
    alpha = np.clip((0.25 - edit.OBJECT_FROM) * edit.EDGE + 0.5, 0, 1)
    assert 0 < alpha < 1
    background, _, _ = square_scene(box=(slice(0, 0), slice(0, 0)))
    np.testing.assert_allclose(moved[rim], alpha * RED + (1 - alpha) * background[rim], atol=1e-5)


def test_layered_edits_never_change_their_input():
    picture, mask, addition = square_scene(rim=0.6)
    before = picture.copy(), mask.copy(), addition.copy()
    edit.layered(picture, mask[None], addition[None], on=[True], offsets=[(8, 8)])
    for array, copy in zip((picture, mask, addition), before):
        np.testing.assert_array_equal(array, copy)


def test_masked_apply_edits_removes_a_region_tokens_object(encoding, tiny_vle):
    if tiny_vle.kind != "masked":
        pytest.skip("vanilla tokens have no objects")
    i = int(np.argmax([(m > 0.5).sum() for m in encoding.masks]))
    off = tiny_vle.apply_edits(encoding, off=[i])
    plain = encoding.reconstructions[-1]
    others = [j != i for j in range(len(encoding.masks))]
    expected = edit.layered(plain, encoding.masks, encoding.contributions, others, [(0, 0)] * len(encoding.masks))
    np.testing.assert_allclose(off, expected, atol=1e-5)


@pytest.mark.parametrize("seed", range(3))
def test_fill_keeps_known_pixels_and_continues_smooth_pictures(seed):
    from vle_core.fill import fill_holes

    rng = np.random.default_rng(seed)
    H, W = rng.integers(5, 90, size=2)
    ys, xs = np.mgrid[0:H, 0:W]
    picture = np.stack([xs / W, ys / H, np.full((H, W), 0.3)], axis=-1).astype(np.float32)
    hole = np.zeros((H, W), bool)
    hole[H // 4 : H // 2 + 1, W // 4 : W // 2 + 1] = True
    filled = fill_holes(np.where(hole[..., None], 0.0, picture), hole)
    np.testing.assert_array_equal(filled[~hole], picture[~hole])
    assert np.abs(filled[hole] - picture[hole]).max() < 0.25  # the ramp continues (0 would be 0.5 off)
    np.testing.assert_allclose(fill_holes(np.full((H, W, 3), 0.7, np.float32), hole), 0.7, atol=1e-6)
    assert np.array_equal(fill_holes(picture, np.ones((H, W), bool)), picture)  # nothing to continue from
