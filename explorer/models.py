"""Checkpoints: every folder in settings.CHECKPOINTS, each loaded once on first use and kept.
The model runs only here (encode, render), behind the ZeroGPU decorator where there is one."""

import json
import threading
import weakref
from pathlib import Path

import gradio as gr
import numpy as np

import vle_core
from vle_core import Tokens

from . import settings, worker
from .errors import UserError

try:  # on ZeroGPU hardware, model calls borrow a GPU; elsewhere the decorator does nothing
    import spaces

    GPU = spaces.GPU
except ImportError:

    def GPU(fn):
        return fn


def checkpoint_names() -> list[str]:
    """All checkpoint folders, broken ones too: choosing one then says why it does not load."""
    if not settings.CHECKPOINTS.is_dir():
        return []
    return sorted(p.name for p in settings.CHECKPOINTS.iterdir() if p.is_dir() and not p.name.startswith("."))


def default_checkpoint() -> str | None:
    names = checkpoint_names()
    if settings.DEFAULT_CHECKPOINT in names:
        return settings.DEFAULT_CHECKPOINT
    return names[0] if names else None


def _card_title(card: str) -> str:
    """The model card's first heading, or its first line of text (after any YAML front matter)."""
    lines = card.splitlines()
    if lines and lines[0].strip() == "---":
        end = next((i for i, line in enumerate(lines[1:], 1) if line.strip() == "---"), 0)
        lines = lines[end + 1 :]
    text = [line.strip() for line in lines if line.strip()]
    heading = next((line for line in text if line.startswith("#")), text[0] if text else "")
    return heading.lstrip("#").strip()


def checkpoint_summary(name: str) -> str:
    """One line for the menu, read without loading weights: kind, data, tokens trained, title."""
    folder = settings.CHECKPOINTS / name
    try:
        meta = json.loads((folder / "config.json").read_text())
        kind, training = meta["kind"], meta.get("training") or {}
        kind = f"staged {kind}" if (meta.get("config") or {}).get("stages") else kind
        title = _card_title((folder / "README.md").read_text()) if (folder / "README.md").is_file() else ""
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        return f"{name} (unreadable: {type(e).__name__})"
    parts = [str(kind), str(training.get("data", "data unknown"))]
    if training.get("max_tokens"):
        parts.append(f"trained with ≤{training['max_tokens']} tokens")
    title = title if len(title) <= 60 else title[:59] + "…"
    return f"{name}: " + ", ".join(parts) + (f" ({title})" if title else "")


def trained_tokens(name: str | None) -> int | None:
    """The most tokens per image the checkpoint saw in training (config.json's training record),
    read without loading weights; None where it is not recorded or the folder is unreadable."""
    if not name or name not in checkpoint_names():
        return None
    try:
        value = (json.loads((settings.CHECKPOINTS / name / "config.json").read_text()).get("training") or {}).get(
            "max_tokens"
        )
    except (OSError, ValueError, AttributeError):
        return None
    return int(value) if isinstance(value, int) and value >= 1 else None


def default_tokens(name: str | None) -> int:
    """How many tokens to encode with a checkpoint unless the user asks otherwise: as many as it
    was trained with, so the first screen shows no extrapolation; at least MIN_DEFAULT_TOKENS, as a
    fixed-length autoencoder (trained with 1 token) shows what it is only past it (Fig. 1)."""
    trained = trained_tokens(name)
    if trained is None:
        return settings.N_TOKENS
    return min(max(trained, settings.MIN_DEFAULT_TOKENS), settings.N_TOKENS_MAX)


def checkpoint_choices() -> list[tuple[str, str]]:
    return [(checkpoint_summary(name), name) for name in checkpoint_names()]


_models: dict[str, tuple[str, vle_core.VLE]] = {}  # name -> (model id, model)
_unloadable: dict[str, str] = {}  # name -> the model id of files that failed to load while an older copy serves
_models_lock = threading.Lock()
# model -> (folder, model id): the files it was loaded from, for the encode worker
_origins = weakref.WeakKeyDictionary()


def forget() -> None:
    """Drop the loaded models (they are loaded again on next use)."""
    with _models_lock:
        _models.clear()
        _unloadable.clear()


def get_model(name: str | None) -> tuple[str, vle_core.VLE]:
    """(model id, VLE) for a checkpoint folder name. The id changes when the folder's files do,
    so a checkpoint retrained in place is reloaded and never served from stale cache entries."""
    if not name:
        raise UserError(
            f"No checkpoint chosen: there is none in {settings.CHECKPOINTS}."
            if not checkpoint_names()
            else "Choose a checkpoint first."
        )
    if name not in checkpoint_names():  # also keeps names like "../x" out of the file system
        raise UserError(f"There is no checkpoint called {name!r} in {settings.CHECKPOINTS}.")
    folder = settings.CHECKPOINTS / name
    try:
        model_id = worker.checkpoint_id(folder)
    except OSError as e:
        raise UserError(f"Checkpoint {name} cannot be loaded: {e.strerror}: {Path(e.filename).name}") from e
    with _models_lock:
        if name in _models and _models[name][0] == model_id:
            return _models[name]
        if name in _models and _unloadable.get(name) == model_id:
            return _models[name]
        try:
            vle = vle_core.load_vle(folder, device=settings.DEVICE)
        except ValueError as e:
            if name in _models:  # the checkpoint-swap guard: a folder replaced by a broken copy keeps the model it had
                _unloadable[name] = model_id  # not tried again until the files change once more
                gr.Warning(
                    f"Checkpoint {name} changed on disk and the new files do not load ({e}); "
                    "still using the copy loaded before."
                )
                return _models[name]
            raise UserError(f"Checkpoint {name} cannot be loaded: {e}") from e
        _models[name] = (model_id, vle)
        _origins[vle] = (folder, model_id)
        return _models[name]


def encode_image(
    vle: vle_core.VLE, image: np.ndarray, n: int, target_psnr: float | None = None, on_token=None
) -> vle_core.Encoding:
    """vle.encode(image, n), or with target_psnr, vle.encode(image, target_psnr=..., max_tokens=n),
    made by the encode worker (a niced child process, worker.py) where it can: from the files `vle`
    was loaded from, if they are still there unchanged. Otherwise, for a model not loaded by
    get_model and for a target (the worker encodes fixed counts), here: this also raises any error
    the user should see. on_token(k, most) follows an encode made here (VLE.encode)."""
    if target_psnr is None and vle in _origins and worker.usable():
        encoding = worker.encode(vle, *_origins[vle], image, n)
        if encoding is not None:
            return encoding
    return _encode_here(vle, image, n, target_psnr, on_token)


@GPU
def _encode_here(
    vle: vle_core.VLE, image: np.ndarray, n: int, target_psnr: float | None = None, on_token=None
) -> vle_core.Encoding:
    if target_psnr is None:
        return vle.encode(image, n, on_token=on_token)
    return vle.encode(image, target_psnr=target_psnr, max_tokens=n, on_token=on_token)


@GPU
def render_tokens(vle: vle_core.VLE, tokens: Tokens) -> vle_core.Rendering:
    return vle.render(tokens)
