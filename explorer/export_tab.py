"""The Export tab: the progression as a GIF, the strip as PNG, the tokens as safetensors, and
loading tokens back."""

import uuid
from pathlib import Path

import gradio as gr
import numpy as np
import torch
from PIL import Image, ImageDraw

from vle_core import Tokens

from . import settings
from .cache import Entry, get_entry
from .errors import UserError
from .images import remove_old_files
from .models import get_model
from .pages import empty_outputs, in_page, session_outputs
from .session import Session, edited, require
from .views import PAST_TRAINING, load_font, paper_strip, past_training


def progressive_gif(entry: Entry, trained: int | None, path: Path, edited: np.ndarray | None = None) -> Path:
    """An animated GIF: the source beside the image from the first k tokens, k = 1..n, and last,
    where there are edits, beside the `edited` image ((H, W, 3) uint8)."""
    H, W = entry.image.shape[:2]
    scale = max(1, 256 // max(H, W))  # small images are enlarged (nearest) so the GIF is legible
    # and large ones shrunk to settings.MAX_GIF_PIXELS over all the frames (an edited frame too)
    scale = min(scale, (settings.MAX_GIF_PIXELS / ((len(entry) + 1) * 2 * H * W)) ** 0.5)
    w, h = max(1, int(W * scale)), max(1, int(H * scale))
    resample = Image.Resampling.NEAREST if scale >= 1 else Image.Resampling.BILINEAR
    frames, font = [], load_font(14)
    shown = [
        (entry.reconstructions[k - 1], f"source | first {k} of {len(entry)} tokens", past_training(k, trained))
        for k in range(1, len(entry) + 1)
    ]
    if edited is not None:
        shown.append((edited, "source | edited", False))
    for picture, text, past in shown:
        frame = Image.new("RGB", (2 * w + 12, h + 28), "white")
        for i, side in enumerate((entry.image, picture)):
            frame.paste(Image.fromarray(side).resize((w, h), resample), (4 + i * (w + 4), 24))
        text += " (past training)" if past else ""
        ImageDraw.Draw(frame).text((6, 4), text, fill=PAST_TRAINING if past else "black", font=font)
        frames.append(frame)
    durations = [500] * (len(frames) - 1) + [2000]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=durations, loop=0, optimize=True)
    return path


def _export_path(state: Session, suffix: str) -> Path:
    """A fresh file in the exports folder; files older than an hour there are removed."""
    settings.EXPORTS.mkdir(parents=True, exist_ok=True)
    remove_old_files(settings.EXPORTS, age_s=3600, keep=settings.MAX_EXPORTS)
    folder = settings.EXPORTS / uuid.uuid4().hex[:12]
    folder.mkdir()
    return folder / f"vle-{state.checkpoint}-{state.key[:8]}{suffix}"


def edited_image(state: Session) -> tuple:
    """(model, entry, the edited image (H, W, 3) uint8, or None without edits)."""
    vle, entry, result = edited(state)
    return vle, entry, result.image if state.history else None


def on_export_gif(state: Session | None):
    """The progressive reconstruction (first 1, 2, ... n tokens), then the edits, as an animated GIF."""
    state = require(state)
    vle, entry, image = edited_image(state)
    return str(progressive_gif(entry, vle.trained_tokens, _export_path(state, "-progressive.gif"), image))


def on_export_strip(state: Session | None):
    """The paper-style strip of all tokens, with the edited image, as a PNG."""
    state = require(state)
    vle, entry, image = edited_image(state)
    path = _export_path(state, "-strip.png")
    Image.fromarray(paper_strip(entry, vle.trained_tokens, tile=128, legend=True, edited=image)).save(path)
    return str(path)


def on_export_tokens(state: Session | None):
    """The (edited) tokens that are switched on, as a safetensors file that load_tokens reads back."""
    state = require(state)
    _, _, result = edited(state)
    tokens = result.tokens()
    if len(tokens) == 0:
        raise UserError("All tokens are switched off: there is nothing to export.")
    path = _export_path(state, "-tokens.safetensors")
    tokens.save(path, metadata={"checkpoint": state.checkpoint})  # load_tokens refuses them for another checkpoint
    return str(path)


def on_load_tokens(file, checkpoint: str, progress=gr.Progress()):  # noqa: B008 (gradio injects progress this way)
    """View and edit tokens saved by export_tokens (decoded only, never encoded)."""
    if file is None:
        return empty_outputs("Load a tokens file exported from this app.")
    path = Path(file)
    try:
        tokens = Tokens.load(path)
        made_by = Tokens.metadata(path).get("checkpoint")
    except Exception as e:  # any unreadable file: Tokens.load says ValueError, safetensors may say more
        raise UserError(f"This is not a VLE tokens file: {e}") from e
    if made_by and made_by != checkpoint:
        raise UserError(
            f"These tokens were made by checkpoint {made_by}: choose it in the Checkpoint menu, then load them again."
        )
    H, W = tokens.image_size
    if not 1 <= len(tokens) <= settings.MAX_EDITED_TOKENS:
        raise UserError(f"The file holds {len(tokens)} tokens; between 1 and {settings.MAX_EDITED_TOKENS}, please.")
    if min(H, W) < settings.MIN_SIDE or max(H, W) > settings.WORKING_SIZE_RANGE[1]:
        raise UserError(
            f"The tokens are for a {W}×{H} image; this app works up to {settings.WORKING_SIZE_RANGE[1]} px."
        )
    if not all(torch.isfinite(t).all() for t in (tokens.latents, tokens.mean, tokens.std)):
        raise UserError("The tokens file holds non-finite numbers.")
    model_id, vle = get_model(checkpoint)
    progress(0.1, desc=f"Decoding {len(tokens)} tokens")
    key, entry, _ = get_entry(model_id, vle, ("tokens", tokens), len(tokens))
    note = f"{len(tokens)} tokens loaded from {path.name} for a {W}×{H} image"
    state = Session.new(checkpoint, model_id, key, ("tokens", tokens), len(tokens), note)
    return session_outputs(state, vle, entry, f"**{note}** (decoded, not encoded: there is no source image)")


def on_load_tokens_in_page(
    file,
    checkpoint: str,
    image,
    state: Session | None = None,
    progress=gr.Progress(),  # noqa: B008 (gradio injects progress this way)
):
    """on_load_tokens for the page: a bad file is a message (pages.in_page), the session kept."""
    return in_page(on_load_tokens, (file, checkpoint, progress), image, state)
