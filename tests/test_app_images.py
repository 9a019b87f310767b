"""Uploads: large images are scaled to the working size; bad files are clear errors."""

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import struct
import zlib

import app_helpers
import gradio as gr
import numpy as np
import pytest
import torch
from app_helpers import N, encode, pixels, save_png
from conftest import synthetic_image
from PIL import Image

import vle_core
from explorer import tokens_tab

checkpoints, fresh = app_helpers.checkpoints, app_helpers.fresh  # fixtures: tiny checkpoints, the app pointed at them


def test_large_images_are_scaled_to_the_working_size(fresh):
    path = save_png(fresh, "wide.png", synthetic_image(150, 300))
    out = encode(path, size=128)
    assert pixels(out[3]).shape == (64, 128, 3)
    assert "scaled down from 300×150 to 128×64" in out[1]
    assert "used as is" in encode(path, size=512)[1]


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims a size in its header and holds no pixels (a decompression-bomb probe)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunks = [b"IHDR" + ihdr, b"IDAT" + zlib.compress(b"")]
    return b"\x89PNG\r\n\x1a\n" + b"".join(
        struct.pack(">I", len(c) - 4) + c + struct.pack(">I", zlib.crc32(c)) for c in chunks
    )


def test_bad_uploads_are_clear_errors(fresh):
    good = save_png(fresh, "good.png", synthetic_image(64, 64))
    truncated = fresh / "truncated.png"
    truncated.write_bytes(open(good, "rb").read()[:200])
    cases = {
        "garbage.png": (b"this is not an image" * 10, "not a readable image"),
        "bomb.png": (_png_header_only(10_000, 10_000), "limit is 40 MP"),  # Pillow's own check
        "big.png": (_png_header_only(8_000, 6_000), "limit is 40 MP"),  # ours
        "truncated.png": (None, "image file is truncated"),
        "icon.ico": (None, "ICO images are not supported"),
    }
    Image.fromarray(synthetic_image(16, 16)).save(fresh / "icon.ico")
    for name, (data, message) in cases.items():
        if data is not None:
            (fresh / name).write_bytes(data)
        with pytest.raises(gr.Error, match=message):
            encode(str(fresh / name))
    with pytest.raises(gr.Error, match="at least 8 px"):
        encode(save_png(fresh, "tiny.png", synthetic_image(16, 16)[:4, :4]))
    with pytest.raises(gr.Error, match="too thin"):
        encode(save_png(fresh, "thin.png", np.zeros((10, 600, 3), np.uint8)), size=128)
    assert tokens_tab.on_encode(None, N, 256, "vanilla-tiny")[0] is None  # a cleared image is no error
    assert tokens_tab.on_details(None)[0] is None
    rgba = np.dstack([synthetic_image(64, 64), np.full((64, 64), 128, np.uint8)])
    assert pixels(encode(save_png(fresh, "rgba.png", rgba))[3]).shape == (64, 64, 3)


def test_an_animated_image_says_it_used_its_first_frame(fresh):
    frames = [Image.fromarray(synthetic_image(64, 64, seed=s)) for s in range(3)]
    path = fresh / "moving.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100)
    state, info = encode(str(path))[:2]
    assert "the first of its 3 frames" in info and state.n == N
    assert "frames" not in encode(save_png(fresh, "still.png", synthetic_image(64, 64)))[1]


def test_an_encode_reports_each_token_to_the_progress_bar(fresh):
    calls = []
    tokens_tab.on_encode(
        save_png(fresh, "a.png", synthetic_image(64, 64, seed=5)),
        N,
        256,
        "vanilla-tiny",
        progress=lambda *a, **k: calls.append(k.get("desc", "")),
    )
    assert [c.rsplit("token ", 1)[-1] for c in calls[1:]] == [f"{k} of {N}" for k in range(1, N + 1)]


def test_a_whole_image_token_s_white_mask_is_named_in_the_caption():
    from explorer.cache import Entry
    from explorer.views import token_views

    image = synthetic_image(32, 32)
    masks = np.stack([np.full((32, 32), 255, np.uint8), np.zeros((32, 32), np.uint8)])
    masks[1, :8, :8] = 255
    tokens = vle_core.Tokens(torch.zeros(2, 4, 4, 4), torch.zeros(2, 3), torch.ones(2, 3), (32, 32))
    entry = Entry(
        image, tokens, np.zeros((2, 32, 32, 3), np.float16), np.stack([image, image]), masks, np.array([0.01, 0.01])
    )
    assert "token 1 covers the whole image" in token_views(entry, 1, None)[-1]
    assert "covers the whole image" not in token_views(entry, 2, None)[-1]
