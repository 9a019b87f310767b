"""The Quality, Export and Compare tabs: the curve, the exports, loading tokens back, comparing."""

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import app_helpers
import gradio as gr
import numpy as np
import pytest
import torch
from app_helpers import N, encode, pixels, save_png
from conftest import synthetic_image
from PIL import Image

import vle_core
from explorer import compare_tab, edit_tab, export_tab, quality_tab

checkpoints, fresh = app_helpers.checkpoints, app_helpers.fresh  # fixtures: tiny checkpoints, the app pointed at them


def test_curve_compare_and_exports(fresh):
    path = save_png(fresh, "a.png", synthetic_image(64, 64))
    state = encode(path)[0]
    figure, text = quality_tab.on_curve("PSNR", 5.0, state)
    assert len(figure.data) == 2 and "Tokens needed for PSNR ≥ 5: **1**" in text and "entropy" in text
    assert "more than 6" in quality_tab.on_curve("SSIM", 1.01, state)[1]
    *images, plot, text = compare_tab.on_compare("vanilla-tiny", "masked-tiny", 3, state)
    assert all(pixels(i).shape == (64, 64, 3) for i in images) and len(plot.data) == 4 and "masked-tiny" in text

    gif = Image.open(export_tab.on_export_gif(state))
    assert gif.n_frames == N
    assert Image.open(export_tab.on_export_strip(state)).width > 64 * 2

    edited = edit_tab.on_move(1, 8, 0, edit_tab.on_switch([1, 2, 3], state)[0])
    gif = Image.open(export_tab.on_export_gif(edited[0]))  # the edits are the last frame
    assert gif.n_frames == N + 1
    gif.seek(N)
    last = np.asarray(gif.convert("RGB"))
    side = (last.shape[1] - 12) // 2
    assert (
        np.abs(
            last[24 : 24 + side, side + 8 : 2 * side + 8].astype(int)
            - np.asarray(Image.fromarray(pixels(edited[1])).resize((side, side), Image.NEAREST))
        ).mean()
        < 8
    )
    assert not np.array_equal(
        np.asarray(Image.open(export_tab.on_export_strip(edited[0]))),
        np.asarray(Image.open(export_tab.on_export_strip(state))),
    )
    saved = export_tab.on_export_tokens(edited[0])
    loaded = export_tab.on_load_tokens(saved, "vanilla-tiny")
    assert loaded[2]["maximum"] == 3 and loaded[0].source[0] == "tokens"
    assert np.abs(pixels(loaded[3]).astype(int) - pixels(edited[1])).max() <= 2  # the same picture, decoded again
    assert pixels(edit_tab.on_move(1, 8, 0, loaded[0])[1]).shape == (64, 64, 3)  # and editable
    with pytest.raises(gr.Error, match="made by checkpoint vanilla-tiny"):
        export_tab.on_load_tokens(saved, "masked-tiny")
    (fresh / "bad.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{}garbage")
    with pytest.raises(gr.Error, match="not a VLE tokens file"):
        export_tab.on_load_tokens(str(fresh / "bad.safetensors"), "vanilla-tiny")
    foreign = vle_core.Tokens(torch.zeros(2, 3, 8, 8), torch.zeros(2, 3), torch.ones(2, 3), (64, 64))
    foreign.save(fresh / "foreign.safetensors")  # 3 latent channels: another model's tokens
    with pytest.raises(gr.Error, match="do not fit this checkpoint"):
        export_tab.on_load_tokens(str(fresh / "foreign.safetensors"), "vanilla-tiny")
    *panels, plot, text = compare_tab.on_compare("vanilla-tiny", "masked-tiny", 2, loaded[0])
    assert panels == [None] * 4 and plot is None and "needs a source image" in text  # says why, shows no stale views
