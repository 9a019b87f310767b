"""The Tokens tab and the left column: encode an image, step through its tokens, pick one by
clicking its region; the checkpoint menu and its card."""

import os
import time
from pathlib import Path

import gradio as gr

from . import settings
from .cache import Entry, entropy, first_reaching, get_entry, get_entry_until
from .errors import UserError
from .images import fit_working_size, frame_count, picture_xy, read_image, view_file
from .lengths import compared
from .models import (
    checkpoint_choices,
    checkpoint_names,
    checkpoint_summary,
    default_checkpoint,
    default_tokens,
    get_model,
    trained_tokens,
)
from .pages import edit_views, empty_outputs, first_selection, in_page, session_outputs
from .session import Session, edited, require, session
from .views import PAST_TRAINING, count, entry_overlay, paper_strip, shown_token_views, strip_legend


def checked_count(n_tokens) -> int:
    """The number of tokens to encode, refused past the bound (the page's slider cannot ask more;
    an API client can): one encode's time and memory grow with it."""
    if n_tokens is None or not 1 <= float(n_tokens) <= settings.N_TOKENS_MAX:
        raise UserError(f"{n_tokens} tokens asked: between 1 and {settings.N_TOKENS_MAX} tokens, please.")
    return int(n_tokens)


def checked_working_size(size) -> int:
    low, high = settings.WORKING_SIZE_RANGE
    if size is None or not low <= float(size) <= high:
        raise UserError(f"A working size of {size} px: the working size is between {low} and {high} px.")
    return int(size)


def checked_length(length, target_psnr) -> float | None:
    """The target PSNR of an encode until a target, None for a fixed count; refused if unknown or out of range."""
    if length not in settings.LENGTH_MODES:
        raise UserError(f"The length is one of {', '.join(settings.LENGTH_MODES)}, not {length!r}.")
    if length == settings.LENGTH_MODES[0]:
        return None
    low, high = settings.TARGET_PSNR_RANGE
    try:
        target = float(target_psnr)
    except (TypeError, ValueError):
        target = float("nan")
    if not low <= target <= high:
        raise UserError(f"A target of {target_psnr} dB: the target PSNR is between {low:g} and {high:g} dB.")
    return target


def on_encode(
    image,
    n_tokens: float,
    working_size: float,
    checkpoint: str,
    length: str = settings.LENGTH_MODES[0],
    target_psnr: float = settings.TARGET_PSNR,
    progress=gr.Progress(),  # noqa: B008 (gradio injects progress this way)
):
    """Encode an image (a file path) with a checkpoint, at a working size: into n_tokens tokens, or
    with length "Until PSNR", until its reconstruction reaches target_psnr (at most N_TOKENS_MAX)."""
    if image is None:
        return empty_outputs("Upload an image, paste one, take one with the webcam or choose an example.")
    n, size, target = checked_count(n_tokens), checked_working_size(working_size), checked_length(length, target_psnr)
    picture = read_image(image)
    working, note = fit_working_size(picture, size)
    frames = frame_count(image)
    if frames > 1:
        note += f", the first of its {frames} frames"
    model_id, vle = get_model(checkpoint)
    start = time.perf_counter()
    goal = f"{count(n)}" if target is None else f"until PSNR {target:g} dB"
    progress(0.02, desc=f"Encoding {goal} with {checkpoint}")

    def on_token(k: int, most: int) -> None:
        progress(k / most, desc=f"Encoding {goal} with {checkpoint}: token {k} of {'at most ' if target else ''}{most}")

    if target is None:
        key, entry, fresh = get_entry(model_id, vle, ("image", working), n, on_token)
    else:
        key, entry, fresh = get_entry_until(model_id, vle, working, target, settings.N_TOKENS_MAX, on_token)
    n = len(entry)
    how = f"encoded in {time.perf_counter() - start:.2f} s on {vle.device.type}" if fresh else "from the cache"
    state = Session.new(checkpoint, model_id, key, ("image", working), n, note, target)
    info = f"**{note}** · {count(n)} {how}"
    if target is not None:
        info += " · " + length_caption(checkpoint, target, entry)
    info += f" · Shannon entropy {entropy(entry):.2f} bits"
    trained = vle.trained_tokens
    if trained and n > trained:
        past = f"token {n} is" if n == trained + 1 else f"tokens {trained + 1} to {n} are"
        past += f" past the {count(trained)} {checkpoint} was trained with"
        info += f' · <span style="color:{PAST_TRAINING}">{past}</span>'
    return session_outputs(state, vle, entry, info)


def length_caption(checkpoint: str, target: float, entry: Entry) -> str:
    """How many tokens this image took to reach the target, beside the held-out photos."""
    n = len(entry)
    reached = first_reaching(entry.mse, target) is not None
    said = (
        f"**{count(n)} to reach PSNR {target:g} dB**"
        if reached
        else f"**PSNR {target:g} dB not reached in {count(n)}**, the most the app encodes"
    )
    beside = compared(checkpoint, target, n, reached)
    return said + (f" ({beside})" if beside else "")


def on_encode_api(
    image,
    n_tokens: float,
    working_size: float,
    checkpoint: str,
    length: str = settings.LENGTH_MODES[0],
    target_psnr: float = settings.TARGET_PSNR,
    progress=gr.Progress(),  # noqa: B008 (gradio injects progress this way)
):
    """on_encode for the API, with the Edit tab's list of tokens, so that a client can switch tokens
    right after an encode (the page fills the list after the encode, in on_details)."""
    outputs = on_encode(image, n_tokens, working_size, checkpoint, length, target_psnr, progress=progress)
    tokens = list(range(1, outputs[0].n + 1)) if outputs[0] else []
    return (*outputs, gr.update(choices=[(str(i), i) for i in tokens], value=tokens))


def on_encode_in_page(
    image,
    n_tokens: float,
    working_size: float,
    checkpoint: str,
    length: str = settings.LENGTH_MODES[0],
    target_psnr: float = settings.TARGET_PSNR,
    state: Session | None = None,
    progress=gr.Progress(),  # noqa: B008 (gradio injects progress this way)
):
    """on_encode for the page's own events (upload, example, N, working size, checkpoint, length);
    `state`: the session so far, kept if this encode is refused (pages.in_page)."""
    return in_page(on_encode, (image, n_tokens, working_size, checkpoint, length, target_psnr, progress), image, state)


def on_length_mode(length: str):
    """N applies to the fixed count only; the target to the other mode."""
    until = length == settings.LENGTH_MODES[1]
    return gr.update(interactive=not until), gr.update(interactive=until)


def on_token(k: float, state: Session | None):
    """The Tokens tab for the first k tokens (cached arrays only: the encoder never runs here)."""
    if not state:
        return None, None, None, None, None, ""
    vle, entry = session(state)
    return shown_token_views(entry, int(k), vle.trained_tokens)


def on_select_token(state: Session | None, evt: gr.SelectData):
    """A click on the overlay picks the token whose mask (vanilla: |addition|) is largest there."""
    state = require(state)
    _, entry = session(state)
    labels, _ = entry_overlay(entry)
    x, y = picture_xy(evt.index, labels.shape)
    k = int(labels[y, x]) + 1
    return k, k


def on_details(state: Session | None):
    """After an encode: the strip of all tokens and its legend, and the (unedited) Edit tab."""
    if not state:
        return None, "", None, None, gr.update(choices=[], value=[]), gr.update(), 1.0, 0, 0, ""
    vle, entry, result = edited(state)
    if "strip" not in entry.derived or not os.path.exists(entry.derived["strip"]):
        entry.derived["strip"] = view_file(paper_strip(entry, vle.trained_tokens), exact=True)
    return (
        entry.derived["strip"],
        strip_legend(entry, vle.trained_tokens),
        *edit_views(state, entry, result, first_selection(vle, entry)),
    )


def model_card(checkpoint: str | None) -> str:
    """The checkpoint's model card for the page: what a user needs first (what it is, what it was
    trained with), then the card itself without its YAML front matter."""
    if not checkpoint:
        return f"No checkpoints in `{settings.CHECKPOINTS}` yet."
    folder = settings.CHECKPOINTS / checkpoint
    try:
        card = (folder / "README.md").read_text() if checkpoint in checkpoint_names() else ""
    except OSError:
        card = ""
    lines = card.splitlines()
    if lines and lines[0].strip() == "---":
        end = next((i for i, line in enumerate(lines[1:], 1) if line.strip() == "---"), 0)
        card = "\n".join(lines[end + 1 :])
    trained = trained_tokens(checkpoint)
    lead = f"**{checkpoint_summary(checkpoint)}**"
    if trained:
        lead += (
            f"\n\nTrained with up to {count(trained)} per image: counts past that are extrapolation, drawn in orange."
        )
    return lead + "\n\n---\n\n" + (card.strip() or "*(no model card)*")


def on_checkpoint_info(checkpoint: str | None):
    """The chosen checkpoint's summary and model card, and its default token count."""
    summary = checkpoint_summary(checkpoint) if checkpoint else f"No checkpoints in `{settings.CHECKPOINTS}` yet."
    return summary, model_card(checkpoint), gr.update(value=default_tokens(checkpoint))


def on_page_load():
    """New checkpoints appear in the menus on the next page load, with the default's card and token count."""
    choices, default = checkpoint_choices(), default_checkpoint()
    second = next((name for _, name in choices if name != default), default)
    menus = (
        gr.update(choices=choices, value=default),
        gr.update(choices=choices, value=default),
        gr.update(choices=choices, value=second),
    )
    return *menus, *on_checkpoint_info(default)


def default_example(checkpoint: str | None) -> str | None:
    """The example the page opens with, encoded with the default checkpoint: settings.DEFAULT_EXAMPLE
    where that is one of this checkpoint's examples, else its first (a scene for the scenes
    checkpoint), else DEFAULT_EXAMPLE; None without a checkpoint or examples."""
    rows = [path for path, name in example_rows() if name == checkpoint]
    if not checkpoint or not example_images():
        return None
    if str(settings.DEFAULT_EXAMPLE) in rows or not rows:
        return str(settings.DEFAULT_EXAMPLE) if settings.DEFAULT_EXAMPLE.is_file() else example_images()[0]
    return rows[0]


def warm_default_example() -> None:
    """Encode the example the page opens with into the cache (app.py, before serving), so that
    the first visitor's page shows a result at once. A failure only costs that first encode."""
    checkpoint = default_checkpoint()
    example = default_example(checkpoint)
    if example is None:
        return
    try:
        state = on_encode(example, default_tokens(checkpoint), settings.WORKING_SIZE, checkpoint)[0]
        on_details(state)  # the strip and the Edit tab's views, kept beside the cached entry
    except Exception as e:  # a broken checkpoint is reported to the user when they pick it
        print(f"explorer: could not encode the default example ahead ({type(e).__name__}: {e})")


def example_images() -> list[str]:
    return sorted(str(p) for p in settings.ASSETS.glob("*.png"))


def example_rows() -> list[list[str]]:
    """Each example image with the checkpoint it opens in (settings.EXAMPLE_CHECKPOINTS), where
    that checkpoint is here; else the default."""
    names, default = checkpoint_names(), default_checkpoint()
    rows = []
    for path in example_images():
        preferred = next(
            (name for prefix, name in settings.EXAMPLE_CHECKPOINTS if Path(path).name.startswith(prefix)), None
        )
        rows.append([path, preferred if preferred in names else default])
    return rows
