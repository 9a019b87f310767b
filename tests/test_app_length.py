"""The app's "Until PSNR" length: an image encoded until its reconstruction reaches a target, the
caption saying how many tokens it took beside the held-out photos, and the quality curve marking it."""

import json

import numpy as np
import pytest
from app_helpers import checkpoints, fresh, save_png  # noqa: F401 (fixtures)
from conftest import synthetic_image

import vle_core
from explorer import cache, lengths, models, quality_tab, settings, tokens_tab
from explorer.errors import UserError

UNTIL = settings.LENGTH_MODES[1]


def psnr_curve(path, checkpoint: str, n: int) -> np.ndarray:
    """The PSNR after 1..n tokens of the app's own encode of an image (a fixed count)."""
    state = tokens_tab.on_encode(path, n, 256, checkpoint)[0]
    _, vle = models.get_model(checkpoint)
    entry = cache.get_entry(state.model_id, vle, state.source, n)[1]
    return 10 * np.log10(1 / entry.mse)


def until(path, target, checkpoint="vanilla-tiny"):
    return tokens_tab.on_encode(path, 4, 256, checkpoint, UNTIL, target)


@pytest.mark.parametrize("checkpoint", ["vanilla-tiny", "masked-tiny"])
def test_an_image_takes_the_tokens_its_target_needs(fresh, checkpoint, monkeypatch):  # noqa: F811 (fixture)
    path = save_png(fresh, "a.png", synthetic_image(64, 64, seed=1))
    curve = psnr_curve(path, checkpoint, 8)
    target = float(np.round(curve[4], 3) - 1e-3)  # token 5 reaches it; an earlier one may too
    expected = int(np.argmax(curve >= target)) + 1
    monkeypatch.setattr(settings, "CACHE_MB", 0)
    cache.reset()  # no cache: the until-encode must stop by itself, not read the fixed one
    state, info, slider = until(path, target, checkpoint)[:3]
    assert "encoded in" in info
    assert state.n == expected and slider["maximum"] == expected
    assert f"{expected} token{'s' if expected > 1 else ''} to reach PSNR {target:g} dB" in info
    assert state.target_psnr == target


def test_an_unreachable_target_stops_at_the_most_the_app_encodes_and_says_so(fresh):  # noqa: F811 (fixture)
    path = save_png(fresh, "a.png", synthetic_image(64, 64, seed=2))
    state, info = until(path, settings.TARGET_PSNR_RANGE[1])[:2]
    assert state.n == settings.N_TOKENS_MAX
    assert f"not reached in {settings.N_TOKENS_MAX} tokens" in info


def test_the_cache_answers_a_target_it_already_reaches(fresh, monkeypatch):  # noqa: F811 (fixture)
    path = save_png(fresh, "a.png", synthetic_image(64, 64, seed=3))
    curve = psnr_curve(path, "vanilla-tiny", 8)  # stored: 8 tokens
    runs = []
    monkeypatch.setattr(models, "_encode_here", lambda *args: runs.append(args))  # would fail the handler if called
    state, info = until(path, float(curve[2] - 1e-3))[:2]
    assert "from the cache" in info and runs == [] and state.n <= 3


def test_the_quality_curve_marks_the_target_and_where_it_was_reached(fresh):  # noqa: F811 (fixture)
    path = save_png(fresh, "a.png", synthetic_image(64, 64, seed=4))
    curve = psnr_curve(path, "vanilla-tiny", 6)
    target = float(curve[1] - 1e-3)
    state = until(path, target)[0]
    figure, text = quality_tab.on_curve("PSNR", 25.0, state)
    assert f"Encoded until PSNR {target:g} dB: **{state.n} tokens**" in text
    annotations = [a.text for a in figure.layout.annotations]
    assert f"PSNR {target:g} dB reached at token {state.n}" in annotations
    assert any(shape.x0 == state.n and shape.type == "line" for shape in figure.layout.shapes)


@pytest.mark.parametrize(
    "length, target, message",
    [
        ("Sometimes", 30, "The length is one of"),
        (UNTIL, 5, "between 10 and 60 dB"),
        (UNTIL, None, "between"),
        (UNTIL, float("nan"), "between"),
    ],
)
def test_bad_lengths_are_refused_with_a_message(fresh, length, target, message):  # noqa: F811 (fixture)
    path = save_png(fresh, "a.png", synthetic_image(64, 64))
    with pytest.raises(UserError, match=message):
        tokens_tab.on_encode(path, 4, 256, "vanilla-tiny", length, target)


def test_the_caption_compares_with_the_held_out_photos(tmp_path, monkeypatch):
    # five photos whose curves reach 30 dB at tokens 1, 2, 3, 4, and never in 4
    psnr = [[20 + 10 * (k >= i) for k in range(4)] for i in range(5)]
    results = tmp_path / "results.json"
    results.write_text(json.dumps({"curves": {"model": {"psnr": psnr, "mse": psnr, "ssim": psnr}}}))
    monkeypatch.setattr(settings, "RESULTS", results)
    lengths.heldout_psnr.cache_clear()
    try:
        assert lengths.heldout_needed("model", 30).tolist() == [1, 2, 3, 4, 5]
        assert (
            lengths.compared("model", 30, 3, True) == "40% of the 5 held-out photos (docs/results) need more, 40% fewer"
        )
        assert lengths.compared("model", 30, 7, True).startswith(
            "20% of the 5 held-out photos (docs/results) also need more than 4 tokens"
        )
        assert lengths.compared("model", 30, 32, False).startswith(
            "80% of the 5 held-out photos (docs/results) reach it within 4 tokens"
        )
        assert lengths.compared("another", 30, 3, True) == ""
        results.write_text("{not json")
        lengths.heldout_psnr.cache_clear()
        assert lengths.compared("model", 30, 3, True) == ""  # no results page: no comparison, no error
    finally:
        lengths.heldout_psnr.cache_clear()


def test_the_shipped_results_give_the_default_target_about_eight_tokens():
    """The default target is chosen so that a typical held-out photo needs about 8 tokens with the
    default checkpoint (measured at full size on the results page)."""
    lengths.heldout_psnr.cache_clear()
    needed = lengths.heldout_needed(settings.DEFAULT_CHECKPOINT, settings.TARGET_PSNR)
    assert needed is not None
    assert 6 <= np.median(needed) <= 10
    assert vle_core.vle.MAX_TOKENS >= settings.N_TOKENS_MAX
