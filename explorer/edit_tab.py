"""The Edit tab: switch, solo, scale, move, scatter and transplant tokens, undo and reset.
Every handler appends one op to the history and shows the replayed result (edits.py)."""

import gradio as gr
import numpy as np

from vle_core import metrics

from . import settings
from .cache import Entry, _weights, get_entry
from .edits import Edited, describe
from .errors import UserError
from .images import fit_working_size, picture_xy, read_image, view_file
from .session import edited, require, session
from .views import entry_overlay, highlight, label_overlay, token_weights


def item_weights(state: dict, result: Edited, rows: list[int]) -> np.ndarray:
    """token_weights of these items of the edited sequence, (len(rows), H, W). Each token's map
    depends on that token alone, so it is kept per token (as its decode is): an edit changes one
    token, and only its map is computed again (a move at 256 px: 44 ms instead of 55)."""
    maps = []
    for i in rows:
        key = (state["model_id"], state["key"], result.items[i].identity)
        weights = _weights.get(key)
        if weights is None:
            item = result.items[i]
            weights = token_weights(result.contributions[[i]], None if result.masks is None else result.masks[[i]], item.token.stage.numpy())[0]
            _weights.put(key, weights, weights.nbytes)
        maps.append(weights)
    return np.stack(maps)


def edit_overlay(state: dict, result: Edited, selected: int) -> np.ndarray:
    """The edited tokens' regions over the edited image, the selected token's lit."""
    on = result.on
    picture = result.image
    if not on:
        return picture
    labels = item_weights(state, result, on).argmax(0)
    overlay = label_overlay(picture, labels, [i + 1 for i in on])
    return highlight(overlay, labels, on.index(selected)) if selected in on else overlay


def edit_views(state: dict, entry: Entry, result: Edited, selected: int) -> tuple:
    """(edited image, overlay, tokens-on choices, token picker, strength, dx, dy, log)."""
    m, (H, W) = len(result.items), entry.image.shape[:2]
    selected = min(max(selected, 0), m - 1)
    it = result.items[selected]
    choices = [(f"{i + 1}" + (" (transplant)" if item.origin[0] == "transplant" else ""), i + 1) for i, item in enumerate(result.items)]
    history = state["history"]
    log = f"**{len(result.on)} of {m} tokens on**"
    if history:
        psnr = metrics.psnr(entry.image, result.image)
        against = "the source" if entry.source == "image" else "the loaded tokens"
        log += f" · PSNR against {against} {psnr:.1f} dB · {len(history)} edit{'s' * (len(history) > 1)}: " + "; ".join(describe(history)[-6:])
        log += " …" if len(history) > 6 else ""
    else:
        log += " · no edits yet"
    if result.objects:
        log += " · a region token takes its object with it: the whole-image tokens' picture under its mask moves or goes with it (strength scales the token alone)"
    return (
        view_file(result.image),
        view_file(edit_overlay(state, result, selected)),
        gr.update(choices=choices, value=[i + 1 for i in result.on]),
        gr.update(maximum=max(m, 2), value=selected + 1, interactive=m > 1),
        it.strength,
        gr.update(value=it.dx, minimum=-W, maximum=W),
        gr.update(value=it.dy, minimum=-H, maximum=H),
        log,
    )


def apply_edit(state: dict | None, op: list, selected: int) -> tuple:
    """Append an op (refused with a clear message if impossible) and show the result."""
    state = require(state)
    if len(state["history"]) >= settings.MAX_EDITS:
        raise UserError(f"This session has {settings.MAX_EDITS} edits, the most it keeps: undo some, or reset.")
    history = state["history"] + [op]
    vle, entry, result = edited(state, history)
    state = {**state, "history": history}
    return (state, *edit_views(state, entry, result, selected))


def on_pick_edit_token(token: float, state: dict | None):
    """Show the picked token's strength and offset, and light its region."""
    if not state:
        return 1.0, 0, 0, None
    _, entry, result = edited(state)
    i = int(min(max(int(token), 1), len(result.items))) - 1
    it = result.items[i]
    return it.strength, it.dx, it.dy, view_file(edit_overlay(state, result, i))


def on_select_edit_token(state: dict | None, evt: gr.SelectData):
    """A click on the edit overlay picks the switched-on token that is largest there."""
    state = require(state)
    _, _, result = edited(state)
    on = result.on
    if not on:
        raise UserError("All tokens are switched off.")
    weights = item_weights(state, result, on)
    x, y = picture_xy(evt.index, weights.shape[1:])
    return on[int(weights[:, y, x].argmax())] + 1


def on_switch(tokens_on: list, state: dict | None, token: float = 1):
    """Switch tokens on and off: tokens_on lists the (1-based) tokens to keep on."""
    return apply_edit(state, ["switch", sorted(int(i) - 1 for i in tokens_on or [])], int(token) - 1)


def on_all_on(state: dict | None, token: float = 1):
    state = require(state)
    m = len(edited(state)[2].items)
    return apply_edit(state, ["switch", list(range(m))], int(token) - 1)


def on_solo(token: float, state: dict | None):
    """Keep only this (1-based) token on."""
    return apply_edit(state, ["solo", int(token) - 1], int(token) - 1)


def on_strength(token: float, strength: float, state: dict | None):
    """Scale the token's addition: 0 silences it, 1 is as encoded, 2 doubles it."""
    return apply_edit(state, ["strength", int(token) - 1, round(float(strength), 4)], int(token) - 1)


def on_move(token: float, dx: float, dy: float, state: dict | None):
    """Relocate the token to (dx, dy) px from where it was encoded (right and down positive)."""
    return apply_edit(state, ["move", int(token) - 1, round(float(dx)), round(float(dy))], int(token) - 1)


def on_move_to(token: float, state: dict | None, evt: gr.SelectData):
    """A click on the edited image moves the token so that its centre lands there."""
    state = require(state)
    _, entry, result = edited(state)
    i = int(token) - 1
    if not 0 <= i < len(result.items):
        raise UserError(f"There is no token {i + 1}.")
    it = result.items[i]
    if not it.on:
        raise UserError(f"Token {i + 1} is switched off: switch it on to move it.")
    weights = item_weights(state, result, [i])[0]
    total = float(weights.sum())
    H, W = weights.shape
    if total > 0:
        ys, xs = np.mgrid[0:H, 0:W]
        cy, cx = float((weights * ys).sum() / total), float((weights * xs).sum() / total)
    else:
        cy, cx = H / 2, W / 2
    x, y = picture_xy(evt.index, (H, W))
    dx = int(np.clip(round(it.dx + x - cx), -W, W))
    dy = int(np.clip(round(it.dy + y - cy), -H, H))
    return apply_edit(state, ["move", i, dx, dy], i)


def _donor(donor_image, state: dict) -> tuple[str, dict, Entry]:
    """(cache key, state that knows the donor, its entry): the donor image scaled to this image's
    long side and encoded by the same checkpoint into as many tokens."""
    if donor_image is None:
        raise UserError("Choose a donor image first.")
    vle, entry = session(state)
    source = ("image", fit_working_size(read_image(donor_image), max(entry.image.shape[:2]))[0])
    key, entry, _ = get_entry(state["model_id"], vle, source, state["n"])
    # The state keeps the sources its edits use (the image, donors transplanted from) and this donor:
    # a donor tried and not used is forgotten; their number is bounded, as each is a picture.
    used = {state["key"]} | {op[1] for op in state["history"] if op[0] == "transplant"}
    sources = {k: v for k, v in state["sources"].items() if k in used} | {key: source}
    if len(sources) > 1 + settings.MAX_DONORS:
        raise UserError(f"This session's edits use {settings.MAX_DONORS} donor images, the most it keeps: transplant from one of them, or reset.")
    return key, {**state, "sources": sources}, entry


def on_donor(donor_image, donor_token: float, state: dict | None):
    """Encode the donor image (cached) and show its tokens, the chosen one lit. A bad donor file
    is one warning, and no view."""
    if donor_image is None or not state:
        return None, gr.update()
    try:
        _, _, entry = _donor(donor_image, state)
    except UserError as e:
        gr.Warning(e.message)
        return None, gr.update()
    labels, overlay = entry_overlay(entry)
    j = int(min(max(int(donor_token), 1), len(entry)))
    return view_file(highlight(overlay, labels, j - 1)), gr.update(maximum=max(len(entry), 2), value=j)


def on_transplant(donor_image, donor_token: float, state: dict | None, progress=gr.Progress()):  # noqa: B008 (gradio injects progress this way)
    """Append token donor_token of a second image (encoded by the same checkpoint), in place."""
    state = require(state)
    progress(0.1, desc="Encoding the donor image")
    key, state, _ = _donor(donor_image, state)
    m = len(edited(state)[2].items)
    return apply_edit(state, ["transplant", key, int(donor_token) - 1], m)


def on_scatter(seed: float, state: dict | None, token: float = 1):
    """Move every token by its own random offset (Section 4's proposed experiment)."""
    return apply_edit(state, ["scatter", int(seed or 0)], int(token) - 1)


def on_undo(state: dict | None, token: float = 1):
    state = require(state)
    if not state["history"]:
        gr.Info("Nothing to undo.")
    state = {**state, "history": state["history"][:-1]}
    _, entry, result = edited(state)
    return (state, *edit_views(state, entry, result, int(token) - 1))


def on_reset(state: dict | None, token: float = 1):
    state = {**require(state), "history": []}
    _, entry, result = edited(state)
    return (state, *edit_views(state, entry, result, int(token) - 1))
