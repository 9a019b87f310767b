"""The Tokens tab and the left column: encode an image, step through its tokens, pick one by
clicking its region; the checkpoint menu and its card."""

import os
import time

import gradio as gr

import vle_core

from . import settings
from .cache import Entry, entropy, get_entry
from .edit_tab import edit_views
from .images import fit_working_size, png, read_image
from .models import checkpoint_choices, checkpoint_names, checkpoint_summary, default_checkpoint, get_model
from .session import edited, new_state, require, session
from .views import PAST_TRAINING, entry_overlay, paper_strip, shown_token_views


def session_outputs(state: dict, vle: vle_core.VLE, entry: Entry, info: str) -> tuple:
    """What a fresh session shows first: the Tokens tab at k = n (the strip and the Edit tab
    follow from on_details, so that the first views come as soon as possible)."""
    n, trained = len(entry), vle.trained_tokens
    label = "First k tokens" + (f" (the checkpoint was trained with up to {trained}; past that is extrapolation)" if trained else "")
    mask_label = "Token k's mask" if entry.masks is not None else "Token k's size (no masks)"
    views = shown_token_views(entry, n, trained)
    return (
        state,
        info,
        gr.update(maximum=n, value=n, label=label, interactive=n > 1),
        views[0],
        views[1],
        views[2],
        gr.update(value=views[3], label=mask_label),
        views[4],
        views[5],
        gr.update(maximum=max(n, 2)),
    )


def empty_outputs(message: str) -> tuple:
    return (None, message, gr.update(), None, None, None, None, None, "", gr.update())


def on_encode(image, n_tokens: float, working_size: float, checkpoint: str, progress=gr.Progress()):  # noqa: B008 (gradio injects progress this way)
    """Encode an image (a file path) into n_tokens tokens with a checkpoint, at a working size."""
    if image is None:
        return empty_outputs("Upload an image, paste one, take one with the webcam or choose an example.")
    picture = read_image(image)
    working, note = fit_working_size(picture, int(working_size))
    model_id, vle = get_model(checkpoint)
    n = int(min(max(int(n_tokens), 1), settings.N_TOKENS_MAX))
    progress(0.05, desc=f"Encoding {n} tokens with {checkpoint}")
    start = time.perf_counter()
    key, entry, fresh = get_entry(model_id, vle, ("image", working), n)
    how = f"encoded in {time.perf_counter() - start:.2f} s on {vle.device.type}" if fresh else "from the cache"
    state = new_state(checkpoint, model_id, key, ("image", working), n, note)
    info = f"**{note}** · {n} tokens {how} · Shannon entropy {entropy(entry):.2f} bits"
    if vle.trained_tokens and n > vle.trained_tokens:
        info += f' · <span style="color:{PAST_TRAINING}">tokens {vle.trained_tokens + 1} to {n} are more than {checkpoint} was trained with</span>'
    return session_outputs(state, vle, entry, info)


def on_token(k: float, state: dict | None):
    """The Tokens tab for the first k tokens (cached arrays only: the encoder never runs here)."""
    if not state:
        return None, None, None, None, None, ""
    vle, entry = session(state)
    return shown_token_views(entry, int(k), vle.trained_tokens)


def on_select_token(state: dict | None, evt: gr.SelectData):
    """A click on the overlay picks the token whose mask (vanilla: |addition|) is largest there."""
    state = require(state)
    _, entry = session(state)
    labels, _ = entry_overlay(entry)
    x, y = (int(v) for v in evt.index)
    k = int(labels[min(max(y, 0), labels.shape[0] - 1), min(max(x, 0), labels.shape[1] - 1)]) + 1
    return k, k


def on_details(state: dict | None):
    """After an encode: the strip of all tokens and the (unedited) Edit tab."""
    if not state:
        return None, None, None, gr.update(choices=[], value=[]), gr.update(), 1.0, 0, 0, ""
    vle, entry, result = edited(state)
    if "strip" not in entry.derived or not os.path.exists(entry.derived["strip"]):
        entry.derived["strip"] = png(paper_strip(entry, vle.trained_tokens))
    return entry.derived["strip"], *edit_views(state, entry, result, 0)


def on_checkpoint_info(checkpoint: str | None):
    """The chosen checkpoint's summary and model card."""
    if not checkpoint:
        return f"No checkpoints in `{settings.CHECKPOINTS}` yet.", ""
    folder = settings.CHECKPOINTS / checkpoint
    try:
        card = (folder / "README.md").read_text() if checkpoint in checkpoint_names() else ""
    except OSError:
        card = ""
    return checkpoint_summary(checkpoint), card or "*(no model card)*"


def on_page_load():
    """New checkpoints appear in the menus on the next page load."""
    choices, default = checkpoint_choices(), default_checkpoint()
    second = next((name for _, name in choices if name != default), default)
    return gr.update(choices=choices, value=default), gr.update(choices=choices, value=default), gr.update(choices=choices, value=second)


def example_images() -> list[str]:
    return sorted(str(p) for p in settings.ASSETS.glob("*.png"))
