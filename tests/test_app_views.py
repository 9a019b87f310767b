"""What the views show: every token of a vanilla VLE gets a region, the signed view is the
library's heatmap, counts read as English, the strip labels every picture, small images are
enlarged (and clicks on them still land), the target's label sits on its line, the edit log
says each move's step, the default token count is the checkpoint's trained count."""

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import app_helpers
import numpy as np
import torch
from app_helpers import N, Select, encode, pixels, save_png
from conftest import synthetic_image

import vle_core
from explorer import cache, compare_tab, edit_tab, models, plots, session, settings, tokens_tab, views
from vle_core import figures

checkpoints, fresh = app_helpers.checkpoints, app_helpers.fresh  # fixtures: tiny checkpoints, the app pointed at them


def test_every_vanilla_token_gets_a_region():
    """Token 1 adds the most almost everywhere; each later token still claims where it acts most."""
    contributions = np.full((3, 32, 32, 3), 0.01, np.float32)
    contributions[0] = 0.3  # token 1: large everywhere
    contributions[1, :8, :8] = 0.1  # token 2: a corner, smaller than token 1 even there
    contributions[2, 20:, 20:] = -0.12
    labels = views.token_weights(contributions, None).argmax(0)
    assert set(np.unique(labels)) == {0, 1, 2}
    assert labels[2, 2] == 1 and labels[28, 28] == 2 and labels[16, 4] == 0


def test_a_whole_image_token_claims_only_what_no_region_claims():
    """A photo model's first tokens cover the image; the regions view and clicks must still find
    the region tokens, and give the rest of the image to the whole-image token."""
    masks = np.zeros((3, 32, 32), np.float32)
    masks[0] = 0.98  # token 1: the whole image
    masks[1, :16] = 0.97  # token 2: the top half, a mask a little weaker than token 1's
    masks[2, 24:, 24:] = 0.99  # token 3: a corner
    labels = views.token_weights(np.zeros((3, 32, 32, 3), np.float32), masks).argmax(0)
    assert labels[4, 4] == 1 and labels[28, 28] == 2 and labels[20, 4] == 0
    # two whole-image tokens
    two = np.concatenate(
        [masks[:1], np.random.default_rng(0).uniform(0.97, 0.99, (1, 32, 32)).astype(np.float32), masks[1:]]
    )
    weights = views.token_weights(np.zeros((4, 32, 32, 3), np.float32), two)
    labels = weights.argmax(0)
    # the rest is token 1's, not striped between 1 and 2
    assert labels[4, 4] == 2 and labels[28, 28] == 3 and np.all(labels[16:24] == 0)
    alone = np.concatenate([views.token_weights(np.zeros((1, 32, 32, 3), np.float32), two[[k]]) for k in range(4)])
    assert np.array_equal(alone, weights)  # one token at a time, as the Edit tab keeps them
    faint = np.zeros((2, 32, 32), np.uint8)
    faint[0] = 1  # a region token's mask, 1/255 outside its region: not a whole-image mask
    faint[0, :8, :8] = 250
    faint[1, :8, :8] = 200  # a weaker token over the same corner
    assert views.token_weights(np.zeros((2, 32, 32, 3), np.float32), faint).argmax(0)[4, 4] == 0


def test_a_later_pass_over_a_region_leaves_it_to_the_token_that_took_it():
    """With the tokens' stages, a region token of S's second pass (stage 3) refining the region a
    first-pass token (stage 2) took, with a stronger mask, does not take its pixels; where only it
    is on, they are its own. Weights still come one token at a time, as the Edit tab keeps them."""
    masks = np.zeros((3, 32, 32), np.float32)
    masks[0] = 0.98  # the whole image
    masks[1, :16] = 0.9  # pass 1: the top half
    masks[2, :20] = 0.99  # pass 2: the top half again, and a little more
    stages = np.array([1, 2, 3])
    weights = views.token_weights(np.zeros((3, 32, 32, 3), np.float32), masks, stages)
    labels = weights.argmax(0)
    assert np.all(labels[:16] == 1) and np.all(labels[16:20] == 2) and np.all(labels[20:] == 0)
    # without stages: the strongest
    assert views.token_weights(np.zeros((3, 32, 32, 3), np.float32), masks).argmax(0)[4, 4] == 2
    alone = np.concatenate(
        [views.token_weights(np.zeros((1, 32, 32, 3), np.float32), masks[[k]], stages[[k]]) for k in range(3)]
    )
    assert np.array_equal(alone, weights)


def test_the_signed_view_is_the_librarys_heatmap_of_the_token(fresh):
    """The Tokens tab and the library's token strip draw a token's addition with one function
    (vle_core.figures.signed_heatmap); the app keeps contributions as float16, hence the level."""
    state = encode(save_png(fresh, "a.png", synthetic_image(48, 64)), "masked-tiny")[0]
    vle = models.get_model("masked-tiny")[1]
    contributions = vle.render(session.session(state)[1].tokens).contributions
    for k in (1, 3):
        shown = pixels(tokens_tab.on_token(k, state)[2]).astype(int)
        assert np.abs(shown - figures.signed_heatmap(contributions[k - 1])).max() <= 1


def test_counts_read_as_english(fresh, monkeypatch):
    folder = fresh / "one"
    torch.manual_seed(0)
    vle_core.save_checkpoint(
        vle_core.build_model(vle_core.preset("vanilla-tiny")), folder / "one-token", "# one", training={"max_tokens": 1}
    )
    monkeypatch.setattr(settings, "CHECKPOINTS", folder)
    out = encode(save_png(fresh, "a.png", synthetic_image(64, 64)), "one-token", n=2)
    assert "token 2 is past the 1 token one-token was trained with" in out[1]
    assert "past the 1 token this checkpoint" in tokens_tab.on_token(2, out[0])[-1]
    assert "trained with up to 1 token;" in out[2]["label"]
    assert views.count(1) == "1 token" and views.count(3) == "3 tokens"


def test_the_default_token_count_is_the_trained_one(fresh):
    assert models.trained_tokens("masked-tiny") == 4 and models.default_tokens("masked-tiny") == 4
    assert models.default_tokens("broken") == settings.N_TOKENS  # not recorded: the app's default
    summary, card, n = tokens_tab.on_checkpoint_info("vanilla-tiny")
    assert n["value"] == 4 and card.index("Trained with up to 4 tokens") < card.index("An untrained")


def test_the_strip_labels_every_picture_and_the_export_explains_its_rows(fresh):
    state = encode(save_png(fresh, "a.png", synthetic_image(64, 64)), "masked-tiny")[0]
    entry = tokens_tab.session(state)[1]
    shown, exported = views.paper_strip(entry, 4), views.paper_strip(entry, 4, legend=True)
    assert exported.shape[0] > shown.shape[0]  # the legend's lines, under the pictures
    right = shown[:, -40:]  # the last column's labels: source, regions, source
    assert (right < 128).any()
    assert "mask" in tokens_tab.on_details(state)[1]  # the page's legend, in text


def test_small_images_are_enlarged_and_clicks_on_them_land(fresh, monkeypatch):
    monkeypatch.setattr(settings, "DISPLAY_SIDE", 256)
    out = encode(save_png(fresh, "icon.png", synthetic_image(20, 20)), "masked-tiny", n=3)
    assert pixels(out[3]).shape == (240, 240, 3)  # 12x, nearest
    assert np.array_equal(pixels(out[3])[::12, ::12], tokens_tab.session(out[0])[1].reconstructions[2])
    labels = views.entry_overlay(tokens_tab.session(out[0])[1])[0]
    k, _ = tokens_tab.on_select_token(out[0], Select(12 * 15 + 5, 12 * 4 + 5))
    assert k == labels[4, 15] + 1


def test_the_target_label_sits_on_its_line():
    q = {
        "MSE": np.array([0.01, 0.002, 0.0005]),
        "PSNR": np.array([20.0, 27.0, 33.0]),
        "SSIM": np.array([0.5, 0.7, 0.9]),
    }
    for metric, target, expected in (("MSE", 0.001, -3.0), ("PSNR", 25.0, 25.0)):
        figure = plots.quality_figure([("a", q, None)], metric, target)
        label = next(a for a in figure.layout.annotations if a.text == f"target {metric}")
        assert abs(label.y - expected) < 1e-9  # plotly's log axes take log10 of the value


def test_the_edit_log_says_each_moves_step(fresh):
    state = encode(save_png(fresh, "a.png", synthetic_image(64, 64)))[0]
    once = edit_tab.on_move(2, 16, -8, state)
    twice = edit_tab.on_move(2, 24, -8, once[0])
    assert "token 2 moved by (+16, -8) px" in once[-1]
    assert "token 2 moved by (+8, +0) px, to (+24, -8)" in twice[-1]


def test_a_new_image_clears_compare_and_bounds_its_slider(fresh):
    out = tokens_tab.on_encode_in_page(save_png(fresh, "a.png", synthetic_image(64, 64)), N, 256, "masked-tiny")
    *panels, plot, text, compare_k, compare_a = out[-8:]
    assert panels == [None] * 4 and plot is None and text == "" and compare_k["maximum"] == N
    assert compare_a["value"] == "masked-tiny"  # Compare starts from the checkpoint the image was encoded with
    assert "Encode an image first" in compare_tab.on_compare("vanilla-tiny", "masked-tiny", 2, None)[-1]


def test_views_are_jpeg_close_to_the_exact_png_and_text_stays_png(fresh, monkeypatch):
    path = save_png(fresh, "a.png", synthetic_image(48, 72))
    state = encode(path)[0]
    exact = [pixels(v) for v in tokens_tab.on_token(3, state)[:5]]
    monkeypatch.setattr(settings, "LOSSY_VIEWS", True)
    cache._entries.clear()  # the entry again from disk, its views drawn afresh
    state = encode(path)[0]
    views = tokens_tab.on_token(3, state)[:5]
    assert all(v.endswith(".jpg") for v in views)
    for view, want in zip(views, exact):
        assert np.abs(pixels(view).astype(int) - want).mean() < 4
    assert tokens_tab.on_details(state)[0].endswith(".png")  # the strip's numbers and legend stay sharp
