"""Bad input, as users and clients send it: each case a clear message naming the problem (or the
image read right), and the app serving the next request; random files and random edit sequences
never crash it, and undo always returns exactly to the state before."""

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import io
import pickle
import shutil
import struct
import warnings
import zlib

import app_helpers
import gradio as gr
import numpy as np
import pytest
import torch
from app_helpers import N, encode, pixels, save_png
from conftest import synthetic_image
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from PIL import Image
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from explorer import edit_tab, export_tab, models, tokens_tab
from explorer.errors import BadImage, UserError
from explorer.images import read_image
from explorer.session import Session
from vle_core.tokens import MAX_VALUE

checkpoints, fresh = app_helpers.checkpoints, app_helpers.fresh  # fixtures: tiny checkpoints, the app pointed at them


def png_chunks(width: int, height: int, depth: int, colour: int, raw: bytes) -> bytes:
    """A PNG file written by hand (Pillow cannot write every kind a user may send)."""
    chunks = [
        b"IHDR" + struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0),
        b"IDAT" + zlib.compress(raw),
        b"IEND",
    ]
    return b"\x89PNG\r\n\x1a\n" + b"".join(
        struct.pack(">I", len(c) - 4) + c + struct.pack(">I", zlib.crc32(c)) for c in chunks
    )


def rgb16(image: np.ndarray) -> bytes:
    """A 16-bit RGB PNG of an 8-bit picture (each value v as v * 257)."""
    h, w, _ = image.shape
    rows = (image.astype(">u2") * 257).reshape(h, w * 3)
    return png_chunks(w, h, 16, 2, b"".join(b"\x00" + row.tobytes() for row in rows))


def to_bytes(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **kwargs)
    return buffer.getvalue()


def exif_rotated() -> bytes:
    """A 48x24 JPEG, left half red and right half blue, whose EXIF says: turn me 90° clockwise."""
    array = np.zeros((24, 48, 3), np.uint8)
    array[:, :24] = (255, 0, 0)
    array[:, 24:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90° clockwise to show
    return to_bytes(Image.fromarray(array), "JPEG", exif=exif, quality=95)


def animated_gif() -> bytes:
    frames = [Image.new("RGB", (32, 32), colour) for colour in ("red", "blue", "green")]
    return to_bytes(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)


def bomb() -> bytes:
    """A 12000x12000 bilevel PNG of a few kilobytes that would decode to 144 MP."""
    return to_bytes(Image.new("1", (12_000, 12_000)), "PNG")


SCENE = synthetic_image(32, 40)
GOOD = to_bytes(Image.fromarray(SCENE), "PNG")

# name: (the file's bytes, a regex its message must match, or None: the image is read, and then
# the (H, W) it is read at and a check of its pixels)
IMAGES = {
    "not an image": (b"%PDF-1.4 a document, not a picture\n" * 20, "not a readable image", None),
    "random bytes": (np.random.default_rng(0).bytes(4096), "not a readable image", None),
    "empty file": (b"", "file is empty", None),
    "truncated PNG": (GOOD[: len(GOOD) // 2], "truncated", None),
    "truncated JPEG": (to_bytes(Image.fromarray(synthetic_image(64, 64)), "JPEG")[:600], "truncated", None),
    "decompression bomb": (bomb(), "too large: the limit is 40 MP", None),
    "20000x20000": (png_chunks(20_000, 20_000, 8, 2, b""), "too large: the limit is 40 MP", None),
    "16-bit grey": (
        to_bytes(Image.fromarray(np.arange(32 * 40, dtype=np.uint16).reshape(32, 40) * 50), "PNG"),
        None,
        ((32, 40), "16-bit grey"),
    ),
    "16-bit RGB": (rgb16(SCENE), None, ((32, 40), "same")),
    "greyscale": (to_bytes(Image.fromarray(SCENE).convert("L"), "PNG"), None, ((32, 40), "grey")),
    "palette": (
        to_bytes(Image.fromarray(SCENE).convert("P", palette=Image.Palette.ADAPTIVE), "PNG"),
        None,
        ((32, 40), "close"),
    ),
    "CMYK JPEG": (to_bytes(Image.fromarray(SCENE).convert("CMYK"), "JPEG", quality=95), None, ((32, 40), "close")),
    "RGBA": (
        to_bytes(Image.fromarray(np.dstack([SCENE, np.full((32, 40), 0, np.uint8)])), "PNG"),
        None,
        ((32, 40), "white"),
    ),
    "EXIF-rotated JPEG": (exif_rotated(), None, ((48, 24), "rotated")),
    "animated GIF": (animated_gif(), None, ((32, 32), "red")),
    "1x1": (to_bytes(Image.new("RGB", (1, 1)), "PNG"), "1×1 px: at least 8 px", None),
    "3 px thin": (to_bytes(Image.new("RGB", (200, 3)), "PNG"), "200×3 px: at least 8 px", None),
    "icon": (to_bytes(Image.fromarray(synthetic_image(16, 16)), "ICO"), "ICO images are not supported", None),
}


def check_pixels(array: np.ndarray, how: str) -> None:
    if how == "same":
        assert np.array_equal(array, SCENE)
    elif how == "close":
        assert np.abs(array.astype(int) - SCENE).mean() < 12
    elif how == "grey":
        assert (array[..., 0] == array[..., 1]).all() and np.abs(
            array[..., 0].astype(int) - np.asarray(Image.fromarray(SCENE).convert("L"))
        ).max() <= 1
    elif how == "16-bit grey":  # scaled to 8 bits, not clipped to white
        values = (np.arange(32 * 40).reshape(32, 40) * 50) / 257
        assert np.abs(array[..., 0] - values).max() <= 1 and array.max() < 255
    elif how == "white":  # fully transparent over white
        assert (array == 255).all()
    elif how == "rotated":  # the red half, once on the left, is on top
        assert array[:20, :, 0].mean() > 200 and array[28:, :, 2].mean() > 200
    elif how == "red":
        assert (array[..., 0] > 200).all() and (array[..., 2] < 50).all()


@pytest.mark.parametrize("case", list(IMAGES))
def test_every_kind_of_upload_is_read_right_or_named(fresh, case):
    data, message, expected = IMAGES[case]
    path = fresh / "upload.bin"
    path.write_bytes(data)
    if message:
        with pytest.raises(BadImage, match=message):
            read_image(path)
        with pytest.raises(gr.Error, match=message):
            encode(str(path))
        out = tokens_tab.on_encode_in_page(str(path), N, 256, "vanilla-tiny")
        # the page: one message, the file taken out
        assert out[0] is None and message.split(":")[0] in out[1] and out[10] is None
    else:
        shape, how = expected
        array = read_image(path)
        assert array.shape == (*shape, 3) and array.dtype == np.uint8
        check_pixels(array, how)
        assert pixels(encode(str(path))[3]).shape == (*shape, 3)
    # still serving
    assert (
        "First 2 of"
        in tokens_tab.on_token(2, encode(save_png(fresh, "next.png", synthetic_image(64, 64, seed=1)))[0])[-1]
    )


@pytest.fixture
def session(fresh):
    """A vanilla-tiny session on a small scene, its tokens exported."""
    state = encode(save_png(fresh, "a.png", synthetic_image(32, 40)))[0]
    return state, export_tab.on_export_tokens(state)


def tampered(path: str) -> bytes:
    """The tokens file with one byte of its JSON header changed: the shapes no longer add up."""
    data = bytearray(open(path, "rb").read())
    header = data[8 : 8 + struct.unpack("<Q", data[:8])[0]]
    at = 8 + header.index(b"[") + 1
    data[at] = ord("9") if data[at] != ord("9") else ord("8")
    return bytes(data)


EDITS = {  # name: (a request on the session `state`, with a second image at `path`; the message it gets)
    "token index out of range": (
        lambda state, path: edit_tab.on_move(N + 5, 4, 4, state),
        "There is no token 11 to move: the tokens are 1 to 6",
    ),
    "no token selected": (
        lambda state, path: edit_tab.on_strength(0, 2, state),
        "Select a token to change the strength of first",
    ),
    "move off the canvas": (
        lambda state, path: edit_tab.on_move(2, 500, 0, state),
        r"A move of \(\+500, \+0\) px leaves the 40×32 image",
    ),
    "strength out of range": (lambda state, path: edit_tab.on_strength(2, 1e9, state), "out of range"),
    "too many tokens asked": (
        lambda state, path: tokens_tab.on_encode(path, 10_000, 256, "vanilla-tiny"),
        "between 1 and 32 tokens",
    ),
    "working size out of range": (
        lambda state, path: tokens_tab.on_encode(path, N, 100_000, "vanilla-tiny"),
        "working size .* between 128 and 768",
    ),
    "no such checkpoint": (lambda state, path: tokens_tab.on_encode(path, N, 256, "../../etc"), "no checkpoint called"),
}


@pytest.mark.parametrize("case", list(EDITS))
def test_impossible_requests_are_named_and_change_nothing(fresh, session, case):
    state, _ = session
    do, message = EDITS[case]
    with pytest.raises(gr.Error, match=message):
        do(state, save_png(fresh, "b.png", synthetic_image(64, 64, seed=2)))
    assert state.history == ()
    assert len(edit_tab.on_move(2, 3, 3, state)[0].history) == 1  # the session goes on


def pickled() -> bytes:
    class Payload:
        def __reduce__(self):
            return (os.system, ("echo pwned > /tmp/vle-explorer-pwned",))

    return pickle.dumps({"latents": Payload()})


TOKENS = {
    "from another model": (lambda path: open(path, "rb").read(), "masked-tiny", "made by checkpoint vanilla-tiny"),
    "tampered": (tampered, "vanilla-tiny", "not a VLE tokens file"),
    "pickle": (lambda path: pickled(), "vanilla-tiny", "not a VLE tokens file"),
    "random bytes": (lambda path: np.random.default_rng(1).bytes(3000), "vanilla-tiny", "not a VLE tokens file"),
    "empty": (lambda path: b"", "vanilla-tiny", "not a VLE tokens file"),
}


@pytest.mark.parametrize("case", list(TOKENS))
def test_bad_tokens_files_are_named(fresh, session, case):
    _, exported = session
    make, checkpoint, message = TOKENS[case]
    path = fresh / "tokens.safetensors"
    path.write_bytes(make(exported))
    with pytest.raises(gr.Error, match=message):
        export_tab.on_load_tokens(str(path), checkpoint)
    assert not os.path.exists("/tmp/vle-explorer-pwned")
    assert export_tab.on_load_tokens(exported, "vanilla-tiny")[0].n == N  # the good file still loads


def break_weights(folder, how: str) -> None:
    weights = folder / "model.safetensors"
    if how == "truncated":
        weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    elif how == "pickle":
        weights.write_bytes(pickled())
    else:  # weights of another architecture under this config
        shutil.copy(folder.parent / "masked-tiny" / "model.safetensors", weights)


@pytest.mark.parametrize("how", ["truncated", "pickle", "another model's weights"])
def test_a_broken_checkpoint_is_named_and_a_swapped_one_keeps_the_model_it_had(fresh, checkpoints, how):
    own = fresh / "checkpoints"
    shutil.copytree(checkpoints, own)
    app_helpers.explorer.configure(checkpoints=own, cache_dir=fresh / "cache2")
    shutil.copytree(own / "vanilla-tiny", own / "fresh-broken")
    break_weights(own / "fresh-broken", how)
    with pytest.raises(gr.Error, match="fresh-broken cannot be loaded"):
        encode(save_png(fresh, "a.png", synthetic_image(64, 64)), "fresh-broken")
    assert not os.path.exists("/tmp/vle-explorer-pwned")

    state = encode(save_png(fresh, "a.png", synthetic_image(64, 64)))[0]  # vanilla-tiny loaded and in use
    before = pixels(tokens_tab.on_token(3, state)[0])
    break_weights(own / "vanilla-tiny", how)  # replaced on disk by a broken copy
    os.utime(own / "vanilla-tiny" / "model.safetensors", ns=(1, 1))
    with pytest.warns(UserWarning, match="still using the copy loaded before"):
        model_id, _ = models.get_model("vanilla-tiny")
    assert model_id == state.model_id  # the model it had, kept
    assert np.array_equal(pixels(tokens_tab.on_token(3, state)[0]), before)
    assert len(edit_tab.on_move(2, 3, 3, state)[0].history) == 1
    # new sessions too
    assert f"First {N} of {N}" in encode(save_png(fresh, "b.png", synthetic_image(64, 64, seed=5)))[8]


# Property tests. Random bytes, some behind a real format's magic so the decoders go deeper.
MAGIC = [b"", b"\x89PNG\r\n\x1a\n", b"GIF89a", b"\xff\xd8\xff\xe0", b"BM", b"II*\x00", b"RIFF\x00\x00\x00\x00WEBPVP8 "]


@hsettings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(magic=st.sampled_from(MAGIC), body=st.binary(max_size=2000))
def test_random_bytes_are_an_image_or_a_bad_image(tmp_path, magic, body):
    path = tmp_path / "random"
    path.write_bytes(magic + body)
    try:
        array = read_image(path)
    except BadImage as e:
        assert e.message
    else:
        assert array.ndim == 3 and array.shape[2] == 3 and array.dtype == np.uint8 and min(array.shape[:2]) >= 8


def test_a_tokens_file_at_the_value_bound_loads_without_overflow(fresh, session):
    """Latents and std as large as a file may hold decode to additions far past float16's range:
    the cache stores them saturated, with no inf or NaN on the way to a picture."""
    _, exported = session
    tensors = load_file(exported)
    with safe_open(exported, framework="pt") as f:
        metadata = f.metadata()
    tensors["latents"] = torch.full_like(tensors["latents"], MAX_VALUE)
    tensors["std"] = torch.full_like(tensors["std"], MAX_VALUE)
    path = fresh / "loud.safetensors"
    save_file(tensors, str(path), metadata=metadata)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        state = export_tab.on_load_tokens(str(path), "vanilla-tiny")[0]
    assert state.n == N


@hsettings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.integers(0, 10_000), flips=st.lists(st.tuples(st.integers(0, 10_000), st.integers(1, 255)), max_size=4))
def test_damaged_tokens_files_load_or_are_refused(fresh, session, cut, flips):
    _, exported = session
    data = bytearray(open(exported, "rb").read())
    data = data[: cut % (len(data) + 1)] if cut % 3 == 0 else data
    for at, xor in flips:
        if data:
            data[at % len(data)] ^= xor
    path = fresh / "damaged.safetensors"
    path.write_bytes(bytes(data))
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no NaN pixels cast to a picture on the way
        try:
            state = export_tab.on_load_tokens(str(path), "vanilla-tiny")[0]
        except UserError as e:
            assert e.message
        else:
            assert 1 <= state.n <= 64


OPS = st.one_of(
    st.tuples(st.just("switch"), st.lists(st.integers(-1, N + 1), max_size=N + 1)),
    st.tuples(st.just("solo"), st.integers(-1, N + 1)),
    st.tuples(st.just("strength"), st.integers(-1, N + 1), st.floats(-1, 12, allow_nan=False)),
    st.tuples(st.just("move"), st.integers(-1, N + 1), st.integers(-60, 60), st.integers(-60, 60)),
    st.tuples(st.just("scatter"), st.integers(0, 5)),
    st.tuples(st.just("transplant"), st.integers(0, N + 1)),
    st.tuples(st.just("undo")),
    st.tuples(st.just("reset")),
)


def apply(op: tuple, state: Session, donor: str):
    kind = op[0]
    if kind == "switch":
        return edit_tab.on_switch(op[1], state)
    if kind == "solo":
        return edit_tab.on_solo(op[1], state)
    if kind == "strength":
        return edit_tab.on_strength(op[1], op[2], state)
    if kind == "move":
        return edit_tab.on_move(op[1], op[2], op[3], state)
    if kind == "scatter":
        return edit_tab.on_scatter(op[1], state)
    if kind == "transplant":
        return edit_tab.on_transplant(donor, op[1], state)
    return edit_tab.on_undo(state) if kind == "undo" else edit_tab.on_reset(state)


@hsettings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(OPS, min_size=1, max_size=6))
def test_random_edit_sequences_never_crash_and_undo_returns_exactly(fresh, ops):
    donor = save_png(fresh, "donor.png", synthetic_image(32, 40, seed=9))
    state = encode(save_png(fresh, "a.png", synthetic_image(32, 40)))[0]
    shown = pixels(edit_tab.on_reset(state)[1])
    for op in ops:
        try:
            out = apply(op, state, donor)
        except UserError as e:  # refused: the state is untouched, so nothing to check but the message
            assert e.message
            continue
        new_state, picture = out[0], pixels(out[1])
        assert picture.shape == shown.shape
        if op[0] not in ("undo", "reset") and len(new_state.history) == len(state.history) + 1:
            back = edit_tab.on_undo(new_state)
            assert back[0].history == state.history
            assert np.array_equal(pixels(back[1]), shown)  # exactly the picture before the edit
        state, shown = new_state, picture


def test_a_refused_upload_keeps_the_session_and_says_why_above_the_views(fresh, session):
    state, _ = session
    bad = fresh / "bad.png"
    bad.write_bytes(b"not an image" * 10)
    out = tokens_tab.on_encode_in_page(str(bad), N, 256, "vanilla-tiny", state=state)
    assert out[0] is state  # the session goes on
    # the caption, above the views
    assert "not a readable image" in out[8] and "Still showing the previous image" in out[8]
    assert "not a readable image" in out[1] and state.note in out[1]
    assert pixels(out[10]).shape == (32, 40, 3)  # the Image panel shows the session's image again, not the bad file
    assert all(view == {"__type__": "update"} for view in out[3:8])  # the views are left as they are
    assert "First 2 of" in tokens_tab.on_token(2, out[0])[-1]
