"""The Edit tab: edits only decode and show what vle_core decodes; impossible edits are refused
and change nothing; clicks select and move tokens."""

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import app_helpers
import gradio as gr
import numpy as np
import pytest
import torch
from app_helpers import N, Select, encode, pixels, save_png
from conftest import synthetic_image

import explorer
import vle_core
from explorer import edit_tab, export_tab, models, pages, session, tokens_tab, views
from explorer.edits import Move
from vle_core import edit
from vle_core.figures import to_uint8

# Fixtures: tiny checkpoints, the app pointed at them, the images its encoder runs on.
checkpoints, fresh, encodes = app_helpers.checkpoints, app_helpers.fresh, app_helpers.encodes


@pytest.mark.parametrize("checkpoint", ["vanilla-tiny", "masked-tiny"])
def test_edits_decode_only_and_match_the_library(fresh, checkpoint, encodes):
    path = save_png(fresh, "a.png", synthetic_image(64, 64))
    state = encode(path, checkpoint)[0]
    vle = models.get_model(checkpoint)[1]
    runs = len(encodes)

    def check(out):
        """The shown image is what VLE.apply_edits makes of the edited tokens, decoded afresh."""
        state = out[0]
        items = session.edited(state)[2].items
        rendering = vle.render(vle_core.Tokens.cat([it.decoded() for it in items]))
        off = [i for i, it in enumerate(items) if not it.on]
        expected = to_uint8(
            vle.apply_edits(rendering, off=off, moves={i: (it.dx, it.dy) for i, it in enumerate(items)})
        )
        assert np.abs(pixels(out[1]).astype(int) - expected).max() <= 2
        return state

    unedited = pixels(tokens_tab.on_details(state)[2])
    assert np.array_equal(unedited, pixels(edit_tab.on_reset(state)[1]))
    moved = edit_tab.on_move(2, 16, -8, state)
    assert not np.array_equal(pixels(moved[1]), unedited)
    state = check(moved)
    state = check(edit_tab.on_strength(3, 1.5, state))
    state = check(edit_tab.on_switch([1, 2, 4, 5, 6], state))
    state = check(edit_tab.on_scatter(7, state))
    donor = save_png(fresh, "donor.png", synthetic_image(64, 64, seed=5))
    out = edit_tab.on_transplant(donor, 2, state)
    assert out[4]["value"] == N + 1 and len(out[0].history) == 5  # the transplant is selected, to move it
    state = check(out)
    state = check(edit_tab.on_move(N + 1, 8, 8, state))
    assert len(encodes) == runs + 1  # the donor, and nothing else, was encoded
    solo = edit_tab.on_solo(1, state)
    assert solo[3]["value"] == [1]
    check(solo)
    undone = edit_tab.on_undo(solo[0])
    assert undone[0].history == state.history and np.array_equal(pixels(undone[1]), session.edited(state)[2].image)
    assert np.array_equal(pixels(edit_tab.on_reset(state)[1]), unedited)
    silenced, off = (
        edit_tab.on_strength(4, 0.0, edit_tab.on_reset(state)[0]),
        edit_tab.on_switch([1, 2, 3, 5, 6], edit_tab.on_reset(state)[0]),
    )
    # An addition at strength 0 is one switched off; a region token switched off takes its object away.
    same = np.abs(pixels(silenced[1]).astype(int) - pixels(off[1])).max() <= 1
    assert same == (checkpoint == "vanilla-tiny")


def test_impossible_edits_are_refused_and_change_nothing(fresh):
    state = encode(save_png(fresh, "a.png", synthetic_image(64, 64)))[0]
    state = edit_tab.on_switch([1, 2, 3], state)[0]
    history, sources = state.history, dict(state.sources)
    for call, message in [
        (lambda: edit_tab.on_move(5, 8, 0, state), "Token 5 is switched off"),
        (lambda: edit_tab.on_move(N + 3, 8, 0, state), "no token 9"),
        (lambda: edit_tab.on_move(1, 500, 0, state), "leaves the 64×64 image"),
        (lambda: edit_tab.on_strength(1, 99, state), "out of range"),
        (lambda: edit_tab.on_solo(0, state), "Select a token to solo"),
        (lambda: edit_tab.on_remove(N + 1, state), f"no token {N + 1}"),
        (lambda: edit_tab.on_switch([1, 40], state), "no token 40"),
        (lambda: edit_tab.on_move_to(5, state, Select(10, 10)), "switched off"),
        (lambda: edit_tab.on_transplant(None, 1, state), "donor image"),
        (lambda: export_tab.on_export_gif(None), "Encode an image first"),
        (lambda: export_tab.on_export_tokens(edit_tab.on_switch([], state)[0]), "nothing to export"),
    ]:
        with pytest.raises(gr.Error, match=message):
            call()
    assert state.history == history and state.sources == sources  # the same objects: nothing replaced
    assert pixels(tokens_tab.on_token(3, state)[0]).shape == (64, 64, 3)  # still usable


def test_clicks_select_tokens_and_move_them(fresh):
    state = encode(save_png(fresh, "a.png", synthetic_image(64, 64)), "masked-tiny")[0]
    k, edit_k = tokens_tab.on_select_token(state, Select(30, 20))
    labels = views.entry_overlay(session.session(state)[1])[0]
    assert k == edit_k == labels[20, 30] + 1
    assert edit_tab.on_select_edit_token(state, Select(30, 20)) == k
    moved = edit_tab.on_move_to(k, state, Select(63, 63))
    offset = moved[6]["value"], moved[7]["value"]
    assert moved[0].history[-1] == Move(k - 1, *offset) and offset != (0, 0)
    strength, dx, dy, overlay = edit_tab.on_pick_edit_token(k, moved[0])
    assert (strength, dx, dy) == (1.0, *offset) and pixels(overlay).shape == (64, 64, 3)


def test_a_moved_masked_token_leaves_its_background_not_a_seam(fresh):
    """Issue 13, item 6. A masked token codes its object on a background latent. Zeros in the cells
    a move vacates are no code at all: the decoded mask lit up along their edge (hard rectangular
    seams, striped copies under scatter). Filled with its background, the vacated cells decode
    exactly as the token's background did."""
    vle = models.get_model("masked-tiny")[1]
    torch.manual_seed(1)
    C = vle.config.latent_channels
    z = torch.randn(C, 1, 1).expand(C, 32, 32).clone()  # a background ...
    z[:, 24:28, 24:28] = torch.randn(C, 4, 4) * 3  # ... and an object
    tokens = vle_core.Tokens(z[None], torch.zeros(1, 3), torch.ones(1, 3), (256, 256))
    before = vle.render(tokens).masks[0]
    probe = np.s_[64:128, 160:192]  # vacated by a move 128 px left, and 64 px or more from any edge of it
    seam = vle.render(edit.translate(tokens, 0, -128, 0)).masks[0]
    clean = vle.render(edit.translate(tokens, 0, -128, 0, vacated="background")).masks[0]
    np.testing.assert_allclose(clean[probe], before[probe], atol=1e-5)
    assert np.abs(seam[probe] - before[probe]).max() > 1e-3  # zeros decode to something else
    # the app moves masked tokens this way
    state = encode(save_png(fresh, "a.png", synthetic_image(64, 64)), "masked-tiny")[0]
    items = session.edited(edit_tab.on_move(2, 16, 0, state)[0])[2].items
    assert items[1].vacated == "background"


@pytest.mark.parametrize("checkpoint", ["vanilla-tiny", "masked-tiny"])
def test_region_maps_kept_per_token_equal_the_maps_of_all_tokens(fresh, checkpoint):
    state = encode(save_png(fresh, "a.png", synthetic_image(48, 72)), checkpoint)[0]
    for apply in (
        lambda s: edit_tab.on_move(2, 9, -4, s),
        lambda s: edit_tab.on_strength(3, 1.5, s),
        lambda s: edit_tab.on_switch([1, 2, 4], s),
    ):
        state = apply(state)[0]
        _, _, result = session.edited(state)
        on = result.on
        stages = np.array([int(result.items[i].token.stage[0]) for i in on])
        placed = [result.placed(i) for i in on]
        masks = None if result.masks is None else np.stack([m for _, m in placed])
        want = views.token_weights(np.stack([c for c, _ in placed]), masks, stages)
        assert np.array_equal(pages.item_weights(state, result, on), want)


def test_whole_image_token_models_take_a_region_tokens_object_away(fresh):
    """masked-tiny-photos' token 1 codes the whole image: removing a region token takes away what
    every token draws under its mask (VLE.apply_edits), and undo brings back exactly what was there."""
    torch.manual_seed(0)
    model = vle_core.build_model(vle_core.preset("masked-tiny-photos"))
    vle_core.save_checkpoint(
        model, fresh / "own" / "photos-tiny", "# photos-tiny", training={"data": "test", "steps": 0, "max_tokens": 4}
    )
    # the fixture's teardown configures back
    explorer.configure(checkpoints=fresh / "own", cache_dir=fresh / "own-cache", cache_mb=64)
    state = encode(save_png(fresh, "a.png", synthetic_image(64, 64)), "photos-tiny")[0]
    vle, entry, _ = session.edited(state)
    region = next(i for i in range(1, len(entry)) if (entry.masks[i] > 127).mean() > 0.01)  # a region token with a mask
    out = edit_tab.on_remove(region + 1, state)
    expected = to_uint8(vle.apply_edits(vle.render(entry.tokens), off=[region]))
    assert np.abs(pixels(out[1]).astype(int) - expected).max() <= 2
    assert out[3]["value"] == [i + 1 for i in range(len(entry)) if i != region]
    assert "classical fill" in out[-1]
    assert np.array_equal(pixels(edit_tab.on_undo(out[0])[1]), pixels(edit_tab.on_reset(state)[1]))


@pytest.mark.parametrize("checkpoint, first", [("vanilla-tiny", 0), ("masked-tiny", 1)])
def test_the_edit_tab_never_selects_a_whole_image_token_at_first(fresh, checkpoint, first):
    """Vanilla tokens all code the whole image: none is selected, and a click on the picture asks
    for a selection instead of moving one; a masked VLE's first region token is selected."""
    state = encode(save_png(fresh, "a.png", synthetic_image(64, 64)), checkpoint)[0]
    details = tokens_tab.on_details(state)
    assert details[5]["value"] == first
    assert edit_tab.on_reset(state)[4]["value"] == first
    if first == 0:
        with pytest.raises(gr.Error, match="Select a token"):
            edit_tab.on_move_to(0, state, Select(10, 10))
        with pytest.raises(gr.Error, match="Select a token"):
            edit_tab.on_remove(0, state)
