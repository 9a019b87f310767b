"""The explorer app's handlers, called directly on tiny untrained checkpoints in a temp folder.

What matters here is behaviour, not pictures: the encoder runs once per (image, checkpoint,
working size); the slider and edits only index and decode; bad input is a clear gr.Error that
changes nothing; a corrupt cache entry is recomputed, never served.
"""

import os
import struct
import zlib
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr
import numpy as np
import pytest
import torch
from PIL import Image

import app
import vle_core

N = 6  # tokens per test encode: enough to see the slider and edits work, cheap on 2 cores


def scene(size: int = 64, seed: int = 0, width: int | None = None) -> np.ndarray:
    """A few flat rectangles on a gradient, HxWx3 uint8."""
    rng = np.random.default_rng(seed)
    h, w = size, width or size
    ys, xs = np.mgrid[0:h, 0:w]
    image = np.stack([xs / w, ys / h, np.full((h, w), 0.4)], axis=-1)
    for _ in range(3):
        y0, x0 = rng.integers(0, h - 8), rng.integers(0, w - 8)
        image[y0 : y0 + rng.integers(6, h // 2), x0 : x0 + rng.integers(6, w // 2)] = rng.random(3)
    return (image * 255).astype(np.uint8)


def save_png(folder, name: str, array: np.ndarray) -> str:
    path = folder / name
    Image.fromarray(array).save(path)
    return str(path)


def make_checkpoints(folder) -> None:
    """vanilla-tiny and masked-tiny checkpoints, plus a broken folder, as the app would find them."""
    for name, preset in (("vanilla-tiny", "vanilla-tiny"), ("masked-tiny", "masked-tiny")):
        torch.manual_seed(0)
        model = vle_core.build_model(vle_core.preset(preset))
        vle_core.save_checkpoint(
            model, folder / name, f"# {name}\nAn untrained {preset} model for tests.", training={"data": "test", "steps": 0, "max_tokens": 4}
        )
    (folder / "broken").mkdir()
    (folder / "broken" / "config.json").write_text("{not json")


def pixels(view) -> np.ndarray:
    """The picture a handler returned for an image component: a PNG path, or an update holding one."""
    view = view["value"] if isinstance(view, dict) else view
    return np.asarray(Image.open(view))


class Select(gr.SelectData):
    """A click at (x, y) on an image, as gradio hands it to a select handler."""

    def __init__(self, x: int, y: int):
        super().__init__(None, {"index": [x, y], "value": None})


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    folder = tmp_path_factory.mktemp("checkpoints")
    make_checkpoints(folder)
    return folder


@pytest.fixture
def fresh(checkpoints, tmp_path, monkeypatch):
    """The app pointed at the test checkpoints and an empty cache; its files in tmp_path."""
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))
    app.configure(checkpoints=checkpoints, cache_dir=tmp_path / "cache", cache_mb=64)
    yield tmp_path
    app.configure()


def encode(path, checkpoint="vanilla-tiny", n=N, size=256):
    return app.on_encode(path, n, size, checkpoint)


def test_blocks_build_with_stable_api_names(fresh):
    demo = app.build_demo()
    names = {fn.api_name for fn in demo.fns.values() if fn.api_visibility == "public"}
    expected = {"encode", "token", "curve", "switch", "all_on", "solo", "strength", "move", "transplant", "scatter", "undo", "reset"}
    assert expected | {"export_gif", "export_strip", "export_tokens", "load_tokens", "compare"} <= names
    encode_fn = next(fn for fn in demo.fns.values() if fn.api_name == "encode")
    assert isinstance(encode_fn.inputs[0], gr.Image)  # the image comes first


def test_checkpoint_menu(fresh, monkeypatch):
    names = app.checkpoint_names()
    assert names == ["broken", "masked-tiny", "vanilla-tiny"]
    summary = app.checkpoint_summary("masked-tiny")
    assert summary.startswith("masked-tiny: masked, test, trained with ≤4 tokens") and "masked-tiny" in summary.split("(")[-1]
    assert "unreadable" in app.checkpoint_summary("broken")
    assert app.default_checkpoint() == "broken"  # no vanilla-natural: the first folder
    monkeypatch.setattr(app, "DEFAULT_CHECKPOINT", "masked-tiny")
    assert app.default_checkpoint() == "masked-tiny"


def test_broken_checkpoint_is_a_clear_error_and_others_keep_working(fresh):
    path = save_png(fresh, "a.png", scene())
    with pytest.raises(gr.Error, match="broken cannot be loaded"):
        encode(path, "broken")
    with pytest.raises(gr.Error, match="no checkpoint called"):
        encode(path, "../vanilla-tiny")
    assert encode(path)[0]["checkpoint"] == "vanilla-tiny"


@pytest.mark.parametrize("checkpoint", ["vanilla-tiny", "masked-tiny"])
def test_slider_and_coming_back_never_encode_again(fresh, checkpoint):
    path = save_png(fresh, "a.png", scene(48, width=72))
    runs = app.encoder_runs
    out = encode(path, checkpoint)
    state = out[0]
    assert app.encoder_runs == runs + 1
    assert out[2]["maximum"] == N and pixels(out[3]).shape == (48, 72, 3)
    assert out[-1]["maximum"] == N
    masked = checkpoint.startswith("masked")
    assert ("'s mask" in out[6]["label"]) == masked
    assert pixels(app.on_details(state)[0]).shape[1] > 72 * N  # the strip
    shown = set()
    for k in range(1, N + 1):
        *views, caption = app.on_token(k, state)
        recon, alone, heat, mask, overlay = (pixels(v) for v in views)
        assert recon.dtype == np.uint8 and alone.shape == heat.shape == mask.shape == overlay.shape == (48, 72, 3)
        assert (f"First {k} of {N}" in caption) and (("past the 4 tokens" in caption) == (k > 4))
        shown.add(recon.tobytes())
    assert len(shown) == N  # each k shows its own reconstruction
    encode(path, checkpoint)  # the same image again
    encode(path, checkpoint, n=3)  # fewer tokens: a prefix of the cached ones
    app._entries.clear()  # as after a restart: from disk
    again = encode(path, checkpoint)
    assert "from the cache" in again[1]
    assert app.encoder_runs == runs + 1
    encode(path, checkpoint, n=N + 2)  # more tokens than cached: the one case that encodes
    assert app.encoder_runs == runs + 2


def test_large_images_are_scaled_to_the_working_size(fresh):
    path = save_png(fresh, "wide.png", scene(150, width=300))
    out = encode(path, size=128)
    assert pixels(out[3]).shape == (64, 128, 3)
    assert "scaled down from 300×150 to 128×64" in out[1]
    assert "used as is" in encode(path, size=512)[1]


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims a size in its header and holds no pixels (a decompression-bomb probe)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunks = [b"IHDR" + ihdr, b"IDAT" + zlib.compress(b"")]
    return b"\x89PNG\r\n\x1a\n" + b"".join(struct.pack(">I", len(c) - 4) + c + struct.pack(">I", zlib.crc32(c)) for c in chunks)


def test_bad_uploads_are_clear_errors(fresh):
    good = save_png(fresh, "good.png", scene())
    truncated = fresh / "truncated.png"
    truncated.write_bytes(open(good, "rb").read()[:200])
    cases = {
        "garbage.png": (b"this is not an image" * 10, "not a readable image"),
        "bomb.png": (_png_header_only(10_000, 10_000), "limit is 40 MP"),  # Pillow's own check
        "big.png": (_png_header_only(8_000, 6_000), "limit is 40 MP"),  # ours
        "truncated.png": (None, "not a readable image"),
        "icon.ico": (None, "ICO images are not supported"),
    }
    Image.fromarray(scene(16)).save(fresh / "icon.ico")
    for name, (data, message) in cases.items():
        if data is not None:
            (fresh / name).write_bytes(data)
        with pytest.raises(gr.Error, match=message):
            encode(str(fresh / name))
    with pytest.raises(gr.Error, match="at least 8 px"):
        encode(save_png(fresh, "tiny.png", scene(16)[:4, :4]))
    with pytest.raises(gr.Error, match="too thin"):
        encode(save_png(fresh, "thin.png", np.zeros((10, 600, 3), np.uint8)), size=128)
    assert app.on_encode(None, N, 256, "vanilla-tiny")[0] is None  # a cleared image is no error
    assert app.on_details(None)[0] is None
    rgba = np.dstack([scene(), np.full((64, 64), 128, np.uint8)])
    assert pixels(encode(save_png(fresh, "rgba.png", rgba))[3]).shape == (64, 64, 3)


@pytest.mark.parametrize("corruption", ["garbage", "wrong shape"])
def test_a_corrupt_cache_entry_is_recomputed_not_served(fresh, corruption):
    path = save_png(fresh, "a.png", scene())
    first = encode(path)
    key = first[0]["key"]
    if corruption == "garbage":
        bad = b"\x00not an archive"
    else:
        entry = app.Entry.from_bytes(app._disk().get(f"entry/{key}"))
        entry.reconstructions = entry.reconstructions[:, :10]
        bad = entry.to_bytes()
    app._disk().set(f"entry/{key}", bad)
    app._entries.clear()
    runs = app.encoder_runs
    again = encode(path)
    assert app.encoder_runs == runs + 1
    assert np.array_equal(pixels(again[3]), pixels(first[3]))
    assert app.Entry.from_bytes(app._disk().get(f"entry/{key}")).reconstructions.shape[2] == 64  # repaired


@pytest.mark.parametrize("checkpoint", ["vanilla-tiny", "masked-tiny"])
def test_edits_decode_only_and_match_the_library(fresh, checkpoint):
    path = save_png(fresh, "a.png", scene())
    state = encode(path, checkpoint)[0]
    vle = app.get_model(checkpoint)[1]
    runs = app.encoder_runs

    def check(out):
        """The shown image is what vle_core decodes from the edited tokens."""
        state = out[0]
        tokens = app.edited(state)[2].tokens()
        expected = app.to_uint8(vle.decode(tokens)) if len(tokens) else np.full_like(pixels(out[1]), 128)
        assert np.abs(pixels(out[1]).astype(int) - expected).max() <= 2
        return state

    unedited = pixels(app.on_details(state)[1])
    assert np.array_equal(unedited, pixels(app.on_reset(state)[1]))
    moved = app.on_move(2, 16, -8, state)
    assert not np.array_equal(pixels(moved[1]), unedited)
    state = check(moved)
    state = check(app.on_strength(3, 1.5, state))
    state = check(app.on_switch([1, 2, 4, 5, 6], state))
    state = check(app.on_scatter(7, state))
    donor = save_png(fresh, "donor.png", scene(seed=5))
    out = app.on_transplant(donor, 2, state)
    assert out[4]["value"] == N + 1 and len(out[0]["history"]) == 5  # the transplant is selected, to move it
    state = check(out)
    state = check(app.on_move(N + 1, 8, 8, state))
    assert app.encoder_runs == runs + 1  # the donor, and nothing else, was encoded
    solo = app.on_solo(1, state)
    assert solo[3]["value"] == [1]
    check(solo)
    undone = app.on_undo(solo[0])
    assert undone[0]["history"] == state["history"] and np.array_equal(pixels(undone[1]), app.edited(state)[2].image)
    assert np.array_equal(pixels(app.on_reset(state)[1]), unedited)
    silenced, off = app.on_strength(4, 0.0, app.on_reset(state)[0]), app.on_switch([1, 2, 3, 5, 6], app.on_reset(state)[0])
    assert np.abs(pixels(silenced[1]).astype(int) - pixels(off[1])).max() <= 1


def test_impossible_edits_are_refused_and_change_nothing(fresh):
    state = encode(save_png(fresh, "a.png", scene()))[0]
    state = app.on_switch([1, 2, 3], state)[0]
    before = dict(state)
    for call, message in [
        (lambda: app.on_move(5, 8, 0, state), "Token 5 is switched off"),
        (lambda: app.on_move(N + 3, 8, 0, state), "no token 9"),
        (lambda: app.on_move(1, 500, 0, state), "leaves the 64×64 image"),
        (lambda: app.on_strength(1, 99, state), "out of range"),
        (lambda: app.on_solo(0, state), "no token 0"),
        (lambda: app.on_switch([1, 40], state), "no token 40"),
        (lambda: app.on_move_to(5, state, Select(10, 10)), "switched off"),
        (lambda: app.on_transplant(None, 1, state), "donor image"),
        (lambda: app.on_export_gif(None), "Encode an image first"),
        (lambda: app.on_export_tokens(app.on_switch([], state)[0]), "nothing to export"),
    ]:
        with pytest.raises(gr.Error, match=message):
            call()
    assert state == before
    assert pixels(app.on_token(3, state)[0]).shape == (64, 64, 3)  # still usable


def test_clicks_select_tokens_and_move_them(fresh):
    state = encode(save_png(fresh, "a.png", scene()), "masked-tiny")[0]
    k, edit_k = app.on_select_token(state, Select(30, 20))
    labels = app.entry_overlay(app.session(state)[1])[0]
    assert k == edit_k == labels[20, 30] + 1
    assert app.on_select_edit_token(state, Select(30, 20)) == k
    moved = app.on_move_to(k, state, Select(63, 63))
    offset = moved[6]["value"], moved[7]["value"]
    assert moved[0]["history"][-1] == ["move", k - 1, *offset] and offset != (0, 0)
    strength, dx, dy, overlay = app.on_pick_edit_token(k, moved[0])
    assert (strength, dx, dy) == (1.0, *offset) and pixels(overlay).shape == (64, 64, 3)


def test_curve_compare_and_exports(fresh):
    path = save_png(fresh, "a.png", scene())
    state = encode(path)[0]
    figure, text = app.on_curve("PSNR", 5.0, state)
    assert len(figure.data) == 2 and "Tokens needed for PSNR ≥ 5: **1**" in text and "entropy" in text
    assert "more than 6" in app.on_curve("SSIM", 1.01, state)[1]
    *images, plot, text = app.on_compare("vanilla-tiny", "masked-tiny", 3, state)
    assert all(pixels(i).shape == (64, 64, 3) for i in images) and len(plot.data) == 4 and "masked-tiny" in text

    gif = Image.open(app.on_export_gif(state))
    assert gif.n_frames == N
    assert Image.open(app.on_export_strip(state)).width > 64 * 2

    edited = app.on_move(1, 8, 0, app.on_switch([1, 2, 3], state)[0])
    saved = app.on_export_tokens(edited[0])
    loaded = app.on_load_tokens(saved, "vanilla-tiny")
    assert loaded[2]["maximum"] == 3 and loaded[0]["sources"][loaded[0]["key"]][0] == "tokens"
    assert np.abs(pixels(loaded[3]).astype(int) - pixels(edited[1])).max() <= 2  # the same picture, decoded again
    assert pixels(app.on_move(1, 8, 0, loaded[0])[1]).shape == (64, 64, 3)  # and editable
    with pytest.raises(gr.Error, match="made by checkpoint vanilla-tiny"):
        app.on_load_tokens(saved, "masked-tiny")
    (fresh / "bad.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{}garbage")
    with pytest.raises(gr.Error, match="not a VLE tokens file"):
        app.on_load_tokens(str(fresh / "bad.safetensors"), "vanilla-tiny")
    foreign = vle_core.Tokens(torch.zeros(2, 3, 8, 8), torch.zeros(2, 3), torch.ones(2, 3), (64, 64))
    foreign.save(fresh / "foreign.safetensors")  # 3 latent channels: another model's tokens
    with pytest.raises(gr.Error, match="do not fit this checkpoint"):
        app.on_load_tokens(str(fresh / "foreign.safetensors"), "vanilla-tiny")
    with pytest.raises(gr.Error, match="needs a source image"):
        app.on_compare("vanilla-tiny", "masked-tiny", 2, loaded[0])


def test_the_menu_tells_a_staged_checkpoint_from_a_shared_one(tmp_path):
    app.configure(checkpoints=Path(__file__).resolve().parents[1] / "checkpoints", cache_dir=tmp_path / "cache", cache_mb=64)
    try:
        assert app.checkpoint_summary("vanilla-natural").startswith("vanilla-natural: staged vanilla, bsds")
        assert app.checkpoint_summary("vanilla-shared-natural").startswith("vanilla-shared-natural: vanilla, bsds")
    finally:
        app.configure()
