"""The encodings cache: the encoder runs once per (image, checkpoint, working size); the slider
only indexes; a corrupt entry is recomputed, never served."""

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import app_helpers
import numpy as np
import pytest
from app_helpers import N, encode, pixels, save_png
from conftest import synthetic_image

from explorer import cache, tokens_tab

# Fixtures: tiny checkpoints, the app pointed at them, the images its encoder runs on.
checkpoints, fresh, encodes = app_helpers.checkpoints, app_helpers.fresh, app_helpers.encodes


@pytest.mark.parametrize("checkpoint", ["vanilla-tiny", "masked-tiny"])
def test_slider_and_coming_back_never_encode_again(fresh, checkpoint, encodes):
    path = save_png(fresh, "a.png", synthetic_image(48, 72))
    runs = len(encodes)
    out = encode(path, checkpoint)
    state = out[0]
    assert len(encodes) == runs + 1
    assert out[2]["maximum"] == N and pixels(out[3]).shape == (48, 72, 3)
    assert out[-1]["maximum"] == N
    masked = checkpoint.startswith("masked")
    assert ("'s mask" in out[6]["label"]) == masked
    assert pixels(tokens_tab.on_details(state)[0]).shape[1] > 72 * N  # the strip
    shown = set()
    for k in range(1, N + 1):
        *views, caption = tokens_tab.on_token(k, state)
        recon, alone, heat, mask, overlay = (pixels(v) for v in views)
        assert recon.dtype == np.uint8 and alone.shape == heat.shape == mask.shape == overlay.shape == (48, 72, 3)
        assert (f"First {k} of {N}" in caption) and (("past the 4 tokens" in caption) == (k > 4))
        shown.add(recon.tobytes())
    assert len(shown) == N  # each k shows its own reconstruction
    encode(path, checkpoint)  # the same image again
    encode(path, checkpoint, n=3)  # fewer tokens: a prefix of the cached ones
    cache._entries.clear()  # as after a restart: from disk
    again = encode(path, checkpoint)
    assert "from the cache" in again[1]
    assert len(encodes) == runs + 1
    encode(path, checkpoint, n=N + 2)  # more tokens than cached: the one case that encodes
    assert len(encodes) == runs + 2


@pytest.mark.parametrize("corruption", ["garbage", "wrong shape"])
def test_a_corrupt_cache_entry_is_recomputed_not_served(fresh, corruption, encodes):
    path = save_png(fresh, "a.png", synthetic_image(64, 64))
    first = encode(path)
    key = f"entry/{first[0].key}"
    if corruption == "garbage":
        bad = b"\x00not an archive"
    else:  # intact as stored, wrong inside (an older version's entry, say)
        entry = cache.Entry.from_bytes(cache.unseal(key, cache._disk().get(key)))
        entry.reconstructions = entry.reconstructions[:, :10]
        bad = cache.seal(key, entry.to_bytes())
    cache._disk().set(key, bad)
    cache._entries.clear()
    runs = len(encodes)
    again = encode(path)
    assert len(encodes) == runs + 1
    assert np.array_equal(pixels(again[3]), pixels(first[3]))
    assert cache.Entry.from_bytes(cache.unseal(key, cache._disk().get(key))).reconstructions.shape[2] == 64  # repaired


def test_an_entry_keeps_its_tokens_stages():
    """A staged model decodes each token with the code of its stage, which edits and token files
    can change (a transplant, a reordering): the cache must neither drop it nor mistake two token
    files that differ only in it for one."""
    import torch

    import vle_core

    torch.manual_seed(0)
    vle = vle_core.VLE(vle_core.build_model(vle_core.preset("vanilla-tiny-staged")), device="cpu")
    image = synthetic_image(16, 24)
    tokens = vle.encode(image, 3).tokens
    reordered = vle_core.Tokens(tokens.latents, tokens.mean, tokens.std, tokens.image_size, torch.tensor([1, 3, 3]))
    entry = cache.Entry.from_rendering(vle.render(reordered), image)
    assert cache.Entry.from_bytes(entry.to_bytes()).tokens.stage.tolist() == [1, 3, 3]
    assert cache.source_key(("tokens", reordered), "m") != cache.source_key(("tokens", tokens), "m")
